"""The documentation's code runs as shown: the quickstart, and the pages' pointers into the code."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

import uow
from uow.testing import LocalDatabase

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
QUICKSTART = DOCS / "quickstart.py"


def printed_on_the_page() -> list[str]:
    """The output the quickstart page says the program prints."""
    page = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    block = re.search(r"It prints:\n\n```\n(.*?)```", page, flags=re.DOTALL)
    assert block is not None, "the quickstart page lost its 'It prints:' block"
    return block[1].splitlines()


def without_timings(lines: list[str]) -> list[str]:
    """Lines with the elapsed times, which vary from run to run, blanked out."""
    return [re.sub(r"elapsed=[0-9.]+ms", "elapsed=…", line) for line in lines]


def run_quickstart(environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python quickstart.py` with these AWS variables, as the page runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UOW_"))}
    return subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=cwd,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_quickstart() -> ModuleType:
    """docs/quickstart.py as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("docs_quickstart", QUICKSTART)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestQuickstart:
    """docs/quickstart.py does what docs/quickstart.md says."""

    @pytest.mark.uow_skip_on(
        "external",
        reason="the quickstart writes fixed keys into unprefixed tables, which an external "
        "server keeps from one test to the next",
    )
    def test_it_prints_what_the_page_shows(
        self, uow_database: LocalDatabase, tmp_path: Path
    ) -> None:
        """Run against the test server through `AWS_ENDPOINT_URL`, it prints the page's output."""
        done = run_quickstart(uow_database.environ(), tmp_path)
        assert done.returncode == 0, done.stderr
        assert without_timings(done.stdout.splitlines()) == without_timings(printed_on_the_page())

    @pytest.mark.uow_skip_on(
        "external",
        reason="the quickstart writes fixed keys into unprefixed tables, which an external "
        "server keeps from one test to the next",
    )
    @pytest.mark.asyncio
    async def test_it_sends_what_the_page_says(
        self,
        uow_database: LocalDatabase,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Two creates in transactions with their guards, one GetItem for two gets, one UpdateItem."""
        for name, value in uow_database.environ().items():
            monkeypatch.setenv(name, value)
        quickstart = load_quickstart()
        with caplog.at_level(logging.DEBUG, logger="uow"):
            await quickstart.main(uow_database.endpoint)
        commits = [
            r.getMessage()
            for r in caplog.records
            if r.name == "uow.session" and "requests[none]" not in r.getMessage()
        ]
        assert len(commits) == 4
        assert "created=2" in commits[0]
        assert "requests[TransactWriteItems=2]" in commits[0]
        assert "requests[UpdateItem=1]" in commits[1]
        assert "failed=1" in commits[2]
        requests = [r.getMessage() for r in caplog.records if r.name == "uow.commit"]
        assert sum(line.startswith("GetItem ") for line in requests) == 1
        async with uow_database.store() as store:
            users = await store.client.scan(TableName="qs_users")
            guards = await store.client.scan(TableName="uow_unique")
        assert users["Count"] == 3
        assert sorted(item["guard"]["S"] for item in guards["Items"]) == [
            "qs_users#email#s:ada@example.com",
            "qs_users#email#s:alan@example.com",
            "qs_users#email#s:grace@example.com",
        ]

    def test_the_pages_moto_server_command_works(self, tmp_path: Path) -> None:
        """`moto_server -H 127.0.0.1 -p PORT` and the page's variables run the quickstart."""
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("moto_server")),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                        break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() >= deadline:
                        pytest.fail("moto_server did not start")
                    time.sleep(0.1)
            done = run_quickstart(
                {
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                },
                tmp_path,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert done.returncode == 0, done.stderr
        assert "still pending: [\"create User 'u3'\"]" in done.stdout


class TestPages:
    """The pages point at code that exists, and describe all of it."""

    def test_the_api_reference_covers_every_export(self) -> None:
        """Every name in `uow.__all__` has a `:::` entry in the API reference."""
        page = (DOCS / "reference" / "uow.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"^::: uow\.(?:model\.)?(\w+)$", page, flags=re.MULTILINE))
        assert documented == set(uow.__all__) - {"__version__"}

    def test_the_errors_page_draws_the_errors_modules_tree(self) -> None:
        """docs/errors.md shows the same tree as the docstring of `uow.errors`."""
        page = (DOCS / "errors.md").read_text(encoding="utf-8")
        tree = re.search(r"```\n(UowError\n.*?)```", page, flags=re.DOTALL)
        assert tree is not None
        assert uow.errors.__doc__ is not None
        docstring = [line.strip() for line in uow.errors.__doc__.splitlines()]
        assert [line.strip() for line in tree[1].splitlines()] == [
            line for line in docstring if line and line[0] in "U├│└"
        ]

    def test_every_error_class_has_a_section_or_a_row(self) -> None:
        """Each exception exported by `uow` is explained on the errors page."""
        page = (DOCS / "errors.md").read_text(encoding="utf-8")
        errors = [
            name for name in uow.__all__ if name.endswith(("Error", "Violation", "NotMapped"))
        ]
        missing = [
            name for name in errors if f"`{name}`" not in page and f"`uow.{name}`" not in page
        ]
        assert not missing

    def test_snippet_sections_exist(self) -> None:
        """Every snippet `file:section` included by the docs names a section marked in that file."""
        included = 0
        for page in DOCS.rglob("*.md"):
            text = page.read_text(encoding="utf-8")
            for path, section in re.findall(r"^--8<--\n([^\n:]+):([\w-]+)\n--8<--$", text, re.M):
                included += 1
                source = (ROOT / path).read_text(encoding="utf-8")
                assert f"--8<-- [start:{section}]" in source, f"{page.name}: {path}:{section}"
                assert f"--8<-- [end:{section}]" in source, f"{page.name}: {path}:{section}"
        assert included >= 15
