"""Commit workloads: `uow` against the code users write by hand, on one server, same run.

Every client starts from the same state (a fresh table holding the records to
edit and to delete; the loaded records in the client's own shape: `uow`
objects, plain dicts, PynamoDB instances) and applies the same changes. The
measured window covers applying the changes in the client's own API and
sending them, until every write is confirmed.

Clients, grouped by what their writes guarantee:

* create-only (a new record must not exist; an edit must find its record):
  `uow add()`, `aioboto3 sequential` (one awaited call per change) and
  `aioboto3 hand-tuned` (all requests concurrent under a semaphore of 32,
  deletes in `BatchWriteItem`, parameter validation off as in `uow`);
* overwrite of new records (puts may be batched): `uow add(overwrite=True)` and
  `aioboto3 hand-tuned, batched puts`;
* no conditions at all, edits written as whole items (a concurrent writer's
  change is silently lost): `boto3 batch_writer` and `PynamoDB batch_write`
  (each in a worker thread), and the `StructNoSQL-style` commit (sequential,
  one `UpdateItem` for an edit's sets and another for its removes).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from boto3.dynamodb.types import TypeSerializer

from benchmarks.harness import REPEATS, Backend, Row, best_of
from benchmarks.workloads import (
    CONCURRENCY,
    EDIT_REMOVES,
    Product,
    Workload,
    chunks,
    edit_sets,
    edited,
    key_id,
    merge_loaded,
    pynamodb_values,
    record,
)

__all__ = [
    "BASELINES",
    "CLIENTS",
    "PAIRED",
    "UOW_ADD",
    "UOW_OVERWRITE",
    "load_session",
    "run_client",
]

UOW_ADD = "uow add()"
UOW_OVERWRITE = "uow add(overwrite=True)"
SEQUENTIAL = "aioboto3 sequential"
TUNED = "aioboto3 hand-tuned"
TUNED_BATCHED = "aioboto3 hand-tuned, batched puts"
BATCH_WRITER = "boto3 batch_writer"
PYNAMODB = "PynamoDB batch_write"
STRUCTNOSQL = "StructNoSQL-style"

# Which baseline writes with the same guarantees as each uow flavour.
PEERS = {UOW_ADD: TUNED, UOW_OVERWRITE: TUNED_BATCHED}
BASELINES = (SEQUENTIAL, TUNED, TUNED_BATCHED, BATCH_WRITER, PYNAMODB, STRUCTNOSQL)
CLIENTS = (UOW_ADD, UOW_OVERWRITE, *BASELINES)
# uow and the baselines whose ratio to it is the verdict.
PAIRED = frozenset({UOW_ADD, UOW_OVERWRITE, TUNED, TUNED_BATCHED})
# Clients that send one request at a time: at high latency they run a sample.
SEQUENTIAL_CLIENTS = frozenset({SEQUENTIAL, STRUCTNOSQL})

_SERIALIZER = TypeSerializer()
_MISSING = "skipped: PynamoDB is not installed (pip install --group bench)"


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in values.items() if v is not None}


def _key(i: int) -> dict[str, Any]:
    return {"id": {"S": key_id(i)}}


def _update(
    table: str, i: int, sets: dict[str, Any], removes: tuple[str, ...], *, conditional: bool
) -> dict[str, Any]:
    """UpdateItem parameters, as a careful hand-written helper builds them."""
    names = {}
    values = {}
    clauses = []
    if sets:
        parts = []
        for n, (name, value) in enumerate(sets.items()):
            names[f"#s{n}"] = name
            values[f":s{n}"] = _SERIALIZER.serialize(value)
            parts.append(f"#s{n} = :s{n}")
        clauses.append("SET " + ", ".join(parts))
    if removes:
        for n, name in enumerate(removes):
            names[f"#r{n}"] = name
        clauses.append("REMOVE " + ", ".join(f"#r{n}" for n in range(len(removes))))
    params: dict[str, Any] = {
        "TableName": table,
        "Key": _key(i),
        "UpdateExpression": " ".join(clauses),
        "ExpressionAttributeNames": names,
    }
    if values:
        params["ExpressionAttributeValues"] = values
    if conditional:
        names["#id"] = "id"
        params["ConditionExpression"] = "attribute_exists(#id)"
    return params


def _create(table: str, i: int) -> dict[str, Any]:
    return {
        "TableName": table,
        "Item": _item(record(i)),
        "ConditionExpression": "attribute_not_exists(#id)",
        "ExpressionAttributeNames": {"#id": "id"},
    }


async def _batch_write(
    client: Any, table: str, writes: list[dict[str, Any]], limit: asyncio.Semaphore
) -> None:
    """One BatchWriteItem, re-sending `UnprocessedItems` with backoff and jitter."""
    request: dict[str, Any] = {table: writes}
    attempt = 0
    while request:
        async with limit:
            answer = await client.batch_write_item(RequestItems=request)
        request = answer.get("UnprocessedItems") or {}
        if request:
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))


# -- uow -------------------------------------------------------------------------------


async def load_session(session: Any, store: Any, table: str) -> dict[str, Any]:
    """Load every item of `table` into `session`; return the objects by id.

    Uses `Session.scan` when it exists; otherwise reads with the store's
    client and merges each item into the map the way `Session.get` does.
    """
    scan = getattr(session, "scan", None)
    if scan is not None:
        objects = [obj async for obj in scan(Product)]
        return {obj.id: obj for obj in objects}
    out: dict[str, Any] = {}
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = await store.client.scan(**params)
        for item in page.get("Items", ()):
            obj = merge_loaded(session, item)
            out[obj.id] = obj
        if "LastEvaluatedKey" not in page:
            return out
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def _uow(backend: Backend, workload: Workload, client: str, concurrency: int) -> Row:
    overwrite = client == UOW_OVERWRITE
    if concurrency == CONCURRENCY:
        return await _uow_on(backend.store, backend, workload, client, overwrite=overwrite)
    from uow.testing import local_store

    async with local_store(backend.endpoint, max_concurrency=concurrency) as store:
        return await _uow_on(store, backend, workload, client, overwrite=overwrite)


async def _uow_on(
    store: Any, backend: Backend, workload: Workload, client: str, *, overwrite: bool
) -> Row:
    async with backend.table(workload.seeded) as table:
        session = store.session()
        loaded = await load_session(session, store, table)
        assert len(loaded) == len(workload.seeded)
        changes = workload.changes()
        with backend.window() as window:
            for kind, i in changes:
                if kind == "edit":
                    obj = loaded[key_id(i)]
                    obj.name += " (revised)"
                    obj.stock += 1
                    obj.note = None
                elif kind == "create":
                    session.add(Product(**record(i)), overwrite=overwrite)
                else:
                    session.delete(loaded[key_id(i)])
            result = await session.commit()
        session.close()
        assert result.written == workload.size, result.summary()
        await _verify(backend, table, workload)
    return window.row(client, workload.size)


# -- aioboto3 ----------------------------------------------------------------------------


async def _aioboto3(
    backend: Backend, workload: Workload, client_name: str, concurrency: int
) -> Row:
    tuned = client_name in (TUNED, TUNED_BATCHED)
    client = backend.tuned if tuned else backend.plain
    async with backend.table(workload.seeded) as table:
        loaded = {key_id(i): record(i) for i in workload.seeded}
        changes = workload.changes()
        run: Callable[[], Awaitable[None]]
        if client_name == SEQUENTIAL:
            run = lambda: _sequential(client, table, loaded, changes)  # noqa: E731 - a thunk
        elif client_name == STRUCTNOSQL:
            run = lambda: _structnosql(client, table, loaded, changes)  # noqa: E731 - a thunk
        else:
            create_only = client_name == TUNED
            run = lambda: _tuned(  # noqa: E731 - a thunk
                client, table, loaded, changes, create_only=create_only, concurrency=concurrency
            )
        with backend.window() as window:
            await run()
        await _verify(backend, table, workload)
    return window.row(client_name, workload.size)


async def _sequential(
    client: Any, table: str, loaded: dict[str, dict[str, Any]], changes: list[tuple[str, int]]
) -> None:
    """One awaited call per change, with the same conditions as `uow add()`."""
    for kind, i in changes:
        if kind == "edit":
            sets = edit_sets(loaded[key_id(i)])
            await client.update_item(**_update(table, i, sets, EDIT_REMOVES, conditional=True))
        elif kind == "create":
            await client.put_item(**_create(table, i))
        else:
            await client.delete_item(TableName=table, Key=_key(i))


async def _tuned(
    client: Any,
    table: str,
    loaded: dict[str, dict[str, Any]],
    changes: list[tuple[str, int]],
    *,
    create_only: bool,
    concurrency: int = CONCURRENCY,
) -> None:
    """Everything concurrent under a semaphore; deletes (and, if allowed, puts) batched by 25."""
    limit = asyncio.Semaphore(concurrency)

    async def send(method: Any, params: dict[str, Any]) -> None:
        async with limit:
            await method(**params)

    calls: list[Awaitable[None]] = []
    writes: list[dict[str, Any]] = []
    for kind, i in changes:
        if kind == "edit":
            sets = edit_sets(loaded[key_id(i)])
            params = _update(table, i, sets, EDIT_REMOVES, conditional=True)
            calls.append(send(client.update_item, params))
        elif kind == "create":
            if create_only:
                calls.append(send(client.put_item, _create(table, i)))
            else:
                writes.append({"PutRequest": {"Item": _item(record(i))}})
        else:
            writes.append({"DeleteRequest": {"Key": _key(i)}})
    calls.extend(_batch_write(client, table, batch, limit) for batch in chunks(writes, 25))
    await asyncio.gather(*calls)


async def _structnosql(
    client: Any, table: str, loaded: dict[str, dict[str, Any]], changes: list[tuple[str, int]]
) -> None:
    """StructNoSQL's way: sequential, an UpdateItem for the sets and another for the removes."""
    for kind, i in changes:
        if kind == "edit":
            sets = edit_sets(loaded[key_id(i)])
            await client.update_item(**_update(table, i, sets, (), conditional=False))
            await client.update_item(**_update(table, i, {}, EDIT_REMOVES, conditional=False))
        elif kind == "create":
            await client.put_item(TableName=table, Item=_item(record(i)))
        else:
            await client.delete_item(TableName=table, Key=_key(i))


