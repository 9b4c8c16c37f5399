"""Worker processes for the lost-update test: each runs its own store and sessions."""

from __future__ import annotations

import asyncio

import attrs

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
