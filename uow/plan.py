"""From the change log to DynamoDB requests: the update group and the remove group.

Planning is pure: it encodes and validates every pending record, and nothing
is sent if any record is invalid. Each record becomes one `Planned` entry
holding its *actions* in `TransactWriteItems` vocabulary (`Put`, `Update`,
`Delete`): the record's own write first, then the writes of its unique-field
guard items. Routing then picks the cheapest API that keeps the semantics:

| record | change | request |
|---|---|---|
| deleted, or replaced, without version or guards | delete / put | `BatchWriteItem` (≤ 25) |
| added | create | `PutItem` if `attribute_not_exists(pk)` |
| loaded and changed | update | `UpdateItem` of the changed paths, if it still exists |
| blind `update()` | update | `UpdateItem` of the coalesced operations, if it exists |
| with a `version` field | any | the single request above, if the version is unchanged |
| with `unique` fields whose guards change | any | `TransactWriteItems`: record + guards |
| `commit(atomic=True)` | all | one `TransactWriteItems` (≤ 100 actions, ≤ 4 MB) |
"""

from __future__ import annotations

import base64
import gc
import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from uow.changes import Change, ChangeKind, Op, is_field, type_at
from uow.codec import (
    AttributeValue,
    Item,
    ModelCodec,
    Path,
    codec_for,
    format_path,
    unwrap,
)
from uow.conditions import Check, add_to
from uow.errors import ValidationError
from uow.expressions import ExpressionBuilder
from uow.identity import Key, Record, RecordState, key_item, key_of_object, key_size_error
from uow.model import ModelInfo, info_of

# An update operation: `(action, path, value, ...)`; an `Op`, or a codec diff entry.
OpLike = tuple[Any, ...]

__all__ = [
    "BATCH_WRITE_LIMIT",
    "EXPRESSION_LIMIT",
    "GUARD_EXPIRES",
    "GUARD_KEY",
    "GUARD_TABLE",
    "ITEM_SIZE_LIMIT",
    "MARKER_PREFIX",
    "MARKER_SLOTS",
    "TRANSACTION_ACTION_LIMIT",
    "TRANSACTION_SIZE_LIMIT",
    "Action",
    "Plan",
    "Planned",
    "Request",
    "attempt_of",
    "change_of",
    "guard_key",
    "item_size",
    "make_plan",
    "plan_record",
    "read_version",
]

BATCH_WRITE_LIMIT = 25
TRANSACTION_ACTION_LIMIT = 100
ITEM_SIZE_LIMIT = 400 * 1024
TRANSACTION_SIZE_LIMIT = 4 * 1024 * 1024
EXPRESSION_LIMIT = 4 * 1024
# Unique-field guard items live in one table of their own (prefix applied).
GUARD_TABLE = "uow_unique"
GUARD_KEY = "guard"
GUARD_OWNER = "owner"
# A guard's expiry (epoch seconds), for a model with `ttl=`: the guard table's TTL attribute.
GUARD_EXPIRES = "expires"
# Write markers: a create, and every version-checked write, also stores the token of
# its pending change in the item, in attribute `_uow_w{version % MARKER_SLOTS}` (`_uow_w0`
# for unversioned creates). When such a write's answer is lost and the re-send's
# condition fails, the stored item says whether the first attempt landed (see
# `uow._execute.landed`): the last MARKER_SLOTS versions of an item are told apart. 32
# slots: 8 were not enough for 8 processes contending for one item on this 2-core
# machine (its versions moved on by 8 before a lost answer was settled); a full set is
# about 620 bytes (19 a marker: name, and a 12-character token of 72 random bits).
MARKER_PREFIX = "_uow_w"
MARKER_SLOTS = 32


def attempt_of(record: Record) -> str:
    """The token of a record's pending change: made when first planned, kept until
    DynamoDB confirms the change (or the change is dropped), so every re-send of it
    carries the same one."""
    token = record.attempt
    if token is None:
        token = record.attempt = secrets.token_urlsafe(9)
    return token


@attrs.define(slots=True, eq=False)
class Action:
    """One write in `TransactWriteItems` vocabulary, and what it stands for.

    `role` is `"record"` for the record's own write, `"claim"` for creating a
    unique guard, `"release"` for deleting one (with `field` and `value`),
    `"check"` for a `ConditionCheck` (`Session.check`).
    """

    kind: str  # "Put" | "Update" | "Delete" | "ConditionCheck"
    body: dict[str, Any]
    role: str = "record"
    field: str | None = None
    value: Any = None

    @property
    def conditional(self) -> bool:
        return "ConditionExpression" in self.body

    def item_key(self, key_fields: tuple[str, ...]) -> tuple[str, str]:
        """(table, key) identifying the item this action writes."""
        source = self.body.get("Key") or self.body["Item"]
        if self.role in ("claim", "release"):
            key_fields = (GUARD_KEY,)
        return self.body["TableName"], repr([source.get(name) for name in key_fields])


