"""Exactly once, even when a commit is interrupted: cancellation, lost answers and ADD.

DESIGN.md §11. A commit may be cancelled at any await, and an answer may be
lost after DynamoDB applied the write; the next commit settles every such
write without applying it twice or losing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import attrs
import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Attr

import uow
from tests.integration.support import raw_get, raw_update
from uow.testing import FaultProxy, Faults, LocalDatabase

pytestmark = pytest.mark.asyncio

FAST_RETRY = uow.Retry(max_attempts=25, base_delay=0.002, max_delay=0.05, budget=60.0)
TOKENS = pytest.mark.uow_skip_on(
    "moto",
    reason="moto ignores ClientRequestToken, so a re-sent ADD transaction is applied twice there",
)


@uow.model(table="tallies", pk="name")
@attrs.define
class Tally:
    """An unversioned counter: ADD is its only safe increment."""

    name: str
    n: int = 0
    label: str = ""


@uow.model(table="ledgers", pk="name", version="version")
@attrs.define
class Ledger:
    """A versioned record: every write is conditioned on the version it was read at."""

    name: str
    balance: int = 0
    note: str = ""
    version: int = 0


@pytest.fixture
def proxy(uow_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test server, healthy at first."""
    with FaultProxy(uow_endpoint, seed=11) as running:
        yield running


@pytest_asyncio.fixture
async def faulty(
    uow_store: uow.Store, uow_database: LocalDatabase, proxy: FaultProxy
) -> AsyncIterator[uow.Store]:
    """A store whose requests all pass through `proxy`; the tables exist."""
    await uow_store.create_tables(Tally, Ledger)
    async with uow_database.store(proxy.endpoint, retry=FAST_RETRY, max_concurrency=8) as store:
        yield store


async def commit_until_settled(session: uow.Session) -> list[uow.CommitResult]:
    """Commit until nothing is pending (as a worker would after a timeout); the results."""
    results: list[uow.CommitResult] = []
    for _ in range(20):
        if not session.pending:
            return results
        try:
            results.append(await session.commit())
        except uow.CommitError as error:
            failure = error
        else:
            continue
        settled = (uow.OutcomeUnknownError, uow.ConflictError)
        unsound = [cause for _, cause in failure.failed if isinstance(cause, settled)]
        if unsound:
            raise AssertionError(f"a commit failed for good: {unsound}") from failure
        assert failure.result is not None
        results.append(failure.result)
    raise AssertionError(f"still pending after 20 commits: {session.pending}")


async def commit_unanswered(session: uow.Session, proxy: FaultProxy) -> uow.CommitError:
    """Commit with every answer lost: the writes land, the session keeps them in doubt."""
    proxy.faults = Faults(lose=1.0)
    try:
        with pytest.raises(uow.CommitError) as caught:  # out of retries: in doubt
            await session.commit()
    finally:
        proxy.faults = Faults()
    return caught.value


