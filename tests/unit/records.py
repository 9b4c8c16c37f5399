"""Identity-map records built directly, as `uow.session` makes them, for planner tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from uow.changes import Op
from uow.codec import codec_for
from uow.identity import Key, Record, RecordState, key_of, key_of_object
from uow.model import info_of


def new(obj: Any) -> Record:
    """A record `Session.add(obj)` makes: create-only."""
    info = info_of(type(obj))
    return Record(key_of_object(info, obj), info, codec_for(type(obj)), RecordState.NEW, obj=obj)


def replace(obj: Any) -> Record:
    """A record `Session.add(obj, overwrite=True)` makes: an unconditional put."""
    info = info_of(type(obj))
    return Record(
        key_of_object(info, obj), info, codec_for(type(obj)), RecordState.REPLACE, obj=obj
    )


def loaded(obj: Any) -> Record:
    """A record read from DynamoDB: `obj` is its committed state until it is mutated."""
    info = info_of(type(obj))
    codec = codec_for(type(obj))
    return Record(
        key_of_object(info, obj),
        info,
        codec,
        RecordState.LOADED,
        obj=obj,
        base=obj,
        snapshot=codec.snapshot(obj),
    )


def mutated(obj: Any, change: Callable[[Any], object]) -> Record:
    """A loaded record of `obj`, then `change(obj)` applied to the live object."""
    record = loaded(obj)
    change(obj)
    return record


def blind(model: type, pk: Any, sk: Any = None, *ops: Op) -> Record:
    """A record of blind `Session.update()` operations on an item that was not loaded."""
    info = info_of(model)
    return Record(key_of(info, pk, sk), info, codec_for(model), RecordState.BLIND, blind=list(ops))


def deleted(model: type, pk: Any, sk: Any = None) -> Record:
    """A record `Session.delete_key(model, pk, sk)` makes."""
    info = info_of(model)
    key: Key = key_of(info, pk, sk)
    return Record(key, info, codec_for(model), RecordState.DELETED)


def read_update(params: dict[str, Any]) -> set[tuple[str, str, Any]]:
    """The (action, path, value) triples of an UpdateItem's expression, placeholders resolved.

    Paths come back in `format_path` form (`profile.city`, `tags[2]`); values as
    attribute values (`None` for REMOVE).
    """
    names: dict[str, str] = params.get("ExpressionAttributeNames", {})
    values: dict[str, Any] = params.get("ExpressionAttributeValues", {})

    def path(text: str) -> str:
        out = ""
        for match in re.finditer(r"(#\w+)|\[(\d+)\]|\.", text):
            if match.group(1):
                out += ("." if out else "") + names[match.group(1)]
            elif match.group(2):
                out += f"[{match.group(2)}]"
        return out

    triples: set[tuple[str, str, Any]] = set()
    for clause in re.split(r" (?=(?:SET|REMOVE|ADD) )", params["UpdateExpression"]):
        action, _, body = clause.partition(" ")
        for part in body.split(", "):
            if action == "SET":
                target, _, value = part.partition(" = ")
                triples.add((action, path(target), _freeze(values[value])))
            elif action == "REMOVE":
                triples.add((action, path(part), None))
            else:
                target, _, value = part.partition(" ")
                triples.add((action, path(target), _freeze(values[value])))
    return triples


def _freeze(value: Any) -> Any:
    """A hashable form of an attribute value, for comparing sets of triples."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
