#!/usr/bin/env bash
# The unit tests on every other Python the package claims (3.12, 3.13) that this machine has.
#
# The main run (make test) uses .venv's Python (3.11, the oldest claimed). For each newer
# version found on PATH or under pyenv, a virtualenv .venv-3.X gets the package with its
# `testing` extra and hypothesis (once; again when pyproject.toml changes), then runs
# tests/unit. A version that is not installed is reported and skipped, not failed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local version=$1 candidate
    if candidate=$(command -v "python$version" 2>/dev/null) && "$candidate" --version >/dev/null 2>&1; then
        echo "$candidate"
        return
    fi
    local root
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for candidate in "$root"/versions/"$version".*/bin/"python$version"; do
        if [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}

for version in 3.12 3.13; do
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        printf '\n*** SKIPPED the unit tests on Python %s: not installed here\n' "$version"
        continue
    fi
    venv=".venv-$version"
    stamp="$venv/.installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[testing]" "hypothesis>=6.100"
        touch "$stamp"
    fi
    printf '\n*** The unit tests on %s\n' "$("$venv/bin/python" --version)"
    "$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider
done
