"""A session's lifecycle states (`uow.SessionState`)."""

from __future__ import annotations

import enum

__all__ = ["SessionState"]


class SessionState(enum.Enum):
    """A session's lifecycle.

    `OPEN` accepts every call; `BUSY` while one task awaits an async call
    (`commit`, `get`, `refresh`): any call from another task is refused;
    `CLOSED` after `close()` or the end of `async with`: every call is refused.
    """

    OPEN = "open"
    BUSY = "busy"
    CLOSED = "closed"
