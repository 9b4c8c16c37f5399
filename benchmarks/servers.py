"""The servers a benchmark run talks to, each in a process of its own.

* `MotoProcess`: `python -m moto.server` on 127.0.0.1, so that the server's CPU
  is not the client's (moto's `ThreadedMotoServer` would run inside the
  benchmark process and pollute `time.process_time()`), and so that the server's
  own CPU can be read from `/proc`.
* `ProxyProcess`: a `uow.testing.FaultProxy` in a child process, adding the
  per-request latency a real region would, and counting the requests that go
  through it per API (every client is counted the same way, whatever library
  it uses). Run as `python -m benchmarks.servers proxy UPSTREAM`; it reads
  commands on stdin (`latency SECONDS`, `stats`, `quit`).
* `dynamodb_local()`: Amazon DynamoDB Local through `uow.testing.DynamoDBLocal`
  when that class exists and can start; `None` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["MotoProcess", "ProxyProcess", "ServerHandle", "dynamodb_local", "process_cpu"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads), from `/proc`.

    `None` when it cannot be read (not Linux, or no such process).
    """
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class ServerHandle:
    """What the benchmarks need of a server: its endpoint, its CPU, a name, and stop()."""

    name = "server"
    endpoint = ""

    def cpu(self) -> float | None:
        """CPU seconds the server process used so far, or `None` if it cannot be read."""
        return None

    def stop(self) -> None:
        """Stop the server (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class MotoProcess(ServerHandle):
    """`python -m moto.server` bound to 127.0.0.1 on a free port, in a child process."""

    name = "moto"

    def __init__(self) -> None:
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as answer:
                    answer.read()
                break
            except (urllib.error.URLError, OSError):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def cpu(self) -> float | None:
        return process_cpu(self.pid)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _Local(ServerHandle):
    name = "dynamodb-local"

    def __init__(self, server: Any, endpoint: str) -> None:
        self._server = server
        self.endpoint = endpoint

    def cpu(self) -> float | None:
        server = self._server
        pid = getattr(server, "pid", None)
        if pid is None:
            process = getattr(server, "process", None) or getattr(server, "_process", None)
            pid = getattr(process, "pid", None)
        return process_cpu(pid if isinstance(pid, int) else None)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


def dynamodb_local() -> ServerHandle | None:
    """DynamoDB Local via `uow.testing.DynamoDBLocal`, or `None` when absent or unable to start."""
    import uow.testing

    factory = getattr(uow.testing, "DynamoDBLocal", None)
    if factory is None:
        return None
    server = factory()
    try:
        endpoint = server.start()
    except Exception as exc:  # any reason it cannot run here: report it and go on with moto
        print(f"DynamoDB Local is not available here ({exc}); skipping it", file=sys.stderr)
        with contextlib.suppress(Exception):
            server.stop()
        return None
    return _Local(server, str(endpoint or server.endpoint))


class ProxyProcess:
    """A counting `FaultProxy` in a child process; `latency` and `stats()` talk to it."""

    def __init__(self, upstream: str) -> None:
        self._process: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-u", "-m", "benchmarks.servers", "proxy", upstream],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint = self._read()
        self._latency = 0.0

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        return process.stdin, process.stdout

    def _read(self) -> str:
        line = self._pipes()[1].readline()
        if not line:
            raise RuntimeError("the benchmark proxy stopped")
        return line.strip()

    def _ask(self, command: str) -> str:
        stdin, _ = self._pipes()
        stdin.write(command + "\n")
        stdin.flush()
        return self._read()

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._ask(f"latency {seconds}")
        self._latency = seconds

    def stats(self) -> dict[str, int]:
        """Requests seen so far: `requests` in all and `api:NAME` per DynamoDB API."""
        counts: dict[str, int] = json.loads(self._ask("stats"))
        return counts

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.write("quit\n")
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _serve_proxy(upstream: str) -> None:
    """The child side of `ProxyProcess`: serve, and answer commands on stdin."""
    from uow.testing import FaultProxy, Faults

    class CountingProxy(FaultProxy):
        async def _handle(self, request: Any) -> Any:
            api = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
            self.stats[f"api:{api}"] += 1
            return await super()._handle(request)

    proxy = CountingProxy(upstream)
    print(proxy.start(), flush=True)
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "latency":
                proxy.faults = Faults(latency=float(argument))
                print("ok", flush=True)
            elif command == "stats":
                for _ in range(10):  # the proxy thread may be counting right now
                    with contextlib.suppress(RuntimeError):
                        print(json.dumps(dict(proxy.stats)), flush=True)
                        break
            elif command == "quit":
                break
    finally:
        proxy.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["proxy"] and len(sys.argv) == 3:
        _serve_proxy(sys.argv[2])
    else:
        sys.exit("usage: python -m benchmarks.servers proxy UPSTREAM_URL")
