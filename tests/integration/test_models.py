"""Data models as DynamoDB users build them (DESIGN.md §9), black-box on a real server.

Single-table design with kinds, sparse and projected indexes, TTL, compound
unique constraints, the nesting and key-size limits, and schema errors: each
through the public API, with what is stored checked with a raw client.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Attr, Key

import uow
from tests.integration.support import Calls, raw_count, raw_get, raw_put
from tests.models import APP_MODELS, Customer, Invoice, Note
from uow.plan import GUARD_TABLE

pytestmark = pytest.mark.asyncio

UTC = dt.UTC
FUTURE = dt.datetime(2100, 1, 1, tzinfo=UTC)
PAST = dt.datetime(2000, 1, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def app(uow_store: uow.Store) -> AsyncIterator[uow.Store]:
    """The shared `app` table, holding customer c1's profile, two invoices and a note."""
    await uow_store.create_tables(*APP_MODELS)
    async with uow_store.session() as setup:
        setup.add(Customer("CUST#1", "PROFILE", "a@x", tenant="t1", slug="acme"))
        setup.add(Invoice("CUST#1", "INV#0001", "t1", 1, 100, status="open", due="2024-02"))
        setup.add(Invoice("CUST#1", "INV#0002", "t1", 2, 250, due="2024-01"))
        setup.add(Note("CUST#1", "NOTE#1", "call back"))
    yield uow_store


