"""The lean transport's HTTP/1.1 client against a raw loopback server that writes exact bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from uow._http import BadResponse, ConnectError, Disconnected, Pool, ReadTimeout

pytestmark = pytest.mark.asyncio

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"

Script = Callable[[bytes], list[bytes | float | None]]
"""For a request (head and body as received), what to write: bytes, a pause (float),
or None to close the connection."""


class RawServer:
    """A loopback TCP server answering each request as `script` says; counts connections."""

    def __init__(self) -> None:
        self.script: Script = lambda request: [ok(b"{}")]
        self.connections = 0
        self.requests: list[bytes] = []
        self.endpoint = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for step in self.script(request):
                    if step is None:
                        writer.close()
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                        continue
                    writer.write(step)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    """A 200 answer with Content-Length and `extra` header lines."""
    lines = [b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest_asyncio.fixture
async def server() -> AsyncIterator[RawServer]:
    """A raw server, answering `{}` with Content-Length until told otherwise."""
    raw = RawServer()
    await raw.start()
    yield raw
    await raw.stop()


@pytest_asyncio.fixture
async def pool(server: RawServer) -> AsyncIterator[Pool]:
    """A pool of 4 connections to the raw server, 0.5 s read timeout."""
    made = Pool(server.endpoint, size=4, connect_timeout=2, read_timeout=0.5)
    yield made
    await made.close()


class TestAnswers:
    """Every way HTTP/1.1 delimits an answer gives the same status, headers and body."""

    @pytest.mark.parametrize(
        ("steps", "body"),
        [
            pytest.param([ok(b'{"a":1}')], b'{"a":1}', id="content-length"),
            pytest.param(
                [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b'4\r\n{"a"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n'
                ],
                b'{"a":1}',
                id="chunked",
            ),
            pytest.param(
                [b'HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n{"a":1}', None],
                b'{"a":1}',
                id="until-close",
            ),
            pytest.param(
                [bytes([byte]) for byte in ok(b'{"a":1}', b"X-Amz-Crc32: 7")],
                b'{"a":1}',
                id="byte-by-byte",
            ),
            pytest.param([ok(b"")[:10], 0.05, ok(b"")[10:]], b"", id="split-head-empty-body"),
        ],
    )
    async def test_delimiting(
        self, server: RawServer, pool: Pool, steps: list[Any], body: bytes
    ) -> None:
        """Content-Length, chunked, close-delimited and trickled answers all parse."""
        server.script = lambda request: steps
        response = await pool.post(HEAD, b"{}")
        assert (response.status, response.body) == (200, body)

    async def test_headers_are_lowercase_and_repeated_ones_joined(
        self, server: RawServer, pool: Pool
    ) -> None:
        """Header names come back in lowercase; a repeated header is joined with commas."""
        server.script = lambda request: [ok(b"{}", b"X-Amzn-RequestId: R1", b"Via: a", b"Via: b")]
        response = await pool.post(HEAD, b"{}")
        assert response.headers["x-amzn-requestid"] == "R1"
        assert response.headers["via"] == "a, b"

    async def test_the_request_is_sent_as_given(self, server: RawServer, pool: Pool) -> None:
        """The head and body reach the server byte for byte."""
        await pool.post(HEAD, b"{}")
        assert server.requests == [HEAD + b"{}"]


class TestConnections:
    """Connections are kept alive, bounded, and never reused after an incomplete answer."""

    async def test_keep_alive_reuses_one_connection(self, server: RawServer, pool: Pool) -> None:
        """Sequential requests share one connection."""
        for _ in range(5):
            await pool.post(HEAD, b"{}")
        assert server.connections == 1

    async def test_connection_close_opens_a_new_one(self, server: RawServer, pool: Pool) -> None:
        """`Connection: close` (moto's way) means a new connection per request."""
        server.script = lambda request: [ok(b"{}", b"Connection: close"), None]
        for _ in range(3):
            assert (await pool.post(HEAD, b"{}")).status == 200
        assert server.connections == 3

    async def test_at_most_size_connections(self, server: RawServer, pool: Pool) -> None:
        """Twenty concurrent requests on a pool of four use four connections."""
        server.script = lambda request: [0.02, ok(b"{}")]
        await asyncio.gather(*(pool.post(HEAD, b"{}") for _ in range(20)))
        assert server.connections == 4

    async def test_a_connection_closed_by_the_server_while_idle_is_not_reused(
        self, server: RawServer, pool: Pool
    ) -> None:
        """After the server closes an idle connection, the next request opens another."""
        server.script = lambda request: [ok(b"{}"), 0.01, None]
        await pool.post(HEAD, b"{}")
        await asyncio.sleep(0.1)
        assert (await pool.post(HEAD, b"{}")).status == 200
        assert server.connections == 2


class TestFailures:
    """No complete answer: a typed error, and the connection is dropped."""

    async def test_closed_mid_body_is_disconnected(self, server: RawServer, pool: Pool) -> None:
        """A body shorter than its Content-Length, then a close, raises Disconnected."""
        server.script = lambda request: [ok(b'{"a":1}')[:-3], None]
        with pytest.raises(Disconnected):
            await pool.post(HEAD, b"{}")
        server.script = lambda request: [ok(b"{}")]
        assert (await pool.post(HEAD, b"{}")).status == 200
        assert server.connections == 2

    async def test_no_answer_in_time_is_a_read_timeout(self, server: RawServer, pool: Pool) -> None:
        """Silence longer than the read timeout raises ReadTimeout."""
        server.script = lambda request: [2.0, ok(b"{}")]
        with pytest.raises(ReadTimeout):
            await pool.post(HEAD, b"{}")

    async def test_a_trickle_keeps_the_read_timeout_at_bay(
        self, server: RawServer, pool: Pool
    ) -> None:
        """The read timeout is per read, as botocore's: a slow but steady answer completes."""
        answer = ok(b"{}")
        server.script = lambda request: [step for byte in answer for step in (0.05, bytes([byte]))]
        assert (await pool.post(HEAD, b"{}")).status == 200

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param(b"SMTP ready\r\n\r\n", id="not-http"),
            pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="bad-header"),
            pytest.param(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"
            ),
        ],
    )
    async def test_garbage_is_a_bad_response(
        self, server: RawServer, pool: Pool, answer: bytes
    ) -> None:
        """What is not HTTP/1.x raises BadResponse."""
        server.script = lambda request: [answer]
        with pytest.raises(BadResponse):
            await pool.post(HEAD, b"{}")

    async def test_nobody_listening_is_a_connect_error(self) -> None:
        """A refused connection raises ConnectError."""
        refused = Pool("http://127.0.0.1:9", size=1, connect_timeout=1, read_timeout=1)
        with pytest.raises(ConnectError):
            await refused.post(HEAD, b"{}")
        await refused.close()

    async def test_a_closed_pool_refuses(self, server: RawServer) -> None:
        """After close(), post raises Disconnected and every connection is closed."""
        closing = Pool(server.endpoint, size=2, connect_timeout=1, read_timeout=1)
        await closing.post(HEAD, b"{}")
        await closing.close()
        assert closing.info() == {"open": 0, "idle": 0}
        with pytest.raises(Disconnected):
            await closing.post(HEAD, b"{}")
