#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtualenv, and check what it ships.
#
# Checks: the wheel holds the `uow` package with `py.typed` (PEP 561) and the DynamoDB
# Local launcher source, and nothing else from the repository (tests, examples, docs);
# installed from the wheel alone (not from this checkout), `import uow` works, the
# installed version matches `uow.__version__`, `py.typed` is installed, and the pytest
# plugin is registered as the `pytest11` entry point `uow = uow.pytest_plugin`.
# Usage: scripts/check_package.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    PYTHON=python3
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/uow-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "check_package: building the wheel"
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/dist" .
wheels=("$work"/dist/uow-*.whl)
if [ ${#wheels[@]} -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
    echo "check_package: expected exactly one uow wheel, found: ${wheels[*]}" >&2
    exit 1
fi
wheel=${wheels[0]}
echo "check_package: built $(basename "$wheel")"

"$PYTHON" - "$wheel" <<'PY'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
problems = []
for required in ("uow/__init__.py", "uow/py.typed", "uow/pytest_plugin.py",
                 "uow/_dynamodb_local/LoopbackDynamoDBLocal.java"):
    if required not in names:
        problems.append(f"missing {required}")
strays = [n for n in names if not n.startswith(("uow/", "uow-"))]
if strays:
    problems.append(f"files outside the uow package: {strays}")
entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
if not entry_points:
    problems.append("no entry_points.txt")
if problems:
    sys.exit("check_package: the wheel is wrong: " + "; ".join(problems))
print(f"check_package: the wheel holds {len(names)} files, py.typed included")
PY

echo "check_package: installing it into a fresh virtualenv"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"

# Run from an empty directory so that this checkout's `uow` cannot be imported instead.
mkdir "$work/elsewhere"
(cd "$work/elsewhere" && "$work/venv/bin/python" - "$work/venv" <<'PY'
import importlib.metadata as metadata
import importlib.resources
import sys
from pathlib import Path

import uow

venv = Path(sys.argv[1]).resolve()
location = Path(uow.__file__).resolve()
assert venv in location.parents, f"uow imported from {location}, not from the fresh venv"
assert metadata.version("uow") == uow.__version__, (metadata.version("uow"), uow.__version__)
assert importlib.resources.files("uow").joinpath("py.typed").is_file(), "py.typed not installed"
plugins = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
assert plugins.get("uow") == "uow.pytest_plugin", f"pytest11 entry points: {plugins}"
assert importlib.resources.files("uow").joinpath("pytest_plugin.py").is_file()
print(f"check_package: uow {uow.__version__} imports from the wheel, typed, "
      "pytest11 'uow = uow.pytest_plugin' registered")
PY
)
echo "check_package: passed"
