"""The README's code runs as printed: the quickstart, and the pytest plugin example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import uow
from uow.testing import local_store

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)

# The quickstart's model, for the plugin example's `from myapp.models import User`.
MYAPP_MODELS = """
import attrs

import uow


@uow.model(table="users", pk="user_id")
@attrs.define
class User:
    user_id: str
    name: str
    visits: int = 0
"""


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


class TestReadme:
    def test_the_readme_has_the_two_examples(self) -> None:
        """The README shows exactly two Python blocks: the quickstart and the plugin example."""
        assert len(PYTHON_BLOCKS) == 2
        assert "asyncio.run(main())" in PYTHON_BLOCKS[0]
        assert "uow_session" in PYTHON_BLOCKS[1]

    @pytest.mark.asyncio
    async def test_quickstart_runs_and_sends_one_update(
        self, uow_store: uow.Store, tmp_path: Path
    ) -> None:
        """The quickstart, pointed at the test server by `AWS_ENDPOINT_URL`, writes what it says."""
        assert uow_store.endpoint_url is not None
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": uow_store.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        done = _run([sys.executable, "-c", PYTHON_BLOCKS[0]], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        # The ADD goes in a transaction with an idempotency token (exactly once, DESIGN §11).
        assert (
            "created=0 put=0 updated=1 deleted=0 failed=0 requests[TransactWriteItems=1]"
            in done.stdout
        )
        # The quickstart names its region; moto keeps one database per region.
        async with local_store(uow_store.endpoint_url, region_name="eu-west-1") as store:
            item = await store.client.get_item(TableName="users", Key={"user_id": {"S": "u1"}})
        # The create left its write marker (`_uow_w0`) in the item.
        assert {k: v for k, v in item["Item"].items() if not k.startswith("_uow_w")} == {
            "user_id": {"S": "u1"},
            "name": {"S": "Ada Lovelace"},
            "visits": {"N": "1"},
        }

    def test_plugin_example_passes_in_a_bare_project(self, tmp_path: Path) -> None:
        """The plugin example passes under pytest-asyncio's strict default with no configuration."""
        (tmp_path / "myapp").mkdir()
        (tmp_path / "myapp" / "__init__.py").write_text("")
        (tmp_path / "myapp" / "models.py").write_text(MYAPP_MODELS)
        (tmp_path / "test_signup.py").write_text(PYTHON_BLOCKS[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UOW_", "AWS_"))}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])
        )
        done = _run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_signup.py"],
            cwd=tmp_path,
            env=env,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout
