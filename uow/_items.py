"""What a stored item is to the models that read it: its kind, its expiry, whether a row is whole.

Single-table design puts the items of several models in one table; each
model's items carry a kind attribute (`ModelInfo.kind_attribute`) holding
the model's `kind`. A read of one model accepts only items of its kind; a read
of several models (`query((Customer, Invoice), ...)`) takes each item as the
model of its kind. A model without a `kind` owns its table and accepts every
item.

A model with `ttl=` treats an item whose time to live has passed as absent:
DynamoDB deletes expired items lazily (within days), so reads must not show
them in the meantime.

Index rows hold only what the index projects: a row is *whole* when the
index projects every field of the models read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uow.codec import AttributeValue, Item
from uow.errors import SchemaError, ValidationError
from uow.model import Index, ModelInfo

__all__ = [
    "check_models",
    "expired",
    "index_of",
    "kind_of",
    "kind_value",
    "model_of_item",
    "rows_are_whole",
    "wrong_kind",
]


def kind_value(info: ModelInfo) -> AttributeValue:
    """The kind attribute's stored value for a model with a `kind`."""
    return {"S": str(info.kind)}


def kind_of(info: ModelInfo, item: Item) -> str | None:
    """The kind an item holds in `info`'s kind attribute (`None` if it holds none)."""
    av = item.get(info.kind_attribute)
    if av is None:
        return None
    value = av.get("S")
    return value if isinstance(value, str) else repr(av)


def model_of_item(infos: Sequence[ModelInfo], item: Item) -> ModelInfo | None:
    """The model among `infos` that this item is of, or `None` (another kind).

    A single model without a `kind` accepts every item.
    """
    first = infos[0]
    if first.kind is None:
        return first
    av = item.get(first.kind_attribute)
    if av is None:
        return None
    stored = av.get("S")
    for info in infos:
        if info.kind == stored:
            return info
    return None


def _described(info: ModelInfo) -> str:
    return f"{info.name} (kind {info.kind!r})" if info.kind is not None else info.name


def wrong_kind(
    info: ModelInfo, key: Any, stored: Item | None, held: ModelInfo | None
) -> SchemaError:
    """The error for a read of `info` at a key whose item (or mapped object) is of another kind."""
    if held is not None:
        return SchemaError(
            f"{info.name} {key}: this session holds the item as {_described(held)}, not as "
            f"{_described(info)}; read it as {held.name}"
        )
    found = None if stored is None else kind_of(info, stored)
    if found is None:
        return SchemaError(
            f"{info.name} {key}: the stored item has no {info.kind_attribute!r} attribute, so it "
            f"is not of kind {info.kind!r} ({info.name})"
        )
    return SchemaError(
        f"{info.name} {key}: the stored item is of kind {found!r}, not {info.kind!r} "
        f"({info.name}); read it as the model of kind {found!r}"
    )


def expired(info: ModelInfo, item: Item, now: float) -> bool:
    """True when the item's time to live has passed (DynamoDB will delete it)."""
    if info.ttl is None:
        return False
    av = item.get(info.ttl)
    if av is None:
        return False
    text = av.get("N")
    if not isinstance(text, str):
        return False  # not a number: DynamoDB's TTL ignores it too
    try:
        return float(text) <= now
    except ValueError:  # pragma: no cover - DynamoDB stores only valid numbers
        return False


def check_models(models: Sequence[type], call: str) -> None:
    """Several models read together must share a table and tell their items apart by kind.

    Raises:
        ValidationError: no model, models of different tables or keys, a model
            without a `kind`, two with one kind, or different kind attributes.
    """
    from uow.model import info_of

    if not models:
        raise ValidationError(f"Session.{call} needs at least one model")
    infos = [info_of(model) for model in models]
    first = infos[0]
    kinds: dict[str | None, ModelInfo] = {}
    for info in infos:
        if info.kind is None:
            raise ValidationError(
                f"Session.{call}: {info.name} has no kind=, so its items cannot be told apart "
                "from other models' items; declare @uow.model(..., kind=...) on each model"
            )
        if (info.table, info.pk, info.sk) != (first.table, first.pk, first.sk):
            raise ValidationError(
                f"Session.{call}: {first.name} and {info.name} do not share a table and key "
                f"({first.table}/{first.key_fields} vs {info.table}/{info.key_fields})"
            )
        if info.kind_attribute != first.kind_attribute:
            raise ValidationError(
                f"Session.{call}: {first.name} and {info.name} name the kind attribute "
                f"differently ({first.kind_attribute!r} vs {info.kind_attribute!r})"
            )
        if info.kind in kinds and kinds[info.kind] is not info:
            raise ValidationError(
                f"Session.{call}: {kinds[info.kind].name} and {info.name} share the kind "
                f"{info.kind!r}"
            )
        kinds[info.kind] = info


def index_of(infos: Sequence[ModelInfo], index: str) -> Index | None:
    """The declaration of `index` by the first of `infos` that declares it."""
    for info in infos:
        declared = info.indexes.get(index)
        if declared is not None:
            return declared
    return None


def rows_are_whole(infos: Sequence[ModelInfo], index: str | None) -> bool:
    """True when rows read through `index` (or the table) hold every field of every model."""
    if index is None:
        return True
    declared = index_of(infos, index)
    if declared is None or declared.projection == "all":
        return True
    projection = declared.projection
    held = {declared.pk, *([declared.sk] if declared.sk else [])}
    if isinstance(projection, tuple):
        held.update(projection)
    return all(held.union(info.key_fields).issuperset(info.fields) for info in infos)
