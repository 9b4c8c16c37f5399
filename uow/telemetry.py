"""OpenTelemetry: one span per commit, when `opentelemetry-api` is installed.

Install the extra (`pip install "uow[otel]"`) and configure an SDK as usual;
every `Session.commit()` then runs inside a span named `uow.commit` whose
attributes are the commit's counts (`uow.created`, `uow.updated`,
`uow.deleted`, `uow.put`, `uow.failed`, `uow.requests`, `uow.retries`,
`uow.atomic`). Without the package this module does nothing and costs nothing.
Attributes never hold item values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from uow.results import CommitResult

__all__ = ["commit_span", "record_result"]

_tracer: Any = None
_checked = False


def _get_tracer() -> Any:
    global _tracer, _checked  # noqa: PLW0603 - resolved once, on the first commit
    if not _checked:
        _checked = True
        try:
            from opentelemetry.trace import get_tracer
        except ImportError:
            _tracer = None
        else:
            _tracer = get_tracer("uow")
    return _tracer


@contextlib.contextmanager
def commit_span(*, atomic: bool) -> Iterator[Any]:
    """A `uow.commit` span around a commit (or `None` without OpenTelemetry)."""
    tracer = _get_tracer()
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span("uow.commit", attributes={"uow.atomic": atomic}) as span:
        yield span


def record_result(span: Any, result: CommitResult) -> None:
    """Put a commit's counts on its span."""
    if span is None:
        return
    span.set_attributes(
        {
            "uow.created": result.created,
            "uow.put": result.put,
            "uow.updated": result.updated,
            "uow.deleted": result.deleted,
            "uow.failed": result.failed,
            "uow.requests": result.request_count,
            "uow.retries": result.retries,
            **{f"uow.requests.{api}": n for api, n in result.requests.items()},
        }
    )
