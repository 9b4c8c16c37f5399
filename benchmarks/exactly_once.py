"""What exactly-once costs: an `ADD` as uow sends it, against the plain `UpdateItem`.

    python -m benchmarks.exactly_once [--adds N]

An `ADD` without a version condition is not idempotent: `uow` sends it in a
one-action `TransactWriteItems` whose `ClientRequestToken` is the change's own,
so that a re-send after a lost answer or a cancelled commit is dropped by
DynamoDB (DESIGN.md §11). The baseline is what hand-written code sends: one
`UpdateItem ... ADD`, which a re-send applies twice. Both write the same `N`
counters (one `ADD` each, `CONCURRENCY` in flight) on DynamoDB Local (moto
when it is absent: moto reports capacity too, but ignores the token), and the
table reports, per `ADD`: requests, write capacity units DynamoDB reported
(`ReturnConsumedCapacity=TOTAL`; transactional writes are billed double),
client CPU (`time.process_time()`, this process only) and wall time.

A create or a versioned write pays only its marker: one attribute
(`_uow_w0`..`_uow_w31`, 19 to 20 bytes) stored in the item, in the same request.

`cancellations()` runs the experiment of issue 13: 200 loaded records edited and one
`ADD`, committed through a proxy adding 20 ms per request (8 in flight) under
`asyncio.timeout(t)`, then committed again; it reports what each cancellation left
(confirmed, in doubt, not sent), how the next commit settled it, and the counter.
`commit()` does not wait for answers in flight when cancelled, so "in doubt" is
at most the requests on the wire: this measures what that choice costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

import attrs

import uow
from benchmarks.harness import aioboto3_client
from benchmarks.servers import MotoProcess, ServerHandle, dynamodb_local
from benchmarks.workloads import CONCURRENCY
from uow.testing import FaultProxy, Faults, local_store

__all__ = ["measure", "table"]

_TABLE = "bench_counters"


@uow.model(table=_TABLE, pk="name")
@attrs.define
class Counter:
    """An unversioned counter."""

    name: str
    n: int = 0


async def _seed(endpoint: str, prefix: str, count: int) -> None:
    async with local_store(endpoint, table_prefix=prefix) as store:
        await store.create_tables(Counter)
        for start in range(0, count, 500):
            async with store.session() as session:
                names = range(start, min(count, start + 500))
                session.add_all([Counter(f"c{i}") for i in names], overwrite=True)


async def _uow(endpoint: str, prefix: str, count: int) -> dict[str, Any]:
    async with local_store(
        endpoint, table_prefix=prefix, max_concurrency=CONCURRENCY, consumed_capacity=True
    ) as store:
        session = store.session()
        for i in range(count):
            session.update(Counter, f"c{i}", add={"n": 1})
        cpu, wall = time.process_time(), time.perf_counter()
        result = await session.commit()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        session.close()
    return {
        "client": "uow (TransactWriteItems + token)",
        "requests": dict(result.requests),
        "wcu": result.consumed_capacity,
        "cpu": cpu,
        "wall": wall,
    }


async def _plain(endpoint: str, prefix: str, count: int) -> dict[str, Any]:
    capacity = 0.0
    requests = 0
    async with aioboto3_client(endpoint, tuned=True) as client:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def add(i: int) -> None:
            nonlocal capacity, requests
            async with limit:
                answer = await client.update_item(
                    TableName=prefix + _TABLE,
                    Key={"name": {"S": f"c{i}"}},
                    UpdateExpression="ADD #n :one",
                    ConditionExpression="attribute_exists(#k)",
                    ExpressionAttributeNames={"#n": "n", "#k": "name"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnConsumedCapacity="TOTAL",
                )
            requests += 1
            capacity += float(answer.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(add(i) for i in range(count)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "client": "hand-written UpdateItem ADD",
        "requests": {"UpdateItem": requests},
        "wcu": capacity,
        "cpu": cpu,
        "wall": wall,
    }


async def _measure(endpoint: str, count: int) -> list[dict[str, Any]]:
    rows = []
    for run in (_plain, _uow, _plain, _uow):  # alternating: the second pair is kept
        prefix = f"eo{uuid.uuid4().hex[:6]}_"
        await _seed(endpoint, prefix, count)
        rows.append(await run(endpoint, prefix, count))
    return rows[2:]


def measure(server: ServerHandle, count: int) -> dict[str, Any]:
    """Both clients on `server`, `count` ADDs each; per-ADD figures and the ratios."""
    rows = asyncio.run(_measure(server.endpoint, count))
    for row in rows:
        row["per_add"] = {
            "requests": sum(row["requests"].values()) / count,
            "wcu": None if row["wcu"] is None else row["wcu"] / count,
            "cpu_us": row["cpu"] / count * 1e6,
            "wall_ms": row["wall"] / count * 1e3,
        }
    plain, ours = rows
    ratios = {
        key: ours["per_add"][key] / plain["per_add"][key]
        for key in ("requests", "wcu", "cpu_us")
        if ours["per_add"][key] and plain["per_add"][key]
    }
    return {"server": server.name, "adds": count, "rows": rows, "ratios": ratios}


async def _cancelled_rounds(endpoint: str) -> list[dict[str, Any]]:
    prefix = f"eo{uuid.uuid4().hex[:6]}_"
    await _seed(endpoint, prefix, 201)
    rows = []
    with FaultProxy(endpoint, Faults(latency=0.02)) as proxy:
        async with local_store(proxy.endpoint, table_prefix=prefix, max_concurrency=8) as store:
            for timeout in (0.01, 0.05, 0.1, 0.2):
                session = store.session()
                loaded = await session.get_many(Counter, [f"c{i}" for i in range(200)])
                for counter in loaded:
                    assert counter is not None
                    counter.n += 1
                session.update(Counter, "c200", add={"n": 1})
                row: dict[str, Any] = {"timeout_ms": round(timeout * 1000)}
                try:
                    async with asyncio.timeout(timeout):
                        await session.commit()
                    row.update(confirmed=201, in_doubt=0, not_sent=0)
                except TimeoutError:
                    records = list(session._records.values())
                    doubt = sum(1 for record in records if record.doubt is not None)
                    pending = len(session.pending)
                    row.update(confirmed=201 - pending, in_doubt=doubt, not_sent=pending - doubt)
                result = await session.commit() if session.pending else None
                row["settled"] = dict(result.resolved) if result else {}
                rows.append(row)
                session.close()
        async with local_store(endpoint, table_prefix=prefix) as store, store.session() as check:
            counter = await check.get(Counter, "c200")
    assert counter is not None
    rows.append({"counter_after_4_rounds": counter.n})
    return rows


def cancellations(server: ServerHandle) -> list[dict[str, Any]]:
    """The timeout sweep of issue 13 on `server`; one row per timeout, then the counter."""
    return asyncio.run(_cancelled_rounds(server.endpoint))


def cancellation_table(rows: list[dict[str, Any]]) -> list[str]:
    """The sweep as text lines."""
    lines = [
        "| timeout | confirmed | in doubt | not sent | settled by the next commit |",
        "|---|---|---|---|---|",
    ]
    for row in rows[:-1]:
        settled = ", ".join(f"{way}={n}" for way, n in sorted(row["settled"].items())) or "-"
        lines.append(
            f"| {row['timeout_ms']} ms | {row['confirmed']} | {row['in_doubt']} | "
            f"{row['not_sent']} | {settled} |"
        )
    lines.append(f"the counter, one ADD per round: {rows[-1]['counter_after_4_rounds']} (4 asked)")
    return lines


def table(figures: dict[str, Any]) -> list[str]:
    """The figures as text lines."""
    lines = [
        f"| per ADD ({figures['adds']:,} counters, {CONCURRENCY} in flight, "
        f"{figures['server']}) | requests | WCU | client CPU µs | wall ms |",
        "|---|---|---|---|---|",
    ]
    for row in figures["rows"]:
        per = row["per_add"]
        wcu = "n/a" if per["wcu"] is None else f"{per['wcu']:.2f}"
        lines.append(
            f"| {row['client']} | {per['requests']:.2f} | {wcu} | {per['cpu_us']:,.0f} | "
            f"{per['wall_ms']:.2f} |"
        )
    ratios = ", ".join(f"{key} x{value:.2f}" for key, value in figures["ratios"].items())
    lines.append(f"uow / plain: {ratios}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Run on DynamoDB Local (or moto) and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    parser.add_argument("--adds", type=int, default=max(50, int(1000 * scale)))
    args = parser.parse_args(argv)
    server = dynamodb_local() or MotoProcess()
    with server:
        print("\n".join(table(measure(server, args.adds))))
        print("\n".join(cancellation_table(cancellations(server))))


if __name__ == "__main__":
    main()
