"""pytest plugin (entry point `pytest11`): `uow_endpoint`, `uow_store`, `uow_session`.

Loading it imports nothing optional: moto is imported when `uow_endpoint` first
runs, and the async fixtures exist only when pytest-asyncio is installed (the
`testing` extra brings both). They work in pytest-asyncio's strict mode with no
other set-up.

* `uow_endpoint` (session scope): the URL of a moto server started on
  127.0.0.1 for the test run, or `UOW_TEST_ENDPOINT` when set.
* `uow_store`: an open `Store` on it, isolated per test (the embedded server
  is reset; an external endpoint gets a table prefix unique to the test).
* `uow_session`: a session on `uow_store`, closed after the test without
  committing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from uow.session import Session
    from uow.store import Store

_BACKENDS = ("moto",)


@pytest.fixture(scope="session")
def uow_endpoint() -> Iterator[str]:
    """The endpoint URL of the test DynamoDB server (one per test run)."""
    external = os.environ.get("UOW_TEST_ENDPOINT")
    if external:
        yield external
        return
    backend = os.environ.get("UOW_TEST_BACKEND", "moto")
    if backend not in _BACKENDS:
        pytest.fail(f"UOW_TEST_BACKEND={backend!r} is not supported; use one of {_BACKENDS}")
    from uow.testing import MotoServer

    with MotoServer() as server:
        yield server.endpoint


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without the testing extra
    pytest_asyncio = None  # type: ignore[assignment]  # the async fixtures are skipped below

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def uow_store(uow_endpoint: str) -> AsyncIterator[Store]:
        """An open `Store` on `uow_endpoint`, with an empty database for this test."""
        from uow.testing import local_store, reset_moto

        if os.environ.get("UOW_TEST_ENDPOINT"):
            prefix = f"t{uuid.uuid4().hex[:12]}_"
        else:
            reset_moto(uow_endpoint)
            prefix = ""
        async with local_store(uow_endpoint, table_prefix=prefix) as store:
            yield store

    @pytest_asyncio.fixture
    async def uow_session(uow_store: Store) -> AsyncIterator[Session]:
        """A `Session` on `uow_store`; closed (not committed) after the test."""
        from uow.session import SessionState

        session = uow_store.session()
        yield session
        if session.state is SessionState.OPEN:
            session.close()
