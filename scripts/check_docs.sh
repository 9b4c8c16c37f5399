#!/usr/bin/env bash
# Build the documentation site with `mkdocs build --strict` into a temporary directory.
#
# Installs the `docs` dependency group into .venv first when mkdocs or one of its plugins
# is missing. Any warning (a broken link or anchor, a missing snippet, a docstring griffe
# cannot read) fails the build. Usage: scripts/check_docs.sh [extra mkdocs build options]
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -x "$PYTHON" ]; then
    echo "check_docs: $PYTHON not found; run 'make install' first" >&2
    exit 1
fi

if ! "$PYTHON" -c "import mkdocs, material, mkdocstrings, mkdocstrings_handlers.python" 2>/dev/null; then
    echo "check_docs: installing the docs dependency group into .venv"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --group docs
fi

site=$(mktemp -d "${TMPDIR:-/tmp}/uow-site.XXXXXX")
trap 'rm -rf "$site"' EXIT

# Material prints a banner about MkDocs 2.0 on every build; it is not a build warning.
NO_MKDOCS_2_WARNING=1 "$PYTHON" -m mkdocs build --strict --site-dir "$site" "$@"
echo "check_docs: mkdocs build --strict passed"
