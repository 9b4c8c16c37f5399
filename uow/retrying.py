"""`retry_on_conflict`: run a unit of work again when another writer got there first."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from uow.errors import AbortedError, CommitError, ConflictError, DuplicateKeyError, ValidationError

if TYPE_CHECKING:
    from uow.session import Session
    from uow.store import Store

__all__ = ["retry_on_conflict"]

log = logging.getLogger("uow.retry")
T = TypeVar("T")


def _only_conflicts(error: CommitError) -> bool:
    """True when every failure is a lost race that a fresh read may win."""
    return bool(error.failed) and all(
        isinstance(cause, ConflictError | AbortedError) and not isinstance(cause, DuplicateKeyError)
        for _, cause in error.failed
    )


async def retry_on_conflict(
    store: Store,
    work: Callable[[Session], Awaitable[T]],
    *,
    attempts: int = 10,
    atomic: bool = True,
    base_delay: float = 0.01,
    max_delay: float = 0.5,
) -> T:
    """Run `work` in a fresh session and commit; on a conflict, run it again from scratch.

    `work(session)` reads what it needs and changes it; this function commits.
    When the commit fails only because other writers changed the same records
    (`ConflictError`, e.g. a stale `version`), the session is discarded and
    `work` runs again in a new session, so it sees their writes; the wait
    between attempts grows exponentially, with jitter.

    The commit is atomic by default, so a failed attempt has written nothing
    and running `work` again cannot apply any change twice. With
    `atomic=False` an attempt is retried only if none of its changes was
    written; otherwise its `CommitError` is raised.

    Args:
        store: an open store.
        work: the unit of work; it must be safe to run more than once.
        attempts: runs at most, the first included.
        atomic: commit with `commit(atomic=True)` (100 actions at most).
        base_delay: first wait in seconds, doubled per attempt.
        max_delay: cap of one wait in seconds.

    Returns:
        What `work` returned in the attempt that committed.

    Raises:
        CommitError: the last attempt's, or the first one that is not only
            conflicts (a duplicate key, throttling, a service error...).
        ValidationError: `attempts` is below 1.
    """
    if attempts < 1:
        raise ValidationError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        session = store.session()
        try:
            async with session:
                result = await work(session)
                await session.commit(atomic=atomic)
            return result
        except CommitError as error:
            if attempt == attempts or not _only_conflicts(error) or error.succeeded:
                raise
            delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))
            log.debug("conflict on attempt %d of %d; again in %.3fs", attempt, attempts, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
