"""The exception hierarchy of `uow`.

Every error `uow` raises derives from `UowError`; errors are grouped by what the
caller does next::

    UowError
    ├── ValidationError (also ValueError)   bad input or a DynamoDB limit, before any request
    ├── UsageError (also RuntimeError)      wrong call for the session's state, shared across tasks
    ├── NotMapped (also TypeError)          an object of no model
    ├── NotFoundError (also LookupError)    refresh() of a record DynamoDB no longer holds
    ├── SchemaError                         a stored item does not fit its model: kind, field, type
    ├── CommitError                         .succeeded, .failed with causes; failed stay pending
    └── ChangeError                         the cause of one failed change (in CommitError.failed)
        ├── ConflictError                   a condition failed: the item changed or vanished
        │   ├── DuplicateKeyError           add() of a key that already exists
        │   └── ConditionFailed             a condition of yours (condition=, expect, check); .item
        ├── UniqueViolation                 a unique field's value is taken
        ├── ThrottledError                  DynamoDB kept throttling after every retry
        ├── AbortedError                    not written: another change cancelled the atomic commit
        ├── OutcomeUnknownError             an interrupted write that no sound check can settle
        └── ServiceError                    any other error DynamoDB or the network returned

`botocore` errors are translated into these in one place (`uow._execute`), and
always chained (`raise ... from`), so the original response stays reachable
through `__cause__`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uow.changes import Change
    from uow.results import CommitResult

__all__ = [
    "AbortedError",
    "ChangeError",
    "CommitError",
    "ConditionFailed",
    "ConflictError",
    "DuplicateKeyError",
    "NotFoundError",
    "NotMapped",
    "OutcomeUnknownError",
    "SchemaError",
    "ServiceError",
    "ThrottledError",
    "UniqueViolation",
    "UowError",
    "UsageError",
    "ValidationError",
]


class UowError(Exception):
    """The root of every error raised by `uow`."""


class ValidationError(UowError, ValueError):
    """Bad input or a DynamoDB limit, detected before any request is sent.

    Raised by `Session.add`/`update`/`delete_key` for malformed arguments and by
    `Session.commit` when a record cannot be encoded (wrong type, non-finite
    float, empty key, empty set inside a map or list, item over 400 KB, ...).
    Nothing has been sent when it is raised; fix the record and commit again.
    """


class UsageError(UowError, RuntimeError):
    """A call the session (or store) cannot accept in its current state.

    Raised when a session is used after it was closed, entered twice, or used
    by a second task while another task is inside one of its async calls.
    A Session must not be shared between tasks at the same time.
    """


class NotMapped(UowError, TypeError):
    """An object whose class is not decorated with `@uow.model`."""


class NotFoundError(UowError, LookupError):
    """`Session.refresh` found no item for the record: it was deleted elsewhere.

    The record has been expunged from the session when this is raised.
    """


class SchemaError(UowError):
    """A stored item does not fit the model it is read as.

    Raised by reads (`get`, `get_by`, `get_many`, `query`, `scan`,
    `refresh`) when an item lacks a field that has no default, holds a value
    that does not decode as the field's declared type, or (single-table
    design) is of another kind than the model asked for. The message names
    the model, the key and the field or kinds. Nothing is merged into the
    session: fix the stored item (or the model: give the field a default, or
    make it optional), or read the key as the model of its kind.
    """


class ChangeError(UowError):
    """The cause of one failed change, as listed in `CommitError.failed`."""


class ConflictError(ChangeError):
    """A write's condition failed: the item changed or vanished since it was read.

    Refresh the record (`await session.refresh(obj)`), re-apply the change and
    commit again.
    """


class DuplicateKeyError(ConflictError):
    """`Session.add` of a record whose key already exists in DynamoDB.

    `add` is create-only; load the existing record and change it, or delete it
    first (a delete then an add in one session is written as a replacement).
    """


class ConditionFailed(ConflictError):
    """A condition you attached did not hold on the stored item.

    Raised (as a cause in `CommitError.failed`) for `condition=` on
    `add`/`update`/`delete`/`delete_key`, `Session.expect`, and
    `Session.check` in an atomic commit, when uow's own conditions (existence,
    version, create-only) held and yours did not. The change stays pending.

    Attributes:
        item: the stored item as a model object, `None` if there is no item (or
            the server did not return it); read from the failed request itself
            (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so it is the item
            your condition was evaluated on.
    """

    def __init__(self, message: str, *, item: Any = None) -> None:
        super().__init__(message)
        self.item = item

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, {"item": self.item})


class UniqueViolation(ChangeError):
    """A unique field's value already belongs to another record.

    Raised (as a cause in `CommitError.failed`) when a record is added with,
    or changed to, a value of a `unique=` field that another record holds.
    Choose another value, or change the other record first.
    """


class ThrottledError(ChangeError):
    """DynamoDB throttled the request (or left items unprocessed) through every retry.

    The change is still pending; commit again later, or raise the retry budget
    with `uow.Retry`.
    """


class AbortedError(ChangeError):
    """Not written because another change cancelled the same atomic commit.

    Fix the change whose cause is not `AbortedError` (or drop it with
    `clear_record`), then commit again: this change is still pending.
    """


class OutcomeUnknownError(ChangeError):
    """A write was sent, its answer never came, and no sound check can tell whether it landed.

    `commit()` settles most interrupted writes by itself (see "Exactly once"
    in the docs). This cause is left when it cannot: an `ADD` (or other
    write that only DynamoDB's idempotency token protects) first sent more
    than 9 minutes ago (the token lasts 10), a versioned write whose item has
    since moved on by more versions (32) than `uow` keeps markers for, or a
    transaction in doubt one of whose records was since dropped from the
    session. The write is
    never sent again blindly: the change stays pending but is refused by
    every `commit()` until you settle it: `await session.refresh(obj)` (or
    `clear_record(...)`) drops it, then re-apply what is still missing.
    """


class ServiceError(ChangeError):
    """Any other error returned by DynamoDB or the network for one change.

    `code` is DynamoDB's error code (or the exception's class name for network
    errors); the original exception is chained as `__cause__`.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: pickle (a process pool's result) needs the recipe.
        return _rebuild, (type(self), self.args, {"code": self.code})


class CommitError(UowError):
    """Some changes of a commit failed; the others were written.

    Attributes:
        succeeded: the changes DynamoDB confirmed; they are now committed state.
        failed: `(change, cause)` pairs; these changes are still pending and the
            next `commit()` sends only them.
        result: the `CommitResult` of the attempt (requests, retries, time).
    """

    def __init__(
        self,
        message: str,
        *,
        succeeded: Sequence[Change],
        failed: Sequence[tuple[Change, ChangeError]],
        result: CommitResult | None = None,
    ) -> None:
        super().__init__(message)
        self.succeeded: tuple[Change, ...] = tuple(succeeded)
        self.failed: tuple[tuple[Change, ChangeError], ...] = tuple(failed)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: pickle (a process pool's result) needs the recipe.
        options = {"succeeded": self.succeeded, "failed": self.failed, "result": self.result}
        return _rebuild, (type(self), self.args, options)


def _rebuild(cls: type[UowError], args: tuple[Any, ...], options: dict[str, Any]) -> UowError:
    """Unpickle an error whose constructor takes keyword-only arguments."""
    return cls(*args, **options)
