"""Client CPU per request, per data-plane API: the lean transport against the other clients.

    python -m benchmarks.wire [--requests N] [--repeat R] [--backend dynamodb-local|moto]

Four clients send the same requests to the same server, 16 in flight, and the
client process's CPU (`time.process_time()`) is divided by the requests sent:

* `uow lean`: `uow._execute.call` on `Store(transport="lean")`, as a commit
  or a read sends it (retry wrapper included).
* `uow aioboto3`: the same call on `Store(transport="aioboto3")` (botocore,
  parameter validation off, uow's CRC32 hook).
* `aioboto3 hand-written`: `await client.put_item(**params)` on an aioboto3
  client as a user makes one (default configuration, a pool of 16).
* `aiodynamo`: aiodynamo's own calls (`put_item`, `batch_write`, ...) over
  aiohttp; it takes Python values, so its encoding is inside its figure.

uow's and aioboto3's parameters are built before the window, in DynamoDB's
wire shape (uow holds every request in that shape when it sends it).

The APIs: `GetItem`, `PutItem` (1 KB items), `UpdateItem` (two SETs),
`BatchWriteItem` (25 puts), `BatchGetItem` (100 keys, strongly consistent)
and a `Query` page (50 items of 1 KB). Each figure is the best of `R` passes.
DynamoDB Local keeps connections alive, as DynamoDB does; moto closes them
after each answer, so on moto every request also pays a new connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from benchmarks.servers import MotoProcess, ServerHandle, dynamodb_local
from uow.testing import TEST_CREDENTIALS, TEST_REGION

__all__ = ["APIS", "CLIENTS", "main", "measure", "table"]

TABLE = "wire"
IN_FLIGHT = 16
PARTITION = 100  # items per partition key: a Query page of 50 stays in one
PAGE = 50
LEAN = "uow lean"
UOW_BOTO = "uow aioboto3"
HAND = "aioboto3 hand-written"
AIODYNAMO = "aiodynamo"
CLIENTS = (LEAN, UOW_BOTO, HAND, AIODYNAMO)
# API -> relative number of requests (a batch does more work per request).
APIS = {
    "GetItem": 1.0,
    "PutItem": 1.0,
    "UpdateItem": 1.0,
    "BatchWriteItem": 0.25,
    "BatchGetItem": 0.25,
    "Query": 0.5,
}
PAYLOAD = "x" * 960  # with the keys and the number: about 1 KB per item


def _pk(i: int) -> str:
    return f"p{i // PARTITION:04d}"


def _sk(i: int) -> str:
    return f"s{i % PARTITION:04d}"


def _values(i: int) -> dict[str, Any]:
    return {"pk": _pk(i), "sk": _sk(i), "payload": PAYLOAD, "n": i}


def _wire(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "pk": {"S": values["pk"]},
        "sk": {"S": values["sk"]},
        "payload": {"S": values["payload"]},
        "n": {"N": str(values["n"])},
    }


def _wire_key(i: int) -> dict[str, Any]:
    return {"pk": {"S": _pk(i)}, "sk": {"S": _sk(i)}}


def wire_params(api: str, i: int, seeded: int) -> dict[str, Any]:
    """Request `i` of `api` in DynamoDB's wire shape (reads hit the `seeded` items)."""
    if api == "GetItem":
        return {"TableName": TABLE, "Key": _wire_key(i % seeded), "ConsistentRead": True}
    if api == "PutItem":
        return {"TableName": TABLE, "Item": _wire(_values(seeded + i))}
    if api == "UpdateItem":
        return {
            "TableName": TABLE,
            "Key": _wire_key(i % seeded),
            "UpdateExpression": "SET #p = :p, #n = :n",
            "ExpressionAttributeNames": {"#p": "payload", "#n": "n"},
            "ExpressionAttributeValues": {":p": {"S": PAYLOAD}, ":n": {"N": str(i)}},
        }
    if api == "BatchWriteItem":
        return {
            "RequestItems": {
                TABLE: [
                    {"PutRequest": {"Item": _wire(_values(seeded + i * 25 + k))}} for k in range(25)
                ]
            }
        }
    if api == "BatchGetItem":
        start = (i * 100) % max(1, seeded - 100)
        return {
            "RequestItems": {
                TABLE: {
                    "Keys": [_wire_key(start + k) for k in range(100)],
                    "ConsistentRead": True,
                }
            }
        }
    if api == "Query":
        return {
            "TableName": TABLE,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": _pk((i * PARTITION) % seeded)}},
            "Limit": PAGE,
            "ConsistentRead": True,
        }
    raise ValueError(api)


