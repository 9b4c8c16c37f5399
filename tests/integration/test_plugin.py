"""The pytest plugin from a user's point of view: a fresh project, no conftest, strict mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

MODELS = '''
"""A user's models."""

import attrs

import uow


@uow.model(table="notes", pk="note_id")
@attrs.define
class Note:
    note_id: str
    text: str = ""
'''

TESTS = '''
"""A user's tests: they use the uow fixtures and nothing else."""

import pytest

import uow
from models import Note


@pytest.mark.asyncio
async def test_commit_then_read_back(uow_store: uow.Store, uow_session: uow.Session) -> None:
    await uow_store.create_tables(Note)
    uow_session.add(Note(note_id="n1", text="hello"))
    result = await uow_session.commit()
    assert result.created == 1
    async with uow_store.session() as other:
        note = await other.get(Note, "n1")
    assert note is not None
    assert note.text == "hello"


@pytest.mark.asyncio
async def test_each_test_starts_with_an_empty_database(uow_store: uow.Store) -> None:
    response = await uow_store.client.list_tables()
    assert response["TableNames"] == []


@pytest.mark.asyncio
async def test_the_session_fixture_is_open(uow_session: uow.Session) -> None:
    assert uow_session.state is uow.SessionState.OPEN


def test_the_server_listens_on_loopback(uow_endpoint: str) -> None:
    assert uow_endpoint.startswith("http://127.0.0.1:")
'''

# The user's own pytest settings: strict asyncio mode and warnings as errors, so
# an unclosed client or a leaked warning from the fixtures fails their suite.
PYPROJECT = """
[tool.pytest.ini_options]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"
filterwarnings = ["error"]
"""


def _child_env() -> dict[str, str]:
    hidden = {"PYTEST_ADDOPTS", "UOW_TEST_ENDPOINT", "UOW_TEST_BACKEND"}
    return {name: value for name, value in os.environ.items() if name not in hidden}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=60,
        check=False,
    )


class TestUserProject:
    """A new project's pytest-asyncio suite uses the fixtures with no set-up."""

    def test_a_fresh_project_passes_with_the_fixtures_alone(self, tmp_path: Path) -> None:
        """`uow_endpoint`, `uow_store` and `uow_session` work in strict mode with no conftest."""
        (tmp_path / "pyproject.toml").write_text(PYPROJECT)
        (tmp_path / "models.py").write_text(MODELS)
        (tmp_path / "test_notes.py").write_text(TESTS)

        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=_child_env(),
            timeout=120,
            check=False,
        )

        assert run.returncode == 0, run.stdout + run.stderr
        assert "4 passed" in run.stdout


class TestPluginModule:
    """The plugin module is registered and light."""

    def test_it_is_registered_as_a_pytest11_entry_point(self) -> None:
        """pytest finds the plugin through the `pytest11` entry point `uow`."""
        plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}

        assert plugins.get("uow") == "uow.pytest_plugin"

    def test_loading_it_imports_neither_moto_nor_aioboto3(self) -> None:
        """The server and the client libraries are imported only when a fixture runs."""
        run = _python(
            """
            import sys
            import uow.pytest_plugin
            heavy = sorted(name for name in ("moto", "aioboto3") if name in sys.modules)
            assert heavy == [], heavy
            """
        )

        assert run.returncode == 0, run.stderr

    def test_it_loads_without_pytest_asyncio_or_moto(self) -> None:
        """Without the testing extra the plugin still loads; only the async fixtures are missing."""
        run = _python(
            """
            import sys
            sys.modules["pytest_asyncio"] = None  # makes `import pytest_asyncio` fail
            sys.modules["moto"] = None
            import uow.pytest_plugin as plugin
            assert hasattr(plugin, "uow_endpoint")
            assert not hasattr(plugin, "uow_store")
            assert not hasattr(plugin, "uow_session")
            """
        )

        assert run.returncode == 0, run.stderr