def declared(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A raw item without the attributes uow keeps for its own bookkeeping (`_uow...`)."""
    if stored is None:
        return None
    return {name: value for name, value in stored.items() if not name.startswith("_uow")}


def recorder(store: uow.Store) -> Calls:
    """A record of the requests `store` sends from now on."""
    calls = Calls()
    calls.attach(store)
    return calls


async def guards(store: uow.Store) -> list[str]:
    """The keys of every unique guard item, sorted."""
    response = await store.client.scan(TableName=store.table_prefix + GUARD_TABLE)
    return sorted(item["guard"]["S"] for item in response.get("Items", ()))


class TestKinds:
    """`kind=` writes a kind attribute, and reads only accept items of their kind."""

    async def test_each_item_carries_its_kind(self, app: uow.Store) -> None:
        """The kind attribute `_kind` holds the model's kind string."""
        profile = await raw_get(app, Customer, pk="CUST#1", sk="PROFILE")
        invoice = await raw_get(app, Invoice, pk="CUST#1", sk="INV#0001")
        assert profile is not None
        assert invoice is not None
        assert (profile["_kind"], invoice["_kind"]) == ("customer", "invoice")

    async def test_kind_attribute_renames_it(self, uow_store: uow.Store) -> None:
        """`kind_attribute="type"` stores the kind under that name and reads by it."""

        @uow.model(table="things", pk="id", kind="widget", kind_attribute="type")
        @attrs.define
        class Widget:
            id: str

        await uow_store.create_tables(Widget)
        async with uow_store.session() as s:
            s.add(Widget("w1"))
        assert declared(await raw_get(uow_store, Widget, id="w1")) == {"id": "w1", "type": "widget"}
        async with uow_store.session() as s:
            assert await s.get(Widget, "w1") == Widget("w1")

    async def test_a_query_of_one_model_skips_other_kinds(self, app: uow.Store) -> None:
        """`query(Invoice, ...)` on a collection yields only the invoices."""
        async with app.session() as s:
            found = [x async for x in s.query(Invoice, Key("pk").eq("CUST#1"))]
        assert [x.sk for x in found] == ["INV#0001", "INV#0002"]
        assert all(type(x) is Invoice for x in found)

    async def test_an_item_collection_yields_each_item_as_its_own_model(
        self, app: uow.Store
    ) -> None:
        """`query((Customer, Invoice), ...)`: one stream, each item typed by its kind; notes skipped."""
        async with app.session() as s:
            found = [x async for x in s.query((Customer, Invoice), Key("pk").eq("CUST#1"))]
            assert [(type(x).__name__, x.sk) for x in found] == [
                ("Invoice", "INV#0001"),
                ("Invoice", "INV#0002"),
                ("Customer", "PROFILE"),
            ]
            assert found[2] is await s.get(Customer, "CUST#1", "PROFILE")  # one object per item
            assert len(s.identity_map) == 3

    async def test_a_limit_counts_only_the_items_yielded(self, app: uow.Store) -> None:
        """`limit=2` yields two invoices even though the first rows include other kinds."""
        async with app.session() as s:
            found = [
                x async for x in s.query(Invoice, Key("pk").eq("CUST#1"), limit=2, reverse=True)
            ]
        assert [x.sk for x in found] == ["INV#0002", "INV#0001"]

    async def test_a_scan_of_one_model_skips_other_kinds(self, app: uow.Store) -> None:
        """`scan(Customer)` yields only the customer, `scan((Customer, Note))` both kinds."""
        async with app.session() as s:
            assert [x.sk async for x in s.scan(Customer)] == ["PROFILE"]
            both = {type(x).__name__ async for x in s.scan((Customer, Note))}
        assert both == {"Customer", "Note"}

    async def test_get_of_another_kind_raises_schema_error(self, app: uow.Store) -> None:
        """`get(Invoice, <customer key>)` names both kinds and merges nothing."""
        async with app.session() as s:
            with pytest.raises(
                uow.SchemaError, match=r"of kind 'customer', not 'invoice' \(Invoice\)"
            ):
                await s.get(Invoice, "CUST#1", "PROFILE")
            assert len(s.identity_map) == 0

    async def test_get_many_of_another_kind_raises_schema_error(self, app: uow.Store) -> None:
        """`get_many` with one key of another kind raises, naming both kinds."""
        async with app.session() as s:
            with pytest.raises(uow.SchemaError, match="'note'"):
                await s.get_many(Invoice, [("CUST#1", "INV#0001"), ("CUST#1", "NOTE#1")])
            assert len(s.identity_map) == 0

    async def test_get_of_a_key_mapped_as_another_model_raises_before_any_request(
        self, app: uow.Store
    ) -> None:
        """The session already holds the item as a Customer: no second object, no request."""
        async with app.session() as s:
            await s.get(Customer, "CUST#1", "PROFILE")
            calls = recorder(app)
            with pytest.raises(
                uow.SchemaError, match=r"holds the item as Customer \(kind 'customer'\)"
            ):
                await s.get(Invoice, "CUST#1", "PROFILE")
            assert calls.log == []

    async def test_refresh_of_an_item_that_changed_kind_raises(self, app: uow.Store) -> None:
        """An item rewritten as another kind behind the session's back: refresh says so."""
        async with app.session() as s:
            note = await s.get(Note, "CUST#1", "NOTE#1")
            assert note is not None
            await raw_put(app, Note, pk="CUST#1", sk="NOTE#1", _kind="memo", text="x")
            with pytest.raises(uow.SchemaError, match="'memo'"):
                await s.refresh(note)
            assert note.text == "call back"

    async def test_a_blind_update_of_another_kind_fails_and_changes_nothing(
        self, app: uow.Store
    ) -> None:
        """`update(Note, <customer key>)` is conditioned on the kind: a ConflictError."""
        before = await raw_get(app, Customer, pk="CUST#1", sk="PROFILE")
        s = app.session()
        s.update(Note, "CUST#1", "PROFILE", set={"text": "overwritten"})
        with pytest.raises(uow.CommitError) as caught:
            await s.commit()
        assert isinstance(caught.value.failed[0][1], uow.ConflictError)
        assert await raw_get(app, Customer, pk="CUST#1", sk="PROFILE") == before

    async def test_a_user_condition_on_another_kind_is_a_conflict(self, app: uow.Store) -> None:
        """With `condition=`, an item of another kind still fails the kind, not the condition:
        a `ConflictError` that is no `ConditionFailed`, so no Note is built from a customer."""
        s = app.session()
        s.update(Note, "CUST#1", "PROFILE", set={"text": "x"}, condition=Attr("text").eq("y"))
        with pytest.raises(uow.CommitError) as caught:
            await s.commit()
        cause = caught.value.failed[0][1]
        assert isinstance(cause, uow.ConflictError)
        assert not isinstance(cause, uow.ConditionFailed)

    async def test_a_user_condition_on_its_own_kind_shows_the_item(self, app: uow.Store) -> None:
        """The same failing condition on a note is a `ConditionFailed`."""
        s = app.session()
        s.update(Note, "CUST#1", "NOTE#1", set={"text": "x"}, condition=Attr("text").eq("y"))
        with pytest.raises(uow.CommitError) as caught:
            await s.commit()
        cause = caught.value.failed[0][1]
        assert isinstance(cause, uow.ConditionFailed)

    async def test_a_blind_update_of_its_own_kind_is_written(self, app: uow.Store) -> None:
        """The kind condition lets an update of the right kind through."""
        async with app.session() as s:
            s.update(Note, "CUST#1", "NOTE#1", set={"text": "done"})
        stored = await raw_get(app, Note, pk="CUST#1", sk="NOTE#1")
        assert stored is not None
        assert (stored["text"], stored["_kind"]) == ("done", "note")

    async def test_an_item_replaced_by_another_kind(self, app: uow.Store) -> None:
        """Delete a note, add a customer at its key: a put of the new kind; rollback restores the note."""
        async with app.session() as s:
            note = await s.get(Note, "CUST#1", "NOTE#1")
            assert note is not None
            s.delete(note)
            s.add(Customer("CUST#1", "NOTE#1", "n@x"))
            s.rollback()
            assert await s.get(Note, "CUST#1", "NOTE#1") is note
            assert s.pending == ()
            s.delete(note)
            s.add(Customer("CUST#1", "NOTE#1", "n@x"))
        stored = await raw_get(app, Customer, pk="CUST#1", sk="NOTE#1")
        assert stored is not None
        assert (stored["_kind"], stored["email"], "text" in stored) == ("customer", "n@x", False)

    async def test_replacing_a_kind_releases_its_guards(self, app: uow.Store) -> None:
        """A customer replaced by a note gives up its `(tenant, slug)` guard in the same write."""
        async with app.session() as s:
            customer = await s.get(Customer, "CUST#1", "PROFILE")
            s.delete(customer)
            s.add(Note("CUST#1", "PROFILE", "gone"))
        assert not any("customer" in key for key in await guards(app))
        async with app.session() as s:
            s.add(Customer("CUST#2", "PROFILE", "b@x", tenant="t1", slug="acme"))  # free again

    async def test_create_tables_makes_one_table_with_every_index(self, app: uow.Store) -> None:
        """The shared table has the union of the models' indexes; a second call is a no-op."""
        await app.create_tables(*APP_MODELS)
        table = (await app.client.describe_table(TableName=app.table_name(Invoice)))["Table"]
        indexes = {i["IndexName"]: i["Projection"] for i in table["GlobalSecondaryIndexes"]}
        assert set(indexes) == {"by_slug", "open", "by_number"}
        assert indexes["open"]["ProjectionType"] == "KEYS_ONLY"
        assert indexes["by_number"]["ProjectionType"] == "INCLUDE"
        assert set(indexes["by_number"]["NonKeyAttributes"]) == {
            "amount",
            "tenant",
            "_kind",
            "expires_at",
        }

    async def test_disagreeing_models_are_refused_before_any_request(
        self, uow_store: uow.Store
    ) -> None:
        """Two models of one table with one kind: `ValidationError`, no table created."""

        @uow.model(table="app", pk="pk", sk="sk", kind="customer")
        @attrs.define
        class Impostor:
            pk: str
            sk: str

        calls = recorder(uow_store)
        with pytest.raises(uow.ValidationError, match=r"Customer and Impostor .* kind 'customer'"):
            await uow_store.create_tables(Customer, Impostor)
        assert calls.log == []


class TestPages:
    """`page()` reads rows through the same path as `query`: kinds, TTL and projections."""

    async def test_a_page_holds_only_live_items_of_its_kind(self, app: uow.Store) -> None:
        """The customer, the note and an expired invoice never fill a page slot."""
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=PAST))
            s.add(Invoice("CUST#1", "INV#0004", "t1", 4, 1))
        async with app.session() as s:
            first = await s.page(Invoice, Key("pk").eq("CUST#1"), limit=2)
            assert [x.sk for x in first.items] == ["INV#0001", "INV#0002"]
            assert first.cursor is not None
            second = await s.page(Invoice, Key("pk").eq("CUST#1"), limit=2, after=first.cursor)
        assert [x.sk for x in second.items] == ["INV#0004"]
        assert second.cursor is None

    async def test_a_page_of_a_keys_only_index_is_complete(self, app: uow.Store) -> None:
        """Rows of `open` are completed with BatchGetItem; the cursor continues the index."""
        async with app.session() as s:
            s.add(Invoice("CUST#2", "INV#0003", "t1", 3, 70, status="open", due="2024-01"))
        async with app.session() as s:
            first = await s.page(Invoice, Key("status").eq("open"), index="open", limit=1)
            assert first.items == (
                Invoice("CUST#2", "INV#0003", "t1", 3, 70, status="open", due="2024-01"),
            )
            assert s.read_stats.requests.get("BatchGetItem", 0) >= 1
            second = await s.page(
                Invoice, Key("status").eq("open"), index="open", limit=1, after=first.cursor
            )
        assert [x.sk for x in second.items] == ["INV#0001"]
        assert second.items[0].amount == 100


