"""Worker processes for the lost-update test: each runs its own store and sessions."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import attrs
from boto3.dynamodb.conditions import Attr

import uow
from uow.testing import LocalDatabase


@uow.model(table="shared_counters", pk="name", version="version")
@attrs.define
class SharedCounter:
    """A counter incremented by many processes: optimistic locking keeps every increment."""

    name: str
    value: int = 0
    hits: int = 0
    version: int = 0


VERSIONED = "versioned"  # read, increment, conditional write (retried on conflict)
ADDED = "added"  # blind ADD of 1, no read


async def _increment(database: LocalDatabase, increments: int) -> int:
    attempts = 0

    async def work(session: uow.Session) -> None:
        nonlocal attempts
        attempts += 1
        counter = await session.get(SharedCounter, VERSIONED)
        assert counter is not None
        counter.value += 1

    async with database.store(max_concurrency=2) as store:
        for _ in range(increments):
            # One record per unit of work: a single conditional UpdateItem, no transaction.
            await uow.retry_on_conflict(
                store, work, attempts=1000, atomic=False, base_delay=0.004, max_delay=0.1
            )
            async with store.session() as session:
                session.update(SharedCounter, ADDED, add={"hits": 1})
    return attempts


def run_worker(database: LocalDatabase, increments: int) -> int:
    """Process entry point: `increments` versioned increments and as many blind ADDs.

    Returns how many attempts the versioned increments took (conflicts retried).
    """
    return asyncio.run(_increment(database, increments))


@uow.model(table="interrupted_tallies", pk="name")
@attrs.define
class InterruptedTally:
    """An unversioned counter, only ever changed by blind ADDs."""

    name: str
    n: int = 0


@uow.model(table="interrupted_ledgers", pk="name", version="version")
@attrs.define
class InterruptedLedger:
    """A versioned counter, changed by read-modify-write."""

    name: str
    value: int = 0
    version: int = 0


# Many attempts, short waits: a proxy loses 10% of answers and drops 5% of requests.
_FAULTY_RETRY = uow.Retry(max_attempts=30, base_delay=0.002, max_delay=0.05, budget=120.0)


class _Conflict(Exception):
    """The versioned write did not land: another writer got there first."""


async def _commit_interrupted(
    session: uow.Session, rng: random.Random, stats: Counter[str], *, cut: bool
) -> None:
    """Commit, the first attempt cut by a timeout at a random moment when `cut`, then commit
    until settled."""
    for attempt in range(100):
        if not session.pending:
            return
        timeout = rng.uniform(0.0, 0.03) if cut and attempt == 0 else None
        try:
            async with asyncio.timeout(timeout):
                result = await session.commit()
        except TimeoutError:
            stats["cancelled"] += 1
            continue
        except uow.CommitError as error:
            stats.update(error.result.resolved if error.result else {})
            causes = [cause for _, cause in error.failed]
            if any(isinstance(cause, uow.OutcomeUnknownError) for cause in causes):
                raise AssertionError(f"a write could not be settled: {error}") from error
            if causes and all(isinstance(cause, uow.ConflictError) for cause in causes):
                raise _Conflict from error
            stats["failed commits"] += 1  # throttled or out of retries: commit again
            continue
        stats.update(result.resolved)
    raise AssertionError(f"still pending after 100 commits: {session.pending}")


async def _interrupted(
    database: LocalDatabase, endpoint: str, increments: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    async with database.store(endpoint, max_concurrency=4, retry=_FAULTY_RETRY) as store:
        for i in range(increments):
            session = store.session()
            session.update(InterruptedTally, "adds", add={"n": 1})
            await _commit_interrupted(session, rng, stats, cut=i % 10 == seed % 10)
        for i in range(increments):
            while True:
                session = store.session()
                try:
                    ledger = await session.get(InterruptedLedger, "ledger")
                except uow.ServiceError:  # the read's answers were lost every time
                    stats["failed reads"] += 1
                    continue
                assert ledger is not None
                ledger.value += 1
                try:
                    await _commit_interrupted(session, rng, stats, cut=i % 10 == seed % 10)
                except _Conflict:
                    stats["conflicts"] += 1
                    continue
                break
    return dict(stats)


def run_interrupted_worker(
    database: LocalDatabase, endpoint: str, increments: int, seed: int
) -> dict[str, int]:
    """Process entry point: `increments` blind ADDs, then as many versioned increments, through
    a faulty proxy at `endpoint`, one commit in ten cut by a timeout; returns what happened."""
    return asyncio.run(_interrupted(database, endpoint, increments, seed))


@uow.model(table="stock", pk="sku")
@attrs.define
class Stock:
    """A stock level, taken with a condition that it stays at or above zero."""

    sku: str
    qty: int = 0


async def _take_stock(database: LocalDatabase, attempts: int) -> tuple[int, int]:
    taken = refused = 0
    async with database.store(max_concurrency=2) as store:
        for _ in range(attempts):
            session = store.session()
            session.update(Stock, "A", add={"qty": -1}, condition=Attr("qty").gte(1))
            try:
                await session.commit()
                taken += 1
            except uow.CommitError as error:
                if not all(isinstance(cause, uow.ConditionFailed) for _, cause in error.failed):
                    raise AssertionError(f"not a refusal: {error}") from error
                refused += 1
    return taken, refused


def run_stock_taker(database: LocalDatabase, attempts: int) -> tuple[int, int]:
    """Process entry point: `attempts` tries to take 1 from stock "A"; (taken, refused)."""
    return asyncio.run(_take_stock(database, attempts))
