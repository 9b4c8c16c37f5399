"""The code of docs/howto/testing.md, run as written: fixtures, fault injection, backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import attrs
import pytest

import uow
from uow.testing import FaultProxy, Faults, LocalDatabase


@uow.model(table="notes", pk="note_id", version="version")
@attrs.define
class Note:
    """A small versioned record."""

    note_id: str
    text: str = ""
    version: int = 0


# --8<-- [start:basic]
@pytest.mark.asyncio
async def test_add_then_read_back(uow_store: uow.Store, uow_session: uow.Session) -> None:
    """A note added and committed can be read back in a new session."""
    await uow_store.create_tables(Note)  # every test starts from an empty database
    uow_session.add(Note("n1", "hello"))
    result = await uow_session.commit()
    assert result.created == 1
    async with uow_store.session() as session:
        note = await session.get(Note, "n1")
    assert note == Note("n1", "hello", version=1)


# --8<-- [end:basic]


# --8<-- [start:environ]
@pytest.mark.asyncio
async def test_code_that_reads_the_environment(
    uow_database: LocalDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code that opens `uow.Store()` from the AWS environment runs on the test database."""
    for name, value in uow_database.environ().items():
        monkeypatch.setenv(name, value)  # AWS_ENDPOINT_URL, credentials, region
    async with uow.Store() as store:  # as the production code does
        await store.create_tables(Note)
        async with store.session() as session:
            session.add(Note("n1"))
    async with uow.Store() as store, store.session() as session:
        assert await session.get(Note, "n1") is not None


# --8<-- [end:environ]


# --8<-- [start:proxy]
@pytest.fixture
def proxy(uow_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test server; healthy until told otherwise."""
    with FaultProxy(uow_endpoint, seed=1) as running:
        yield running


FAST = uow.Retry(max_attempts=10, base_delay=0.001, max_delay=0.01)


@pytest.mark.asyncio
async def test_a_commit_survives_throttling(
    uow_store: uow.Store, uow_database: LocalDatabase, proxy: FaultProxy
) -> None:
    """Throttled requests and unprocessed batch items are re-sent until everything lands."""
    await uow_store.create_tables(Note)
    proxy.faults = Faults(throttle=0.3, unprocessed=0.3)
    async with uow_database.store(proxy.endpoint, retry=FAST) as store:
        session = store.session()
        session.add_all([Note(f"n{i}") for i in range(60)], overwrite=True)  # 3 batches
        result = await session.commit()
    assert result.put == 60
    assert result.retries > 0
    assert proxy.stats["throttled"] + proxy.stats["unprocessed_items"] > 0


# --8<-- [end:proxy]


# --8<-- [start:give-up]
@pytest.mark.asyncio
async def test_endless_throttling_keeps_the_change_pending(
    uow_store: uow.Store, uow_database: LocalDatabase, proxy: FaultProxy
) -> None:
    """When throttling outlasts the retries, the change fails with its cause and stays pending."""
    await uow_store.create_tables(Note)
    proxy.faults = Faults(throttle=1.0)
    retry = uow.Retry(max_attempts=3, base_delay=0.001, max_delay=0.01)
    async with uow_database.store(proxy.endpoint, retry=retry) as store:
        session = store.session()
        session.add(Note("n1"))
        with pytest.raises(uow.CommitError) as raised:
            await session.commit()
        [(change, cause)] = raised.value.failed
        assert isinstance(cause, uow.ThrottledError)
        assert session.pending == (change,)
        proxy.faults = Faults()  # heal
        assert (await session.commit()).created == 1


# --8<-- [end:give-up]


# --8<-- [start:skip]
@pytest.mark.asyncio
@pytest.mark.uow_skip_on("moto", reason="moto can let two concurrent conditional writes both win")
async def test_one_of_two_racing_writers_wins(uow_store: uow.Store) -> None:
    """Two sessions that read version 1 and both write: exactly one commit succeeds."""
    await uow_store.create_tables(Note)
    async with uow_store.session() as session:
        session.add(Note("n1"))
    first, second = uow_store.session(), uow_store.session()
    for session, text in ((first, "first"), (second, "second")):
        note = await session.get(Note, "n1")
        assert note is not None
        note.text = text
    outcomes = await asyncio.gather(first.commit(), second.commit(), return_exceptions=True)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "CommitError",
        "CommitResult",
    ]


# --8<-- [end:skip]