@attrs.define(slots=True, eq=False)
class Planned:
    """One record's write: its kind and operations, its actions, what to install once confirmed.

    `ops` are the update operations (empty for puts and deletes); the public
    `Change` is built from them when first asked for (errors, `pending`), not
    for every write of every commit.
    """

    record: Record
    kind: ChangeKind
    ops: Sequence[OpLike]
    table: str
    actions: list[Action]
    # Committed field values once the write is confirmed (None: drop the record).
    new_snapshot: tuple[Any, ...] | None = None
    # Top-level fields written with ADD: their committed value comes back in the response.
    add_fields: tuple[str, ...] = ()
    # The version the record has once the write is confirmed.
    new_version: int | None = None
    # `(attribute, token)` this write stores in the item (creates and versioned writes).
    marker: tuple[str, str] | None = None
    # A write that is not idempotent and has no condition that would refuse a second
    # copy (an unversioned ADD, a blind versioned update): only DynamoDB's
    # `ClientRequestToken` makes a re-send safe, so it is sent as a transaction.
    token_only: bool = False
    # The record's own action carries user conditions (`condition=`, `expect`, `check`).
    user_condition: bool = False
    _change: Change | None = attrs.field(default=None, init=False)

    @property
    def change(self) -> Change:
        """The public `Change` this write carries out."""
        if self._change is None:
            self._change = _change(self.record, self.kind, self.ops)
        return self._change

    @property
    def batchable(self) -> bool:
        """True for an unconditional put or delete: it may go in `BatchWriteItem`."""
        if len(self.actions) != 1:
            return False
        action = self.actions[0]
        return action.kind in ("Put", "Delete") and not action.conditional

    @property
    def write(self) -> dict[str, Any]:
        """The `BatchWriteItem` write request of a batchable entry."""
        body = self.actions[0].body
        if self.actions[0].kind == "Put":
            return {"PutRequest": {"Item": body["Item"]}}
        return {"DeleteRequest": {"Key": body["Key"]}}


class Request(NamedTuple):
    """One request to send: a single write, a batch of up to 25, or a transaction."""

    api: str
    entries: tuple[Planned, ...]


@attrs.frozen(slots=True)
class Plan:
    """The requests of one commit, split into the update group and the remove group."""

    entries: tuple[Planned, ...]
    update_group: tuple[Request, ...]
    remove_group: tuple[Request, ...]

    @property
    def requests(self) -> tuple[Request, ...]:
        return self.update_group + self.remove_group


# -- sizes ---------------------------------------------------------------------------


def _number_size(text: str) -> int:
    mantissa = text.lower().split("e", 1)[0].lstrip("+-").replace(".", "")
    digits = len(mantissa.strip("0")) or 1
    return (digits + 1) // 2 + 1


def _value_size(av: AttributeValue) -> int:
    tag, value = next(iter(av.items()))
    if tag == "S":
        return len(value.encode("utf-8"))
    if tag == "N":
        return _number_size(value)
    if tag == "B":
        return len(value)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(s.encode("utf-8")) for s in value)
    if tag == "NS":
        return sum(_number_size(n) for n in value)
    if tag == "BS":
        return sum(len(b) for b in value)
    if tag == "L":
        return 3 + sum(1 + _value_size(v) for v in value)
    return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v) for k, v in value.items())


def _size_bound(av: AttributeValue) -> int:
    """At least `_value_size(av)`, quickly for strings (≤ 4 bytes a character) and numbers."""
    text = av.get("S")
    if text is not None:
        return 4 * len(text)
    text = av.get("N")
    if text is not None:
        return len(text) + 2
    return _value_size(av)


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """An item's size by DynamoDB's rules: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _value_size(av) for name, av in item.items())


def action_size(action: Action) -> int:
    """The bytes an action contributes to a transaction's 4 MB limit (item, key, values)."""
    body = action.body
    size = item_size(body.get("Item") or body.get("Key") or {})
    size += item_size(body.get("ExpressionAttributeValues") or {})
    for text in ("UpdateExpression", "ConditionExpression"):
        size += len(body.get(text, ""))
    return size


# -- per-record planning ---------------------------------------------------------------


def _fail(record: Record, exc: ValidationError) -> ValidationError:
    return ValidationError(f"{record.info.name} {record.key}: {exc}")


def _check_item_size(item: Item) -> None:
    # A quick upper bound first (strings and numbers are most of an item, and
    # sized without encoding them): most items are far below the limit.
    if sum(4 * len(name) + _size_bound(av) for name, av in item.items()) <= ITEM_SIZE_LIMIT:
        return
    size = item_size(item)
    if size > ITEM_SIZE_LIMIT:
        raise ValidationError(
            f"item is {size} bytes, over DynamoDB's 400 KB item limit ({ITEM_SIZE_LIMIT} bytes)"
        )


_EMPTY_KEY_VALUES = ({"S": ""}, {"B": b""})
# Changed values above this many bytes make an update re-check the whole item's size.
_LARGE_CHANGE = 4 * 1024


