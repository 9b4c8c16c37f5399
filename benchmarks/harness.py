"""What every server benchmark shares: the backend, fresh tables, and the measured window.

A `Backend` is one server (moto or DynamoDB Local) behind one counting proxy
(`benchmarks.servers.ProxyProcess`). Each run gets a fresh table (seeded
directly on the server, not through the proxy), and measures one client inside
a `Window`: wall time, the client process's CPU (`time.process_time()`: every
thread of this process, so boto3 and PynamoDB in their worker threads count
too), the server process's CPU, and the requests that went through the proxy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any

import aioboto3
import attrs
from aiobotocore.config import AioConfig

from benchmarks.servers import ProxyProcess, ServerHandle, process_cpu
from benchmarks.workloads import CONCURRENCY, TABLE, chunks, table_params, wire_item
from uow.testing import TEST_CREDENTIALS, TEST_REGION

__all__ = ["Backend", "Row", "Window", "aioboto3_client", "best_of", "boto3_resource", "session"]

# A run whose window is shorter than this is repeated (up to `REPEATS` runs in all) and the
# fastest kept: on a shared machine one short window is mostly other processes' noise.
QUICK = 3.0
REPEATS = 3


def session() -> aioboto3.Session:
    """An aioboto3 session with the local servers' test credentials and region."""
    return aioboto3.Session(
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    )


def aioboto3_client(endpoint: str, *, tuned: bool) -> Any:
    """An aioboto3 DynamoDB client context: `tuned` turns validation off and sizes the pool.

    The untuned client is what `aioboto3.Session().client("dynamodb")` gives
    a user: botocore's parameter validation on and a pool of 10 connections.
    """
    config = (
        AioConfig(max_pool_connections=CONCURRENCY, parameter_validation=False) if tuned else None
    )
    return session().client("dynamodb", endpoint_url=endpoint, config=config)


def boto3_resource(endpoint: str) -> Any:
    """A boto3 DynamoDB resource as a user makes one (default configuration)."""
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    )


@attrs.define
class Row:
    """One client's figures for one workload at one latency."""

    client: str
    items: int
    seconds: float
    requests: int
    by_api: dict[str, int]
    client_cpu: float
    server_cpu: float | None
    proxy_cpu: float | None = None
    note: str = ""
    # The window of every run of this client on this workload (the row is the fastest).
    runs: tuple[float, ...] = ()

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "items": self.items,
            "seconds": round(self.seconds, 4),
            "items_per_s": round(self.items_per_s, 1),
            "requests": self.requests,
            "requests_by_api": dict(sorted(self.by_api.items())),
            "client_cpu_s": round(self.client_cpu, 4),
            "client_cpu_us_per_item": round(self.client_cpu / max(self.items, 1) * 1e6, 1),
            "server_cpu_s": None if self.server_cpu is None else round(self.server_cpu, 3),
            "proxy_cpu_s": None if self.proxy_cpu is None else round(self.proxy_cpu, 3),
            "runs_s": [round(seconds, 4) for seconds in self.runs or (self.seconds,)],
            "note": self.note,
        }


async def best_of(run: Callable[[], Awaitable[Row]], repeats: int = REPEATS) -> Row:
    """Run `run`; while its windows stay under `QUICK` seconds, again, up to `repeats`.

    The fastest run is kept, with "best of N" in its note.
    """
    best = await run()
    times = [best.seconds]
    while best.seconds < QUICK and len(times) < repeats and best.items:
        again = await run()
        times.append(again.seconds)
        if again.seconds < best.seconds:
            best = again
    note = best.note
    if len(times) > 1:
        note = "; ".join(t for t in (best.note, f"best of {len(times)}") if t)
    return attrs.evolve(best, note=note, runs=tuple(times))


