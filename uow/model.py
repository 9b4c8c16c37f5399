"""`@uow.model`: DynamoDB metadata attached to a plain attrs class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import attrs

from uow.errors import NotMapped, ValidationError

__all__ = ["Index", "ModelInfo", "info_of", "model"]

_ATTR = "__uow_model__"
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Index:
    """A global secondary index: its key attributes (fields of the model)."""

    pk: str
    sk: str | None = None


@attrs.frozen(kw_only=True)
class ModelInfo:
    """What `uow` knows of a model class: table, key, unique/version fields, indexes.

    `fields` lists the attrs fields in declaration order; a record's committed
    snapshot is a tuple in that order.
    """

    cls: type
    table: str
    pk: str
    sk: str | None
    unique: tuple[str, ...]
    version: str | None
    indexes: Mapping[str, Index]
    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        """The model class's name, for messages."""
        return self.cls.__name__

    # The primary-key field names: `(pk,)` or `(pk, sk)` (read on every planned write).
    key_fields: tuple[str, ...] = attrs.field(init=False)

    # Fields uow manages: the key and the version (no change by assignment).
    managed: frozenset[str] = attrs.field(init=False)

    @key_fields.default
    def _key_fields(self) -> tuple[str, ...]:
        return (self.pk,) if self.sk is None else (self.pk, self.sk)

    @managed.default
    def _managed(self) -> frozenset[str]:
        return frozenset((*self.key_fields, *([self.version] if self.version else [])))


def model(
    *,
    table: str,
    pk: str,
    sk: str | None = None,
    unique: tuple[str, ...] = (),
    version: str | None = None,
    indexes: Mapping[str, Index] | None = None,
) -> Callable[[type[T]], type[T]]:
    """Attach DynamoDB metadata to an attrs class; the class itself is unchanged.

    Args:
        table: the table name (a `Store`'s `table_prefix` is prepended).
        pk: the partition-key field.
        sk: the sort-key field, if the table has one.
        unique: fields whose values must be unique across records (guard items).
        version: an int field used for optimistic locking.
        indexes: global secondary indexes by name.

    Raises:
        ValidationError: a named field does not exist, or the class is not an
            attrs class (decorate with `@attrs.define` first, i.e. below).
    """
    index_map = dict(indexes or {})

    def decorate(cls: type[T]) -> type[T]:
        if not attrs.has(cast(type, cls)):
            raise ValidationError(
                f"@uow.model needs an attrs class: put @attrs.define below @uow.model "
                f"on {cls.__name__}"
            )
        fields = tuple(f.name for f in attrs.fields(cast(Any, cls)))
        named = [pk, *([sk] if sk else []), *unique, *([version] if version else [])]
        for index in index_map.values():
            named += [index.pk, *([index.sk] if index.sk else [])]
        for name in named:
            if name not in fields:
                raise ValidationError(f"{cls.__name__} has no field {name!r} (named in @uow.model)")
        if not table:
            raise ValidationError(f"{cls.__name__}: @uow.model needs a non-empty table name")
        setattr(
            cls,
            _ATTR,
            ModelInfo(
                cls=cls,
                table=table,
                pk=pk,
                sk=sk,
                unique=tuple(unique),
                version=version,
                indexes=index_map,
                fields=fields,
            ),
        )
        return cls

    return decorate


def info_of(cls: type) -> ModelInfo:
    """Return the `ModelInfo` of a model class.

    Raises:
        NotMapped: the class was not decorated with `@uow.model`.
    """
    info = cls.__dict__.get(_ATTR)
    if info is None:
        raise NotMapped(f"{cls.__name__} is not a uow model: decorate it with @uow.model(...)")
    assert isinstance(info, ModelInfo)
    return info
