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

import logging
import urllib.request
from types import TracebackType
from typing import Any, Self

from uow.store import Store

__all__ = ["TEST_CREDENTIALS", "TEST_REGION", "MotoServer", "local_store", "reset_moto"]

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