def _check_index_keys(info: ModelInfo, values: Mapping[str, AttributeValue]) -> None:
    """DynamoDB refuses an empty or oversized string or binary in an index's key attribute."""
    for index_name, index in info.indexes.items():
        for attribute in (index.pk, index.sk):
            if attribute is None or attribute not in values:
                continue
            av = values[attribute]
            if av in _EMPTY_KEY_VALUES:
                raise ValidationError(
                    f"{attribute!r} is a key of index {index_name!r}, and index keys cannot be "
                    "empty; set a value, or None to leave the record out of the index"
                )
            problem = key_size_error(av.get("S", av.get("B")), sort=attribute != index.pk)
            if problem is not None:
                raise ValidationError(f"{attribute!r} is a key of index {index_name!r}: {problem}")


def _check_expressions(body: dict[str, Any]) -> None:
    for name in ("UpdateExpression", "ConditionExpression"):
        text = body.get(name, "")
        # A character is at most 4 bytes in UTF-8: short texts need no encoding.
        if len(text) * 4 > EXPRESSION_LIMIT and len(text.encode("utf-8")) > EXPRESSION_LIMIT:
            raise ValidationError(
                f"the {name} is {len(text)} bytes, over DynamoDB's 4 KB expression limit; "
                "commit the changes of this record in several smaller commits"
            )


def _change(record: Record, kind: ChangeKind, ops: Iterable[OpLike] = ()) -> Change:
    sets: dict[str, Any] = {}
    removes: list[str] = []
    adds: dict[str, Any] = {}
    for op in ops:
        action = op[0]
        where = format_path(op[1])
        if action == "SET":
            sets[where] = op[2]
        elif action == "REMOVE":
            removes.append(where)
        else:
            adds[where] = op[2]
    obj = record.obj if kind is not ChangeKind.DELETE else None
    return Change(kind, record.info.cls, record.key, obj, sets, tuple(removes), adds)


def _edits(record: Record) -> list[OpLike]:
    """A loaded record's changes: the codec's diff, `(action, path, value, type)` per
    change, with counters changed only by `update(add=...)` written as ADD.

    Managed (key, version) fields are not checked here: `loaded_ops` and the
    planner check them.
    """
    ops: list[OpLike] = []
    assert record.snapshot is not None
    record.codec.diff(record.snapshot, record.obj, ops)
    if ops and record.adds:
        _fold_adds(record, ops)
    return ops


def _managed_error(info: ModelInfo, field: Any) -> ValidationError:
    if field == info.version:
        return ValidationError(
            f"the version field {info.version!r} is managed by uow; do not assign it"
        )
    return ValidationError(
        f"key field {field!r} changed on a loaded object; keys are immutable: "
        "delete the record and add a new one"
    )


def _fold_adds(record: Record, ops: list[OpLike]) -> None:
    """Write a field changed only by `update(add=...)` with ADD, not SET (in place)."""
    assert record.snapshot is not None
    adds = record.adds
    for n, op in enumerate(ops):
        path = op[1]
        head = path[0]
        if op[0] == "SET" and len(path) == 1 and head in adds:
            delta = adds[head]
            value = op[2]
            old = unwrap(record.snapshot[record.codec.index[head]])
            expected = set(old or ()) | delta if isinstance(delta, set) else (old or 0) + delta
            if op[3].same(expected, value) or expected == value:
                ops[n] = Op("ADD", path, delta)


def loaded_ops(record: Record) -> list[OpLike]:
    """The operations turning a loaded record's snapshot into its object (maybe none).

    Each is `(action, path, value, ...)`, as the codec's diff emits them (or an `Op`).

    Raises:
        ValidationError: a key or version field was changed.
    """
    ops = _edits(record)
    managed = record.info.managed
    for op in ops:
        if op[1][0] in managed:
            raise _managed_error(record.info, op[1][0])
    return ops


_KINDS = {
    RecordState.DELETED: ChangeKind.DELETE,
    RecordState.REPLACE: ChangeKind.PUT,
    RecordState.NEW: ChangeKind.CREATE,
    RecordState.BLIND: ChangeKind.UPDATE,
}
_NO_OPS: tuple[OpLike, ...] = ()


def net_change(record: Record) -> tuple[ChangeKind, Sequence[OpLike]] | None:
    """A record's net pending change: its kind and, for updates, the operations.

    Raises:
        ValidationError: a key or version field of a loaded object was changed.
    """
    kind = _KINDS.get(record.state)
    if kind is ChangeKind.UPDATE:
        return kind, record.blind
    if kind is not None:
        return kind, _NO_OPS
    ops = loaded_ops(record)
    return (ChangeKind.UPDATE, ops) if ops else None


def change_of(record: Record) -> Change | None:
    """The public `Change` of a record, or `None` when it has nothing pending."""
    net = net_change(record)
    return None if net is None else _change(record, *net)


def _guard_text(info: ModelInfo, field: str, value: Any) -> str:
    if isinstance(value, bytes):
        return "b:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(
            f"{info.name}.{field} is unique, so its values must be str, int or bytes, "
            f"got {type(value).__name__}"
        )
    return ("s:" if isinstance(value, str) else "n:") + str(value)


