"""Reads that respect the unit of work: get_by, get_many, query, scan, cache bypass, stats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Attr, Key

import uow
from tests.models import Order, User
from uow.cache import reads_bypass_cache
from uow.testing import LocalDatabase

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def seeded(uow_store: uow.Store) -> AsyncIterator[uow.Store]:
    """Five users (u0..u4, email uN@x) and five orders of customer c1."""
    await uow_store.create_tables(User, Order)
    async with uow_store.session() as setup:
        setup.add_all([User(f"u{i}", f"u{i}@x", score=i) for i in range(5)])
        setup.add_all(
            [
                Order(
                    "c1",
                    f"o{i}",
                    status="open" if i % 2 else "paid",
                    created_at=f"2024-0{i + 1}",
                )
                for i in range(5)
            ]
        )
    yield uow_store


async def overwrite(store: uow.Store, user_id: str, name: str) -> None:
    """Change a user's name behind every session's back."""
    await store.client.update_item(
        TableName="users",
        Key={"user_id": {"S": user_id}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":v": {"S": name}},
    )


class TestGetBy:
    """`get_by` answers from the map when it can, else through the guard item."""

    async def test_first_read_goes_through_the_guard_then_the_map_answers(
        self, seeded: uow.Store
    ) -> None:
        """Two GetItems the first time (guard, record), none the second time."""
        session = seeded.session()
        user = await session.get_by(User, email="u1@x")
        assert user is not None
        assert user.user_id == "u1"
        assert session.read_stats.requests == {"GetItem": 2}

        again = await session.get_by(User, email="u1@x")

        assert again is user
        assert session.read_stats.requests == {"GetItem": 2}
        assert session.read_stats.hits == 1

    async def test_a_pending_change_of_the_value_is_respected(self, seeded: uow.Store) -> None:
        """After `email = new`, the old value finds nothing and the new one finds the object."""
        session = seeded.session()
        user = await session.get(User, "u1")
        assert user is not None
        user.email = "new@x"

        assert await session.get_by(User, email="u1@x") is None
        assert await session.get_by(User, email="new@x") is user

    async def test_a_pending_add_is_found_and_a_pending_delete_is_not(
        self, seeded: uow.Store
    ) -> None:
        """An added record is found by its value; a deleted one is not."""
        session = seeded.session()
        added = User("u9", "nine@x")
        session.add(added)
        session.delete_key(User, "u2")

        assert await session.get_by(User, email="nine@x") is added
        assert await session.get_by(User, email="u2@x") is None

    async def test_a_missing_value_is_none(self, seeded: uow.Store) -> None:
        """A value nobody holds reads as None after one guard read."""
        session = seeded.session()
        assert await session.get_by(User, email="nobody@x") is None
        assert session.read_stats.requests == {"GetItem": 1}

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"name": "x"}, id="not-unique"),
            pytest.param({}, id="no-field"),
            pytest.param({"email": "a", "name": "b"}, id="two-fields"),
        ],
    )
    async def test_only_one_unique_field(self, seeded: uow.Store, kwargs: dict[str, str]) -> None:
        """Fields outside `unique=`, or not exactly one field, are refused."""
        with pytest.raises(uow.ValidationError):
            await seeded.session().get_by(User, **kwargs)


class TestGetMany:
    """`get_many` reads uncached keys in BatchGetItems of 100, in input order."""

    async def test_input_order_missing_and_pending_deletes(self, seeded: uow.Store) -> None:
        """Results follow the input; missing keys and pending deletes are None."""
        session = seeded.session()
        session.delete_key(User, "u3")
        result = await session.get_many(User, ["u4", "nope", "u0", "u3", "u4"])
        assert [u.user_id if u else None for u in result] == ["u4", None, "u0", None, "u4"]
        assert result[0] is result[4]

    async def test_cached_keys_cost_nothing(self, seeded: uow.Store) -> None:
        """Keys in the map are served without a request; only the rest are read."""
        session = seeded.session()
        first = await session.get(User, "u0")
        result = await session.get_many(User, ["u0", "u1"])
        assert result[0] is first
        assert session.read_stats.requests == {"GetItem": 1, "BatchGetItem": 1}
        await session.get_many(User, ["u0", "u1"])
        assert session.read_stats.requests == {"GetItem": 1, "BatchGetItem": 1}

    async def test_one_batch_per_100_keys(self, uow_store: uow.Store) -> None:
        """250 uncached keys take three BatchGetItem requests."""
        await uow_store.create_tables(User)
        async with uow_store.session() as setup:
            setup.add_all([User(f"u{i}", f"{i}@x") for i in range(250)], overwrite=True)
        session = uow_store.session()
        result = await session.get_many(User, [f"u{i}" for i in range(250)])
        assert [u.user_id if u else None for u in result] == [f"u{i}" for i in range(250)]
        assert session.read_stats.requests == {"BatchGetItem": 3}

    async def test_composite_keys(self, seeded: uow.Store) -> None:
        """Models with a sort key take `(pk, sk)` tuples."""
        session = seeded.session()
        result = await session.get_many(Order, [("c1", "o2"), ("c1", "o9")])
        assert result[0] is not None
        assert result[0].order_id == "o2"
        assert result[1] is None


class TestQueryAndScan:
    """Rows merge into the map: identity kept, local changes kept, pending deletes hidden."""

    async def test_a_mapped_record_comes_back_as_the_same_object_with_its_edits(
        self, seeded: uow.Store
    ) -> None:
        """A query returns the mapped object, unsaved edits intact."""
        session = seeded.session()
        order = await session.get(Order, "c1", "o1")
        assert order is not None
        order.total = order.total + 5
        rows = [o async for o in session.query(Order, Key("customer_id").eq("c1"))]
        assert [o.order_id for o in rows] == [f"o{i}" for i in range(5)]
        assert rows[1] is order
        assert order.total == 5
        assert session.is_dirty(order)

    async def test_a_pending_delete_is_not_yielded(self, seeded: uow.Store) -> None:
        """A record deleted in the session is skipped by queries and scans."""
        session = seeded.session()
        session.delete_key(Order, "c1", "o0")
        rows = [o.order_id async for o in session.query(Order, Key("customer_id").eq("c1"))]
        assert "o0" not in rows
        users = [u.user_id async for u in session.scan(User, filter=Attr("score").gte(0))]
        assert sorted(users) == [f"u{i}" for i in range(5)]

    async def test_queries_see_committed_data_only(self, seeded: uow.Store) -> None:
        """A pending add is not found, and a local edit does not change matching."""
        session = seeded.session()
        session.add(Order("c1", "o9", status="open", created_at="2024-09"))
        paid = await session.get(Order, "c1", "o0")
        assert paid is not None
        paid.status = "open"
        rows = [
            o.order_id
            async for o in session.query(
                Order, Key("customer_id").eq("c1"), filter=Attr("status").eq("open")
            )
        ]
        assert rows == ["o1", "o3"]

    async def test_index_reverse_and_limit(self, seeded: uow.Store) -> None:
        """A GSI query honours reverse order and stops after `limit` records."""
        session = seeded.session()
        rows = [
            o.created_at
            async for o in session.query(
                Order, Key("status").eq("paid"), index="by_status", reverse=True, limit=2
            )
        ]
        assert rows == ["2024-05", "2024-03"]

    async def test_pages_are_fetched_lazily(self, seeded: uow.Store) -> None:
        """Breaking out after the first row sends only the first page."""
        session = seeded.session()
        async for _ in session.query(Order, Key("customer_id").eq("c1"), limit=1):
            break
        assert session.read_stats.requests == {"Query": 1}

    async def test_an_unknown_index_is_refused(self, seeded: uow.Store) -> None:
        """Naming an index the model does not declare raises ValidationError at once."""
        with pytest.raises(uow.ValidationError, match="no index"):
            seeded.session().query(Order, Key("status").eq("x"), index="nope")


class TestCacheBypass:
    """`cache_disabled()` and `Store(cache=False)` send reads to DynamoDB."""

    async def test_clean_objects_are_refreshed_in_place(self, seeded: uow.Store) -> None:
        """Inside cache_disabled(), get reads DynamoDB and updates the same clean object."""
        session = seeded.session()
        user = await session.get(User, "u1")
        await overwrite(seeded, "u1", "changed elsewhere")
        assert (await session.get(User, "u1")) is user
        assert user is not None
        assert user.name == ""
        with uow.cache_disabled():
            again = await session.get(User, "u1")
        assert again is user
        assert user.name == "changed elsewhere"

    async def test_pending_changes_are_kept(self, seeded: uow.Store) -> None:
        """An object with local changes keeps them when a bypassing read returns."""
        session = seeded.session()
        user = await session.get(User, "u1")
        assert user is not None
        user.name = "mine"
        await overwrite(seeded, "u1", "theirs")
        with uow.cache_disabled():
            assert await session.get(User, "u1") is user
            rows = [u async for u in session.scan(User)]
        assert user in rows
        assert user.name == "mine"

    async def test_nesting_and_task_isolation(self) -> None:
        """The bypass nests, tasks started inside inherit it, and a task started before does not see it."""
        go = asyncio.Event()
        seen: list[bool] = []

        async def observe(wait: bool) -> None:
            if wait:
                await go.wait()
            seen.append(reads_bypass_cache())

        before = asyncio.create_task(observe(wait=True))
        with uow.cache_disabled():
            with uow.cache_disabled():
                assert reads_bypass_cache()
            assert reads_bypass_cache()
            inside = asyncio.create_task(observe(wait=False))
            go.set()
            await asyncio.gather(before, inside)
        assert not reads_bypass_cache()
        assert sorted(seen) == [False, True]

    async def test_store_without_cache(
        self, uow_database: LocalDatabase, seeded: uow.Store
    ) -> None:
        """With Store(cache=False) every get reads DynamoDB, and identity is still kept."""
        async with uow_database.store(cache=False) as store:
            session = store.session()
            first = await session.get(User, "u1")
            second = await session.get(User, "u1")
        assert first is second
        assert session.read_stats.requests == {"GetItem": 2}

    async def test_environment_switch(
        self, uow_database: LocalDatabase, seeded: uow.Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """UOW_CACHE_ENABLED=0 turns read caching off for stores made afterwards."""
        monkeypatch.setenv("UOW_CACHE_ENABLED", "0")
        async with uow_database.store() as store:
            assert store.cache is False
            session = store.session()
            await session.get(User, "u1")
            await session.get(User, "u1")
        assert session.read_stats.requests == {"GetItem": 2}

    async def test_refresh_always_reads(self, seeded: uow.Store) -> None:
        """`refresh` reads DynamoDB even with the cache on, dropping pending changes."""
        session = seeded.session()
        user = await session.get(User, "u1")
        assert user is not None
        user.name = "mine"
        await overwrite(seeded, "u1", "theirs")
        await session.refresh(user)
        assert user.name == "theirs"
        assert not session.is_dirty(user)


@uow.model(table="counters", pk="number")
@attrs.define
class Counter:
    """A record keyed by an int."""

    number: int
    hits: int = 0


class TestGetFromTheMap:
    """`get` answers from the map without a request, and checks the key it is given."""

    async def test_a_mapped_key_needs_no_request(self, uow_session: uow.Session) -> None:
        """A record in the map comes back as the same object, counted as a hit."""
        counter = Counter(1)
        uow_session.add(counter)
        assert await uow_session.get(Counter, 1) is counter
        assert uow_session.read_stats.hits == 1
        assert uow_session.read_stats.requests == {}

    async def test_a_bool_is_not_an_int_key(self, uow_session: uow.Session) -> None:
        """`True == 1` in Python, but `True` is not a key value: refused, not served from the map."""
        uow_session.add(Counter(1))
        with pytest.raises(uow.ValidationError, match="key values must be str, int or bytes"):
            await uow_session.get(Counter, True)

    @pytest.mark.parametrize("pk", [["u1"], {"u1"}, 1.5, None])
    async def test_a_key_of_the_wrong_kind_is_refused(
        self, uow_session: uow.Session, pk: object
    ) -> None:
        """Unhashable or non-key values get the key error, before any request."""
        with pytest.raises(uow.ValidationError, match=r"User\.user_id"):
            await uow_session.get(User, pk)
        assert uow_session.read_stats.requests == {}

    async def test_a_model_sharing_the_table_is_told_apart(self, uow_session: uow.Session) -> None:
        """The map answers only for the model that holds the key; another model's read is a SchemaError."""

        @uow.model(table="counters", pk="number")
        @attrs.define
        class Other:
            number: int

        uow_session.add(Counter(1))
        with pytest.raises(uow.SchemaError, match="holds the item as Counter, not as Other"):
            await uow_session.get(Other, 1)