class Window:
    """The measured part of a run: `with backend.window() as w: ...` then `w.row(...)`."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.seconds = 0.0
        self.client_cpu = 0.0
        self.server_cpu: float | None = None
        self.proxy_cpu: float | None = None
        self.by_api: dict[str, int] = {}

    def __enter__(self) -> Window:
        backend = self._backend
        self._stats = backend.proxy.stats()
        self._server = backend.server.cpu()
        self._proxy = process_cpu(backend.proxy.pid)
        self._cpu = time.process_time()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.seconds = time.perf_counter() - self._started
        self.client_cpu = time.process_time() - self._cpu
        backend = self._backend
        server = backend.server.cpu()
        if server is not None and self._server is not None:
            self.server_cpu = server - self._server
        proxy = process_cpu(backend.proxy.pid)
        if proxy is not None and self._proxy is not None:
            self.proxy_cpu = proxy - self._proxy
        stats = backend.proxy.stats()
        self.by_api = {
            name.removeprefix("api:"): count - self._stats.get(name, 0)
            for name, count in stats.items()
            if name.startswith("api:") and count != self._stats.get(name, 0)
        }

    def row(self, client: str, items: int, note: str = "") -> Row:
        return Row(
            client=client,
            items=items,
            seconds=self.seconds,
            requests=sum(self.by_api.values()),
            by_api=self.by_api,
            client_cpu=self.client_cpu,
            server_cpu=self.server_cpu,
            proxy_cpu=self.proxy_cpu,
            note=note,
        )


class Backend:
    """One server behind the counting proxy, and the clients every run shares.

    Each client library gets one long-lived client, opened before any
    measurement and reused by every run (as an application would): `admin`
    (direct to the server, for setup), `tuned` and `plain` aioboto3 clients,
    the `uow` `store`, a boto3 resource and a PynamoDB model, all on the proxy.
    Every run uses the same table name, created fresh and dropped afterwards.
    """

    def __init__(self, server: ServerHandle, proxy: ProxyProcess) -> None:
        self.server = server
        self.proxy = proxy
        self.name = server.name
        self.admin: Any = None
        self.tuned: Any = None
        self.plain: Any = None
        self.store: Any = None
        self._stack = AsyncExitStack()
        self._boto3: Any = None
        self._pynamodb: Any = None

    async def __aenter__(self) -> Backend:
        from uow.testing import local_store

        stack = self._stack
        self.admin = await stack.enter_async_context(
            aioboto3_client(self.server.endpoint, tuned=True)
        )
        self.tuned = await stack.enter_async_context(aioboto3_client(self.endpoint, tuned=True))
        self.plain = await stack.enter_async_context(aioboto3_client(self.endpoint, tuned=False))
        self.store = await stack.enter_async_context(
            local_store(self.endpoint, max_concurrency=CONCURRENCY)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    @property
    def endpoint(self) -> str:
        """Where the clients under test send their requests: the proxy."""
        return self.proxy.endpoint

    def boto3_table(self) -> Any:
        """The benchmark table through one boto3 resource (made on first use)."""
        if self._boto3 is None:
            self._boto3 = boto3_resource(self.endpoint)
        return self._boto3.Table(TABLE)

    @property
    def boto3(self) -> Any:
        self.boto3_table()
        return self._boto3

    def pynamodb_model(self) -> Any:
        """The PynamoDB model of the benchmark table (made on first use)."""
        if self._pynamodb is None:
            from benchmarks.workloads import pynamodb_model

            self._pynamodb = pynamodb_model(TABLE, self.endpoint)
        return self._pynamodb

    def window(self) -> Window:
        return Window(self)

    @asynccontextmanager
    async def table(self, seeded: range = range(0)) -> AsyncIterator[str]:
        """A fresh table `TABLE` holding `wire_item(i)` for `i` in `seeded`.

        The table is seeded directly on the server (not through the proxy) and
        dropped afterwards.
        """
        admin = self.admin
        await admin.create_table(**table_params(TABLE))
        for _ in range(600):  # local servers create tables at once; wait a little if not
            described = await admin.describe_table(TableName=TABLE)
            if described["Table"]["TableStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        try:
            await self.seed(seeded)
            yield TABLE
        finally:
            await admin.delete_table(TableName=TABLE)

    async def seed(self, indexes: range) -> None:
        """Write `wire_item(i)` for `i` in `indexes` directly on the server."""
        limit = asyncio.Semaphore(8)

        async def write(batch: list[dict[str, Any]]) -> None:
            request: dict[str, Any] = {TABLE: batch}
            async with limit:
                while request:
                    answer = await self.admin.batch_write_item(RequestItems=request)
                    request = answer.get("UnprocessedItems") or {}

        writes = [{"PutRequest": {"Item": wire_item(i)}} for i in indexes]
        await asyncio.gather(*(write(batch) for batch in chunks(writes, 25)))
