"""Promises of docs/concepts.md and docs/errors.md that no other test pins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

import uow
from tests.models import Order, User
from uow.testing import FaultProxy, Faults, LocalDatabase

pytestmark = pytest.mark.asyncio


@uow.model(table="badges", pk="badge_id", unique=("code",))
@attrs.define
class Badge:
    """A unique field that may be absent."""

    badge_id: str
    code: str | None = None


@uow.model(table="readings", pk="reading_id", unique=("value",))
@attrs.define
class Reading:
    """A unique field of a type guard items cannot hold."""

    reading_id: str
    value: float = 0.0


@pytest_asyncio.fixture
async def orders(store: uow.Store) -> AsyncIterator[uow.Store]:
    """Orders o0..o4 of customer c1: o0, o2, o4 paid, o1, o3 open."""
    async with store.session() as session:
        session.add_all(
            [
                Order("c1", f"o{i}", status="paid" if i % 2 == 0 else "open", created_at=f"{i}")
                for i in range(5)
            ]
        )
    yield store


async def rename_behind_the_back(store: uow.Store, order_id: str, status: str) -> None:
    """Change an order's status with a raw request, as another process would."""
    await store.client.update_item(
        TableName=store.table_name(Order),
        Key={"customer_id": {"S": "c1"}, "order_id": {"S": order_id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


class TestWhatQueriesSee:
    """DynamoDB decides what matches, on committed data; the session decides what a match looks like."""

    async def test_a_local_edit_away_from_the_condition_still_matches(
        self, orders: uow.Store
    ) -> None:
        """An open order edited to paid (uncommitted) is still found by `status = open`, edit intact."""
        session = orders.session()
        order = await session.get(Order, "c1", "o1")
        assert order is not None
        order.status = "paid"
        found = [
            o
            async for o in session.query(
                Order, Key("customer_id").eq("c1"), filter=Attr("status").eq("open")
            )
        ]
        assert [o.order_id for o in found] == ["o1", "o3"]
        assert found[0] is order
        assert order.status == "paid"

    async def test_a_clean_record_is_yielded_as_first_seen(self, orders: uow.Store) -> None:
        """A row does not overwrite a clean mapped object, unless inside `cache_disabled()`."""
        session = orders.session()
        order = await session.get(Order, "c1", "o0")
        assert order is not None
        await rename_behind_the_back(orders, "o0", "cancelled")
        rows = [o async for o in session.query(Order, Key("customer_id").eq("c1"))]
        assert rows[0] is order
        assert order.status == "paid"
        with uow.cache_disabled():
            rows = [o async for o in session.query(Order, Key("customer_id").eq("c1"))]
        assert rows[0] is order
        assert order.status == "cancelled"
        assert not session.is_dirty(order)

    async def test_a_store_without_cache_refreshes_from_rows(
        self, orders: uow.Store, uow_database: LocalDatabase
    ) -> None:
        """With `Store(cache=False)` query rows refresh clean mapped objects in place."""
        async with uow_database.store(cache=False) as store:
            session = store.session()
            order = await session.get(Order, "c1", "o0")
            assert order is not None
            await rename_behind_the_back(orders, "o0", "cancelled")
            rows = [o async for o in session.query(Order, Key("customer_id").eq("c1"))]
        assert rows[0] is order
        assert order.status == "cancelled"

    async def test_a_pending_blind_update_shows_in_the_row(self, orders: uow.Store) -> None:
        """A key with a pending `update()` is yielded as the stored item plus that update."""
        session = orders.session()
        session.update(Order, "c1", "o2", set={"status": "shipped"})
        rows = {o.order_id: o async for o in session.query(Order, Key("customer_id").eq("c1"))}
        assert rows["o2"].status == "shipped"
        assert rows["o2"].created_at == "2"
        assert session.is_dirty(rows["o2"])
        assert await session.get(Order, "c1", "o2") is rows["o2"]

    async def test_limit_counts_only_what_is_yielded(self, orders: uow.Store) -> None:
        """With the first order pending deletion, `limit=2` still yields two orders."""
        session = orders.session()
        session.delete_key(Order, "c1", "o0")
        rows = [
            o.order_id async for o in session.query(Order, Key("customer_id").eq("c1"), limit=2)
        ]
        assert rows == ["o1", "o2"]


class TestVersionsAndUniqueFields:
    """The version and unique-field rules of the concepts page."""

    async def test_a_blind_update_of_a_versioned_record_adds_one_to_the_version(
        self, store: uow.Store
    ) -> None:
        """A blind update is not conditioned on the version (there is none to compare) and moves it on."""
        async with store.session() as session:
            session.add(User("u1", "ada@example.com"))
        async with store.session() as other:
            user = await other.get(User, "u1")
            assert user is not None
            user.name = "Ada"  # version 1 -> 2, unknown to the blind update below
        async with store.session() as session:
            session.update(User, "u1", add={"score": 5})
        async with store.session() as session:
            user = await session.get(User, "u1")
        assert user is not None
        assert (user.name, user.score, user.version) == ("Ada", 5, 3)

    async def test_an_overwrite_of_an_unloaded_record_releases_its_old_guard(
        self, store: uow.Store
    ) -> None:
        """`add(overwrite=True)` of a record never loaded reads it first, so its old value is freed."""
        async with store.session() as session:
            session.add(User("u1", "old@example.com"))
        async with store.session() as session:
            session.add(User("u1", "new@example.com"), overwrite=True)
        async with store.session() as session:
            session.add(User("u2", "old@example.com"))  # free again
        async with store.session() as session:
            assert (await session.get_by(User, email="old@example.com")) is not None
            owner = await session.get_by(User, email="new@example.com")
        assert owner is not None
        assert owner.user_id == "u1"

    async def test_none_reserves_nothing(self, uow_store: uow.Store) -> None:
        """Two records without a value of a unique field do not collide."""
        await uow_store.create_tables(Badge)
        async with uow_store.session() as session:
            session.add_all([Badge("b1"), Badge("b2"), Badge("b3", code="x")])
        async with uow_store.session() as session:
            assert [b is not None for b in await session.get_many(Badge, ["b1", "b2"])] == [
                True,
                True,
            ]

    async def test_a_unique_value_must_be_str_int_or_bytes(self, uow_store: uow.Store) -> None:
        """A float in a unique field is refused at commit, before any request."""
        await uow_store.create_tables(Reading)
        session = uow_store.session()
        session.add(Reading("r1", 1.5))
        with pytest.raises(uow.ValidationError, match="str, int or bytes"):
            await session.commit()
        assert len(session.pending) == 1


class TestErrorsPage:
    """Where docs/errors.md says each error comes from."""

    async def test_options_out_of_range_are_validation_errors(self, store: uow.Store) -> None:
        """`Store(max_concurrency=0)`, `Retry(max_attempts=0)` and `attempts=0` raise ValidationError."""
        with pytest.raises(uow.ValidationError):
            uow.Store(max_concurrency=0)
        with pytest.raises(uow.ValidationError):
            uow.Retry(max_attempts=0)

        async def work(session: uow.Session) -> None:
            return None

        with pytest.raises(uow.ValidationError):
            await uow.retry_on_conflict(store, work, attempts=0)

    async def test_reads_raise_service_errors_directly(self, uow_store: uow.Store) -> None:
        """Reads of a table that does not exist raise ServiceError with DynamoDB's code."""
        session = uow_store.session()
        with pytest.raises(uow.ServiceError) as raised:
            await session.get(Order, "c1", "o1")
        assert raised.value.code == "ResourceNotFoundException"
        with pytest.raises(uow.ServiceError):
            await session.get_many(Order, [("c1", "o1")])
        with pytest.raises(uow.ServiceError):
            await session.get_by(User, email="ada@example.com")
        with pytest.raises(uow.ServiceError):
            [o async for o in session.query(Order, Key("customer_id").eq("c1"))]
        with pytest.raises(uow.ServiceError):
            [o async for o in session.scan(Order)]

    async def test_create_tables_raises_service_errors(
        self, uow_database: LocalDatabase, uow_endpoint: str
    ) -> None:
        """A table creation DynamoDB fails raises ServiceError with its code, chained to botocore's."""
        with FaultProxy(uow_endpoint, Faults(server_error=1.0)) as proxy:
            async with uow_database.store(proxy.endpoint) as store:
                with pytest.raises(uow.ServiceError) as raised:
                    await store.create_tables(Order)
        assert raised.value.code == "InternalServerError"
        assert isinstance(raised.value.__cause__, ClientError)

    async def test_a_second_task_is_refused_during_a_query_page(self, orders: uow.Store) -> None:
        """While one task awaits a query page, another task's call raises UsageError naming the call."""
        session = orders.session()
        rows = session.query(Order, Key("customer_id").eq("c1"))
        fetching = asyncio.ensure_future(anext(rows))
        await asyncio.sleep(0)  # let it send the request
        with pytest.raises(uow.UsageError, match=r"busy in query\(\)"):
            await session.get(Order, "c1", "o1")
        await fetching
        await rows.aclose()  # type: ignore[attr-defined]  # an async generator
