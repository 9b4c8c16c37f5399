"""A queue consumer: concurrent workers, one session per job, retried on conflict.

Run it with `python -m examples.worker` (an embedded moto server when no
endpoint is configured; `--endpoint URL` or `AWS_ENDPOINT_URL` otherwise).

Each job credits an amount to a versioned account. Several worker tasks take
jobs from one `asyncio.Queue` and share one `Store`; each job runs in a
session of its own through `uow.retry_on_conflict`, so when two workers credit
the same account at once, the loser's commit fails on the version, and its
job runs again on fresh data. No credit is lost or applied twice. The pattern
is explained in docs/howto/workers.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterable, Sequence

import attrs

import uow

__all__ = ["Account", "Credit", "Stats", "credit", "run_jobs", "worker"]

log = logging.getLogger("examples.worker")


# --8<-- [start:model]
@uow.model(table="worker_accounts", pk="account_id", version="version")
@attrs.define
class Account:
    """An account balance; every write is conditioned on the version it was read at."""

    account_id: str
    balance: int = 0
    credits: int = 0
    version: int = 0


# --8<-- [end:model]


@attrs.frozen
class Credit:
    """A job: add `amount` to the balance of `account_id`."""

    account_id: str
    amount: int


@attrs.define
class Stats:
    """What the workers did: jobs done, jobs failed (with their errors)."""

    done: int = 0
    failed: list[tuple[Credit, Exception]] = attrs.Factory(list)


# --8<-- [start:credit]
async def credit(store: uow.Store, job: Credit) -> int:
    """Apply one job in a session of its own, again from scratch after a lost race.

    Returns:
        The account's new balance.

    Raises:
        LookupError: the account does not exist (not retried: nothing was written).
        uow.CommitError: the job kept losing races through every attempt, or
            failed for another reason (throttling, a service error).
    """

    async def work(session: uow.Session) -> int:
        account = await session.get(Account, job.account_id)
        if account is None:
            raise LookupError(f"no account {job.account_id!r}")
        account.balance += job.amount
        account.credits += 1
        return account.balance

    # Versioned read-modify-write: a conflict means another worker got there first.
    return await uow.retry_on_conflict(store, work, attempts=50)


# --8<-- [end:credit]


# --8<-- [start:workers]
async def worker(store: uow.Store, queue: asyncio.Queue[Credit], stats: Stats) -> None:
    """Take jobs from `queue` until cancelled; a failed job is recorded, not fatal."""
    while True:
        job = await queue.get()
        try:
            await credit(store, job)
        except (uow.UowError, LookupError) as error:
            log.warning("job %s failed: %s", job, error)
            stats.failed.append((job, error))
        else:
            stats.done += 1
        finally:
            queue.task_done()


async def run_jobs(store: uow.Store, jobs: Iterable[Credit], *, workers: int = 4) -> Stats:
    """Run `jobs` on `workers` concurrent tasks sharing `store`; return once every job is done."""
    queue: asyncio.Queue[Credit] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    stats = Stats()
    tasks = [
        asyncio.create_task(worker(store, queue, stats), name=f"worker-{n}") for n in range(workers)
    ]
    try:
        await queue.join()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return stats


# --8<-- [end:workers]


async def run(store: uow.Store) -> None:
    """Open two accounts, credit them from 4 workers, and print the balances."""
    await store.create_tables(Account)
    async with store.session() as session:
        session.add_all([Account("alice"), Account("bob")], overwrite=True)
    jobs = [Credit("alice" if n % 2 else "bob", n) for n in range(1, 41)]
    stats = await run_jobs(store, jobs, workers=4)
    async with store.session() as session:
        for account in await session.get_many(Account, ["alice", "bob"]):
            assert account is not None
            print(f"{account.account_id}: balance={account.balance} credits={account.credits}")
    print(f"jobs done: {stats.done}, failed: {len(stats.failed)}")


async def run_on(endpoint: str | None) -> None:
    """Run on `endpoint`, or on an embedded moto server when it is `None`."""
    if endpoint is None:
        from uow.testing import MotoServer, local_store

        with MotoServer() as server:
            async with local_store(server.endpoint) as store:
                await run(store)
        return
    async with uow.Store(endpoint) as store:
        await run(store)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the workers, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m examples.worker", description=__doc__)
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL") or None,
        help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL, else an embedded moto server)",
    )
    args = parser.parse_args(argv)
    asyncio.run(run_on(args.endpoint))
    return 0


if __name__ == "__main__":
    sys.exit(main())
