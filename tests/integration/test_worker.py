"""The queue-consumer example: concurrent workers, a session per job, no lost credit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import uow
from examples.worker import Account, Credit, credit, main, run_jobs
from uow.testing import LocalDatabase

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("atomic_requests_unless_dynamodb_local")]

WORKERS = 4
JOBS = 40


@pytest.fixture
def atomic_requests_unless_dynamodb_local(
    uow_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request at a time, except on DynamoDB Local, which is left as it is.

    DynamoDB applies each request atomically: of two writes conditioned on one version,
    one fails. moto's threaded server can let both win (a lost update that is moto's, not
    uow's; the same tests pass unchanged on DynamoDB Local). Serializing the requests gives
    moto DynamoDB's atomicity while jobs still interleave between requests, so workers still
    read stale versions and lose races. An external endpoint may be moto too.
    """
    if uow_backend == "dynamodb-local":
        return
    from aiobotocore.client import AioBaseClient

    from uow._transport import LeanTransport

    locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def serialized(original: Any) -> Any:
        async def one_at_a_time(self: Any, *args: Any) -> Any:
            lock = locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
            async with lock:
                return await original(self, *args)

        return one_at_a_time

    # Every path to the server: the aioboto3 client (its transport and raw calls) and the lean one.
    for cls, name in ((AioBaseClient, "_make_api_call"), (LeanTransport, "_send")):
        monkeypatch.setattr(cls, name, serialized(getattr(cls, name)))


async def open_accounts(store: uow.Store, *names: str) -> None:
    """Accounts with a zero balance."""
    await store.create_tables(Account)
    async with store.session() as session:
        session.add_all([Account(name) for name in names])


async def accounts(store: uow.Store, *names: str) -> list[Account]:
    """The accounts as DynamoDB holds them now."""
    async with store.session() as session:
        found = await session.get_many(Account, list(names))
    assert all(account is not None for account in found)
    return [account for account in found if account is not None]


class TestWorkers:
    """Workers share a store; each job is its own unit of work, retried when it loses a race."""

    async def test_concurrent_credits_to_one_account_are_all_applied_once(
        self, uow_store: uow.Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """4 workers x 40 credits to one versioned account: the balance is exact, races were retried."""
        await open_accounts(uow_store, "acc")
        jobs = [Credit("acc", n) for n in range(1, JOBS + 1)]
        with caplog.at_level(logging.DEBUG, logger="uow.retry"):
            stats = await run_jobs(uow_store, jobs, workers=WORKERS)
        assert stats.done == JOBS
        assert stats.failed == []
        (account,) = await accounts(uow_store, "acc")
        assert account.balance == sum(range(1, JOBS + 1))
        assert account.credits == JOBS
        assert account.version == 1 + JOBS
        conflicts = [r for r in caplog.records if r.name == "uow.retry"]
        assert conflicts, "four workers on one account should have lost some races"

    async def test_jobs_on_several_accounts(self, uow_store: uow.Store) -> None:
        """Credits spread over four accounts land exactly, each on its own account."""
        await open_accounts(uow_store, *"abcd")
        jobs = [Credit("abcd"[n % 4], 1) for n in range(JOBS)]
        stats = await run_jobs(uow_store, jobs, workers=WORKERS)
        assert stats.done == JOBS
        balances = [account.balance for account in await accounts(uow_store, *"abcd")]
        assert balances == [JOBS // 4] * 4

    async def test_a_failing_job_does_not_stop_the_workers(self, uow_store: uow.Store) -> None:
        """A job for a missing account is recorded as failed, writes nothing, and the rest run."""
        await open_accounts(uow_store, "acc")
        jobs = [Credit("acc", 1), Credit("missing", 5), Credit("acc", 2)]
        stats = await run_jobs(uow_store, jobs, workers=2)
        assert stats.done == 2
        [(job, error)] = stats.failed
        assert job == Credit("missing", 5)
        assert isinstance(error, LookupError)
        (account,) = await accounts(uow_store, "acc")
        assert account.balance == 3
        async with uow_store.session() as session:
            assert await session.get(Account, "missing") is None

    async def test_credit_returns_the_new_balance(self, uow_store: uow.Store) -> None:
        """One job, run alone, returns the balance it committed."""
        await open_accounts(uow_store, "acc")
        assert await credit(uow_store, Credit("acc", 7)) == 7
        assert await credit(uow_store, Credit("acc", 3)) == 10

    async def test_the_example_runs_on_an_endpoint(
        self,
        uow_database: LocalDatabase,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`python -m examples.worker` with `AWS_ENDPOINT_URL` credits 40 jobs and prints exact balances."""
        for name, value in uow_database.environ().items():
            monkeypatch.setenv(name, value)
        # main() runs its own event loop: run it in a thread, as a command line would.
        status = await asyncio.to_thread(main, [])
        assert status == 0
        output = capsys.readouterr().out
        assert "alice: balance=400 credits=20" in output
        assert "bob: balance=420 credits=20" in output
        assert "jobs done: 40, failed: 0" in output
