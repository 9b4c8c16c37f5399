"""uow: an asyncio unit of work for Amazon DynamoDB.

One object per item per session (identity map), an ordered change log, and a
commit that turns the log into the fewest DynamoDB requests, sent concurrently.
See `Store` and `Session`.
"""

from uow._pages import Page
from uow._transport import Transport, TransportObserver
from uow.cache import cache_disabled
from uow.changes import Change, ChangeKind
from uow.config import Retry
from uow.errors import (
    AbortedError,
    ChangeError,
    CommitError,
    ConditionFailed,
    ConflictError,
    DuplicateKeyError,
    NotFoundError,
    NotMapped,
    OutcomeUnknownError,
    SchemaError,
    ServiceError,
    ThrottledError,
    UniqueViolation,
    UowError,
    UsageError,
    ValidationError,
)
from uow.identity import IdentityMap, Key, RecordState
from uow.model import Index, ModelInfo, info_of, model
from uow.results import CommitResult, ReadStats
from uow.retrying import retry_on_conflict
from uow.session import Session, SessionState
from uow.store import Store, StoreState

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "Change",
    "ChangeError",
    "ChangeKind",
    "CommitError",
    "CommitResult",
    "ConditionFailed",
    "ConflictError",
    "DuplicateKeyError",
    "IdentityMap",
    "Index",
    "Key",
    "ModelInfo",
    "NotFoundError",
    "NotMapped",
    "OutcomeUnknownError",
    "Page",
    "ReadStats",
    "RecordState",
    "Retry",
    "SchemaError",
    "ServiceError",
    "Session",
    "SessionState",
    "Store",
    "StoreState",
    "ThrottledError",
    "Transport",
    "TransportObserver",
    "UniqueViolation",
    "UowError",
    "UsageError",
    "ValidationError",
    "__version__",
    "cache_disabled",
    "info_of",
    "model",
    "retry_on_conflict",
]