Send = Callable[[str, Any], Awaitable[Any]]
Prepare = Callable[[str, int], Any]
Sender = tuple[Prepare, Send]
"""How a client builds request `i` of an API (before the window), and sends it."""


async def _window(sender: Sender, api: str, first: int, n: int) -> float:
    """µs of client CPU per request for `n` requests of `api`, `IN_FLIGHT` at a time."""
    prepare, send = sender
    requests = [prepare(api, first + i) for i in range(n)]

    async def worker(start: int) -> None:
        for i in range(start, n, IN_FLIGHT):
            await send(api, requests[i])

    started = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(IN_FLIGHT)))
    return (time.process_time() - started) / n * 1e6


@contextlib.asynccontextmanager
async def _uow_sender(endpoint: str, transport: str, seeded: int) -> AsyncIterator[Sender]:
    from uow import Retry
    from uow._execute import call
    from uow.testing import local_store

    retry = Retry()
    async with local_store(endpoint, transport=transport, max_concurrency=IN_FLIGHT) as store:
        target = store.transport

        async def send(api: str, params: Any) -> Any:
            return await call(target, api, params, retry=retry, deadline=1e18)

        yield (lambda api, i: wire_params(api, i, seeded)), send


@contextlib.asynccontextmanager
async def _hand_sender(endpoint: str, seeded: int) -> AsyncIterator[Sender]:
    import aioboto3
    from aiobotocore.config import AioConfig

    session = aioboto3.Session(
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    )
    config = AioConfig(max_pool_connections=IN_FLIGHT)
    async with session.client("dynamodb", endpoint_url=endpoint, config=config) as client:
        methods: dict[str, Any] = {
            "GetItem": client.get_item,
            "PutItem": client.put_item,
            "UpdateItem": client.update_item,
            "BatchWriteItem": client.batch_write_item,
            "BatchGetItem": client.batch_get_item,
            "Query": client.query,
        }

        async def send(api: str, params: Any) -> Any:
            return await methods[api](**params)

        yield (lambda api, i: wire_params(api, i, seeded)), send


@contextlib.asynccontextmanager
async def _aiodynamo_sender(endpoint: str, seeded: int) -> AsyncIterator[Sender | None]:
    try:
        import aiohttp
        from aiodynamo.client import Client
        from aiodynamo.credentials import Key, StaticCredentials
        from aiodynamo.expressions import F, HashKey
        from aiodynamo.http.aiohttp import AIOHTTP
        from aiodynamo.models import BatchGetRequest, BatchWriteRequest
        from yarl import URL
    except ImportError:
        yield None
        return

    def prepare(api: str, i: int) -> Any:
        """Python values (aiodynamo encodes them itself, inside its figure)."""
        j = i % seeded
        if api in ("GetItem", "UpdateItem"):
            return {"pk": _pk(j), "sk": _sk(j)}, i
        if api == "PutItem":
            return _values(seeded + i)
        if api == "BatchWriteItem":
            return [_values(seeded + i * 25 + k) for k in range(25)]
        if api == "BatchGetItem":
            start = (i * 100) % max(1, seeded - 100)
            return [{"pk": _pk(start + k), "sk": _sk(start + k)} for k in range(100)]
        return _pk((i * PARTITION) % seeded)

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as http:
        client = Client(
            AIOHTTP(http),
            StaticCredentials(
                Key(
                    TEST_CREDENTIALS["aws_access_key_id"], TEST_CREDENTIALS["aws_secret_access_key"]
                )
            ),
            TEST_REGION,
            endpoint=URL(endpoint),
        )

        async def send(api: str, request: Any) -> Any:
            if api == "GetItem":
                return await client.get_item(TABLE, request[0], consistent_read=True)
            if api == "PutItem":
                return await client.put_item(TABLE, request)
            if api == "UpdateItem":
                key, n = request
                return await client.update_item(
                    TABLE, key, F("payload").set(PAYLOAD) & F("n").set(n)
                )
            if api == "BatchWriteItem":
                return await client.batch_write({TABLE: BatchWriteRequest(items_to_put=request)})
            if api == "BatchGetItem":
                return await client.batch_get(
                    {TABLE: BatchGetRequest(keys=request, consistent_read=True)}
                )
            if api == "Query":
                return await client.query_single_page(
                    TABLE, HashKey("pk", request), limit=PAGE, consistent_read=True
                )
            raise ValueError(api)

        yield prepare, send