class TestSparseIndexes:
    """An optional index key leaves the records without a value out of the index."""

    async def test_only_items_with_the_key_are_in_the_index(self, app: uow.Store) -> None:
        """Of the two invoices, only the open one (with `status`) is found through `open`."""
        async with app.session() as s:
            found = [x async for x in s.query(Invoice, Key("status").eq("open"), index="open")]
        assert [x.sk for x in found] == ["INV#0001"]

    async def test_removing_the_key_takes_the_record_out(self, app: uow.Store) -> None:
        """`status = None` removes the attribute, and with it the index entry."""
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0001")
            assert invoice is not None
            invoice.status = None
        stored = await raw_get(app, Invoice, pk="CUST#1", sk="INV#0001")
        assert stored is not None
        assert "status" not in stored
        async with app.session() as s:
            assert [x async for x in s.query(Invoice, Key("status").eq("open"), index="open")] == []

    async def test_a_sparse_hash_only_index(self, app: uow.Store) -> None:
        """`by_slug` (ALL projection) finds the customer with a slug and no other item."""
        async with app.session() as s:
            s.add(Customer("CUST#2", "PROFILE", "b@x", tenant="t1"))  # no slug
        async with app.session() as s:
            found = [x async for x in s.query(Customer, Key("slug").eq("acme"), index="by_slug")]
            everything = [x async for x in s.scan(Customer, index="by_slug")]
        assert [x.pk for x in found] == ["CUST#1"]
        assert [x.pk for x in everything] == ["CUST#1"]


