"""`cache_disabled()`: task-local bypass of the identity map for reads."""

from __future__ import annotations

import contextvars
from types import TracebackType

__all__ = ["cache_disabled", "reads_bypass_cache"]

_DISABLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "uow_cache_disabled", default=False
)


# `reads_bypass_cache() -> bool`: True inside `cache_disabled()` in the current task
# (or context). The context variable's own `get`, so that `Session.get`'s map hit
# asks it without a Python-level call.
reads_bypass_cache = _DISABLED.get


class cache_disabled:  # noqa: N801 - used like a function: `with uow.cache_disabled():`
    """Make reads inside the block go to DynamoDB, in this task only.

    Clean mapped objects are refreshed in place from what DynamoDB returns;
    objects with pending changes keep them. Identity is kept. Nestable, and
    safe across tasks because it lives in a `contextvars.ContextVar`: a task
    started inside the block inherits it, other tasks do not see it. Works as
    `with` or `async with`.
    """

    __slots__ = ("_tokens",)

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(_DISABLED.set(True))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _DISABLED.reset(self._tokens.pop())

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
