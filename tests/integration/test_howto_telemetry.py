"""What docs/howto/telemetry.md promises: log lines per request and per commit, spans per commit."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import uow
from uow import telemetry
from uow.testing import FaultProxy, Faults, LocalDatabase

pytestmark = pytest.mark.asyncio


@uow.model(table="gauges", pk="name", version="version")
@attrs.define
class Gauge:
    """A versioned record."""

    name: str
    value: int = 0
    version: int = 0


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every `uow` log record, DEBUG and up."""
    with caplog.at_level(logging.DEBUG, logger="uow"):
        yield caplog


def named(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """The records of one logger."""
    return [record for record in caplog.records if record.name == name]


class TestLogs:
    """`uow.commit`: a DEBUG line per request; `uow.session`: an INFO line per commit."""

    async def test_one_info_line_per_commit(
        self, uow_store: uow.Store, logs: pytest.LogCaptureFixture
    ) -> None:
        """Each commit, failed or not, logs its summary once at INFO on `uow.session`."""
        await uow_store.create_tables(Gauge)
        session = uow_store.session()
        session.add_all([Gauge("a"), Gauge("b")])
        first = await session.commit()
        session.update(Gauge, "missing", add={"value": 1})
        with pytest.raises(uow.CommitError):
            await session.commit()
        lines = named(logs, "uow.session")
        assert [record.levelno for record in lines] == [logging.INFO, logging.INFO]
        assert lines[0].getMessage() == f"commit {first.summary()}"
        assert "failed=1" in lines[1].getMessage()

    async def test_an_empty_commit_logs_requests_none(
        self, uow_store: uow.Store, logs: pytest.LogCaptureFixture
    ) -> None:
        """The commit at the end of `async with`, after an explicit one, logs `requests[none]`."""
        await uow_store.create_tables(Gauge)
        async with uow_store.session() as session:
            session.add(Gauge("a"))
            await session.commit()
        first, last = (record.getMessage() for record in named(logs, "uow.session"))
        assert "requests[PutItem=1]" in first
        assert "requests[none]" in last

    async def test_one_debug_line_per_request(
        self, uow_store: uow.Store, logs: pytest.LogCaptureFixture
    ) -> None:
        """`uow.commit` logs each request a commit or a read sends, with API, table and time."""
        await uow_store.create_tables(Gauge)
        session = uow_store.session()
        session.add_all([Gauge(f"g{i}") for i in range(3)])
        session.add_all([Gauge(f"p{i}") for i in range(30)], overwrite=True)
        result = await session.commit()
        lines = named(logs, "uow.commit")
        assert len(lines) == result.request_count == 5  # 3 PutItem + 2 BatchWriteItem
        assert all(record.levelno == logging.DEBUG for record in lines)
        table = uow_store.table_name(Gauge)
        request_line = f"PutItem table={table} elapsed="  # the line's format, not a speed
        assert request_line in lines[0].getMessage()
        logs.clear()
        await uow_store.session().get(Gauge, "g0")
        [read] = named(logs, "uow.commit")
        assert read.getMessage().startswith(f"GetItem table={table}")

    async def test_a_retried_request_logs_the_error_and_the_next_attempt(
        self, uow_database: LocalDatabase, uow_endpoint: str, logs: pytest.LogCaptureFixture
    ) -> None:
        """Under throttling, each re-send is one more DEBUG line naming DynamoDB's error."""
        retry = uow.Retry(max_attempts=20, base_delay=0.001, max_delay=0.01)
        with FaultProxy(uow_endpoint, Faults(throttle=0.5), seed=3) as proxy:
            async with uow_database.store(proxy.endpoint, retry=retry) as store:
                proxy.faults = Faults()
                await store.create_tables(Gauge)
                proxy.faults = Faults(throttle=0.5)
                logs.clear()
                session = store.session()
                session.add_all([Gauge(f"g{i}") for i in range(10)])
                result = await session.commit()
        lines = [record.getMessage() for record in named(logs, "uow.commit")]
        failures = [line for line in lines if " failed (" in line]
        assert result.retries > 0
        assert len(failures) == result.retries
        assert all("ProvisionedThroughputExceededException" in line for line in failures)
        assert len(lines) == result.request_count

    async def test_unprocessed_batch_items_are_logged_when_re_sent(
        self, uow_database: LocalDatabase, uow_endpoint: str, logs: pytest.LogCaptureFixture
    ) -> None:
        """Each re-send of a batch's unprocessed items is one DEBUG line with their count."""
        retry = uow.Retry(max_attempts=20, base_delay=0.001, max_delay=0.01)
        with FaultProxy(uow_endpoint, seed=5) as proxy:
            async with uow_database.store(proxy.endpoint, retry=retry) as store:
                await store.create_tables(Gauge)
                proxy.faults = Faults(unprocessed=0.3, apis=frozenset({"BatchWriteItem"}))
                session = store.session()
                session.add_all([Gauge(f"g{i}") for i in range(20)], overwrite=True)
                result = await session.commit()
        assert result.put == 20
        lines = [record.getMessage() for record in named(logs, "uow.commit")]
        resent = [line for line in lines if "unprocessed, re-sending" in line]
        assert resent
        assert all(line.startswith("BatchWriteItem: ") for line in resent)

    async def test_retry_on_conflict_logs_each_lost_race(
        self, uow_store: uow.Store, logs: pytest.LogCaptureFixture
    ) -> None:
        """A unit of work that loses a race is logged at DEBUG on `uow.retry` before it runs again."""
        await uow_store.create_tables(Gauge)
        async with uow_store.session() as setup:
            setup.add(Gauge("g"))
        attempts = 0

        async def work(session: uow.Session) -> None:
            nonlocal attempts
            attempts += 1
            gauge = await session.get(Gauge, "g")
            assert gauge is not None
            gauge.value += 1
            if attempts == 1:  # another writer gets there first
                async with uow_store.session() as other:
                    rival = await other.get(Gauge, "g")
                    assert rival is not None
                    rival.value += 10

        await uow.retry_on_conflict(uow_store, work, base_delay=0.001)
        [line] = named(logs, "uow.retry")
        assert line.levelno == logging.DEBUG
        assert line.getMessage().startswith("conflict on attempt 1 of 10")


class TestSpans:
    """With `opentelemetry-api` installed, each commit is a `uow.commit` span from the global API."""

    async def test_the_tracer_comes_from_the_global_api(
        self, uow_store: uow.Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """uow asks `opentelemetry.trace.get_tracer("uow")` once, and every commit makes a span."""
        import opentelemetry.trace

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        asked: list[str] = []

        def get_tracer(name: str, *args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            return provider.get_tracer(name)

        monkeypatch.setattr(opentelemetry.trace, "get_tracer", get_tracer)
        monkeypatch.setattr(telemetry, "_tracer", None)
        monkeypatch.setattr(telemetry, "_checked", False)
        await uow_store.create_tables(Gauge)
        session = uow_store.session()
        session.add(Gauge("a"))
        await session.commit()
        await session.commit()
        provider.shutdown()
        assert asked == ["uow"]
        spans = exporter.get_finished_spans()
        assert [span.name for span in spans] == ["uow.commit", "uow.commit"]
        assert spans[0].attributes is not None
        assert spans[0].attributes["uow.created"] == 1
        assert spans[0].attributes["uow.requests"] == 1

    async def test_the_span_nests_under_the_current_one(
        self, uow_store: uow.Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A commit inside the application's span is a child of that span."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        monkeypatch.setattr(telemetry, "_tracer", provider.get_tracer("uow"))
        monkeypatch.setattr(telemetry, "_checked", True)
        await uow_store.create_tables(Gauge)
        session = uow_store.session()
        session.add(Gauge("a"))
        with provider.get_tracer("app").start_as_current_span("request") as request:
            await session.commit()
        provider.shutdown()
        commit, parent = exporter.get_finished_spans()
        assert parent.name == "request"
        assert commit.parent is not None
        assert commit.parent.span_id == request.get_span_context().span_id

    async def test_without_opentelemetry_commits_work_and_make_no_span(
        self, uow_store: uow.Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When `opentelemetry` cannot be imported, commits run as usual."""
        monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # import fails
        monkeypatch.setattr(telemetry, "_tracer", None)
        monkeypatch.setattr(telemetry, "_checked", False)
        await uow_store.create_tables(Gauge)
        session = uow_store.session()
        session.add(Gauge("a"))
        assert (await session.commit()).created == 1
        with telemetry.commit_span(atomic=False) as span:
            assert span is None