class TestProjections:
    """Rows of an index that does not project every field are completed: never a partial object."""

    async def test_a_keys_only_query_returns_complete_objects(self, app: uow.Store) -> None:
        """Complete invoices, one `BatchGetItem` for the page, counted in `read_stats`."""
        async with app.session() as s:
            s.add(Invoice("CUST#2", "INV#0003", "t1", 3, 70, status="open", due="2024-01"))
        async with app.session() as s:
            found = [x async for x in s.query(Invoice, Key("status").eq("open"), index="open")]
            assert found == [
                Invoice("CUST#2", "INV#0003", "t1", 3, 70, status="open", due="2024-01"),
                Invoice("CUST#1", "INV#0001", "t1", 1, 100, status="open", due="2024-02"),
            ]  # in index order (due)
            assert s.read_stats.requests == {"Query": 1, "BatchGetItem": 1}
            assert s.read_stats.misses == 2

    async def test_mapped_records_cost_nothing(self, app: uow.Store) -> None:
        """A record already in the map is not read again: the map's object is yielded."""
        async with app.session() as s:
            s.add(Invoice("CUST#2", "INV#0003", "t1", 3, 70, status="open", due="2024-01"))
        async with app.session() as s:
            mapped = await s.get(Invoice, "CUST#1", "INV#0001")
            assert mapped is not None
            mapped.amount = 999  # a local change, kept
            calls = recorder(app)
            found = [
                x
                async for x in s.query(
                    Invoice, Key("status").eq("open"), index="open", reverse=True
                )
            ]
            assert found[0] is mapped
            assert found[0].amount == 999
            [batch] = calls.params("BatchGetItem")
            [(_, request)] = batch["RequestItems"].items()
            assert [k["sk"]["S"] for k in request["Keys"]] == ["INV#0003"]

    async def test_all_rows_mapped_need_no_batch_get(self, app: uow.Store) -> None:
        """When every row's record is mapped, the query sends only the `Query`."""
        async with app.session() as s:
            await s.get(Invoice, "CUST#1", "INV#0001")
            calls = recorder(app)
            found = [x async for x in s.query(Invoice, Key("status").eq("open"), index="open")]
            assert [x.sk for x in found] == ["INV#0001"]
            assert calls.apis == {"Query": 1}

    async def test_an_include_projection_reads_whole_items(self, app: uow.Store) -> None:
        """`by_number` projects two fields: the rows are completed like keys-only rows."""
        async with app.session() as s:
            found = [
                x
                async for x in s.query(
                    Invoice, Key("pk").eq("CUST#1") & Key("number").gte(2), index="by_number"
                )
            ]
            assert found == [Invoice("CUST#1", "INV#0002", "t1", 2, 250, due="2024-01")]
            assert s.read_stats.requests == {"Query": 1, "BatchGetItem": 1}

    async def test_rows_showing_another_kind_or_expiry_are_not_read(self, app: uow.Store) -> None:
        """`by_number` projects the kind and TTL attributes: such rows cost no BatchGetItem."""
        await raw_put(app, Note, pk="CUST#1", sk="NOTE#2", _kind="note", number=5, text="x")
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=PAST))
        calls = recorder(app)
        async with app.session() as s:
            found = [
                x.sk
                async for x in s.query(
                    Invoice, Key("pk").eq("CUST#1") & Key("number").gte(2), index="by_number"
                )
            ]
        assert found == ["INV#0002"]
        [batch] = calls.params("BatchGetItem")
        [(_, request)] = batch["RequestItems"].items()
        assert [k["sk"]["S"] for k in request["Keys"]] == ["INV#0002"]

    async def test_a_row_whose_item_vanished_is_skipped(self, app: uow.Store) -> None:
        """An index row whose item is gone by the time it is completed is not yielded."""
        async with app.session() as s:
            rows = s.query(Invoice, Key("status").eq("open"), index="open")
            await app.client.delete_item(
                TableName=app.table_name(Invoice),
                Key={"pk": {"S": "CUST#1"}, "sk": {"S": "INV#0001"}},
            )
            assert [x async for x in rows] == []


