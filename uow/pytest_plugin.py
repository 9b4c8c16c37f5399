"""pytest plugin (entry point `pytest11`): `uow_endpoint`, `uow_store`, `uow_session` and friends.

Loading it imports nothing optional and starts nothing: the server is started
when `uow_endpoint` first runs, and the async fixtures exist only when
pytest-asyncio is installed (the `testing` extra brings it). They work in
pytest-asyncio's strict mode with no other set-up.

The server is chosen by environment variables:

* `UOW_TEST_ENDPOINT=URL`: an external endpoint (e.g. DynamoDB Local you run
  yourself); each test gets its own table prefix.
* else `UOW_TEST_BACKEND=moto` (the default): moto on 127.0.0.1, in this
  process; each test starts from a reset server.
* or `UOW_TEST_BACKEND=dynamodb-local`: Amazon DynamoDB Local (Java 17+, see
  `uow.testing.DynamoDBLocal`) on 127.0.0.1, once per run; each test gets a
  database of its own through a fresh access key id.

Fixtures:

* `uow_backend` (session scope): `"moto"`, `"dynamodb-local"` or `"external"`.
* `uow_endpoint` (session scope): the server's URL.
* `uow_database`: this test's isolated database (`uow.testing.LocalDatabase`):
  use `uow_database.store(...)` to open more stores on it (e.g. through a
  `FaultProxy`), `uow_database.environ()` for a subprocess.
* `uow_store`: an open `Store` on `uow_database`.
* `uow_session`: a session on `uow_store`, closed after the test without
  committing.

Marker: `@pytest.mark.uow_skip_on("moto", reason="moto ignores ClientRequestToken")`
skips a test on the named backends; the reason should name the server's gap.
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
    from uow.testing import LocalDatabase

BACKENDS = ("moto", "dynamodb-local", "external")
"""What `uow_backend` can be; `external` means `UOW_TEST_ENDPOINT` is set."""


def selected_backend() -> str:
    """The backend the environment selects: `UOW_TEST_ENDPOINT`, else `UOW_TEST_BACKEND`, else moto.

    Raises:
        pytest.UsageError: `UOW_TEST_BACKEND` names no known server.
    """
    if os.environ.get("UOW_TEST_ENDPOINT"):
        return "external"
    backend = os.environ.get("UOW_TEST_BACKEND") or "moto"
    if backend not in BACKENDS[:2]:
        raise pytest.UsageError(
            f"UOW_TEST_BACKEND={backend!r} is not supported; use one of {BACKENDS[:2]} "
            "(or UOW_TEST_ENDPOINT=URL for an external endpoint)"
        )
    return backend


def pytest_configure(config: pytest.Config) -> None:
    """Register the `uow_skip_on` marker."""
    config.addinivalue_line(
        "markers",
        "uow_skip_on(*backends, reason): skip the test on these uow test backends "
        f"({', '.join(BACKENDS)}); the reason names the server's gap.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked `uow_skip_on(...)` for the selected backend."""
    backend: str | None = None
    for item in items:
        for marker in item.iter_markers("uow_skip_on"):
            unknown = set(marker.args) - set(BACKENDS)
            reason = marker.kwargs.get("reason")
            if not marker.args or unknown or not reason:
                raise pytest.UsageError(
                    f"{item.nodeid}: use uow_skip_on(*backends, reason=...) with backends among "
                    f"{BACKENDS}; got args={marker.args}, reason={reason!r}"
                )
            backend = backend or selected_backend()
            if backend in marker.args:
                item.add_marker(pytest.mark.skip(reason=f"on {backend}: {reason}"))


@pytest.fixture(scope="session")
def uow_backend() -> str:
    """Which server the tests run on: `"moto"`, `"dynamodb-local"` or `"external"`."""
    return selected_backend()


@pytest.fixture(scope="session")
def uow_endpoint(uow_backend: str) -> Iterator[str]:
    """The endpoint URL of the test DynamoDB server (one per test run)."""
    if uow_backend == "external":
        yield os.environ["UOW_TEST_ENDPOINT"]
        return
    if uow_backend == "dynamodb-local":
        from uow.testing import DynamoDBLocal, DynamoDBLocalUnavailable

        server = DynamoDBLocal()
        try:
            server.start()
        except DynamoDBLocalUnavailable as exc:
            pytest.fail(f"UOW_TEST_BACKEND=dynamodb-local: {exc}", pytrace=False)
        try:
            yield server.endpoint
        finally:
            server.stop()
        return
    from uow.testing import MotoServer

    with MotoServer() as moto:
        yield moto.endpoint


@pytest.fixture
def uow_database(uow_backend: str, uow_endpoint: str) -> LocalDatabase:
    """This test's database, empty: a fresh access key id, a reset moto, or a table prefix."""
    from uow.testing import LocalDatabase, reset_moto

    if uow_backend == "dynamodb-local":
        return LocalDatabase.fresh(uow_endpoint)
    if uow_backend == "external":
        return LocalDatabase(endpoint=uow_endpoint, table_prefix=f"t{uuid.uuid4().hex[:12]}_")
    reset_moto(uow_endpoint)
    return LocalDatabase(endpoint=uow_endpoint)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without the testing extra
    pytest_asyncio = None  # type: ignore[assignment]  # the async fixtures are skipped below

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def uow_store(uow_database: LocalDatabase) -> AsyncIterator[Store]:
        """An open `Store` on `uow_endpoint`, with an empty database for this test."""
        async with uow_database.store() as store:
            yield store

    @pytest_asyncio.fixture
    async def uow_session(uow_store: Store) -> AsyncIterator[Session]:
        """A `Session` on `uow_store`; closed (not committed) after the test."""
        from uow.session import SessionState

        session = uow_store.session()
        yield session
        if session.state is SessionState.OPEN:
            session.close()
