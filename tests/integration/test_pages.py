"""`Session.page`: pages of exactly `limit` records, cursors that resume without a skip or a repeat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Attr, ConditionBase, Key

import uow
from tests.integration.support import Calls, raw_delete, raw_put
from tests.models import Order, User
from uow._pages import Cursors, Shape
from uow.model import info_of
from uow.testing import LocalDatabase

pytestmark = pytest.mark.asyncio

KEY = b"a secret of 32 bytes, for tests"
C1 = Key("customer_id").eq("c1")
OPEN = Key("status").eq("open")


def order(i: int, **values: Any) -> Order:
    """Order `o{i:02}` of customer c1: open when `i` is odd, created in month `i % 4`."""
    return Order(
        "c1",
        f"o{i:02}",
        status="open" if i % 2 else "paid",
        created_at=f"2024-0{i % 4 + 1}",
        total=Decimal(i),
        **values,
    )


@pytest_asyncio.fixture
async def orders(store: uow.Store) -> uow.Store:
    """Twelve orders of customer c1 (o00..o11) and one of c2."""
    async with store.session() as setup:
        setup.add_all([order(i) for i in range(12)])
        setup.add(Order("c2", "o00", status="open", created_at="2024-01"))
    return store


async def walk(
    store: uow.Store,
    model: type[Any],
    key_condition: ConditionBase | None = None,
    *,
    limit: int,
    after: str | None = None,
    **options: Any,
) -> list[uow.Page[Any]]:
    """Every page of a listing (from `after`), each read in a session of its own as a web handler would."""
    pages: list[uow.Page[Any]] = []
    while True:
        async with store.session() as session:
            page = await session.page(model, key_condition, limit=limit, after=after, **options)
        pages.append(page)
        if page.cursor is None:
            return pages
        after = page.cursor
        assert len(pages) < 100, "the listing does not end"


async def listed(
    store: uow.Store, model: type[Any], key_condition: ConditionBase | None = None, **options: Any
) -> list[Any]:
    """The whole listing in one `query` (or `scan`), for comparison."""
    async with store.session() as session:
        if key_condition is None:
            return [obj async for obj in session.scan(model, **options)]
        return [obj async for obj in session.query(model, key_condition, **options)]


def ids(objects: Any) -> list[str]:
    """The order ids of a sequence of orders."""
    return [o.order_id for o in objects]


class TestPages:
    """Pages hold exactly `limit` records while that many remain; the last one says so."""

    @pytest.mark.parametrize(
        ("limit", "sizes"),
        [
            pytest.param(5, [5, 5, 2], id="remainder"),
            pytest.param(4, [4, 4, 4], id="exact-multiple"),
            pytest.param(12, [12], id="one-full-page"),
            pytest.param(30, [12], id="larger-than-the-listing"),
            pytest.param(1, [1] * 12, id="one-by-one"),
        ],
    )
    async def test_the_pages_of_a_query(
        self, orders: uow.Store, limit: int, sizes: list[int]
    ) -> None:
        """Concatenated pages are the query's result; only the last page has no cursor, and no empty page follows a full one."""
        pages = await walk(orders, Order, C1, limit=limit)
        assert [len(page.items) for page in pages] == sizes
        assert [page.cursor is None for page in pages] == [False] * (len(sizes) - 1) + [True]
        assert [o for page in pages for o in page.items] == await listed(orders, Order, C1)

    async def test_an_empty_listing(self, orders: uow.Store) -> None:
        """A listing with no record is one empty page without a cursor."""
        async with orders.session() as session:
            page = await session.page(Order, Key("customer_id").eq("nobody"), limit=3)
        assert page == uow.Page((), None)

    async def test_reverse(self, orders: uow.Store) -> None:
        """`reverse=True` pages in descending key order."""
        pages = await walk(orders, Order, C1, limit=5, reverse=True)
        assert ids(o for page in pages for o in page.items) == [
            f"o{i:02}" for i in range(11, -1, -1)
        ]

    async def test_a_filter_still_fills_every_page(self, orders: uow.Store, calls: Calls) -> None:
        """With a selective filter, reading goes on through DynamoDB pages until `limit` records are found."""
        selective = Attr("total").gte(5)
        async with orders.session() as session:
            first = await session.page(Order, C1, limit=2, filter=selective)
        assert ids(first.items) == ["o05", "o06"]
        # Each request evaluates `limit + 1` items (DynamoDB's Limit counts items read, not
        # items matched): o00-o02 match nothing, o03-o05 give o05, o06-o08 give o06 and the
        # record past the page.
        assert [p["Limit"] for p in calls.params("Query")] == [3, 3, 3]
        pages = [
            first,
            *await walk(orders, Order, C1, limit=2, filter=selective, after=first.cursor),
        ]
        assert [ids(page.items) for page in pages] == [
            ["o05", "o06"],
            ["o07", "o08"],
            ["o09", "o10"],
            ["o11"],
        ]

    async def test_a_scan_when_there_is_no_key_condition(self, orders: uow.Store) -> None:
        """`key_condition=None` pages a scan of the table, in the scan's order."""
        pages = await walk(orders, Order, limit=5)
        assert [len(page.items) for page in pages] == [5, 5, 3]
        assert [o for page in pages for o in page.items] == await listed(orders, Order)

    async def test_a_scan_of_an_index(self, orders: uow.Store) -> None:
        """A scan of a GSI pages too."""
        pages = await walk(orders, Order, limit=4, index="by_status")
        assert [o for page in pages for o in page.items] == await listed(
            orders, Order, index="by_status"
        )
        assert sum(len(page.items) for page in pages) == 13

    async def test_a_query_of_an_index(self, orders: uow.Store, calls: Calls) -> None:
        """On a GSI the next page starts from the last record's table key and index key."""
        pages = await walk(orders, Order, OPEN, limit=3, index="by_status")
        everything = await listed(orders, Order, OPEN, index="by_status")
        assert [o for page in pages for o in page.items] == everything
        assert len(everything) == 7  # c2's open order is in the index too
        last = pages[0].items[-1]
        starts = [p["ExclusiveStartKey"] for p in calls.params("Query") if "ExclusiveStartKey" in p]
        assert starts[0] == {
            "customer_id": {"S": last.customer_id},
            "order_id": {"S": last.order_id},
            "status": {"S": "open"},
            "created_at": {"S": last.created_at},
        }

    async def test_index_key_ties_resume_by_table_key(self, store: uow.Store) -> None:
        """Records with one index key value are paged in a stable order, none skipped or repeated."""
        async with store.session() as setup:
            setup.add_all(
                [Order(f"c{i % 3}", f"o{i}", status="open", created_at="same") for i in range(10)]
            )
        for reverse in (False, True):
            pages = await walk(store, Order, OPEN, limit=3, index="by_status", reverse=reverse)
            paged = [(o.customer_id, o.order_id) for page in pages for o in page.items]
            everything = await listed(store, Order, OPEN, index="by_status", reverse=reverse)
            assert paged == [(o.customer_id, o.order_id) for o in everything]
            assert len(set(paged)) == 10


