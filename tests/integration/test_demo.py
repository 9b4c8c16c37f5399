"""`make demo`: the order-processing example runs, and prints what each commit sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import uow
from examples import demo

ROOT = Path(__file__).resolve().parents[2]

# One line per commit and per claim the demo makes; the elapsed time varies, so it is left out.
EXPECTED = (
    "commit 1: seed 3 products, 1 customer, 1 earlier order",
    "sent: created=5 put=0 updated=0 deleted=0 failed=0 requests[PutItem=5] retries=0",
    "update(Product, 'sku-2', add={'stock': -3}) -> frother.stock = 7",
    "delete Order ('c-1', 'o-0001')",
    "sent: created=3 put=0 updated=4 deleted=1 failed=0 "
    "requests[BatchWriteItem=1, PutItem=3, TransactWriteItems=2, UpdateItem=2] retries=0",
    "stock now: sku-1=37 sku-2=8 sku-3=98; Ada: 4 orders, 190 points",
    "sent: created=1 put=0 updated=0 deleted=0 failed=1 requests[PutItem=2] retries=0",
    "CommitError: 1 failed, 1 written",
    "written: create Order ('c-1', 'o-0005')",
    "failed:  create Order ('c-1', 'o-0004'): DuplicateKeyError",
    "still pending: [\"create Order ('c-1', 'o-0004')\"]",
    "sent: created=1 put=0 updated=0 deleted=0 failed=0 requests[PutItem=1] retries=0",
    "still pending: []",
)


def assert_story(output: str) -> None:
    missing = [line for line in EXPECTED if line not in output]
    assert not missing, f"missing from the demo's output: {missing}\n--- output ---\n{output}"


class TestDemo:
    def test_make_demo_runs_on_an_embedded_moto_server(self) -> None:
        """`python -m examples.demo` with no endpoint starts moto, tells the story and exits 0."""
        env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
        done = subprocess.run(
            [sys.executable, "-m", "examples.demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "embedded moto server at http://127.0.0.1:" in done.stdout
        assert_story(done.stdout)

    @pytest.mark.asyncio
    async def test_an_endpoint_runs_in_fresh_tables_deleted_at_the_end(
        self,
        uow_store: uow.Store,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With an endpoint the demo tells the same story in prefixed tables and deletes them."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        assert uow_store.endpoint_url is not None
        await demo.run_on(uow_store.endpoint_url)
        output = capsys.readouterr().out
        assert "tables prefixed uow_demo_" in output
        assert_story(output)
        tables = (await uow_store.client.list_tables())["TableNames"]
        assert not [name for name in tables if name.startswith("uow_demo_")]

    def test_endpoint_argument_wins_over_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`--endpoint` is used even when `AWS_ENDPOINT_URL` is set."""
        seen: list[str | None] = []

        async def record(endpoint: str | None) -> None:
            seen.append(endpoint)

        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        monkeypatch.setattr(demo, "run_on", record)
        assert demo.main(["--endpoint", "http://127.0.0.1:2"]) == 0
        assert demo.main([]) == 0
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        assert demo.main([]) == 0
        assert seen == ["http://127.0.0.1:2", "http://127.0.0.1:1", None]
