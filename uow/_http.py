"""A minimal HTTP/1.1 client for the lean transport: POST, keep-alive pool, TLS, timeouts.

DynamoDB's JSON protocol needs one thing of HTTP: POST a body, read the
status, headers and body of the answer, on a pool of kept-alive connections.
This does exactly that on an `asyncio.Protocol`, which costs a fraction of a
general client's per-request machinery (cookies, redirects, tracing, header
multidicts, a request object). Answers may be `Content-Length`-delimited,
chunked, or delimited by the connection closing (HTTP/1.0, `Connection:
close`); a connection is reused only after a complete answer that allows it.

Failures are raised as `ConnectError`, `ConnectTimeout`, `ReadTimeout`,
`Disconnected` (the connection closed before a complete answer) and
`BadResponse`, which the transport maps to botocore's exceptions.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BadResponse",
    "ConnectError",
    "ConnectTimeout",
    "Disconnected",
    "HttpError",
    "Pool",
    "ReadTimeout",
    "Response",
]


class HttpError(Exception):
    """A request got no complete, valid answer."""


class ConnectError(HttpError):
    """The connection could not be made (refused, unreachable, name not resolved)."""


class ConnectTimeout(HttpError):
    """The connection was not made within the connect timeout."""


class ReadTimeout(HttpError):
    """No byte of the answer arrived within the read timeout."""


class Disconnected(HttpError):
    """The connection closed before the answer was complete."""


class BadResponse(HttpError):
    """The answer is not valid HTTP/1.x."""


class Response:
    """A complete answer: status, headers (names in lowercase), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


_MAX_HEAD = 64 * 1024


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._head: tuple[int, dict[str, str]] | None = None
        self._length: int | None = None  # body length; -1: chunked; None: until close
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            return  # bytes nobody asked for: the connection is not reused
        self._restart_timer()
        try:
            response = self._parse(eof=False)
        except BadResponse as exc:
            self._fail(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool | None:
        self._end_of_stream()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end_of_stream()

    # -- a request ---------------------------------------------------------------------------

    def _end_of_stream(self) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            response = self._parse(eof=True)
        except BadResponse as exc:
            self._fail(exc)
            return
        if response is None:
            self._fail(Disconnected("the connection closed before the answer was complete"))
        else:
            self._finish(response)

    async def request(self, head: bytes, body: bytes, read_timeout: float) -> Response:
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            raise Disconnected("the connection is closed")
        self.reusable = False
        self._buffer.clear()
        self._head = None
        self._length = None
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self._read_timeout = read_timeout
        transport.write(head + body)
        self._restart_timer()
        try:
            return await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _restart_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._read_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(ReadTimeout(f"no answer within {self._read_timeout} s"))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _finish(self, response: Response) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _parse(self, *, eof: bool) -> Response | None:
        """The complete answer in the buffer, or None while more bytes are needed."""
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise BadResponse("the answer's head is over 64 KB")
                if eof and buffer:
                    raise BadResponse("the answer ended inside its head")
                return None
            self._head = self._parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
        status, headers = self._head
        length = self._length
        if length is None and not eof:
            return None  # delimited by the connection closing
        if length is None:
            body = bytes(buffer)
        elif length >= 0:
            if len(buffer) < length:
                return None
            body = bytes(buffer[:length])
        else:
            found = _dechunk(buffer)
            if found is None:
                if eof:
                    raise BadResponse("the answer ended inside a chunk")
                return None
            body = found
        return Response(status, headers, body)

    def _parse_head(self, raw: bytes) -> tuple[int, dict[str, str]]:
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponse(f"not a header line: {line[:80]!r}")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version != b"HTTP/1.0" or "keep-alive" in connection
        )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._length = -1
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError as exc:
                raise BadResponse("a Content-Length that is not a number") from exc
        elif status in (204, 304) or 100 <= status < 200:
            self._length = 0
        else:
            self._length = None
            keep_alive = False
        self.reusable = keep_alive
        return status, headers


def _dechunk(buffer: bytearray) -> bytes | None:
    """The body of a complete chunked answer in `buffer`, or None if incomplete."""
    out = bytearray()
    position = 0
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        size_text = bytes(buffer[position:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise BadResponse(f"a chunk size that is not hex: {size_text[:20]!r}") from exc
        start = end + 2
        if size == 0:
            # Trailers (rare) end with an empty line.
            finish = buffer.find(b"\r\n\r\n", end)
            if buffer[start : start + 2] == b"\r\n":
                return bytes(out)
            return None if finish < 0 else bytes(out)
        if len(buffer) < start + size + 2:
            return None
        out += buffer[start : start + size]
        position = start + size + 2


class Pool:
    """Kept-alive connections to one origin, at most `size` at once.

    Args:
        url: the endpoint (`http://host:port/path` or `https://...`).
        size: connections at most; requests beyond wait for one.
        connect_timeout, read_timeout: seconds.
        ssl_context: for `https` URLs (it verifies certificates).
    """

    def __init__(
        self,
        url: str,
        *,
        size: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._ssl = ssl_context if self._https else None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        self._slots = asyncio.Semaphore(size)
        self._open: set[_Connection] = set()
        self.closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(loop),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection within {self._connect_timeout} s") from exc
        except ssl.SSLError:
            raise  # certificate or handshake failure: the caller says so
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        self._open.add(protocol)
        return protocol

    async def post(self, head: bytes, body: bytes) -> Response:
        """Send `head` (the request line and headers, ending with an empty line) and `body`."""
        if self.closed:
            raise Disconnected("the pool is closed")
        async with self._slots:
            connection = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed and candidate.transport is not None:
                    connection = candidate
                    break
                self._open.discard(candidate)
            if connection is None:
                connection = await self._connect()
            try:
                response = await connection.request(head, body, self._read_timeout)
            except BaseException:
                self._drop(connection)
                raise
            if connection.reusable and not connection.closed and not self.closed:
                self._idle.append(connection)
            else:
                self._drop(connection)
            return response

    def _drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        if connection.transport is not None and not connection.transport.is_closing():
            connection.transport.close()

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        self.closed = True
        self._idle.clear()
        for connection in list(self._open):
            self._drop(connection)
        if self._open or self._https:
            await asyncio.sleep(0)  # let the transports finish closing

    def info(self) -> dict[str, Any]:
        """Connections open and idle (for tests and debugging)."""
        return {"open": len(self._open), "idle": len(self._idle)}