class TestResuming:
    """A cursor resumes after the last record returned, whatever happened in between."""

    async def test_nothing_is_skipped_when_the_last_record_is_deleted(
        self, orders: uow.Store
    ) -> None:
        """Deleting the record a cursor points at does not lose the records after it."""
        async with orders.session() as session:
            first = await session.page(Order, C1, limit=4)
        await raw_delete(orders, Order, customer_id="c1", order_id="o03")
        async with orders.session() as session:
            second = await session.page(Order, C1, limit=4, after=first.cursor)
        assert ids(second.items) == ["o04", "o05", "o06", "o07"]

    async def test_records_added_behind_and_ahead(self, orders: uow.Store) -> None:
        """A record added before the cursor is not seen; one added after it is."""
        async with orders.session() as session:
            first = await session.page(Order, C1, limit=4)
        await raw_put(orders, Order, customer_id="c1", order_id="o01a")
        await raw_put(orders, Order, customer_id="c1", order_id="o04a")
        async with orders.session() as session:
            second = await session.page(Order, C1, limit=4, after=first.cursor)
        assert ids(second.items) == ["o04", "o04a", "o05", "o06"]

    async def test_a_changed_filter_continues_from_the_same_place(self, orders: uow.Store) -> None:
        """The filter is not part of the cursor's shape: a new filter applies from the cursor on."""
        async with orders.session() as session:
            first = await session.page(Order, C1, limit=3, filter=Attr("total").lt(100))
            second = await session.page(
                Order, C1, limit=3, filter=Attr("status").eq("open"), after=first.cursor
            )
        assert ids(first.items) == ["o00", "o01", "o02"]
        assert ids(second.items) == ["o03", "o05", "o07"]

    async def test_the_page_after_the_last_full_page_is_not_fetched_for_nothing(
        self, orders: uow.Store, calls: Calls
    ) -> None:
        """When the records end exactly at a page's end, its cursor is already `None`."""
        async with orders.session() as session:
            page = await session.page(Order, C1, limit=12)
        assert page.cursor is None
        assert calls.apis == {"Query": 1}