def guard_key(info: ModelInfo, fields: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """The key of the guard item that reserves `values` for `info`'s unique `fields`.

    One field: `table#field#s:value` (a model with a `kind` puts it after the
    table, so that models sharing a table do not share guards); several: the
    fields joined by `+`, the values as a JSON list (unambiguous whatever
    characters they hold).
    """
    scope = info.table if info.kind is None else f"{info.table}#{info.kind}"
    texts = [_guard_text(info, f, v) for f, v in zip(fields, values, strict=True)]
    if len(fields) == 1:
        return f"{scope}#{fields[0]}#{texts[0]}"
    return f"{scope}#{'+'.join(fields)}#{json.dumps(texts, ensure_ascii=False)}"


def owner_text(info: ModelInfo, key: Key) -> str:
    """Who owns a guard item: the record's table and key, as stored in the guard."""
    return f"{info.table}#{key.pk!r}#{key.sk!r}"


# -- the record's own write ------------------------------------------------------------


def _value_of(record: Record, values: tuple[Any, ...] | None, name: str) -> Any:
    if values is None:
        return None
    return unwrap(values[record.codec.index[name]])


def read_version(record: Record) -> int | None:
    """The version the record was read at, if it was read."""
    version = record.info.version
    if version is None or record.snapshot is None:
        return None
    return int(_value_of(record, record.snapshot, version) or 0)


def _version_condition(builder: ExpressionBuilder, name: str, version: int | None) -> str:
    placeholder = builder.name(name)
    if version is None:
        return f"attribute_not_exists({placeholder})"
    return f"{placeholder} = {builder.value({'N': str(version)})}"


def _stored_values(record: Record) -> tuple[Any, ...] | None:
    """The stored field values this write replaces, when known.

    For a loaded record that is its snapshot; for a blind delete or overwrite
    of a model with unique fields, the session reads the item at commit
    (`Record.stored`) so that its guards can be released.
    """
    if record.base is not None:
        return record.snapshot
    return record.stored


def _unique_values(
    record: Record, values: tuple[Any, ...] | None, fields: tuple[str, ...]
) -> tuple[Any, ...] | None:
    """A constraint's values in `values`, or `None` when one is `None` (not constrained)."""
    out = tuple(_value_of(record, values, field) for field in fields)
    return None if any(value is None for value in out) else out


def _expiry(record: Record, values: tuple[Any, ...] | None) -> int | None:
    """The TTL field's value in `values`, as epoch seconds (`None`: never expires)."""
    value = _value_of(record, values, str(record.info.ttl))
    if value is None:
        return None
    return int(value) if isinstance(value, int) else math.floor(value.timestamp())


def _same_values(before: tuple[Any, ...] | None, after: tuple[Any, ...] | None) -> bool:
    """Equal values of equal types (`1` and `True` are different guards)."""
    if before is None or after is None:
        return before is after
    return before == after and all(type(a) is type(b) for a, b in zip(before, after, strict=True))


def _unique_condition(record: Record, builder: ExpressionBuilder, values: tuple[Any, ...]) -> str:
    """A condition: the unique fields still hold `values`, whose guards are released."""
    info = record.info
    parts = []
    for field in info.unique_fields:
        value = _value_of(record, values, field)
        name = builder.name(field)
        if value is None:
            parts.append(f"attribute_not_exists({name})")
        else:
            encoded = record.codec.types[field].encode(value, (field,))
            assert encoded is not None
            parts.append(f"{name} = {builder.value(encoded)}")
    return " AND ".join(parts) or builder.exists(info.pk)


def _guards(
    record: Record, prefix: str, old: tuple[Any, ...] | None, new: tuple[Any, ...] | None
) -> list[Action]:
    """Claim and release actions for the unique constraints whose values change.

    A model with `ttl=` gives its guards the record's expiry (`GUARD_EXPIRES`):
    DynamoDB's TTL deletes them with the record, a guard whose owner has expired
    may be claimed by another record (reads see no owner any more), and a change
    of the expiry claims the guards again with the new one.
    """
    info = record.info
    actions: list[Action] = []
    if not info.unique:
        return actions
    guard_table = prefix + GUARD_TABLE
    owner = owner_text(info, record.key)
    expires = None if info.ttl is None else _expiry(record, new)
    moved = info.ttl is not None and _expiry(record, old) != expires
    for fields in info.unique:
        before = _unique_values(record, old, fields)
        after = _unique_values(record, new, fields)
        if _same_values(before, after):
            if after is None or not moved:
                continue
            before = None  # the same guard, claimed again with the new expiry
        # Messages name one field as `email`, a compound one as `(tenant, number)`.
        shown = fields[0] if len(fields) == 1 else f"({', '.join(fields)})"
        if before is not None:
            builder = ExpressionBuilder()
            guard = builder.name(GUARD_OWNER)
            body = {
                "TableName": guard_table,
                "Key": {GUARD_KEY: {"S": guard_key(info, fields, before)}},
                "ConditionExpression": f"attribute_not_exists({builder.name(GUARD_KEY)}) "
                f"OR {guard} = {builder.value({'S': owner})}",
                **builder.params(),
            }
            value = before[0] if len(fields) == 1 else before
            actions.append(Action("Delete", body, "release", shown, value))
        if after is not None:
            builder = ExpressionBuilder()
            item = {
                GUARD_KEY: {"S": guard_key(info, fields, after)},
                GUARD_OWNER: {"S": owner},
                **{f"key_{k}": v for k, v in key_item(info, record.key).items()},
            }
            # Claiming a guard the record already owns is fine (an overwrite).
            condition = (
                f"{builder.not_exists(GUARD_KEY)} OR "
                f"{builder.name(GUARD_OWNER)} = {builder.value({'S': owner})}"
            )
            if info.ttl is not None:
                if expires is not None:
                    item[GUARD_EXPIRES] = {"N": str(expires)}
                now = {"N": str(math.floor(time.time()))}
                condition += f" OR {builder.name(GUARD_EXPIRES)} <= {builder.value(now)}"
            body = {
                "TableName": guard_table,
                "Item": item,
                "ConditionExpression": condition,
                **builder.params(),
            }
            value = after[0] if len(fields) == 1 else after
            actions.append(Action("Put", body, "claim", shown, value))
    return actions


def _plan_put(record: Record, kind: ChangeKind, prefix: str) -> Planned:
    info = record.info
    codec = record.codec
    obj = record.obj
    if key_of_object(info, obj) != record.key:
        raise ValidationError(
            f"{'/'.join(info.key_fields)} changed after the object entered the session; "
            "keys are immutable: delete the record and add a new one"
        )
    item = codec.encode_item(obj)
    if info.kind is not None:
        item[info.kind_attribute] = {"S": info.kind}
    snapshot = codec.snapshot(obj)
    builder = ExpressionBuilder()
    conditions = []
    new_version = None
    if kind is ChangeKind.CREATE:
        conditions.append(_create_condition(info, builder))
    if info.version is not None:
        read = read_version(record) if _same_model(record) else None
        if kind is ChangeKind.PUT and read is not None:
            # A loaded record deleted then added again: replace the version we read.
            conditions.append(_version_condition(builder, info.version, read))
            new_version = read + 1
        else:
            new_version = int(getattr(obj, info.version) or 0) + 1
        item[info.version] = {"N": str(new_version)}
        snapshot = _replace(snapshot, codec.index[info.version], new_version)
    marker = None
    if conditions:  # a create, or a version-checked replacement: a lost answer is settled
        slot = 0 if new_version is None else new_version % MARKER_SLOTS
        marker = (f"{MARKER_PREFIX}{slot}", attempt_of(record))
        item[marker[0]] = {"S": marker[1]}
    _check_item_size(item)
    if info.indexes:
        _check_index_keys(info, item)
    old = _stored_values(record)
    if kind is ChangeKind.PUT and record.base is None and old is not None:
        conditions.append(_unique_condition(record, builder, old))
    table = prefix + info.table
    body: dict[str, Any] = {"TableName": table, "Item": item}
    if conditions:
        body["ConditionExpression"] = " AND ".join(conditions)
        body.update(builder.params())
    return Planned(
        record,
        kind,
        _NO_OPS,
        table,
        [Action("Put", body), *_put_guards(record, prefix, old, snapshot)],
        new_snapshot=snapshot,
        new_version=new_version,
        marker=marker,
    )


def _same_model(record: Record) -> bool:
    """True when the record's loaded object (if any) is of the model it is written as."""
    return record.base is not None and type(record.base) is record.info.cls


def _put_guards(
    record: Record, prefix: str, old: tuple[Any, ...] | None, new: tuple[Any, ...] | None
) -> list[Action]:
    """A put's guard actions; replacing an item of another model releases that model's guards."""
    base = record.base
    if base is None or type(base) is record.info.cls:
        return _guards(record, prefix, old, new)
    previous = attrs.evolve(record, info=info_of(type(base)), codec=codec_for(type(base)))
    return [*_guards(previous, prefix, old, None), *_guards(record, prefix, None, new)]


def _create_condition(info: ModelInfo, builder: ExpressionBuilder) -> str:
    """Create-only: no item at the key, or only one whose TTL has passed (reads see none)."""
    absent = builder.not_exists(info.pk)
    if info.ttl is None:
        return absent
    now = {"N": str(math.floor(time.time()))}
    return f"({absent} OR {builder.name(info.ttl)} <= {builder.value(now)})"


def _plan_delete(record: Record, prefix: str) -> Planned:
    info = record.info
    table = prefix + info.table
    body: dict[str, Any] = {"TableName": table, "Key": key_item(info, record.key)}
    if info.version is None and not info.unique:
        return Planned(record, ChangeKind.DELETE, _NO_OPS, table, [Action("Delete", body)])
    builder = ExpressionBuilder()
    old = _stored_values(record)
    if info.version is not None and record.base is not None:
        body["ConditionExpression"] = _version_condition(
            builder, info.version, read_version(record)
        )
    elif record.base is None and old is not None:
        body["ConditionExpression"] = _unique_condition(record, builder, old)
    body.update(builder.params())
    actions = [Action("Delete", body), *_guards(record, prefix, old, None)]
    return Planned(record, ChangeKind.DELETE, _NO_OPS, table, actions)


def _encode_op(codec: ModelCodec, path: Path, value: Any) -> AttributeValue:
    """A SET or ADD operation's value, encoded as the type declared at its path."""
    if len(path) == 1:
        av = codec.types[path[0]].encode(value, path)  # type: ignore[index]  # a field name
    else:
        kind = type_at(codec, path)
        if not is_field(codec, path):
            return kind.encode_element(value, path)
        av = kind.encode(value, path)
    if av is None:  # pragma: no cover - SET of None/empty is normalised to REMOVE
        raise ValidationError(f"{format_path(path)}: nothing to set")
    return av


# Update expressions depend only on a change's shape (which paths get SET, REMOVE or
# ADD, and how the version is checked), not on its values: a commit of many records
# edited alike builds the expression text once. Bounded: cleared when full.
_TEMPLATE_LIMIT = 4096  # a shape has up to 32 (marker slots): room for ~100 shapes
_PLACEHOLDER = {"N": "0"}  # stands for every value while a template is built


@attrs.frozen(slots=True)
class _Template:
    update: str
    condition: str
    names: dict[str, str]
    placeholders: tuple[str, ...]


def _template(
    info: ModelInfo, shape: tuple[tuple[str, Path], ...], version: str, marker: str | None
) -> _Template:
    """The expressions of an update of `shape`; `version` is "", "read", "unread" or "blind";
    `marker` names the attribute that stores the write's token, if any."""
    builder = ExpressionBuilder()
    if version == "read":
        condition = f"{builder.name(str(info.version))} = {builder.value(_PLACEHOLDER)}"
    elif version == "unread":
        condition = f"attribute_not_exists({builder.name(str(info.version))})"
    elif info.kind is not None:
        # The item exists and is of this model's kind (first placeholder: the kind).
        condition = f"{builder.name(info.kind_attribute)} = {builder.value(_PLACEHOLDER)}"
    else:
        condition = builder.exists(info.pk)
    sets = [(path, _PLACEHOLDER) for action, path in shape if action == "SET"]
    removes = [path for action, path in shape if action == "REMOVE"]
    adds = [(path, _PLACEHOLDER) for action, path in shape if action == "ADD"]
    if version in ("read", "unread"):
        sets.append(((str(info.version),), _PLACEHOLDER))
        if marker is not None:
            sets.append(((marker,), _PLACEHOLDER))
    elif version == "blind":
        adds.append(((str(info.version),), _PLACEHOLDER))
    update = builder.update(sets, removes, adds)
    _check_expressions({"UpdateExpression": update, "ConditionExpression": condition})
    return _Template(update, condition, builder.names, tuple(builder.values))


_TEMPLATES: dict[tuple[Any, ...], _Template] = {}


def _new_template(
    key: tuple[Any, ...], info: ModelInfo, ops: Sequence[OpLike], version: str, marker: str | None
) -> _Template:
    template = _template(info, tuple((op[0], op[1]) for op in ops), version, marker)
    if len(_TEMPLATES) >= _TEMPLATE_LIMIT:
        _TEMPLATES.clear()
    _TEMPLATES[key] = template
    return template


def _plan_update(record: Record, ops: Sequence[OpLike], prefix: str, blind: bool) -> Planned:
    info = record.info
    codec = record.codec
    shape: list[Any] = [info.cls]  # the template's cache key: model, ops, version
    set_values: list[AttributeValue] = []
    add_values: list[AttributeValue] = []
    size = 0  # an upper bound of the SET values' bytes
    # Once confirmed, only the written fields change: the others keep their
    # snapshot entries, `Absent` marks included.
    snapshot = None if blind else list(record.snapshot or ())
    obj = record.obj
    copiers = codec.copiers
    managed = info.managed
    for op in ops:
        action, path = op[0], op[1]
        shape.append(action)
        shape.append(path)
        if (head := path[0]) in managed:
            raise _managed_error(info, head)
        if action == "SET":
            av = _encode_op(codec, path, op[2])
            set_values.append(av)
            size += _size_bound(av)
        elif action == "ADD":
            add_values.append(_encode_op(codec, path, op[2]))
        if snapshot is not None:
            at, copy = copiers[head]
            snapshot[at] = getattr(obj, head) if copy is None else copy(getattr(obj, head))
    if info.indexes or (size > _LARGE_CHANGE and not blind):
        _check_update(record, ops, set_values, size, blind=blind)
    marker = None
    if info.version is None:
        version, values, new_version = "", _kind_values(info, set_values, add_values), None
    else:
        version, values, new_version = _version_values(record, blind, set_values, add_values)
        if new_version is not None:  # version-checked: the write leaves its marker
            marker = (f"{MARKER_PREFIX}{new_version % MARKER_SLOTS}", attempt_of(record))
            values.insert(len(values) - len(add_values), {"S": marker[1]})
        if snapshot is not None:
            snapshot[codec.index[info.version]] = new_version
    shape.append(version)
    shape.append(marker and marker[0])
    template = _TEMPLATES.get(key := tuple(shape)) or _new_template(
        key, info, ops, version, marker and marker[0]
    )
    table = prefix + info.table
    body: dict[str, Any] = {
        "TableName": table,
        "Key": key_item(info, record.key),
        "UpdateExpression": template.update,
        "ConditionExpression": template.condition,
        # A copy: the template outlives this request, whatever a botocore hook does to it.
        "ExpressionAttributeNames": dict(template.names),
    }
    if values:
        # As many values as placeholders, by construction of the template's key.
        body["ExpressionAttributeValues"] = dict(zip(template.placeholders, values))  # noqa: B905
    new = None if snapshot is None else tuple(snapshot)
    actions = [Action("Update", body)]
    if info.unique and not blind:
        actions += _guards(record, prefix, record.snapshot, new)
    adds = tuple(op[1][0] for op in ops if op[0] == "ADD") if add_values else ()
    return Planned(
        record,
        ChangeKind.UPDATE,
        ops,
        table,
        actions,
        new,
        adds,
        new_version,
        marker,
        # No condition refuses a second copy of an ADD, nor of a blind version bump; a
        # REMOVE of a list element (or a SET past its end) shifts the list again if re-sent.
        token_only=version == "blind"
        or (marker is None and (bool(add_values) or _touches_list_elements(ops))),
    )


def _touches_list_elements(ops: Sequence[OpLike]) -> bool:
    """True when an operation's path goes through a list index (`items[0]`)."""
    return any(type(segment) is int for op in ops for segment in op[1])


def _check_update(
    record: Record,
    ops: Sequence[OpLike],
    set_values: list[AttributeValue],
    size: int,
    *,
    blind: bool,
) -> None:
    """The checks only some updates need: index keys, and the item size after a large change."""
    info = record.info
    if info.indexes:
        tops = [op for op in ops if op[0] == "SET"]
        _check_index_keys(
            info, {op[1][0]: av for op, av in zip(tops, set_values, strict=True) if len(op[1]) == 1}
        )
    if size > _LARGE_CHANGE and not blind:
        # Only a large change can push a stored item (≤ 400 KB) far over the limit;
        # a full encode for every small update would double the planning cost.
        _check_item_size(record.codec.encode_item(record.obj))


def _kind_values(
    info: ModelInfo, set_values: list[AttributeValue], add_values: list[AttributeValue]
) -> list[AttributeValue]:
    """The values of an update conditioned on existence: the kind first, when the model has
    one (the condition checks it, see `_template`), then the SET and ADD values."""
    if info.kind is not None:
        return [{"S": info.kind}, *set_values, *add_values]
    return set_values + add_values if add_values else set_values


def _version_values(
    record: Record,
    blind: bool,
    set_values: list[AttributeValue],
    add_values: list[AttributeValue],
) -> tuple[str, list[AttributeValue], int | None]:
    """How a versioned record's update checks and moves its version: template kind,
    every value in placeholder order, and the version once confirmed (if known)."""
    if blind:  # moves the version on, whatever it is
        return "blind", _kind_values(record.info, set_values, [*add_values, {"N": "1"}]), None
    read = read_version(record)
    new_version = (read or 0) + 1
    values = [{"N": str(read)}] if read is not None else []
    values += [*set_values, {"N": str(new_version)}, *add_values]
    return ("unread" if read is None else "read"), values, new_version


def _replace(values: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*values[:index], value, *values[index + 1 :])


def plan_record(record: Record, prefix: str) -> Planned | None:
    """Plan one record's write, or `None` when it has nothing to write.

    Raises:
        ValidationError: the record cannot be written (`make_plan` adds the
            model and key to the message).
    """
    state = record.state
    checked = 0  # actions whose expressions are known to fit DynamoDB's limit
    if state is RecordState.LOADED:  # the most common entry: first
        ops = _edits(record)
        if not ops:
            return None
        planned = _plan_update(record, ops, prefix, False)  # checks managed fields
        checked = 1  # the update's template was checked when it was built
    elif state is RecordState.DELETED:
        planned = _plan_delete(record, prefix)
    elif state is RecordState.BLIND:
        planned = _plan_update(record, record.blind, prefix, True)
        checked = 1
    else:
        kind = ChangeKind.CREATE if state is RecordState.NEW else ChangeKind.PUT
        planned = _plan_put(record, kind, prefix)
    actions = planned.actions
    if record.conditions:
        add_to(actions[0].body, record.conditions)
        planned.user_condition = True
        checked = 0
        if planned.marker is None and planned.kind is not ChangeKind.DELETE:
            # A re-send after a lost answer may find its own write and fail the user's
            # condition; with no marker to tell, DynamoDB's token must drop the repeat.
            planned.token_only = True
    if len(actions) > checked:
        for action in actions[checked:]:
            _check_expressions(action.body)
    return planned


def _plan_check(check: Check, prefix: str) -> Planned:
    """A `ConditionCheck` action for an item the commit does not write (atomic only)."""
    info = check.info
    # A record of its own, never in the map: nothing is installed when it is confirmed.
    record = Record(check.key, info, codec_for(info.cls), RecordState.LOADED)
    record.conditions = [check.condition]
    table = prefix + info.table
    body: dict[str, Any] = {
        "TableName": table,
        "Key": key_item(info, check.key),
        # The checked item comes back with a failed check (`ConditionFailed.item`).
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    add_to(body, record.conditions)
    _check_expressions(body)
    action = Action("ConditionCheck", body, "check")
    return Planned(record, ChangeKind.CHECK, _NO_OPS, table, [action], user_condition=True)


# -- routing -----------------------------------------------------------------------------


def _batches(entries: list[Planned]) -> list[Request]:
    return [
        Request("BatchWriteItem", tuple(entries[i : i + BATCH_WRITE_LIMIT]))
        for i in range(0, len(entries), BATCH_WRITE_LIMIT)
    ]


# Builds a `Request` without its Python-level `__new__` (one per single write).
_new_request = tuple.__new__
_SINGLE_API = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


def _check_transaction(entries: list[Planned]) -> None:
    """DynamoDB's transaction limits, checked before sending."""
    actions = [(planned, action) for planned in entries for action in planned.actions]
    if len(actions) > TRANSACTION_ACTION_LIMIT:
        raise ValidationError(
            f"an atomic commit holds at most {TRANSACTION_ACTION_LIMIT} actions "
            f"(unique-field guards included); this one has {len(actions)}: commit in parts, "
            "or without atomic=True"
        )
    seen: dict[tuple[str, str], Planned] = {}
    size = 0
    for planned, action in actions:
        item = action.item_key(planned.record.info.key_fields)
        if item in seen:
            other = seen[item]
            raise ValidationError(
                f"an atomic commit cannot write one item twice: {planned.change.describe()} "
                f"and {other.change.describe()} both write {item[0]} {item[1]}"
            )
        seen[item] = planned
        size += action_size(action)
    if size > TRANSACTION_SIZE_LIMIT:
        raise ValidationError(
            f"an atomic commit is limited to 4 MB; this one is {size} bytes: commit in parts"
        )


def make_plan(
    records: Iterable[Record],
    prefix: str,
    *,
    atomic: bool = False,
    checks: Sequence[Check] = (),
) -> Plan:
    """Plan every pending record, in log order, and route each to a request.

    `checks` (`Session.check`) go in the transaction of an atomic commit.

    Raises:
        ValidationError: the first record that cannot be written, an atomic
            commit over DynamoDB's transaction limits, or checks in a commit
            that is not atomic; nothing is sent.
    """
    records = records if isinstance(records, Sequence) else list(records)
    if checks and not atomic:
        first = checks[0]
        raise ValidationError(
            f"{len(checks)} condition checks are pending (first: {first.info.name} "
            f"{first.key}); a check holds only inside a transaction: commit(atomic=True), "
            "or drop them with rollback()"
        )
    if checks:
        return _make_plan(records, prefix, atomic=atomic, checks=checks)
    if len(records) < _GC_PAUSE_FROM or not gc.isenabled():
        return _make_plan(records, prefix, atomic=atomic)
    # Planning allocates several containers per record and creates no reference
    # cycles, so the cyclic collector has nothing to find here; pausing it saves its
    # repeated scans of the new objects (about a tenth of the planning time of a
    # large commit, see benchmarks/cpu_cost.py). It runs again as soon as we return.
    gc.disable()
    try:
        return _make_plan(records, prefix, atomic=atomic)
    finally:
        gc.enable()


# Commits of fewer records than this leave the collector alone: too little to gain.
_GC_PAUSE_FROM = 1000


def _make_plan(
    records: Sequence[Record], prefix: str, *, atomic: bool, checks: Sequence[Check] = ()
) -> Plan:
    entries: list[Planned] = []
    update_batch: list[Planned] = []
    remove_batch: list[Planned] = []
    updates: list[Request] = []
    removes: list[Request] = []
    record = None
    try:
        for record in records:
            planned = plan_record(record, prefix)
            if planned is None:
                continue
            entries.append(planned)
            if atomic:
                continue
            removing = planned.kind is ChangeKind.DELETE
            if planned.token_only:
                (removes if removing else updates).append(Request("TransactWriteItems", (planned,)))
            elif planned.kind is ChangeKind.UPDATE and len(planned.actions) == 1:
                updates.append(_new_request(Request, ("UpdateItem", (planned,))))
            elif planned.batchable:
                (remove_batch if removing else update_batch).append(planned)
            elif len(planned.actions) > 1:
                (removes if removing else updates).append(Request("TransactWriteItems", (planned,)))
            else:
                api = _SINGLE_API[planned.actions[0].kind]
                (removes if removing else updates).append(Request(api, (planned,)))
    except ValidationError as exc:
        assert record is not None
        raise _fail(record, exc) from exc
    if atomic:
        entries.extend(_plan_check(check, prefix) for check in checks)
        _check_transaction(entries)
        group = (Request("TransactWriteItems", tuple(entries)),) if entries else ()
        return Plan(tuple(entries), update_group=group, remove_group=())
    return Plan(
        tuple(entries),
        update_group=(*updates, *_batches(update_batch)),
        remove_group=(*removes, *_batches(remove_batch)),
    )