class TestTimeToLive:
    """`ttl=`: stored as epoch seconds, enabled by `create_tables`, expired items read as absent."""

    async def test_create_tables_enables_ttl(self, app: uow.Store) -> None:
        """`DescribeTimeToLive` reports it on `expires_at`; a second `create_tables` is fine."""
        await app.create_tables(*APP_MODELS)
        described = await app.client.describe_time_to_live(TableName=app.table_name(Invoice))
        assert described["TimeToLiveDescription"]["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
        assert described["TimeToLiveDescription"]["AttributeName"] == "expires_at"

    async def test_a_datetime_is_stored_as_epoch_seconds(self, app: uow.Store) -> None:
        """An aware datetime becomes a Number; it reads back as the same instant in UTC."""
        when = dt.datetime(2100, 1, 1, 12, 30, 15, 999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        async with app.session() as s:
            s.add(Invoice("CUST#3", "INV#0009", "t3", 9, 1, expires_at=when))
        stored = await raw_get(app, Invoice, pk="CUST#3", sk="INV#0009")
        assert stored is not None
        assert stored["expires_at"] == Decimal(int(when.timestamp()))
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#3", "INV#0009")
            assert invoice is not None
            assert invoice.expires_at == when.replace(microsecond=0)

    async def test_none_never_expires(self, app: uow.Store) -> None:
        """No TTL value: no attribute, and the item stays visible."""
        stored = await raw_get(app, Invoice, pk="CUST#1", sk="INV#0001")
        assert stored is not None
        assert "expires_at" not in stored

    async def test_an_expired_item_is_invisible_to_every_read(self, app: uow.Store) -> None:
        """`get`, `get_many` → None, `query`/`scan` skip it, `get_by` finds nothing."""
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=PAST))
            s.add(Invoice("CUST#1", "INV#0004", "t1", 4, 1, expires_at=FUTURE))
        async with app.session() as s:
            assert await s.get(Invoice, "CUST#1", "INV#0003") is None
            assert await s.get_many(Invoice, [("CUST#1", "INV#0003"), ("CUST#1", "INV#0004")]) == [
                None,
                Invoice("CUST#1", "INV#0004", "t1", 4, 1, expires_at=FUTURE),
            ]
            queried = [x.sk async for x in s.query(Invoice, Key("pk").eq("CUST#1"))]
            scanned = [x.sk async for x in s.scan(Invoice)]
            assert await s.get_by(Invoice, tenant="t1", number=3) is None
        assert queried == ["INV#0001", "INV#0002", "INV#0004"]
        assert sorted(scanned) == ["INV#0001", "INV#0002", "INV#0004"]
        assert await raw_get(app, Invoice, pk="CUST#1", sk="INV#0003") is not None  # still stored

    async def test_refresh_of_an_expired_item_is_not_found(self, app: uow.Store) -> None:
        """Once its time has passed, `refresh` raises `NotFoundError` and expunges the record."""
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0001")
            assert invoice is not None
            expired = int(time.time()) - 1
            await app.client.update_item(
                TableName=app.table_name(Invoice),
                Key={"pk": {"S": "CUST#1"}, "sk": {"S": "INV#0001"}},
                UpdateExpression="SET expires_at = :t",
                ExpressionAttributeValues={":t": {"N": str(expired)}},
            )
            with pytest.raises(uow.NotFoundError):
                await s.refresh(invoice)
            assert len(s.identity_map) == 0

    async def test_an_expired_key_can_be_added_again(self, app: uow.Store) -> None:
        """`add` is create-only, but an expired item does not count as existing."""
        async with app.session() as s:
            s.add(Note("CUST#1", "NOTE#9"))
        await raw_put(
            app, Invoice, pk="CUST#5", sk="INV#0001", _kind="invoice", tenant="t5", number=1,
            amount=1, expires_at=int(PAST.timestamp()),
        )  # fmt: skip
        async with app.session() as s:
            s.add(Invoice("CUST#5", "INV#0001", "t5", 1, 2))
        stored = await raw_get(app, Invoice, pk="CUST#5", sk="INV#0001")
        assert stored is not None
        assert (stored["amount"], "expires_at" in stored) == (2, False)

    async def test_an_int_ttl_field(self, uow_store: uow.Store) -> None:
        """An `int` TTL field holds epoch seconds as they are."""

        @uow.model(table="sessions", pk="id", ttl="expires")
        @attrs.define
        class WebSession:
            id: str
            expires: int | None = None

        await uow_store.create_tables(WebSession)
        async with uow_store.session() as s:
            s.add_all([WebSession("old", 1_000_000), WebSession("new", 4_000_000_000)])
        stored = declared(await raw_get(uow_store, WebSession, id="old"))
        assert stored == {"id": "old", "expires": 1000000}
        async with uow_store.session() as s:
            assert await s.get(WebSession, "old") is None
            assert await s.get(WebSession, "new") == WebSession("new", 4_000_000_000)

    async def test_a_ttl_field_of_another_type_is_refused(self) -> None:
        """A `str` TTL field raises `ValidationError` when the model is declared."""
        with pytest.raises(uow.ValidationError, match=r"Bad.expires is the ttl= field"):

            @uow.model(table="bad", pk="id", ttl="expires")
            @attrs.define
            class Bad:
                id: str
                expires: str = ""