class TestIdentity:
    """Page rows merge into the map like query rows."""

    async def test_the_same_object_with_its_pending_changes(self, orders: uow.Store) -> None:
        """A mapped record comes back as the same object, with its unsaved changes."""
        async with orders.session() as session:
            mine = await session.get(Order, "c1", "o01")
            assert mine is not None
            mine.status = "edited"
            page = await session.page(Order, C1, limit=3)
            assert page.items[1] is mine
            assert mine.status == "edited"
            session.rollback()

    async def test_pending_deletes_are_left_out_and_the_page_still_filled(
        self, orders: uow.Store
    ) -> None:
        """Records deleted in this session are not returned; later records take their places."""
        async with orders.session() as session:
            for i in (1, 2, 11):
                doomed = await session.get(Order, "c1", f"o{i:02}")
                session.delete(doomed)
            first = await session.page(Order, C1, limit=3)
            assert ids(first.items) == ["o00", "o03", "o04"]
            rest = await session.page(Order, C1, limit=6, after=first.cursor)
            # o11 is pending deletion: nothing follows o10 for this session.
            assert ids(rest.items) == ["o05", "o06", "o07", "o08", "o09", "o10"]
            assert rest.cursor is None
            session.rollback()

    async def test_cache_disabled_refreshes_clean_objects(self, orders: uow.Store) -> None:
        """Inside `cache_disabled()` a clean mapped record takes the row's values in place."""
        async with orders.session() as session:
            mine = await session.get(Order, "c1", "o00")
            assert mine is not None
            await raw_put(orders, Order, customer_id="c1", order_id="o00", status="changed")
            assert (await session.page(Order, C1, limit=1)).items[0].status == "paid"
            with uow.cache_disabled():
                page = await session.page(Order, C1, limit=1)
            assert page.items[0] is mine
            assert mine.status == "changed"

    async def test_a_closed_session_refuses(self, orders: uow.Store) -> None:
        """`page` follows the session's lifecycle like every read."""
        async with orders.session() as session:
            pass
        with pytest.raises(uow.UsageError, match=r"Session\.page\(\): the session is closed"):
            await session.page(Order, C1, limit=1)

    async def test_the_record_past_the_page_is_mapped_too(self, orders: uow.Store) -> None:
        """`page` reads one record past the page to know that more follow; it enters the map."""
        async with orders.session() as session:
            page = await session.page(Order, C1, limit=2)
            assert ids(page.items) == ["o00", "o01"]
            assert {key.sk for key in session.identity_map} == {"o00", "o01", "o02"}


