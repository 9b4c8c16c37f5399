"""`@uow.model`: DynamoDB metadata attached to a plain attrs class."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import attrs

from uow.codec import codec_for, forget_codec
from uow.errors import NotMapped, ValidationError

__all__ = ["KIND_ATTRIBUTE", "Index", "ModelInfo", "Projection", "info_of", "model"]

_ATTR = "__uow_model__"
# The attribute holding an item's kind in single-table design, unless renamed.
KIND_ATTRIBUTE = "_kind"
T = TypeVar("T")


Projection = Literal["all", "keys"] | tuple[str, ...]


def _projection(value: Any) -> str | tuple[str, ...]:
    if value in ("all", "keys"):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValidationError(
        f'Index projection must be "all", "keys" or a tuple of field names, got {value!r}'
    )


@attrs.frozen
class Index:
    """A global secondary index: its key attributes (fields of the model) and projection.

    An index key field may be optional (`str | None`): a record whose value is
    `None` is not in the index (a sparse index).

    Args:
        pk: the index's partition-key field.
        sk: the index's sort-key field, if any.
        projection: what the index copies of each item: `"all"` (the
            default), `"keys"` (the table's and the index's keys only), or a
            tuple of field names (DynamoDB's `INCLUDE`). Reads through an index
            that does not hold every field complete each row with
            `BatchGetItem`, so a session never holds a partial object.
    """

    pk: str
    sk: str | None = None
    projection: Projection = attrs.field(default="all", kw_only=True, converter=_projection)


@attrs.frozen(kw_only=True)
class ModelInfo:
    """What `uow` knows of a model class: table, key, unique/version fields, indexes.

    `fields` lists the attrs fields in declaration order; a record's committed
    snapshot is a tuple in that order. `unique` holds one tuple of fields per
    uniqueness constraint (`("email",)` for a single field). `kind` is the
    value of the kind attribute (named `kind_attribute`) its items carry, or
    `None` for a model that owns its table alone; `ttl` names the field
    DynamoDB's time to live reads.
    """

    cls: type
    table: str
    pk: str
    sk: str | None
    unique: tuple[tuple[str, ...], ...]
    version: str | None
    indexes: Mapping[str, Index]
    fields: tuple[str, ...]
    kind: str | None = None
    kind_attribute: str = KIND_ATTRIBUTE
    ttl: str | None = None

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

    # Every field that takes part in a uniqueness constraint, in declaration order.
    unique_fields: tuple[str, ...] = attrs.field(init=False)

    @unique_fields.default
    def _unique_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(field for fields in self.unique for field in fields))


def model(
    *,
    table: str,
    pk: str,
    sk: str | None = None,
    unique: Sequence[str | Sequence[str]] = (),
    version: str | None = None,
    indexes: Mapping[str, Index] | None = None,
    kind: str | None = None,
    kind_attribute: str = KIND_ATTRIBUTE,
    ttl: str | None = None,
) -> Callable[[type[T]], type[T]]:
    """Attach DynamoDB metadata to an attrs class; the class itself is unchanged.

    Args:
        table: the table name (a `Store`'s `table_prefix` is prepended).
        pk: the partition-key field.
        sk: the sort-key field, if the table has one.
        unique: fields whose values must be unique across records (guard
            items); an entry may be a tuple of fields, whose combination of
            values is unique (a combination holding a `None` is not
            constrained).
        version: an int field used for optimistic locking.
        indexes: global secondary indexes by name.
        kind: single-table design: the items of this model carry an attribute
            (`kind_attribute`) holding this string, and reads of this model
            accept only those items. Give every model of a shared table one.
        kind_attribute: the name of that attribute (every model of one table
            must use the same); it must not be a field of the model.
        ttl: a field of type `datetime` (aware) or `int` (epoch seconds),
            optional, that DynamoDB's time to live reads; it is stored as a
            number of epoch seconds, and reads treat an item whose time has
            passed as absent.

    Raises:
        ValidationError: a named field does not exist, an argument is
            malformed, or the class is not an attrs class (decorate with
            `@attrs.define` first, i.e. below).
    """
    index_map = dict(indexes or {})
    constraints = _constraints(unique)

    def decorate(cls: type[T]) -> type[T]:
        if not attrs.has(cast(type, cls)):
            raise ValidationError(
                f"@uow.model needs an attrs class: put @attrs.define below @uow.model "
                f"on {cls.__name__}"
            )
        fields = tuple(f.name for f in attrs.fields(cast(Any, cls)))
        named = [pk, *([sk] if sk else []), *([version] if version else [])]
        named += [ttl] if ttl else []
        named += [field for fields in constraints for field in fields]
        for index in index_map.values():
            if not isinstance(index, Index):
                raise ValidationError(f"{cls.__name__}: indexes= takes uow.Index values")
            named += [index.pk, *([index.sk] if index.sk else [])]
            if isinstance(index.projection, tuple):
                named += index.projection
        for name in named:
            if name not in fields:
                raise ValidationError(f"{cls.__name__} has no field {name!r} (named in @uow.model)")
        if not table:
            raise ValidationError(f"{cls.__name__}: @uow.model needs a non-empty table name")
        if kind is not None and (not isinstance(kind, str) or not kind):
            raise ValidationError(f"{cls.__name__}: kind= must be a non-empty string")
        if not isinstance(kind_attribute, str) or not kind_attribute:
            raise ValidationError(f"{cls.__name__}: kind_attribute= must be a non-empty string")
        if kind_attribute in fields:
            raise ValidationError(
                f"{cls.__name__}.{kind_attribute} is a field, so it cannot be the kind attribute; "
                "rename the field or pass another kind_attribute="
            )
        setattr(
            cls,
            _ATTR,
            ModelInfo(
                cls=cls,
                table=table,
                pk=pk,
                sk=sk,
                unique=constraints,
                version=version,
                indexes=index_map,
                fields=fields,
                kind=kind,
                kind_attribute=kind_attribute,
                ttl=ttl,
            ),
        )
        forget_codec(cls)  # a codec made before decoration does not know the TTL field
        if ttl is not None:
            _check_ttl(cls)
        return cls

    return decorate


def _check_ttl(cls: type) -> None:
    """Refuse a TTL field of the wrong type now, if its annotations can be resolved yet."""
    try:
        attrs.resolve_types(cls)
    except NameError:  # a forward reference: checked when the codec is first built
        return
    codec_for(cls)  # raises ValidationError for a TTL field of the wrong type


def _constraints(unique: Any) -> tuple[tuple[str, ...], ...]:
    """`unique=` as one tuple of fields per constraint; malformed entries are refused."""
    if isinstance(unique, str):
        raise ValidationError(f"unique= takes a tuple of fields, e.g. unique=({unique!r},)")
    out: list[tuple[str, ...]] = []
    for entry in unique:
        fields = (entry,) if isinstance(entry, str) else tuple(entry)
        if not fields or not all(isinstance(f, str) and f for f in fields):
            raise ValidationError(f"unique=: {entry!r} is not a field name or a tuple of them")
        if len(set(fields)) != len(fields):
            raise ValidationError(f"unique=: {entry!r} names a field twice")
        if fields in out:
            raise ValidationError(f"unique=: {entry!r} is declared twice")
        out.append(fields)
    return tuple(out)


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
