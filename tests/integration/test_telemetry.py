"""One OpenTelemetry span per commit, with counts and no item values."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import uow
from uow import telemetry

pytestmark = pytest.mark.asyncio


@uow.model(table="notes", pk="id")
@attrs.define
class Note:
    """A small record."""

    id: str
    text: str = ""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of a tracer provider used by uow for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = telemetry._tracer, telemetry._checked
    telemetry._tracer, telemetry._checked = provider.get_tracer("uow"), True
    yield exporter
    telemetry._tracer, telemetry._checked = saved
    provider.shutdown()


class TestCommitSpan:
    """Each commit is one `uow.commit` span carrying its counts."""

    async def test_one_span_per_commit_with_counts(
        self, uow_store: uow.Store, spans: InMemorySpanExporter
    ) -> None:
        """Two commits make two spans whose attributes are the counts, never the values."""
        await uow_store.create_tables(Note)
        session = uow_store.session()
        session.add_all([Note("a", "SECRET-TEXT"), Note("b")])
        await session.commit()
        session.delete_key(Note, "a")
        await session.commit(atomic=True)

        first, second = spans.get_finished_spans()
        assert first.name == second.name == "uow.commit"
        assert first.attributes is not None
        assert second.attributes is not None
        assert first.attributes["uow.created"] == 2
        assert first.attributes["uow.requests.PutItem"] == 2
        assert first.attributes["uow.atomic"] is False
        assert second.attributes["uow.deleted"] == 1
        assert second.attributes["uow.atomic"] is True
        assert all("SECRET" not in str(v) for v in first.attributes.values())

    async def test_a_failed_commit_is_recorded_on_its_span(
        self, uow_store: uow.Store, spans: InMemorySpanExporter
    ) -> None:
        """A commit with failures still ends its span, with the failure count."""
        await uow_store.create_tables(Note)
        session = uow_store.session()
        session.update(Note, "missing", set={"text": "x"})
        with pytest.raises(uow.CommitError):
            await session.commit()
        (span,) = spans.get_finished_spans()
        assert span.attributes is not None
        assert span.attributes["uow.failed"] == 1
