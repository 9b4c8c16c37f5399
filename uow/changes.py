"""Pending changes: document paths, field operations and their coalescing, `Change` values.

A blind `Session.update()` records operations (`SET`/`REMOVE`/`ADD` on a
document path). Operations on one record coalesce in call order into a set of
non-overlapping paths, because DynamoDB rejects an update expression whose
paths overlap (`profile` and `profile.city`):

* a later operation on a path replaces earlier ones on that path or below it;
* an operation below a pending `SET` is folded into the value being set;
* a `SET` below a pending `REMOVE` becomes a `SET` of a new map holding it;
* `ADD` (top-level numbers and sets) accumulates, and folds into a pending `SET`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

from uow.codec import FieldType, ModelCodec, Path, _Nested, _Optional, format_path
from uow.errors import ValidationError
from uow.identity import Key

__all__ = [
    "Change",
    "ChangeKind",
    "Op",
    "merge_op",
    "missing_at",
    "parse_path",
    "path_remove",
    "path_set",
    "resolve_op",
]

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|(\.)")


class ChangeKind(enum.Enum):
    """What a pending change writes."""

    CREATE = "create"  # put, only if the key does not exist yet (Session.add)
    PUT = "put"  # unconditional put (a delete then an add, or add(overwrite=True))
    UPDATE = "update"  # SET/REMOVE/ADD of the changed paths only
    DELETE = "delete"
    CHECK = "check"  # a ConditionCheck of an item not written (Session.check, atomic only)


@attrs.frozen(slots=True)
class Change:
    """One record's net pending change, as `Session.pending` lists it.

    Attributes:
        kind: create, put, update or delete.
        model: the model class.
        key: the record's key.
        obj: the object written (`None` for deletes and blind updates).
        set: document path → new value, for updates.
        remove: document paths removed, for updates.
        add: top-level field → amount added (numbers) or elements added (sets).
    """

    kind: ChangeKind
    model: type
    key: Key
    obj: Any = attrs.field(default=None, eq=False, repr=False)
    set: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    remove: tuple[str, ...] = ()
    add: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def describe(self) -> str:
        """`'update User 'u1''`: for messages."""
        return f"{self.kind.value} {self.model.__name__} {self.key}"


class Op(NamedTuple):
    """One field operation on a document path (a named tuple: commit builds many)."""

    action: str  # "SET" | "REMOVE" | "ADD"
    path: Path
    value: Any = None


def parse_path(text: str) -> Path:
    """Parse `profile.address.city` or `tags[2]` into segments.

    Raises:
        ValidationError: the path is empty or malformed.
    """
    segments: list[str | int] = []
    pos = 0
    expect_name = True
    for match in _SEGMENT.finditer(text):
        if match.start() != pos:
            break
        name, index, dot = match.groups()
        if dot:
            if expect_name:
                break
            expect_name = True
        elif name is not None:
            if not expect_name:
                break
            segments.append(name)
            expect_name = False
        else:
            if expect_name and segments:
                break
            if not segments:
                break
            segments.append(int(index))
        pos = match.end()
    if not text or pos != len(text) or expect_name or not segments:
        raise ValidationError(
            f"malformed document path {text!r}: write it as 'field', 'field.key' or 'field[2]'"
        )
    return tuple(segments)


def type_at(codec: ModelCodec, path: Path) -> FieldType:
    """The declared type at `path` in a record of `codec`'s class."""
    head = path[0]
    if not isinstance(head, str) or head not in codec.types:
        raise ValidationError(f"{codec.cls.__name__} has no field {head!r}")
    kind = codec.types[head]
    for i, segment in enumerate(path[1:], start=1):
        kind = kind.child(segment, path[:i])
    return kind


def is_field(codec: ModelCodec, path: Path) -> bool:
    """True when the last segment of `path` names an attrs field (None = absent)."""
    if len(path) == 1:
        return True
    parent = type_at(codec, path[:-1])
    if isinstance(parent, _Optional):
        parent = parent.inner
    return isinstance(parent, _Nested)


def missing_at(codec: ModelCodec, path: Path) -> Any:
    """What the value at `path` reads back as once removed (an attrs field's missing value)."""
    if len(path) == 1:
        return codec.missing(str(path[0]))
    parent = type_at(codec, path[:-1])
    if isinstance(parent, _Optional):
        parent = parent.inner
    if isinstance(parent, _Nested):
        return parent.codec.missing(str(path[-1]))
    return None