# -- boto3 batch_writer --------------------------------------------------------------------


async def _batch_writer(
    backend: Backend, workload: Workload, client_name: str, concurrency: int
) -> Row:
    async with backend.table(workload.seeded) as table_name:
        table = backend.boto3_table()
        loaded = {key_id(i): record(i) for i in workload.seeded}
        changes = workload.changes()

        def run() -> None:
            with table.batch_writer() as writer:
                for kind, i in changes:
                    if kind == "edit":
                        writer.put_item(Item=edited(loaded[key_id(i)]))
                    elif kind == "create":
                        writer.put_item(Item=record(i))
                    else:
                        writer.delete_item(Key={"id": key_id(i)})

        with backend.window() as window:
            await asyncio.to_thread(run)
        await _verify(backend, table_name, workload)
    return window.row(client_name, workload.size)


# -- PynamoDB ----------------------------------------------------------------------------------


async def _pynamodb(
    backend: Backend, workload: Workload, client_name: str, concurrency: int
) -> Row:
    async with backend.table(workload.seeded) as table:
        model = backend.pynamodb_model()
        loaded = {key_id(i): model(**pynamodb_values(record(i))) for i in workload.seeded}
        changes = workload.changes()

        def run() -> None:
            with model.batch_write() as batch:
                for kind, i in changes:
                    if kind == "edit":
                        obj = loaded[key_id(i)]
                        obj.name += " (revised)"
                        obj.stock += 1
                        obj.note = None
                        batch.save(obj)
                    elif kind == "create":
                        batch.save(model(**pynamodb_values(record(i))))
                    else:
                        batch.delete(loaded[key_id(i)])

        with backend.window() as window:
            await asyncio.to_thread(run)
        await _verify(backend, table, workload)
    return window.row(client_name, workload.size)


