"""Commit under injected faults: throttling, 5xx, dropped connections, UnprocessedItems.

Every test here runs on both transports (`faulty_store` is parametrized): the
lean one and the aioboto3 one must behave alike under every fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest
import pytest_asyncio

import uow
from uow.codec import codec_for
from uow.testing import FaultProxy, Faults, LocalDatabase

pytestmark = pytest.mark.asyncio

# 25 attempts: at 37% injected failures per attempt, one of ~700 writes exhausting
# them is a 1e-8 chance per run (10 attempts made it about 3%).
FAST_RETRY = uow.Retry(max_attempts=25, base_delay=0.002, max_delay=0.05, budget=60.0)


@uow.model(table="counters", pk="name")
@attrs.define
class Counter:
    """A record with a counter field and free-form data."""

    name: str
    hits: int = 0
    label: str = ""


@pytest.fixture
def proxy(uow_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test server, healthy at first."""
    with FaultProxy(uow_endpoint, seed=7) as running:
        yield running


@pytest_asyncio.fixture(params=["lean", "aioboto3"])
async def faulty_store(
    request: pytest.FixtureRequest,
    uow_store: uow.Store,
    uow_database: LocalDatabase,
    proxy: FaultProxy,
) -> AsyncIterator[uow.Store]:
    """A store (each transport in turn) whose requests all pass through `proxy`; the table exists."""
    await uow_store.create_tables(Counter)
    async with uow_database.store(
        proxy.endpoint, retry=FAST_RETRY, transport=request.param
    ) as store:
        assert store.transport.name == request.param
        yield store


async def stored(store: uow.Store) -> dict[str, Counter]:
    """Every Counter in the table, read raw (bypassing the proxy's faults)."""
    codec = codec_for(Counter)
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": "counters", "ConsistentRead": True}
    while True:
        page = await store.client.scan(**params)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {item["name"]["S"]: codec.decode_item(item) for item in items}


