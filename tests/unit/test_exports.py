"""The public surface of `uow` is exactly the intended names."""

from __future__ import annotations

import uow


class TestExports:
    """`uow.__all__` is the whole public API, pinned."""

    def test_all_is_pinned(self) -> None:
        """Adding or removing a public name is a deliberate change to this list."""
        assert uow.__all__ == [
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

    def test_every_exported_name_exists(self) -> None:
        """Each name in `__all__` is an attribute of the package."""
        assert [name for name in uow.__all__ if not hasattr(uow, name)] == []


class TestKey:
    """`uow.Key` is the named tuple `(table, pk, sk)` that docs/concepts.md describes."""

    def test_a_named_tuple_of_table_pk_and_sk(self) -> None:
        """Fields by name and by position; `sk` defaults to `None`; keys built alike are equal."""
        key = uow.Key("users", "u1")
        assert (key.table, key.pk, key.sk) == ("users", "u1", None)
        assert tuple(key) == ("users", "u1", None)
        assert key == uow.Key("users", "u1", None)
        assert hash(key) == hash(uow.Key("users", "u1"))
        assert str(uow.Key("orders", "c1", "o1")) == "('c1', 'o1')"