def resolve_op(codec: ModelCodec, key_fields: tuple[str, ...], op: Op) -> Op:
    """Check one operation against the model; normalise SET None to REMOVE.

    Raises:
        ValidationError: unknown field, key field, type mismatch, ADD on a
            nested path or on a type that is not a number or set.
    """
    path = op.path
    name = codec.cls.__name__
    if path[0] in key_fields:
        raise ValidationError(
            f"{name}.{path[0]} is part of the key and cannot be updated; delete and add instead"
        )
    kind = type_at(codec, path)
    field = is_field(codec, path)
    where = format_path(path)
    if op.action == "SET":
        if op.value is None and field:
            return Op("REMOVE", path)
        av = kind.encode(op.value, path) if field else kind.encode_element(op.value, path)
        if av is None:  # an empty set in field context
            return Op("REMOVE", path)
        return op
    if op.action == "REMOVE":
        return op
    if len(path) != 1:
        raise ValidationError(f"{name}: ADD works on top-level fields only, not {where!r}")
    value = op.value
    if isinstance(value, set | frozenset):
        if not value:
            raise ValidationError(f"{name}.{where}: ADD of an empty set")
        kind.encode(set(value), path)
        return Op("ADD", path, set(value))
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(
            f"{name}.{where}: ADD takes a number or a set, got {type(value).__name__}"
        )
    kind.encode(value, path)
    return op


def _combine_add(current: Any, delta: Any) -> Any:
    if isinstance(delta, set):
        return set(current or ()) | delta
    return (current or 0) + delta


def merge_op(ops: list[Op], new: Op) -> None:
    """Fold `new` into `ops` (non-overlapping, in call order), keeping them non-overlapping."""
    path = new.path
    for i, op in enumerate(ops):
        if op.path == path:
            if new.action != "ADD":
                ops[i] = new
            elif op.action == "ADD":
                ops[i] = Op("ADD", path, _combine_add(op.value, new.value))
            elif op.action == "SET":
                ops[i] = Op("SET", path, _combine_add(op.value, new.value))
            else:  # ADD after REMOVE starts from nothing
                ops[i] = Op("SET", path, _combine_add(None, new.value))
            return
        depth = len(op.path)
        if path[:depth] == op.path:
            rest = path[depth:]
            if op.action == "SET":
                value = _copy(op.value)
                if new.action == "SET":
                    value = _set_in(value, rest, new.value, op.path)
                else:
                    _remove_in(value, rest)
                ops[i] = Op("SET", op.path, value)
            elif op.action == "REMOVE":
                if new.action == "SET":
                    ops[i] = Op("SET", op.path, _build(rest, new.value, op.path))
            else:
                raise ValidationError(
                    f"{format_path(path)} lies inside {format_path(op.path)}, "
                    "which has a pending ADD"
                )
            return
    ops[:] = [op for op in ops if op.path[: len(path)] != path]
    ops.append(new)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, set):
        return set(value)
    if attrs.has(type(value)):
        return attrs.evolve(value)
    return value


def _build(rest: Path, value: Any, base: Path) -> Any:
    for segment in reversed(rest):
        if not isinstance(segment, str):
            raise ValidationError(
                f"cannot set {format_path(base + rest)}: {format_path(base)} is removed "
                "earlier in this session, so there is no list to index"
            )
        value = {segment: value}
    return value


def _set_in(container: Any, rest: Path, value: Any, base: Path) -> Any:
    path_set(container, rest, value, where=base)
    return container


def _remove_in(container: Any, rest: Path) -> None:
    path_remove(container, rest, absent=None, missing_ok=True)


def _step(node: Any, segment: str | int, where: Path) -> Any:
    try:
        if isinstance(segment, str) and attrs.has(type(node)):
            return getattr(node, segment)
        return node[segment]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ValidationError(
            f"document path {format_path(where)!r} does not exist on the object"
        ) from None


def path_set(root: Any, path: Path, value: Any, *, where: Path = ()) -> None:
    """Set `value` at `path` below `root` (an attrs instance, dict or list).

    Setting a list index past the end appends, as DynamoDB does.

    Raises:
        ValidationError: an intermediate path does not exist.
    """
    node = root
    for i, segment in enumerate(path[:-1]):
        node = _step(node, segment, where + path[: i + 1])
        if node is None:
            raise ValidationError(
                f"document path {format_path(where + path[: i + 1])!r} does not exist on the object"
            )
    last = path[-1]
    if isinstance(last, str) and attrs.has(type(node)):
        object.__setattr__(node, last, value)
    elif isinstance(node, list) and isinstance(last, int):
        if last < len(node):
            node[last] = value
        else:
            node.append(value)
    elif isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    else:
        raise ValidationError(f"document path {format_path(where + path)!r} does not fit the value")


def path_remove(root: Any, path: Path, *, absent: Any, missing_ok: bool = True) -> None:
    """Remove the value at `path` (an attrs field becomes `absent`), as DynamoDB's REMOVE."""
    node = root
    for i, segment in enumerate(path[:-1]):
        try:
            node = _step(node, segment, path[: i + 1])
        except ValidationError:
            if missing_ok:
                return
            raise
        if node is None:
            return
    last = path[-1]
    if isinstance(last, str) and attrs.has(type(node)):
        object.__setattr__(node, last, absent)
    elif isinstance(node, list) and isinstance(last, int):
        if last < len(node):
            del node[last]
    elif isinstance(node, dict):
        node.pop(last, None)