async def _prepare(endpoint: str, seeded: int) -> None:
    """A fresh table holding `seeded` items of 1 KB."""
    from uow.testing import local_store

    async with local_store(endpoint) as store:
        client = store.client
        with contextlib.suppress(Exception):
            await client.delete_table(TableName=TABLE)
        await client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        writes = [{"PutRequest": {"Item": _wire(_values(i))}} for i in range(seeded)]
        for start in range(0, len(writes), 25):
            await store.transport.send(
                "BatchWriteItem", {"RequestItems": {TABLE: writes[start : start + 25]}}
            )


async def _measure(endpoint: str, requests: int, repeat: int) -> dict[str, dict[str, float | None]]:
    seeded = 1000
    await _prepare(endpoint, seeded)
    figures: dict[str, dict[str, float | None]] = {api: {} for api in APIS}
    senders: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Sender | None]]] = {
        LEAN: lambda: _uow_sender(endpoint, "lean", seeded),
        UOW_BOTO: lambda: _uow_sender(endpoint, "aioboto3", seeded),
        HAND: lambda: _hand_sender(endpoint, seeded),
        AIODYNAMO: lambda: _aiodynamo_sender(endpoint, seeded),
    }
    for round_ in range(repeat):
        # Alternate the order, so that no client always runs after the same neighbour.
        order = CLIENTS if round_ % 2 == 0 else tuple(reversed(CLIENTS))
        for client in order:
            async with senders[client]() as send:
                for api, weight in APIS.items():
                    if send is None:
                        figures[api].setdefault(client, None)
                        continue
                    n = max(IN_FLIGHT, round(requests * weight))
                    # Warm up (connections, lazy imports, the server's JIT), then measure.
                    await _window(send, api, n, IN_FLIGHT)
                    us = await _window(send, api, 0, n)
                    best = figures[api].get(client)
                    figures[api][client] = us if best is None else min(best, us)
    return figures


def measure(server: ServerHandle, requests: int, repeat: int) -> dict[str, Any]:
    """Every figure: µs of client CPU per request, per API and client, and the ratios."""
    figures = asyncio.run(_measure(server.endpoint, requests, repeat))
    rows = []
    for api, by_client in figures.items():
        lean, hand, dyn, boto = (by_client.get(c) for c in (LEAN, HAND, AIODYNAMO, UOW_BOTO))
        rows.append(
            {
                "api": api,
                "us": {c: None if v is None else round(v, 1) for c, v in by_client.items()},
                "lean_over_hand": None if not (lean and hand) else round(lean / hand, 3),
                "lean_over_aiodynamo": None if not (lean and dyn) else round(lean / dyn, 3),
                "uow_aioboto3_over_hand": None if not (boto and hand) else round(boto / hand, 3),
            }
        )
    return {
        "backend": server.name,
        "requests": requests,
        "repeat": repeat,
        "in_flight": IN_FLIGHT,
        "rows": rows,
    }


def table(result: dict[str, Any]) -> list[str]:
    """The figures as text lines."""
    head = f"{'API':16}" + "".join(f"{c:>24}" for c in CLIENTS)
    lines = [
        f"Client CPU µs per request on {result['backend']}, {result['in_flight']} in flight "
        f"(best of {result['repeat']})",
        head + f"{'lean/hand':>11}{'lean/aiodynamo':>16}{'uow-boto/hand':>15}",
    ]
    for row in result["rows"]:
        cells = "".join(f"{_us(row['us'].get(c)):>24}" for c in CLIENTS)
        ratios = "".join(
            f"{'' if row[key] is None else f'{row[key]:.2f}x':>{width}}"
            for key, width in (
                ("lean_over_hand", 11),
                ("lean_over_aiodynamo", 16),
                ("uow_aioboto3_over_hand", 15),
            )
        )
        lines.append(f"{row['api']:16}{cells}{ratios}")
    return lines


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def server_for(backend: str) -> ServerHandle | None:
    """DynamoDB Local (keeps connections alive, as DynamoDB does) or moto."""
    if backend == "dynamodb-local":
        return dynamodb_local()
    return MotoProcess()


def main(argv: list[str] | None = None) -> None:
    """Measure on one server and print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backend", default="dynamodb-local", choices=("dynamodb-local", "moto"))
    args = parser.parse_args(argv)
    server = server_for(args.backend)
    if server is None:
        parser.error(f"{args.backend} is not available here")
    with server:
        print("\n".join(table(measure(server, args.requests, args.repeat))))


if __name__ == "__main__":
    main()
