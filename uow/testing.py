"""Public test support: a local DynamoDB-compatible server on loopback, and stores on it.

Used by the pytest plugin (`uow_endpoint`, `uow_store`, `uow_session`), the
demo and the benchmarks; usable directly::

    from uow.testing import MotoServer, local_store

    with MotoServer() as server:
        async with local_store(server.endpoint) as store:
            ...

Requires the `testing` extra (`pip install "uow[testing]"`), which brings
`moto[server]`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import urllib.request
import zlib
from collections import Counter
from types import TracebackType
from typing import Any, Self

import attrs

from uow.store import Store

__all__ = [
    "TEST_CREDENTIALS",
    "TEST_REGION",
    "FaultProxy",
    "Faults",
    "MotoServer",
    "local_store",
    "reset_moto",
]

TEST_REGION = "us-east-1"
# Local servers accept any credentials; these only keep botocore from looking for real ones.
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class MotoServer:
    """moto's DynamoDB-compatible server in a thread, bound to 127.0.0.1 on a free port.

    moto keeps its state per process: `reset()` empties every table of every
    server in this process.
    """

    def __init__(self) -> None:
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> str:
        """Start the server; return its endpoint URL (`http://127.0.0.1:PORT`)."""
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO, whatever moto's `verbose` says.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def reset(self) -> None:
        """Drop every table and item the server holds."""
        reset_moto(self.endpoint)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def reset_moto(endpoint: str) -> None:
    """Ask a moto server to drop all its state (`POST /moto-api/reset`)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def local_store(endpoint: str, **options: Any) -> Store:
    """A `Store` on a local server, with test credentials and region.

    `options` are passed to `Store` (e.g. `table_prefix`, `max_concurrency`).
    """
    settings: dict[str, Any] = {"region_name": TEST_REGION, **TEST_CREDENTIALS, **options}
    return Store(endpoint, **settings)


_DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#"
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@attrs.frozen(kw_only=True)
class Faults:
    """What a `FaultProxy` injects; each rate is a probability per request (or item).

    Attributes:
        throttle: requests answered `ProvisionedThroughputExceededException` (HTTP 400)
            without reaching the server.
        server_error: requests answered `InternalServerError` (HTTP 500) without
            reaching the server.
        drop: requests whose connection is closed with no answer, before they
            reach the server.
        conflict: `TransactWriteItems` requests cancelled with a
            `TransactionConflict` reason on every action, without reaching the
            server.
        unprocessed: `BatchWriteItem` items held back and returned in
            `UnprocessedItems` (they are not written); a batch with every item
            held back is answered with a throttling error, as DynamoDB does.
        latency: seconds added before each request is forwarded.
        apis: restrict the faults (not the latency) to these API names
            (e.g. `{"BatchWriteItem"}`); `None` means every API.
    """

    throttle: float = 0.0
    server_error: float = 0.0
    drop: float = 0.0
    conflict: float = 0.0
    unprocessed: float = 0.0
    latency: float = 0.0
    apis: frozenset[str] | None = None


class FaultProxy:
    """A loopback HTTP proxy in front of a DynamoDB endpoint that injects faults.

    It produces what no local server does: throttling, 5xx answers, dropped
    connections and partial `UnprocessedItems`, reproducibly for a given
    `seed` and request order. Requests that pass go to `upstream` unchanged
    except for held-back batch items. `stats` counts what happened.

        with MotoServer() as server, FaultProxy(server.endpoint, Faults(throttle=0.3)) as proxy:
            async with local_store(proxy.endpoint) as store: ...

    Change `faults` at any time (e.g. `proxy.faults = Faults()` to heal).
    """

    def __init__(self, upstream: str, faults: Faults | None = None, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults or Faults()
        self.stats: Counter[str] = Counter()
        self.endpoint = ""
        self._random = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def start(self) -> str:
        """Start serving on 127.0.0.1 (free port); return the proxy's endpoint URL."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to the thread that called start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="uow-fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if failure:
            raise failure[0]
        return self.endpoint

    async def _serve(self, ready: threading.Event) -> None:
        from aiohttp import ClientSession, web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.endpoint = f"http://{host}:{port}"
        self._stopped = asyncio.Event()
        async with ClientSession(auto_decompress=False) as client:
            self._client = client
            ready.set()
            await self._stopped.wait()
        await runner.cleanup()

    def stop(self) -> None:
        """Stop the proxy (idempotent)."""
        loop, stopped, thread = self._loop, self._stopped, self._thread
        self._loop = self._stopped = self._thread = None
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            thread.join(timeout=30)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _error(self, status: int, code: str, message: str) -> Any:
        from aiohttp import web

        body = json.dumps({"__type": _DYNAMODB_ERROR + code, "message": message}).encode()
        return web.Response(
            status=status,
            body=body,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amz-crc32": str(zlib.crc32(body)),
            },
        )

    def _cancelled(self, codes: list[str]) -> Any:
        from aiohttp import web

        reasons = [
            {"Code": code, "Message": "injected"} if code != "None" else {"Code": "None"}
            for code in codes
        ]
        body = json.dumps(
            {
                "__type": _DYNAMODB_ERROR + "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons ({codes})",
                "CancellationReasons": reasons,
            }
        ).encode()
        return web.Response(
            status=400,
            body=body,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amz-crc32": str(zlib.crc32(body)),
            },
        )

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        api = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        faults = self.faults
        self.stats["requests"] += 1
        if faults.latency:
            await asyncio.sleep(faults.latency)
        faulty = faults.apis is None or api in faults.apis
        if faulty:
            roll = self._random.random()
            if roll < faults.drop:
                self.stats["dropped"] += 1
                request.transport.abort()
                return web.Response(status=500)
            roll -= faults.drop
            if roll < faults.throttle:
                self.stats["throttled"] += 1
                return self._error(
                    400, "ProvisionedThroughputExceededException", "injected throttling"
                )
            roll -= faults.throttle
            if roll < faults.server_error:
                self.stats["server_errors"] += 1
                return self._error(500, "InternalServerError", "injected server error")
            roll -= faults.server_error
            if api == "TransactWriteItems" and roll < faults.conflict:
                self.stats["conflicts"] += 1
                actions = len(json.loads(body).get("TransactItems", ()))
                return self._cancelled(["TransactionConflict"] * actions)
        held: dict[str, list[Any]] = {}
        if faulty and faults.unprocessed and api == "BatchWriteItem":
            payload = json.loads(body)
            kept: dict[str, list[Any]] = {}
            for table, writes in payload["RequestItems"].items():
                for write in writes:
                    target = held if self._random.random() < faults.unprocessed else kept
                    target.setdefault(table, []).append(write)
            if held and not kept:
                self.stats["throttled"] += 1
                return self._error(
                    400, "ProvisionedThroughputExceededException", "injected: no item processed"
                )
            self.stats["unprocessed_items"] += sum(len(w) for w in held.values())
            body = json.dumps({**payload, "RequestItems": kept}).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._client.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            answer = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type", "application/x-amz-json-1.0")
        self.stats["forwarded"] += 1
        if held and status == 200:
            result = json.loads(answer)
            unprocessed = result.get("UnprocessedItems") or {}
            for table, writes in held.items():
                unprocessed.setdefault(table, []).extend(writes)
            result["UnprocessedItems"] = unprocessed
            answer = json.dumps(result).encode()
        return web.Response(
            status=status,
            body=answer,
            headers={"Content-Type": content_type, "x-amz-crc32": str(zlib.crc32(answer))},
        )