class TestRefusedBeforeAnyRequest:
    """Bad arguments and bad cursors raise `ValidationError` and send nothing."""

    @pytest.mark.parametrize(
        "limit",
        [
            pytest.param(0, id="zero"),
            pytest.param(-1, id="negative"),
            pytest.param(True, id="bool"),
            pytest.param(2.0, id="float"),
            pytest.param("10", id="str"),
        ],
    )
    async def test_a_bad_limit(self, orders: uow.Store, calls: Calls, limit: Any) -> None:
        """`limit` is an int of at least 1."""
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="limit must be an int"):
                await session.page(Order, C1, limit=limit)
        assert calls.log == []

    async def test_reverse_needs_a_key_condition(self, orders: uow.Store, calls: Calls) -> None:
        """A scan has no order to reverse."""
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="a scan has no order"):
                await session.page(Order, limit=3, reverse=True)
        assert calls.log == []

    async def test_an_unknown_index(self, orders: uow.Store, calls: Calls) -> None:
        """An index the model does not declare."""
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="has no index 'nope'"):
                await session.page(Order, OPEN, index="nope", limit=3)
        assert calls.log == []

    @pytest.mark.parametrize(
        ("change", "options"),
        [
            pytest.param(lambda c: c[:-1], {}, id="truncated"),
            pytest.param(lambda c: c[: len(c) // 2], {}, id="half"),
            pytest.param(
                lambda c: c[:10] + ("A" if c[10] != "A" else "B") + c[11:], {}, id="changed"
            ),
            pytest.param(lambda c: c + "A", {}, id="appended"),
            pytest.param(lambda c: "garbage", {}, id="garbage"),
            pytest.param(lambda c: "", {}, id="empty"),
            pytest.param(
                lambda c: c,
                {"model": User, "key_condition": Key("user_id").eq("c1")},
                id="another-model",
            ),
            pytest.param(
                lambda c: c, {"index": "by_status", "key_condition": OPEN}, id="another-index"
            ),
            pytest.param(lambda c: c, {"reverse": True}, id="another-direction"),
            pytest.param(
                lambda c: c, {"key_condition": Key("customer_id").eq("c2")}, id="another-partition"
            ),
            pytest.param(
                lambda c: c,
                {"key_condition": C1 & Key("order_id").gte("o00")},
                id="another-key-condition",
            ),
            pytest.param(lambda c: c, {"key_condition": None}, id="a-scan"),
        ],
    )
    async def test_a_bad_cursor(
        self, orders: uow.Store, calls: Calls, change: Any, options: dict[str, Any]
    ) -> None:
        """A damaged cursor, or one of another listing, is refused without a request."""
        async with orders.session() as session:
            cursor = (await session.page(Order, C1, limit=3)).cursor
        assert cursor is not None
        calls.clear()
        listing = {"model": Order, "key_condition": C1, **options}
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="after= is not a cursor of this listing"):
                await session.page(
                    listing.pop("model"),
                    listing.pop("key_condition"),
                    limit=3,
                    after=change(cursor),
                    **listing,
                )
        assert calls.log == []


class TestForgedUnsignedCursors:
    """Without `cursor_key` a client can forge a cursor; one outside the listing fails before DynamoDB."""

    @pytest.mark.parametrize(
        ("order_id", "customer_id"),
        [
            pytest.param("o09", "c1", id="past-the-sort-key-range"),
            pytest.param("o00", "c1", id="before-the-sort-key-range"),
            pytest.param("o03", "c2", id="another-partition"),
        ],
    )
    async def test_outside_the_key_condition(
        self, orders: uow.Store, calls: Calls, order_id: str, customer_id: str
    ) -> None:
        """DynamoDB (Local, and AWS) would answer ValidationException; `page` refuses it first."""
        condition = C1 & Key("order_id").between("o01", "o05")
        listing = Shape.of(
            info_of(Order),
            orders.table_name(Order),
            key_condition=condition,
            index=None,
            reverse=False,
        )
        row = {"customer_id": {"S": customer_id}, "order_id": {"S": order_id}}
        forged = Cursors(None).encode(listing, row)
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="lies outside the key condition"):
                await session.page(Order, condition, limit=2, after=forged)
        assert calls.log == []

    async def test_inside_the_key_condition(self, orders: uow.Store) -> None:
        """A forged cursor inside the listing is a valid position: the page starts after it."""
        condition = C1 & Key("order_id").between("o01", "o05")
        listing = Shape.of(
            info_of(Order),
            orders.table_name(Order),
            key_condition=condition,
            index=None,
            reverse=False,
        )
        forged = Cursors(None).encode(
            listing, {"customer_id": {"S": "c1"}, "order_id": {"S": "o02"}}
        )
        async with orders.session() as session:
            page = await session.page(Order, condition, limit=2, after=forged)
        assert ids(page.items) == ["o03", "o04"]


class TestSignedCursors:
    """`Store(cursor_key=...)` signs cursors; other keys' cursors, and unsigned ones, are refused."""

    @pytest_asyncio.fixture
    async def keyed(
        self, orders: uow.Store, uow_database: LocalDatabase
    ) -> AsyncIterator[uow.Store]:
        """A second store on the same tables, signing its cursors with `KEY`."""
        async with uow_database.store(cursor_key=KEY) as store:
            yield store

    async def test_signed_cursors_page_through(self, keyed: uow.Store) -> None:
        """A signing store pages like any other."""
        pages = await walk(keyed, Order, C1, limit=5)
        assert [len(page.items) for page in pages] == [5, 5, 2]

    async def test_another_key_or_no_key(
        self, keyed: uow.Store, orders: uow.Store, uow_database: LocalDatabase
    ) -> None:
        """A cursor signed with another key, or not signed, is refused by the signing store, without a request; and the reverse."""
        other_key = b"another secret key of 32 bytes!"
        async with uow_database.store(cursor_key=other_key) as other, other.session() as session:
            foreign = (await session.page(Order, C1, limit=3)).cursor
        async with orders.session() as session:
            unsigned = (await session.page(Order, C1, limit=3)).cursor
        async with keyed.session() as session:
            signed = (await session.page(Order, C1, limit=3)).cursor
        calls = Calls()
        calls.attach(keyed)
        async with keyed.session() as session:
            with pytest.raises(uow.ValidationError, match="signed with another cursor_key"):
                await session.page(Order, C1, limit=3, after=foreign)
            with pytest.raises(uow.ValidationError, match="takes signed cursors only"):
                await session.page(Order, C1, limit=3, after=unsigned)
        assert calls.log == []
        async with orders.session() as session:
            with pytest.raises(uow.ValidationError, match="this Store has none"):
                await session.page(Order, C1, limit=3, after=signed)