# -- checks and dispatch -------------------------------------------------------------------------


async def _verify(backend: Backend, table: str, workload: Workload) -> None:
    """Spot-check that the commit landed: first and last edit, create and delete."""
    changes = workload.changes()
    picks: dict[str, list[int]] = {}
    for kind, i in changes:
        picks.setdefault(kind, []).append(i)
    for kind, indexes in picks.items():
        for i in {indexes[0], indexes[-1]}:
            answer = await backend.admin.get_item(TableName=table, Key=_key(i), ConsistentRead=True)
            item = answer.get("Item")
            if kind == "delete":
                assert item is None, f"{table}: {key_id(i)} was not deleted"
            elif kind == "create":
                assert item is not None, f"{table}: {key_id(i)} was not created"
            else:
                assert item is not None, f"{table}: {key_id(i)} vanished"
                assert "note" not in item, f"{table}: {key_id(i)} not edited"
                assert item["name"]["S"].endswith("(revised)"), f"{table}: {key_id(i)} not edited"


# Each runner takes the backend, the workload, the client's name and the number of
# requests it may have in flight (only uow and the hand-tuned code use the last).
_RUNNERS: dict[str, Callable[[Backend, Workload, str, int], Awaitable[Row]]] = {
    UOW_ADD: _uow,
    UOW_OVERWRITE: _uow,
    SEQUENTIAL: _aioboto3,
    TUNED: _aioboto3,
    TUNED_BATCHED: _aioboto3,
    STRUCTNOSQL: _aioboto3,
    BATCH_WRITER: _batch_writer,
    PYNAMODB: _pynamodb,
}


async def run_client(
    backend: Backend,
    workload: Workload,
    client: str,
    *,
    cap: int,
    repeats: int = REPEATS,
    concurrency: int = CONCURRENCY,
) -> Row:
    """Run one client on `workload`; sequential clients run a same-mix sample of at most `cap`.

    `concurrency` bounds the requests in flight of uow (`max_concurrency`) and of
    the hand-tuned code (its semaphore).
    """
    if client == PYNAMODB:
        try:
            import pynamodb  # noqa: F401 - only checks that the optional baseline is installed
        except ImportError:
            return Row(client, 0, 0.0, 0, {}, 0.0, None, note=_MISSING)
    note = ""
    if client in SEQUENTIAL_CLIENTS and workload.size > cap:
        workload = workload.scaled(cap / workload.size)
        note = f"sample of {workload.size:,} (same mix; sequential time is linear in requests)"
    runner = _RUNNERS[client]
    row = await best_of(lambda: runner(backend, workload, client, concurrency), repeats)
    return attrs.evolve(row, note="; ".join(text for text in (row.note, note) if text))


def latency_bound(requests: int, latency: float, concurrency: int = CONCURRENCY) -> float:
    """The time `requests` need at `concurrency` in flight when each takes `latency`."""
    return math.ceil(requests / concurrency) * latency