class TestExpiringGuards:
    """The unique guards of a model with `ttl=` expire with their record."""

    async def guard(self, store: uow.Store, number: int) -> dict[str, Any]:
        """The stored guard item of tenant t1's invoice `number`."""
        key = f'app#invoice#tenant+number#["s:t1", "n:{number}"]'
        response = await store.client.get_item(
            TableName=store.table_prefix + GUARD_TABLE, Key={"guard": {"S": key}}
        )
        return dict(response["Item"])

    async def test_guards_carry_the_expiry(self, app: uow.Store) -> None:
        """The guard of an expiring invoice holds its epoch seconds; a guard of one that never
        expires has none; the guard table has TTL on that attribute."""
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=FUTURE))
        assert (await self.guard(app, 3))["expires"] == {"N": str(int(FUTURE.timestamp()))}
        assert "expires" not in await self.guard(app, 1)
        described = await app.client.describe_time_to_live(TableName=app.table_prefix + GUARD_TABLE)
        assert described["TimeToLiveDescription"]["AttributeName"] == "expires"

    async def test_an_expired_records_values_can_be_taken(self, app: uow.Store) -> None:
        """A new invoice takes `(t1, 3)` from an expired one, which reads as absent."""
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=PAST))
        async with app.session() as s:
            s.add(Invoice("CUST#2", "INV#0003", "t1", 3, 2))
        assert (await self.guard(app, 3))["owner"]["S"].startswith("app#'CUST#2'")
        async with app.session() as s:
            found = await s.get_by(Invoice, tenant="t1", number=3)
            assert found is not None
            assert found.pk == "CUST#2"

    async def test_a_live_records_values_cannot_be_taken(self, app: uow.Store) -> None:
        """While the owner has not expired, its guard holds."""
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=FUTURE))
        s = app.session()
        s.add(Invoice("CUST#2", "INV#0003", "t1", 3, 2))
        with pytest.raises(uow.CommitError) as caught:
            await s.commit()
        assert isinstance(caught.value.failed[0][1], uow.UniqueViolation)

    async def test_a_new_expiry_moves_the_guards(self, app: uow.Store) -> None:
        """Extending an invoice's life claims its guard again with the new expiry."""
        later = FUTURE + dt.timedelta(days=365)
        async with app.session() as s:
            s.add(Invoice("CUST#1", "INV#0003", "t1", 3, 1, expires_at=FUTURE))
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0003")
            assert invoice is not None
            invoice.expires_at = later
        assert (await self.guard(app, 3))["expires"] == {"N": str(int(later.timestamp()))}
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0003")
            assert invoice is not None
            invoice.expires_at = None
        assert "expires" not in await self.guard(app, 3)

    async def test_a_blind_update_of_the_expiry_is_refused(self, app: uow.Store) -> None:
        """The guards follow the expiry, so changing it needs the loaded record."""
        async with app.session() as s:
            with pytest.raises(uow.ValidationError, match="TTL their guards follow"):
                s.update(Invoice, "CUST#1", "INV#0001", set={"expires_at": FUTURE})


