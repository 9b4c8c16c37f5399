"""Read workloads: `uow`'s identity map and gets against hand-written reads, same run.

* `get_hits`: `n` strongly consistent reads by key of which 90% find the
  record already in the session (every tenth read asks for a record not read
  before). `uow` serves hits from the identity map; the hand-written
  baselines keep a dict by key, the naive one reads every time.
* `get_keys`: `n` records not in the session, by key. `uow` uses
  `Session.get_many` when it exists, else one `Session.get` per key; the
  hand-tuned baseline sends `BatchGetItem`s of 100 keys concurrently.

Every read is strongly consistent (`ConsistentRead`), as `Session.get` is.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from boto3.dynamodb.types import TypeDeserializer

from benchmarks.commit import load_session
from benchmarks.harness import REPEATS, Backend, Row, best_of
from benchmarks.workloads import CONCURRENCY, Product, chunks, key_id, pynamodb_values, record

__all__ = ["GET_HITS_CLIENTS", "GET_KEYS_CLIENTS", "ReadWorkload", "run_read"]

UOW = "uow"
SEQUENTIAL = "aioboto3 sequential, no cache"
TUNED = "aioboto3 hand-tuned"
BOTO3 = "boto3 Table"
PYNAMODB = "PynamoDB"

GET_HITS_CLIENTS = (UOW, SEQUENTIAL, TUNED, BOTO3, PYNAMODB)
GET_KEYS_CLIENTS = (UOW, SEQUENTIAL, TUNED, BOTO3, PYNAMODB)
PEER = TUNED
SEQUENTIAL_CLIENTS = frozenset({SEQUENTIAL})
_MISSING = "skipped: PynamoDB is not installed (pip install --group bench)"

_DESERIALIZER = TypeDeserializer()


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


@attrs.frozen
class ReadWorkload:
    """`gets` reads by key; `hit_rate` of them ask for a record read before."""

    name: str
    gets: int
    hit_rate: float

    @property
    def misses(self) -> int:
        return round(self.gets * (1 - self.hit_rate))

    @property
    def hot(self) -> range:
        """Records read before the window (the session's map, the baselines' dict)."""
        if self.hit_rate == 0:
            return range(0)
        return range(max(1, min(1000, self.gets - self.misses)))

    @property
    def cold(self) -> range:
        """Records read for the first time inside the window."""
        start = len(self.hot)
        return range(start, start + self.misses)

    def order(self) -> list[int]:
        """The record index of every read, in order: a miss every `1 / (1 - hit_rate)` reads."""
        if self.hit_rate == 0:
            return list(self.cold)
        cold = iter(self.cold)
        hot = itertools.cycle(self.hot)
        out = []
        missed = 0
        for step in range(1, self.gets + 1):
            if missed < round(step * (1 - self.hit_rate)):
                out.append(next(cold))
                missed += 1
            else:
                out.append(next(hot))
        return out

    def scaled(self, factor: float) -> ReadWorkload:
        return attrs.evolve(self, gets=max(1, round(self.gets * factor)))

    def describe(self) -> str:
        if self.hit_rate == 0:
            return f"{self.gets:,} records not in the session, by key"
        return f"{self.gets:,} gets, {self.hit_rate:.0%} already read ({self.misses:,} reads sent)"


async def _uow(backend: Backend, workload: ReadWorkload, client: str) -> Row:
    async with backend.table(workload.hot) as table:
        store = backend.store
        session = store.session()
        await load_session(session, store, table)
        await backend.seed(workload.cold)
        keys = [key_id(i) for i in workload.order()]
        get_many = getattr(session, "get_many", None)
        note = ""
        with backend.window() as window:
            if workload.hit_rate == 0 and get_many is not None:
                found = list(await get_many(Product, keys))
            else:
                found = [await session.get(Product, key) for key in keys]
        if workload.hit_rate == 0:
            note = "Session.get_many" if get_many is not None else "one Session.get per key"
        session.close()
    assert all(obj is not None for obj in found), "a read found nothing"
    return window.row(client, workload.gets, note)


async def _aioboto3(backend: Backend, workload: ReadWorkload, client_name: str) -> Row:
    client = backend.tuned if client_name == TUNED else backend.plain
    async with backend.table(workload.hot) as table:
        await backend.seed(workload.cold)
        cache = {key_id(i): record(i) for i in workload.hot}
        keys = [key_id(i) for i in workload.order()]

        async def get(key: str) -> dict[str, Any] | None:
            answer = await client.get_item(
                TableName=table, Key={"id": {"S": key}}, ConsistentRead=True
            )
            item = answer.get("Item")
            return None if item is None else _plain(item)

        async def cached(key: str) -> dict[str, Any] | None:
            found = cache.get(key)
            if found is None:
                found = await get(key)
                if found is not None:
                    cache[key] = found
            return found

        run: Callable[[], Awaitable[list[Any]]]
        if client_name == SEQUENTIAL:

            async def run() -> list[Any]:
                return [await get(key) for key in keys]

        elif workload.hit_rate > 0:

            async def run() -> list[Any]:
                return [await cached(key) for key in keys]

        else:

            async def run() -> list[Any]:
                return await _batch_get(client, table, keys)

        with backend.window() as window:
            found = await run()
    assert all(item is not None for item in found), "a read found nothing"
    return window.row(client_name, workload.gets)


async def _batch_get(client: Any, table: str, keys: list[str]) -> list[Any]:
    """BatchGetItem of 100 keys at a time, concurrently, re-asking for `UnprocessedKeys`."""
    limit = asyncio.Semaphore(CONCURRENCY)
    found: dict[str, dict[str, Any]] = {}

    async def one(batch: list[str]) -> None:
        request: dict[str, Any] = {
            table: {"Keys": [{"id": {"S": key}} for key in batch], "ConsistentRead": True}
        }
        while request:
            async with limit:
                answer = await client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table, ()):
                plain = _plain(item)
                found[plain["id"]] = plain
            request = answer.get("UnprocessedKeys") or {}

    await asyncio.gather(*(one(batch) for batch in chunks(keys, 100)))
    return [found.get(key) for key in keys]


async def _boto3(backend: Backend, workload: ReadWorkload, client_name: str) -> Row:
    async with backend.table(workload.hot) as table_name:
        table = backend.boto3_table()
        resource = backend.boto3
        await backend.seed(workload.cold)
        cache: dict[str, Any] = {key_id(i): record(i) for i in workload.hot}
        keys = [key_id(i) for i in workload.order()]

        def cached() -> list[Any]:
            out = []
            for key in keys:
                found = cache.get(key)
                if found is None:
                    answer = table.get_item(Key={"id": key}, ConsistentRead=True)
                    found = cache[key] = answer.get("Item")
                out.append(found)
            return out

        def batched() -> list[Any]:
            found: dict[str, Any] = {}
            for batch in chunks(keys, 100):
                request: Any = {
                    table_name: {"Keys": [{"id": key} for key in batch], "ConsistentRead": True}
                }
                while request:
                    answer = resource.batch_get_item(RequestItems=request)
                    for item in answer["Responses"].get(table_name, ()):
                        found[str(item["id"])] = item
                    request = answer.get("UnprocessedKeys") or {}
            return [found.get(key) for key in keys]

        with backend.window() as window:
            found = await asyncio.to_thread(cached if workload.hit_rate > 0 else batched)
    assert all(item is not None for item in found), "a read found nothing"
    return window.row(client_name, workload.gets)


async def _pynamodb(backend: Backend, workload: ReadWorkload, client_name: str) -> Row:
    try:
        import pynamodb  # noqa: F401 - only checks that the optional baseline is installed
    except ImportError:
        return Row(client_name, 0, 0.0, 0, {}, 0.0, None, note=_MISSING)
    async with backend.table(workload.hot):
        model = backend.pynamodb_model()
        await backend.seed(workload.cold)
        cache = {key_id(i): model(**pynamodb_values(record(i))) for i in workload.hot}
        keys = [key_id(i) for i in workload.order()]

        def cached() -> list[Any]:
            out = []
            for key in keys:
                found = cache.get(key)
                if found is None:
                    found = cache[key] = model.get(key, consistent_read=True)
                out.append(found)
            return out

        def batched() -> list[Any]:
            found = {obj.id: obj for obj in model.batch_get(keys, consistent_read=True)}
            return [found.get(key) for key in keys]

        with backend.window() as window:
            found = await asyncio.to_thread(cached if workload.hit_rate > 0 else batched)
    assert all(item is not None for item in found), "a read found nothing"
    return window.row(client_name, workload.gets)


_RUNNERS: dict[str, Callable[[Backend, ReadWorkload, str], Awaitable[Row]]] = {
    UOW: _uow,
    SEQUENTIAL: _aioboto3,
    TUNED: _aioboto3,
    BOTO3: _boto3,
    PYNAMODB: _pynamodb,
}


async def run_read(
    backend: Backend, workload: ReadWorkload, client: str, *, cap: int, repeats: int = REPEATS
) -> Row:
    """Run one client; the naive sequential one reads a sample of at most `cap` keys."""
    note = ""
    if client in SEQUENTIAL_CLIENTS and workload.gets > cap:
        workload = workload.scaled(cap / workload.gets)
        note = f"sample of {workload.gets:,} reads (same mix; sequential time is linear)"
    runner = _RUNNERS[client]
    row = await best_of(lambda: runner(backend, workload, client), repeats)
    return attrs.evolve(row, note="; ".join(text for text in (row.note, note) if text))