class TestCancelledCommit:
    """`commit()` cancelled at any await: the session stays usable and consistent."""

    @TOKENS
    async def test_timeouts_then_commit_again_add_exactly_once(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """200 edits and one ADD per round, cut by timeouts of 10 to 200 ms, then committed again: the counter grows by exactly 4."""
        async with uow_store.session() as seed:
            seed.add_all([Tally(f"t{i}") for i in range(200)] + [Tally("c0")])
        proxy.faults = Faults(latency=0.02)
        cancelled = 0
        for round_, timeout in enumerate((0.01, 0.05, 0.1, 0.2), start=1):
            session = faulty.session()
            loaded = await session.get_many(Tally, [f"t{i}" for i in range(200)])
            for tally in loaded:
                assert tally is not None
                tally.label = f"round {round_}"
            session.update(Tally, "c0", add={"n": 1})
            try:
                async with asyncio.timeout(timeout):
                    await session.commit()
            except TimeoutError:
                cancelled += 1
            assert session.state is uow.SessionState.OPEN
            await commit_until_settled(session)
            assert session.pending == ()

        assert cancelled >= 3
        counter = await raw_get(uow_store, Tally, name="c0")
        assert counter is not None
        assert counter["n"] == 4
        rows = [await raw_get(uow_store, Tally, name=f"t{i}") for i in range(0, 200, 17)]
        assert all(row is not None and row["label"] == "round 4" for row in rows)

    async def test_a_cancelled_commit_keeps_confirmed_changes_and_the_rest_pending(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """After a cancellation, every record is committed state or still pending, never both or neither."""
        async with uow_store.session() as seed:
            seed.add_all([Tally(f"t{i}") for i in range(40)])
        proxy.faults = Faults(latency=0.03)
        session = faulty.session()
        loaded = await session.get_many(Tally, [f"t{i}" for i in range(40)])
        for tally in loaded:
            assert tally is not None
            tally.label = "edited"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.045):
                await session.commit()

        assert session.state is uow.SessionState.OPEN
        pending = {change.key.pk for change in session.pending}
        for i, tally in enumerate(loaded):
            assert tally is not None
            assert tally.label == "edited"  # the object shows committed + pending either way
            if f"t{i}" not in pending:  # confirmed: DynamoDB holds it
                row = await raw_get(uow_store, Tally, name=f"t{i}")
                assert row is not None
                assert row["label"] == "edited"
        proxy.faults = Faults()
        await commit_until_settled(session)
        rows = [await raw_get(uow_store, Tally, name=f"t{i}") for i in range(40)]
        assert all(row is not None and row["label"] == "edited" for row in rows)

    async def test_a_record_in_doubt_refuses_new_changes_until_settled(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """A record whose write is in doubt refuses update()/delete() with UsageError; commit() settles it."""
        async with uow_store.session() as seed:
            seed.add(Tally("c1"))
        proxy.faults = Faults(latency=0.05)
        session = faulty.session()
        session.update(Tally, "c1", add={"n": 5})
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await session.commit()
        (record,) = session._records.values()
        assert record.doubt is not None
        with pytest.raises(uow.UsageError, match="outcome is unknown"):
            session.update(Tally, "c1", add={"n": 1})
        with pytest.raises(uow.UsageError, match="outcome is unknown"):
            session.delete_key(Tally, "c1")
        proxy.faults = Faults()
        result = await session.commit()
        assert result.unknown == 1
        assert session.pending == ()
        session.update(Tally, "c1", add={"n": 1})  # settled: changes are accepted again

    async def test_rollback_evicts_a_record_in_doubt(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """rollback() cannot unsend a write: a record in doubt leaves the map, so a read shows DynamoDB's state."""
        async with uow_store.session() as seed:
            seed.add(Ledger("l1", balance=10))
        session = faulty.session()
        ledger = await session.get(Ledger, "l1")
        assert ledger is not None
        ledger.balance = 20
        proxy.faults = Faults(latency=0.05)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await session.commit()
        await asyncio.sleep(0.1)  # the cancelled request reaches the server meanwhile
        session.rollback()
        assert uow.Key("ledgers", "l1") not in session.identity_map
        proxy.faults = Faults()
        again = await session.get(Ledger, "l1")
        assert again is not None
        assert again is not ledger
        assert (again.balance, again.version) == (20, 2)


class TestLostAnswers:
    """An answer lost after DynamoDB applied the write: settled, never applied twice."""

    @TOKENS
    async def test_lost_add_answers_apply_once(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """100 ADDs whose answers are lost half the time: the counters hold exactly the sums."""
        async with uow_store.session() as seed:
            seed.add_all([Tally(f"c{i}") for i in range(10)] + [Tally(f"s{i}") for i in range(10)])
        proxy.faults = Faults(lose=0.5)
        session = faulty.session()
        for i in range(100):
            session.update(Tally, f"c{i % 10}", add={"n": 1})
        for i in range(10):
            session.update(Tally, f"s{i}", add={"n": i})
        result = await session.commit()

        assert proxy.stats["lost"] > 0
        assert result.unknown > 0
        assert result.resolved.get("token", 0) == result.unknown
        for i in range(10):
            row = await raw_get(uow_store, Tally, name=f"c{i}")
            assert row is not None
            assert row["n"] == 10
            stored = await raw_get(uow_store, Tally, name=f"s{i}")
            assert stored is not None
            assert stored["n"] == i

    async def test_a_versioned_write_whose_answer_is_lost_is_a_success(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """The re-send's version condition fails on its own write: found by its marker, not a ConflictError."""
        async with uow_store.session() as seed:
            seed.add_all([Ledger(f"l{i}") for i in range(10)])
        session = faulty.session()
        ledgers = await session.get_many(Ledger, [f"l{i}" for i in range(10)])
        for ledger in ledgers:
            assert ledger is not None
            ledger.balance += 7
        proxy.faults = Faults(lose=1.0, apis=frozenset({"UpdateItem"}))
        with pytest.raises(uow.CommitError):  # every answer lost: out of retries, in doubt
            await session.commit()
        proxy.faults = Faults()

        result = await session.commit()

        assert result.unknown == 10
        assert result.resolved == {"found": 10}
        assert result.updated == 10
        for i in range(10):
            row = await raw_get(uow_store, Ledger, name=f"l{i}")
            assert row is not None
            assert (row["balance"], row["version"]) == (7, 2)
        assert [ledger.version for ledger in ledgers if ledger] == [2] * 10

    async def test_a_lost_versioned_write_found_after_other_writers_moved_on(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """Five later versions by another writer: the marker slot still names this write."""
        async with uow_store.session() as seed:
            seed.add(Ledger("l1"))
        session = faulty.session()
        ledger = await session.get(Ledger, "l1")
        assert ledger is not None
        ledger.balance = 100
        await commit_unanswered(session, proxy)
        for n in range(5):
            async with uow_store.session() as other:
                theirs = await other.get(Ledger, "l1")
                assert theirs is not None
                theirs.note = f"other {n}"

        result = await session.commit()

        assert result.resolved == {"found": 1}
        row = await raw_get(uow_store, Ledger, name="l1")
        assert row is not None
        assert (row["balance"], row["version"], row["note"]) == (100, 7, "other 4")

    async def test_a_write_that_did_not_land_is_a_conflict(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """Dropped before reaching DynamoDB, then overtaken by another writer: a real ConflictError."""
        async with uow_store.session() as seed:
            seed.add(Ledger("l1"))
        session = faulty.session()
        ledger = await session.get(Ledger, "l1")
        assert ledger is not None
        ledger.balance = 1
        proxy.faults = Faults(drop=1.0)
        with pytest.raises(uow.CommitError):
            await session.commit()
        proxy.faults = Faults()
        async with uow_store.session() as other:
            theirs = await other.get(Ledger, "l1")
            assert theirs is not None
            theirs.balance = 2

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.ConflictError)
        assert caught.value.result is not None
        assert caught.value.result.resolved == {"conflict": 1}
        assert session._records[uow.Key("ledgers", "l1")].doubt is None

    async def test_too_many_versions_later_is_unknown_and_never_resent(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """32 versions later the marker slot may be reused: OutcomeUnknownError, and later commits send nothing for it."""
        async with uow_store.session() as seed:
            seed.add(Ledger("l1"))
        session = faulty.session()
        ledger = await session.get(Ledger, "l1")
        assert ledger is not None
        ledger.balance = 100
        await commit_unanswered(session, proxy)
        # As if 32 other writers had moved it on: version 34, slot 2 reused by version 34.
        await raw_update(
            uow_store,
            Ledger,
            {"name": "l1"},
            "SET #v = :v, #s = :s",
            values={":v": 34, ":s": "another-write"},
            names={"#v": "version", "#s": "_uow_w2"},
        )

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()
        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.OutcomeUnknownError)
        forwarded = proxy.stats["forwarded"]

        with pytest.raises(uow.CommitError) as again:
            await session.commit()
        ((_, cause),) = again.value.failed
        assert isinstance(cause, uow.OutcomeUnknownError)
        assert proxy.stats["forwarded"] == forwarded  # never re-sent
        await session.refresh(ledger)  # the way out: read what is stored, apply again
        assert session.pending == ()
        assert ledger.version == 34

    @TOKENS
    async def test_a_token_older_than_the_window_is_not_resent(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """An ADD in doubt for longer than DynamoDB's 10-minute token window fails with OutcomeUnknownError, unsent."""
        proxy.faults = Faults(lose=1.0)
        session = faulty.session()
        session.update(Tally, "c1", add={"n": 1})
        with pytest.raises(uow.CommitError):
            await session.commit()
        proxy.faults = Faults()
        (record,) = session._records.values()
        assert record.doubt is not None
        record.doubt.first_sent -= 600  # as if the session had waited ten minutes
        forwarded = proxy.stats["forwarded"]

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.OutcomeUnknownError)
        assert "10 minutes" in str(cause)
        assert proxy.stats["forwarded"] == forwarded
        session.clear_record(Tally, "c1")
        assert session.pending == ()

    async def test_a_lost_create_is_not_a_duplicate_even_after_another_edit(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """A create whose answer was lost, then edited by another writer, is found by its marker."""
        session = faulty.session()
        session.add(Tally("new", label="mine"))
        await commit_unanswered(session, proxy)
        async with uow_store.session() as other:
            other.update(Tally, "new", set={"label": "theirs"})

        result = await session.commit()

        assert result.resolved == {"found": 1}
        assert result.created == 1
        assert session.pending == ()


class TestReporting:
    """`CommitResult` and the INFO log line say how many outcomes were unknown and how each was settled."""

    async def test_result_and_log_line(
        self,
        uow_store: uow.Store,
        faulty: uow.Store,
        proxy: FaultProxy,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A commit that settles lost answers logs `unknown=N[way=n, ...]`."""
        async with uow_store.session() as seed:
            seed.add_all([Ledger(f"l{i}") for i in range(5)])
        session = faulty.session()
        for ledger in await session.get_many(Ledger, [f"l{i}" for i in range(5)]):
            assert ledger is not None
            ledger.note = "x"
        proxy.faults = Faults(lose=1.0)
        with pytest.raises(uow.CommitError) as caught:
            await session.commit()
        assert caught.value.result is not None
        assert caught.value.result.unknown == 5
        assert caught.value.result.resolved == {"pending": 5}
        proxy.faults = Faults()
        with caplog.at_level(logging.INFO, logger="uow.session"):
            result = await session.commit()
        assert result.unknown == 5
        assert "unknown=5[found=5]" in result.summary()
        assert any("unknown=5[found=5]" in r.getMessage() for r in caplog.records)


class TestRecordsInDoubt:
    """What a session allows, and keeps, while a record's write is in doubt."""

    async def test_reading_a_blind_update_in_doubt_is_refused(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """get() of a key whose blind update is in doubt raises UsageError; once settled it reads."""
        async with uow_store.session() as seed:
            seed.add(Tally("c1", n=1))
        session = faulty.session()
        session.update(Tally, "c1", set={"label": "x"})
        await commit_unanswered(session, proxy)
        with pytest.raises(uow.UsageError, match="outcome is unknown"):
            await session.get(Tally, "c1")
        await session.commit()
        tally = await session.get(Tally, "c1")
        assert tally is not None
        assert tally.label == "x"

    async def test_a_condition_survives_reading_its_blind_record(
        self, uow_store: uow.Store, faulty: uow.Store
    ) -> None:
        """A blind update's condition still guards the write after get() loads the record."""
        async with uow_store.session() as seed:
            seed.add(Tally("c1", n=1))
        session = faulty.session()
        session.update(Tally, "c1", add={"n": -2}, condition=Attr("n").gte(2))
        await session.get(Tally, "c1")
        with pytest.raises(uow.CommitError) as caught:
            await session.commit()
        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.ConditionFailed)
        row = await raw_get(uow_store, Tally, name="c1")
        assert row is not None
        assert row["n"] == 1

    async def test_an_assignment_made_while_in_doubt_is_kept(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """A versioned ADD dropped on the way, then an assignment of that field: the assignment wins."""
        async with uow_store.session() as seed:
            seed.add(Ledger("l1", balance=10))
        session = faulty.session()
        ledger = await session.get(Ledger, "l1")
        assert ledger is not None
        session.update(Ledger, "l1", add={"balance": 5})
        proxy.faults = Faults(drop=1.0)
        with pytest.raises(uow.CommitError):
            await session.commit()
        proxy.faults = Faults()
        with pytest.raises(uow.UsageError, match="outcome is unknown"):
            session.expect(ledger, Attr("balance").eq(15))
        ledger.balance = 100

        await session.commit()

        assert ledger.balance == 100
        assert not session.is_dirty(ledger)
        row = await raw_get(uow_store, Ledger, name="l1")
        assert row is not None
        assert row["balance"] == 100

    async def test_an_atomic_commit_waits_for_an_unsettled_write(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """While an earlier write cannot be settled, an atomic commit sends nothing (AbortedError)."""
        async with uow_store.session() as seed:
            seed.add(Tally("c1"))
        session = faulty.session()
        session.update(Tally, "c1", add={"n": 1})
        await commit_unanswered(session, proxy)
        (record,) = session._records.values()
        assert record.doubt is not None
        record.doubt.first_sent -= 600  # past DynamoDB's token window: unsettled
        session.add(Tally("c2"))

        with pytest.raises(uow.CommitError) as caught:
            await session.commit(atomic=True)

        causes = {change.key.pk: type(cause) for change, cause in caught.value.failed}
        assert causes == {"c1": uow.OutcomeUnknownError, "c2": uow.AbortedError}
        assert await raw_get(uow_store, Tally, name="c2") is None

    @TOKENS
    async def test_an_atomic_commit_with_a_check_settles_after_a_lost_answer(
        self, uow_store: uow.Store, faulty: uow.Store, proxy: FaultProxy
    ) -> None:
        """A transaction with a ConditionCheck whose answers were lost is settled by its token."""
        async with uow_store.session() as seed:
            seed.add_all([Tally("flag", label="open"), Tally("c1")])
        session = faulty.session()
        session.check(Tally, "flag", condition=Attr("label").eq("open"))
        session.update(Tally, "c1", add={"n": 1})
        proxy.faults = Faults(lose=1.0)
        with pytest.raises(uow.CommitError):
            await session.commit(atomic=True)
        proxy.faults = Faults()

        result = await session.commit(atomic=True)

        assert result.resolved == {"token": 2}
        assert result.requests == {"TransactWriteItems": 1}  # the check is not sent again
        row = await raw_get(uow_store, Tally, name="c1")
        assert row is not None
        assert row["n"] == 1