class TestCommitUnderFaults:
    """A commit retries what DynamoDB refuses for a while, and loses nothing."""

    async def test_mixed_commit_lands_exactly_once(
        self, uow_store: uow.Store, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """1,000 mixed changes under 30% throttling, 5% 5xx, 2% drops and 30% unprocessed items all land once."""
        async with uow_store.session() as seed:
            seed.add_all([Counter(f"c{i}", hits=i) for i in range(800)], overwrite=True)
        proxy.faults = Faults(throttle=0.3, server_error=0.05, drop=0.02, unprocessed=0.3)
        session = faulty_store.session()
        # 600 edits of loaded records (300 by assignment, 300 by ADD), 200 new records, 200 deletes.
        loaded = await session.get_many(Counter, [f"c{i}" for i in range(300)])
        for counter in loaded:
            assert counter is not None
            counter.label = "edited"
        for i in range(300, 600):
            session.update(Counter, f"c{i}", add={"hits": 1000})
        for i in range(600, 800):
            session.delete_key(Counter, f"c{i}")
        session.add_all([Counter(f"new{i}", hits=-i) for i in range(100)])
        session.add_all([Counter(f"put{i}") for i in range(100)], overwrite=True)

        result = await session.commit()

        assert proxy.stats["throttled"] > 0
        assert proxy.stats["server_errors"] > 0
        assert proxy.stats["unprocessed_items"] > 0
        assert result.retries > 0
        assert (result.created, result.put, result.updated, result.deleted) == (100, 100, 600, 200)
        assert session.pending == ()
        rows = await stored(uow_store)
        assert len(rows) == 600 + 100 + 100
        assert all(rows[f"c{i}"].label == "edited" for i in range(300))
        assert all(rows[f"c{i}"].hits == i + 1000 for i in range(300, 600))
        assert all(f"c{i}" not in rows for i in range(600, 800))
        assert all(rows[f"new{i}"].hits == -i for i in range(100))
        assert all(f"put{i}" in rows for i in range(100))

    async def test_endless_faults_leave_exactly_the_unsent_changes_pending(
        self, uow_store: uow.Store, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """When batches are never processed, CommitError lists them, they stay pending, a later commit stores them."""
        proxy.faults = Faults(unprocessed=1.0, apis=frozenset({"BatchWriteItem"}))
        session = faulty_store.session()
        session.add_all([Counter(f"put{i}") for i in range(30)], overwrite=True)
        session.add_all([Counter(f"new{i}") for i in range(5)])

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        failed_keys = {change.key.pk for change, _ in caught.value.failed}
        assert failed_keys == {f"put{i}" for i in range(30)}
        assert all(isinstance(cause, uow.ThrottledError) for _, cause in caught.value.failed)
        assert {change.key.pk for change in caught.value.succeeded} == {f"new{i}" for i in range(5)}
        assert {change.key.pk for change in session.pending} == failed_keys
        assert set(await stored(uow_store)) == {f"new{i}" for i in range(5)}

        proxy.faults = Faults()
        result = await session.commit()

        assert result.requests == {"BatchWriteItem": 2}
        assert result.put == 30
        assert session.pending == ()
        assert len(await stored(uow_store)) == 35

    async def test_throttling_that_never_stops_fails_single_writes_with_throttled_error(
        self, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """A create that is throttled on every attempt fails with ThrottledError and stays pending."""
        proxy.faults = Faults(throttle=1.0)
        session = faulty_store.session()
        session.add(Counter("lonely"))

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((change, cause),) = caught.value.failed
        assert change.kind is uow.ChangeKind.CREATE
        assert isinstance(cause, uow.ThrottledError)
        assert caught.value.result is not None
        assert session.is_dirty(session.identity_map[change.key])
        proxy.faults = Faults()
        assert (await session.commit()).created == 1

    async def test_server_errors_are_service_errors_with_the_code(
        self, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """A 5xx on every attempt becomes ServiceError carrying DynamoDB's code, chained to botocore's error."""
        proxy.faults = Faults(server_error=1.0)
        session = faulty_store.session()
        session.delete_key(Counter, "gone")

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.ServiceError)
        assert cause.code == "InternalServerError"
        assert cause.__cause__ is not None
        assert len(session.pending) == 1


class TestLostAnswers:
    """A write whose answer is lost is sent again without being reported or applied twice."""

    async def test_lost_answers_of_idempotent_writes(
        self, uow_store: uow.Store, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """Creates, puts, deletes and SET updates whose answers are lost all land once, no false DuplicateKeyError."""
        async with uow_store.session() as seed:
            seed.add_all([Counter(f"c{i}") for i in range(20)])
        session = faulty_store.session()
        loaded = [await session.get(Counter, f"c{i}") for i in range(10)]
        proxy.faults = Faults(lose=0.4)
        for counter in loaded:
            assert counter is not None
            counter.label = "edited"
        for i in range(10, 20):
            session.delete_key(Counter, f"c{i}")
        session.add_all([Counter(f"new{i}", hits=i) for i in range(15)])
        session.add_all([Counter(f"put{i}") for i in range(30)], overwrite=True)

        result = await session.commit()

        assert proxy.stats["lost"] > 0
        assert (result.created, result.put, result.updated, result.deleted) == (15, 30, 10, 10)
        rows = await stored(uow_store)
        assert sorted(rows) == sorted(
            [f"c{i}" for i in range(10)]
            + [f"new{i}" for i in range(15)]
            + [f"put{i}" for i in range(30)]
        )
        assert all(rows[f"c{i}"].label == "edited" for i in range(10))
        assert all(rows[f"new{i}"].hits == i for i in range(15))

    async def test_a_real_duplicate_is_still_reported_after_a_lost_answer(
        self, uow_store: uow.Store, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """When the stored item differs from the one sent, the create is a DuplicateKeyError."""
        async with uow_store.session() as seed:
            seed.add(Counter("taken", label="theirs"))
        proxy.faults = Faults(lose=0.5, apis=frozenset({"PutItem"}))
        session = faulty_store.session()
        session.add(Counter("taken", label="mine"))
        with pytest.raises(uow.CommitError) as caught:
            await session.commit()
        ((_, cause),) = caught.value.failed
        assert proxy.stats["lost"] > 0
        assert isinstance(cause, uow.DuplicateKeyError)


class TestCorruptedAnswers:
    """An answer whose body no longer matches its x-amz-crc32 is refused and the request re-sent."""

    async def test_corrupted_answers_are_retried_never_decoded(
        self, uow_store: uow.Store, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """Under 40% corrupted answers, reads return the stored values and writes land once."""
        async with uow_store.session() as seed:
            seed.add_all([Counter(f"c{i}", hits=i, label=f"label-{i}") for i in range(20)])
        proxy.faults = Faults(corrupt=0.4)
        session = faulty_store.session()
        loaded = await session.get_many(Counter, [f"c{i}" for i in range(20)])
        assert [(c.hits, c.label) for c in loaded if c is not None] == [
            (i, f"label-{i}") for i in range(20)
        ]
        for counter in loaded[:10]:
            assert counter is not None
            counter.label = "edited"
        for i in range(10, 20):
            session.delete_key(Counter, f"c{i}")
        session.add_all([Counter(f"new{i}", hits=i) for i in range(15)])
        session.add_all([Counter(f"put{i}") for i in range(30)], overwrite=True)

        result = await session.commit()

        assert proxy.stats["corrupted"] > 0
        assert session.read_stats.retries + result.retries >= proxy.stats["corrupted"]
        assert (result.created, result.put, result.updated, result.deleted) == (15, 30, 10, 10)
        rows = await stored(uow_store)
        assert sorted(rows) == sorted(
            [f"c{i}" for i in range(10)]
            + [f"new{i}" for i in range(15)]
            + [f"put{i}" for i in range(30)]
        )
        assert all(rows[f"c{i}"].label == "edited" for i in range(10))
        assert all(rows[f"new{i}"].hits == i for i in range(15))

    async def test_corruption_on_every_attempt_is_a_service_error(
        self, faulty_store: uow.Store, proxy: FaultProxy
    ) -> None:
        """When every answer is corrupted, the change fails with ChecksumError's code and stays pending."""
        proxy.faults = Faults(corrupt=1.0)
        session = faulty_store.session()
        session.update(Counter, "x", set={"label": "y"})

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.ServiceError)
        assert cause.code == "ChecksumError"
        assert len(session.pending) == 1
