"""Choosing the test server: `UOW_TEST_BACKEND`, `UOW_TEST_ENDPOINT`, `uow_backend`, `uow_skip_on` (no server starts)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from uow.pytest_plugin import BACKENDS, selected_backend

# No test here uses a server fixture: running it starts no server.
MARKED = """
import pytest


@pytest.mark.uow_skip_on("moto", reason="moto ignores ClientRequestToken")
def test_needs_tokens() -> None:
    pass


@pytest.mark.uow_skip_on("dynamodb-local", "external", reason="a moto-only check")
def test_needs_moto() -> None:
    pass


def test_backend(uow_backend: str) -> None:
    print(f"backend={uow_backend}")
"""


def _pytest(tmp_path: Path, source: str, **environ: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_marked.py").write_text(textwrap.dedent(source))
    hidden = {"PYTEST_ADDOPTS", "UOW_TEST_ENDPOINT", "UOW_TEST_BACKEND"}
    env = {k: v for k, v in os.environ.items() if k not in hidden} | environ
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-s", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestSelectedBackend:
    """The environment selects the backend: `UOW_TEST_ENDPOINT`, else `UOW_TEST_BACKEND`, else moto."""

    @pytest.mark.parametrize(
        ("environ", "backend"),
        [
            pytest.param({}, "moto", id="default"),
            pytest.param({"UOW_TEST_BACKEND": "moto"}, "moto", id="moto"),
            pytest.param({"UOW_TEST_BACKEND": "dynamodb-local"}, "dynamodb-local", id="local"),
            pytest.param(
                {"UOW_TEST_BACKEND": "dynamodb-local", "UOW_TEST_ENDPOINT": "http://h:1"},
                "external",
                id="endpoint-wins",
            ),
        ],
    )
    def test_the_environment_selects_it(
        self, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], backend: str
    ) -> None:
        """Each combination of the two variables selects the documented backend."""
        monkeypatch.delenv("UOW_TEST_BACKEND", raising=False)
        monkeypatch.delenv("UOW_TEST_ENDPOINT", raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)

        assert selected_backend() == backend

    def test_an_unknown_backend_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A name that is no known server is refused with the supported names."""
        monkeypatch.delenv("UOW_TEST_ENDPOINT", raising=False)
        monkeypatch.setenv("UOW_TEST_BACKEND", "localstack")

        with pytest.raises(pytest.UsageError, match=r"'localstack' is not supported.*moto"):
            selected_backend()

    def test_this_run_reports_its_own_backend(self, uow_backend: str) -> None:
        """`uow_backend` is the selected backend."""
        assert uow_backend == selected_backend()
        assert uow_backend in BACKENDS


class TestSkipMarker:
    """`uow_skip_on` skips a test on the named backends and shows the gap as the reason."""

    def test_it_skips_only_on_the_named_backends(self, tmp_path: Path) -> None:
        """On moto, the test naming moto is skipped with its reason; the others run."""
        run = _pytest(tmp_path, MARKED)

        assert run.returncode == 0, run.stdout + run.stderr
        assert "2 passed, 1 skipped" in run.stdout
        assert "backend=moto" in run.stdout
        assert "on moto: moto ignores ClientRequestToken" in run.stdout

    def test_a_marker_without_reason_is_an_error(self, tmp_path: Path) -> None:
        """A marker with no reason or an unknown backend name stops the run at collection."""
        run = _pytest(
            tmp_path,
            """
            import pytest

            @pytest.mark.uow_skip_on("mot")
            def test_typo() -> None:
                pass
            """,
        )

        assert run.returncode != 0
        assert "use uow_skip_on(*backends, reason=...)" in run.stdout + run.stderr
