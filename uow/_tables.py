"""A table's definition from the models stored in it: keys, indexes, projections, TTL.

Several models may share a table (single-table design). Their declarations
are merged: one key schema, the union of their indexes, one kind attribute,
one TTL attribute. Declarations that cannot be merged raise
`ValidationError` before any request, naming both models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from uow.codec import codec_for, optional_inner
from uow.errors import ValidationError
from uow.model import Index, ModelInfo

__all__ = ["TableSpec", "table_spec"]

_KEY_TAGS = {"str": "S", "int": "N", "bytes": "B"}


@attrs.frozen(kw_only=True)
class TableSpec:
    """What `create_tables` asks of one table: the `CreateTable` parameters, the TTL attribute."""

    params: dict[str, Any]
    ttl: str | None
    owner: str


def _tag(info: ModelInfo, attribute: str, *, optional: bool) -> str:
    """The key attribute type (`S`, `N`, `B`) of a field; an index key may be optional."""
    kind = codec_for(info.cls).types[attribute]
    inner = optional_inner(kind) or kind
    if inner is not kind and not optional:
        raise ValidationError(
            f"{info.name}.{attribute} is a key of table {info.table!r}, so it cannot be optional "
            f"({kind.name}); only an index key may be (a sparse index)"
        )
    tag = _KEY_TAGS.get(inner.name)
    if tag is None:
        raise ValidationError(
            f"{info.name}.{attribute} is a key attribute of type {kind.name}; "
            "key attributes must be str, int or bytes (optional for an index key)"
        )
    return tag


def _projection(index: Index, keys: set[str], extra: Sequence[str]) -> dict[str, Any]:
    if index.projection == "all":
        return {"ProjectionType": "ALL"}
    if index.projection == "keys":
        return {"ProjectionType": "KEYS_ONLY"}
    # The kind and TTL attributes ride along, so rows of other kinds or expired rows
    # are skipped without reading their items.
    fields = [f for f in (*index.projection, *extra) if f not in keys]
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(dict.fromkeys(fields))}


def table_spec(name: str, infos: Sequence[ModelInfo]) -> TableSpec:
    """Merge the declarations of the models stored in table `name`.

    Raises:
        ValidationError: the models disagree on key names or types, kind
            attribute, TTL attribute or an index; two share a kind; a model
            sharing the table has no kind; or a key field has a type that
            DynamoDB keys cannot hold.
    """
    infos = list({id(info): info for info in infos}.values())
    first = infos[0]
    attributes: dict[str, tuple[str, ModelInfo]] = {}

    def define(info: ModelInfo, attribute: str, *, optional: bool) -> None:
        tag = _tag(info, attribute, optional=optional)
        seen = attributes.setdefault(attribute, (tag, info))
        if seen[0] != tag:
            raise ValidationError(
                f"{seen[1].name} and {info.name} share table {name!r} but disagree on the type "
                f"of key attribute {attribute!r} ({seen[0]} vs {tag})"
            )

    kinds: dict[str, ModelInfo] = {}
    for info in infos:
        if (info.pk, info.sk) != (first.pk, first.sk):
            raise ValidationError(
                f"{first.name} and {info.name} share table {name!r} but have different "
                f"keys ({first.key_fields} vs {info.key_fields})"
            )
        for attribute in info.key_fields:
            define(info, attribute, optional=False)
        if len(infos) > 1 and info.kind is None:
            raise ValidationError(
                f"{info.name} shares table {name!r} with "
                f"{', '.join(i.name for i in infos if i is not info)} but has no kind=, so "
                "their items cannot be told apart; give each model a kind"
            )
        if info.kind_attribute != first.kind_attribute:
            raise ValidationError(
                f"{first.name} and {info.name} share table {name!r} but name the kind "
                f"attribute differently ({first.kind_attribute!r} vs {info.kind_attribute!r})"
            )
        if info.kind is not None:
            other = kinds.setdefault(info.kind, info)
            if other is not info:
                raise ValidationError(
                    f"{other.name} and {info.name} share table {name!r} and the kind "
                    f"{info.kind!r}; each model of a table needs a kind of its own"
                )
    ttls = {info.ttl: info for info in infos if info.ttl is not None}
    if len(ttls) > 1:
        (a, one), (b, two) = list(ttls.items())[:2]
        raise ValidationError(
            f"{one.name} and {two.name} share table {name!r} but name different TTL attributes "
            f"({a!r} vs {b!r}); DynamoDB allows one per table"
        )
    ttl = next(iter(ttls), None)

    indexes: dict[str, tuple[Index, ModelInfo]] = {}
    for info in infos:
        for index_name, index in info.indexes.items():
            seen_index = indexes.setdefault(index_name, (index, info))
            if seen_index[0] != index:
                raise ValidationError(
                    f"{seen_index[1].name} and {info.name} share table {name!r} but declare "
                    f"index {index_name!r} differently ({seen_index[0]} vs {index})"
                )
            for index_key in (index.pk, index.sk):
                if index_key is not None:
                    define(info, index_key, optional=True)

    def key_schema(pk: str, sk: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": pk, "KeyType": "HASH"}]
        if sk:
            schema.append({"AttributeName": sk, "KeyType": "RANGE"})
        return schema

    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(first.pk, first.sk),
        "BillingMode": "PAY_PER_REQUEST",
    }
    extra = [*([first.kind_attribute] if first.kind else []), *([ttl] if ttl else [])]
    if indexes:
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index_name,
                "KeySchema": key_schema(index.pk, index.sk),
                "Projection": _projection(
                    index, {*first.key_fields, index.pk, *([index.sk] if index.sk else [])}, extra
                ),
            }
            for index_name, (index, _) in sorted(indexes.items())
        ]
    params["AttributeDefinitions"] = [
        {"AttributeName": attribute, "AttributeType": tag}
        for attribute, (tag, _) in sorted(attributes.items())
    ]
    return TableSpec(params=params, ttl=ttl, owner=" and ".join(i.name for i in infos))