class TestCompoundUnique:
    """A tuple in `unique=` makes the combination unique: one guard per value tuple."""

    async def test_one_guard_per_value_tuple(self, app: uow.Store) -> None:
        """Each invoice claims `(tenant, number)`; the customer's `(tenant, slug)` claims too."""
        keys = await guards(app)
        assert keys == [
            'app#customer#tenant+slug#["s:t1", "s:acme"]',
            'app#invoice#tenant+number#["s:t1", "n:1"]',
            'app#invoice#tenant+number#["s:t1", "n:2"]',
        ]

    async def test_a_taken_combination_is_a_unique_violation(self, app: uow.Store) -> None:
        """The same number in the same tenant fails; in another tenant it is fine."""
        s = app.session()
        s.add(Invoice("CUST#2", "INV#0001", "t1", 1, 5))
        s.add(Invoice("CUST#3", "INV#0001", "t2", 1, 5))
        with pytest.raises(uow.CommitError) as caught:
            await s.commit()
        [(change, cause)] = caught.value.failed
        assert isinstance(cause, uow.UniqueViolation)
        assert change.key.pk == "CUST#2"
        assert "(tenant, number) = ('t1', 1)" in str(cause)
        assert await raw_get(app, Invoice, pk="CUST#2", sk="INV#0001") is None
        assert await raw_get(app, Invoice, pk="CUST#3", sk="INV#0001") is not None

    async def test_a_tuple_with_none_is_not_constrained(self, app: uow.Store) -> None:
        """Two customers of one tenant without a slug: no guard, no violation."""
        async with app.session() as s:
            s.add(Customer("CUST#7", "PROFILE", "c@x", tenant="t1"))
            s.add(Customer("CUST#8", "PROFILE", "d@x", tenant="t1"))
        assert len(await guards(app)) == 3

    async def test_get_by_all_the_fields(self, app: uow.Store) -> None:
        """From the guard in a new session (two reads), then from the map (none)."""
        async with app.session() as s:
            invoice = await s.get_by(Invoice, tenant="t1", number=2)
            assert invoice is not None
            assert invoice.sk == "INV#0002"
            assert s.read_stats.requests == {"GetItem": 2}
            assert await s.get_by(Invoice, number=2, tenant="t1") is invoice
            assert s.read_stats.requests == {"GetItem": 2}
            assert await s.get_by(Invoice, tenant="t2", number=2) is None

    async def test_get_by_needs_exactly_one_constraint(self, app: uow.Store) -> None:
        """A part of a constraint, or a field of none, is a `ValidationError`."""
        async with app.session() as s:
            with pytest.raises(uow.ValidationError, match="tenant \\+ number"):
                await s.get_by(Invoice, number=2)

    async def test_a_changed_value_moves_the_guard(self, app: uow.Store) -> None:
        """Renumbering releases the old combination and claims the new one, atomically."""
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0002")
            assert invoice is not None
            invoice.number = 7
        assert 'app#invoice#tenant+number#["s:t1", "n:7"]' in await guards(app)
        assert 'app#invoice#tenant+number#["s:t1", "n:2"]' not in await guards(app)
        async with app.session() as s:
            s.add(Invoice("CUST#2", "INV#0002", "t1", 2, 1))  # the freed combination

    async def test_delete_releases_the_guard(self, app: uow.Store) -> None:
        """Deleting the record deletes its guard items."""
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#1", "INV#0001")
            s.delete(invoice)
        assert len(await guards(app)) == 2


class TestLimits:
    """The nesting and key-size limits are checked at the boundary before any request."""

    @pytest_asyncio.fixture
    async def docs(self, uow_store: uow.Store) -> AsyncIterator[uow.Store]:
        """A table of documents with a free-form `body` and a sort key."""
        await uow_store.create_tables(Doc)
        yield uow_store

    async def test_thirty_two_levels_are_accepted(self, docs: uow.Store) -> None:
        """A map 32 levels deep (the item counts as one) is stored and reads back."""
        async with docs.session() as s:
            s.add(Doc("d", "1", body=nested(31)))
        async with docs.session() as s:
            doc = await s.get(Doc, "d", "1")
            assert doc is not None
            assert doc.body == nested(31)

    @pytest.mark.parametrize("container", [dict, list], ids=["map", "list"])
    async def test_thirty_three_levels_are_refused(self, docs: uow.Store, container: type) -> None:
        """One level more raises `ValidationError` at commit; nothing is sent."""
        s = docs.session()
        s.add(Doc("d", "1", body=nested(32, container)))
        calls = recorder(docs)
        with pytest.raises(uow.ValidationError, match="nested 33 levels deep"):
            await s.commit()
        assert calls.log == []

    async def test_an_update_below_the_limit_is_checked_too(self, docs: uow.Store) -> None:
        """A SET path that would put a map at level 33 is refused by `update()` itself."""
        async with docs.session() as s:
            s.add(Doc("d", "1", body=nested(30)))
        async with docs.session() as s:
            path = "body" + ".a" * 30
            with pytest.raises(uow.ValidationError, match="nested 33 levels deep"):
                s.update(Doc, "d", "1", set={path: {"b": {"c": 1}}})
            s.update(Doc, "d", "1", set={path: {"b": 2}})  # 32 levels: fine
        expected: Any = {"b": 2}
        for _ in range(30):
            expected = {"a": expected}
        stored = await raw_get(docs, Doc, id="d", part="1")
        assert stored is not None
        assert stored["body"] == expected

    @pytest.mark.parametrize(
        ("pk", "sk"),
        [
            pytest.param("é" * 1024, "s", id="pk-2048-bytes"),
            pytest.param("p", "é" * 512, id="sk-1024-bytes"),
            pytest.param(b"\x01" * 2048, "s", id="binary-pk-2048"),
        ],
    )
    async def test_keys_at_the_limit_are_accepted(
        self, uow_store: uow.Store, pk: Any, sk: str
    ) -> None:
        """A 2,048-byte partition key and a 1,024-byte sort key are stored."""
        model = BinDoc if isinstance(pk, bytes) else Doc
        await uow_store.create_tables(model)
        async with uow_store.session() as s:
            s.add(model(pk, sk))
        async with uow_store.session() as s:
            assert await s.get(model, pk, sk) is not None

    @pytest.mark.parametrize(
        ("pk", "sk", "message"),
        [
            pytest.param("é" * 1024 + "x", "s", "partition key .* 2048 bytes", id="pk-2049"),
            pytest.param("p", "é" * 512 + "x", "sort key .* 1024 bytes", id="sk-1025"),
        ],
    )
    async def test_keys_over_the_limit_are_refused(
        self, docs: uow.Store, pk: str, sk: str, message: str
    ) -> None:
        """One byte more raises `ValidationError` naming the limit; nothing is sent."""
        s = docs.session()
        calls = recorder(docs)
        with pytest.raises(uow.ValidationError, match=message):
            s.add(Doc(pk, sk))
        with pytest.raises(uow.ValidationError, match=message):
            await s.get(Doc, pk, sk)
        assert calls.log == []
        assert await raw_count(docs, Doc) == 0

    async def test_an_index_key_over_the_limit_is_refused(self, docs: uow.Store) -> None:
        """A 1,025-byte index sort key raises at commit; 1,024 bytes are stored."""
        async with docs.session() as s:
            s.add(Doc("d", "1", tag="t", label="é" * 512))
        s = docs.session()
        s.add(Doc("d", "2", tag="t", label="é" * 512 + "x"))
        with pytest.raises(uow.ValidationError, match="'label' is a key of index 'by_tag'"):
            await s.commit()


@uow.model(table="docs", pk="id", sk="part", indexes={"by_tag": uow.Index("tag", "label")})
@attrs.define
class Doc:
    """A document whose `body` can be nested as deep as a test wants."""

    id: str
    part: str
    body: Any = None
    tag: str | None = None
    label: str | None = None


@uow.model(table="bindocs", pk="id", sk="part")
@attrs.define
class BinDoc:
    """A document with a binary partition key."""

    id: bytes
    part: str


def nested(levels: int, container: type = dict) -> Any:
    """A value of `levels` maps (or lists) inside one another, around a number."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value} if container is dict else [value]
    return value


class TestSchemaErrors:
    """Stored items that do not fit their model raise `SchemaError` naming model, key, field."""

    async def test_a_missing_required_field(self, app: uow.Store) -> None:
        """An invoice stored without `amount` cannot be read as an Invoice."""
        await raw_put(
            app, Invoice, pk="CUST#9", sk="INV#0001", _kind="invoice", tenant="t", number=1
        )
        async with app.session() as s:
            with pytest.raises(
                uow.SchemaError, match=r"Invoice \('CUST#9', 'INV#0001'\): Invoice.amount: .*"
            ):
                await s.get(Invoice, "CUST#9", "INV#0001")
            with pytest.raises(uow.SchemaError, match=r"Invoice\.amount"):
                [x async for x in s.query(Invoice, Key("pk").eq("CUST#9"))]
            assert len(s.identity_map) == 0

    async def test_a_wrong_stored_type(self, app: uow.Store) -> None:
        """`amount` stored as a string raises, naming the field and the stored value."""
        await raw_put(
            app, Invoice, pk="CUST#9", sk="INV#0001", _kind="invoice", tenant="t", number=1,
            amount="lots",
        )  # fmt: skip
        async with app.session() as s:
            with pytest.raises(uow.SchemaError, match=r"Invoice.amount: the stored value .*'lots'"):
                await s.get(Invoice, "CUST#9", "INV#0001")

    async def test_a_field_with_a_default_reads_as_its_default(self, app: uow.Store) -> None:
        """`note` (default "none") and the optional fields are absent: defaults, no error."""
        await raw_put(
            app, Invoice, pk="CUST#9", sk="INV#0001", _kind="invoice", tenant="t", number=1,
            amount=3,
        )  # fmt: skip
        async with app.session() as s:
            assert await s.get(Invoice, "CUST#9", "INV#0001") == Invoice(
                "CUST#9", "INV#0001", "t", 1, 3
            )

    async def test_undeclared_attributes_survive_updates(self, app: uow.Store) -> None:
        """An attribute the model does not declare is kept by an update of the record."""
        await raw_put(
            app, Invoice, pk="CUST#9", sk="INV#0001", _kind="invoice", tenant="t", number=1,
            amount=3, legacy_code="X-1",
        )  # fmt: skip
        async with app.session() as s:
            invoice = await s.get(Invoice, "CUST#9", "INV#0001")
            assert invoice is not None
            invoice.amount = 4
        stored = await raw_get(app, Invoice, pk="CUST#9", sk="INV#0001")
        assert stored is not None
        assert (stored["amount"], stored["legacy_code"], stored["_kind"]) == (4, "X-1", "invoice")

    async def test_a_filter_on_a_query_sees_stored_data(self, app: uow.Store) -> None:
        """Filters run on stored attributes, the kind attribute included."""
        async with app.session() as s:
            found = [
                x.sk
                async for x in s.query(
                    (Customer, Invoice), Key("pk").eq("CUST#1"), filter=Attr("_kind").eq("invoice")
                )
            ]
        assert found == ["INV#0001", "INV#0002"]
