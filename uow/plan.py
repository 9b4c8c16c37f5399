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
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from uow.changes import Change, ChangeKind, Op, is_field, type_at
from uow.codec import AttributeValue, Item, Path, format_path, unwrap
from uow.errors import ValidationError
from uow.expressions import ExpressionBuilder
from uow.identity import Key, Record, RecordState, key_item, key_of_object
from uow.model import ModelInfo

__all__ = [
    "BATCH_WRITE_LIMIT",
    "EXPRESSION_LIMIT",
    "GUARD_KEY",
    "GUARD_TABLE",
    "ITEM_SIZE_LIMIT",
    "TRANSACTION_ACTION_LIMIT",
    "TRANSACTION_SIZE_LIMIT",
    "Action",
    "Plan",
    "Planned",
    "Request",
    "change_of",
    "guard_key",
    "item_size",
    "make_plan",
    "plan_record",
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


@attrs.define(slots=True, eq=False)
class Action:
    """One write in `TransactWriteItems` vocabulary, and what it stands for.

    `role` is `"record"` for the record's own write, `"claim"` for creating a
    unique guard, `"release"` for deleting one (with `field` and `value`).
    """

    kind: str  # "Put" | "Update" | "Delete"
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
        if self.role != "record":
            key_fields = (GUARD_KEY,)
        return self.body["TableName"], repr([source.get(name) for name in key_fields])


@attrs.define(slots=True, eq=False)
class Planned:
    """One record's write: the public `Change`, its actions, what to install once confirmed."""

    record: Record
    change: Change
    table: str
    actions: list[Action]
    # Committed field values once the write is confirmed (None: drop the record).
    new_snapshot: tuple[Any, ...] | None = None
    # Top-level fields written with ADD: their committed value comes back in the response.
    add_fields: tuple[str, ...] = ()
    # The version the record has once the write is confirmed.
    new_version: int | None = None

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


@attrs.frozen(slots=True)
class Request:
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
    (tag, value), *_ = av.items()
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


def _encode_item(record: Record) -> Item:
    obj = record.obj
    info = record.info
    if key_of_object(info, obj) != record.key:
        raise ValidationError(
            f"{'/'.join(info.key_fields)} changed after the object entered the session; "
            "keys are immutable: delete the record and add a new one"
        )
    return record.codec.encode_item(obj)


def _check_item_size(item: Item) -> None:
    size = item_size(item)
    if size > ITEM_SIZE_LIMIT:
        raise ValidationError(
            f"item is {size} bytes, over DynamoDB's 400 KB item limit ({ITEM_SIZE_LIMIT} bytes)"
        )


_EMPTY_KEY_VALUES = ({"S": ""}, {"B": b""})
# Changed values above this many bytes make an update re-check the whole item's size.
_LARGE_CHANGE = 4 * 1024


def _check_index_keys(info: ModelInfo, values: Mapping[str, AttributeValue]) -> None:
    """DynamoDB refuses an empty string or binary in a secondary index's key attribute."""
    for index_name, index in info.indexes.items():
        for attribute in (index.pk, index.sk):
            if attribute is not None and values.get(attribute) in _EMPTY_KEY_VALUES:
                raise ValidationError(
                    f"{attribute!r} is a key of index {index_name!r}, and index keys cannot be "
                    "empty; set a value, or None to leave the record out of the index"
                )


def _check_expressions(body: dict[str, Any]) -> None:
    for name in ("UpdateExpression", "ConditionExpression"):
        text = body.get(name, "")
        if len(text.encode("utf-8")) > EXPRESSION_LIMIT:
            raise ValidationError(
                f"the {name} is {len(text)} bytes, over DynamoDB's 4 KB expression limit; "
                "commit the changes of this record in several smaller commits"
            )


def _encode_at(record: Record, path: Path, value: Any) -> AttributeValue:
    kind = type_at(record.codec, path)
    if is_field(record.codec, path):
        av = kind.encode(value, path)
        if av is None:  # pragma: no cover - SET of None/empty is normalised to REMOVE
            raise ValidationError(f"{format_path(path)}: nothing to set")
        return av
    return kind.encode_element(value, path)


def _change(record: Record, kind: ChangeKind, ops: Iterable[Op] = ()) -> Change:
    sets: dict[str, Any] = {}
    removes: list[str] = []
    adds: dict[str, Any] = {}
    for op in ops:
        where = format_path(op.path)
        if op.action == "SET":
            sets[where] = op.value
        elif op.action == "REMOVE":
            removes.append(where)
        else:
            adds[where] = op.value
    obj = record.obj if kind is not ChangeKind.DELETE else None
    return Change(kind, record.info.cls, record.key, obj, sets, tuple(removes), adds)


def loaded_ops(record: Record) -> list[Op]:
    """The operations turning a loaded record's snapshot into its object (maybe none)."""
    assert record.snapshot is not None
    diff: list[Any] = []
    record.codec.diff(record.snapshot, record.obj, diff)
    if not diff:
        return []
    info = record.info
    codec = record.codec
    ops = []
    for action, path, value, kind in diff:
        if path[0] in info.key_fields:
            raise ValidationError(
                f"key field {path[0]!r} changed on a loaded object; keys are immutable: "
                "delete the record and add a new one"
            )
        if path[0] == info.version:
            raise ValidationError(
                f"the version field {info.version!r} is managed by uow; do not assign it"
            )
        if action == "SET" and len(path) == 1 and path[0] in record.adds:
            name = path[0]
            delta = record.adds[name]
            old = unwrap(record.snapshot[codec.names.index(name)])
            expected = set(old or ()) | delta if isinstance(delta, set) else (old or 0) + delta
            if kind.same(expected, value) or expected == value:
                ops.append(Op("ADD", path, delta))
                continue
        ops.append(Op(action, path, value))
    return ops


_KINDS = {
    RecordState.DELETED: ChangeKind.DELETE,
    RecordState.REPLACE: ChangeKind.PUT,
    RecordState.NEW: ChangeKind.CREATE,
    RecordState.BLIND: ChangeKind.UPDATE,
}


def net_change(record: Record) -> tuple[ChangeKind, list[Op]] | None:
    """A record's net pending change: its kind and, for updates, the operations.

    Raises:
        ValidationError: a key or version field of a loaded object was changed.
    """
    kind = _KINDS.get(record.state)
    if kind is ChangeKind.UPDATE:
        return kind, record.blind
    if kind is not None:
        return kind, []
    ops = loaded_ops(record)
    return (ChangeKind.UPDATE, ops) if ops else None


def change_of(record: Record) -> Change | None:
    """The public `Change` of a record, or `None` when it has nothing pending."""
    net = net_change(record)
    return None if net is None else _change(record, *net)


def guard_key(info: ModelInfo, field: str, value: Any) -> str:
    """The key of the guard item that reserves `value` for `info`'s unique `field`."""
    if isinstance(value, bytes):
        text = "b:" + base64.b64encode(value).decode("ascii")
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(
            f"{info.name}.{field} is unique, so its values must be str, int or bytes, "
            f"got {type(value).__name__}"
        )
    else:
        text = ("s:" if isinstance(value, str) else "n:") + str(value)
    return f"{info.table}#{field}#{text}"


def owner_text(info: ModelInfo, key: Key) -> str:
    """Who owns a guard item: the record's table and key, as stored in the guard."""
    return f"{info.table}#{key.pk!r}#{key.sk!r}"


class _Planner:
    """Builds one record's actions; holds what every action of the record shares."""

    def __init__(self, record: Record, prefix: str) -> None:
        self.record = record
        self.info = record.info
        self.prefix = prefix
        self.table = prefix + record.info.table
        self.guard_table = prefix + GUARD_TABLE

    def field_value(self, values: tuple[Any, ...] | None, name: str) -> Any:
        if values is None:
            return None
        return unwrap(values[self.record.codec.names.index(name)])

    def version_index(self) -> int:
        return self.record.codec.names.index(self.info.version or "")

    def read_version(self) -> int | None:
        """The version the record was read at, if it was read."""
        if self.info.version is None or self.record.snapshot is None:
            return None
        value = self.field_value(self.record.snapshot, self.info.version)
        return int(value or 0)

    def version_condition(self, builder: ExpressionBuilder, version: int | None) -> str:
        name = builder.name(self.info.version or "")
        if version is None:
            return f"attribute_not_exists({name})"
        return f"{name} = {builder.value({'N': str(version)})}"

    def stored_values(self) -> tuple[Any, ...] | None:
        """The stored field values this write replaces, when known.

        For a loaded record that is its snapshot; for a blind delete or
        overwrite of a model with unique fields, the session reads the item at
        commit (`Record.stored`) so that its guards can be released.
        """
        if self.record.base is not None:
            return self.record.snapshot
        return self.record.stored

    def unique_condition(self, builder: ExpressionBuilder, values: tuple[Any, ...]) -> str:
        """A condition: the unique fields still hold `values`, whose guards are released."""
        parts = []
        for field in self.info.unique:
            value = self.field_value(values, field)
            name = builder.name(field)
            if value is None:
                parts.append(f"attribute_not_exists({name})")
            else:
                encoded = self.record.codec.types[field].encode(value, (field,))
                assert encoded is not None
                parts.append(f"{name} = {builder.value(encoded)}")
        return " AND ".join(parts) or builder.exists(self.info.pk)

    def guards(self, old: tuple[Any, ...] | None, new: tuple[Any, ...] | None) -> list[Action]:
        """Claim and release actions for the unique fields whose value changes."""
        actions = []
        owner = owner_text(self.info, self.record.key)
        for field in self.info.unique:
            before = self.field_value(old, field)
            after = self.field_value(new, field)
            if before == after and type(before) is type(after):
                continue
            if before is not None:
                builder = ExpressionBuilder()
                guard = builder.name(GUARD_OWNER)
                body = {
                    "TableName": self.guard_table,
                    "Key": {GUARD_KEY: {"S": guard_key(self.info, field, before)}},
                    "ConditionExpression": f"attribute_not_exists({builder.name(GUARD_KEY)}) "
                    f"OR {guard} = {builder.value({'S': owner})}",
                    **builder.params(),
                }
                actions.append(Action("Delete", body, "release", field, before))
            if after is not None:
                builder = ExpressionBuilder()
                item = {
                    GUARD_KEY: {"S": guard_key(self.info, field, after)},
                    GUARD_OWNER: {"S": owner},
                    **{f"key_{k}": v for k, v in key_item(self.info, self.record.key).items()},
                }
                # Claiming a guard the record already owns is fine (an overwrite).
                body = {
                    "TableName": self.guard_table,
                    "Item": item,
                    "ConditionExpression": f"{builder.not_exists(GUARD_KEY)} OR "
                    f"{builder.name(GUARD_OWNER)} = {builder.value({'S': owner})}",
                    **builder.params(),
                }
                actions.append(Action("Put", body, "claim", field, after))
        return actions

    def put(self, kind: ChangeKind, change: Change) -> Planned:
        record = self.record
        info = self.info
        item = _encode_item(record)
        snapshot = record.codec.snapshot(record.obj)
        builder = ExpressionBuilder()
        conditions = []
        new_version = None
        if kind is ChangeKind.CREATE:
            conditions.append(builder.not_exists(info.pk))
        if info.version is not None:
            read = self.read_version() if record.base is not None else None
            if kind is ChangeKind.PUT and read is not None:
                # A loaded record deleted then added again: replace the version we read.
                conditions.append(self.version_condition(builder, read))
                new_version = read + 1
            else:
                new_version = int(getattr(record.obj, info.version) or 0) + 1
            item[info.version] = {"N": str(new_version)}
            snapshot = _replace(snapshot, self.version_index(), new_version)
        _check_item_size(item)
        _check_index_keys(info, item)
        old = self.stored_values()
        if kind is ChangeKind.PUT and record.base is None and old is not None:
            conditions.append(self.unique_condition(builder, old))
        body: dict[str, Any] = {"TableName": self.table, "Item": item}
        if conditions:
            body["ConditionExpression"] = " AND ".join(conditions)
        body.update(builder.params())
        actions = [Action("Put", body), *self.guards(old, snapshot)]
        return Planned(
            record, change, self.table, actions, new_snapshot=snapshot, new_version=new_version
        )

    def delete(self, change: Change) -> Planned:
        record = self.record
        builder = ExpressionBuilder()
        body: dict[str, Any] = {"TableName": self.table, "Key": key_item(self.info, record.key)}
        old = self.stored_values()
        if self.info.version is not None and record.base is not None:
            body["ConditionExpression"] = self.version_condition(builder, self.read_version())
        elif record.base is None and old is not None:
            body["ConditionExpression"] = self.unique_condition(builder, old)
        body.update(builder.params())
        actions = [Action("Delete", body), *self.guards(old, None)]
        return Planned(record, change, self.table, actions)

    def update(self, change: Change, ops: list[Op], *, blind: bool) -> Planned:
        record = self.record
        info = self.info
        builder = ExpressionBuilder()
        sets: list[tuple[Path, AttributeValue]] = []
        removes: list[Path] = []
        adds: list[tuple[Path, AttributeValue]] = []
        for op in ops:
            if op.action == "REMOVE":
                removes.append(op.path)
            elif op.action == "SET":
                sets.append((op.path, _encode_at(record, op.path, op.value)))
            else:
                adds.append((op.path, _encode_at(record, op.path, op.value)))
        if info.indexes:
            _check_index_keys(info, {str(path[0]): av for path, av in sets if len(path) == 1})
        new_version = None
        snapshot = None
        if not blind:
            assert record.snapshot is not None
            written = {str(op.path[0]) for op in ops}
            snapshot = record.codec.carry_absent(
                record.snapshot, record.codec.snapshot(record.obj), written
            )
        if not blind and sum(_value_size(av) for _, av in sets) > _LARGE_CHANGE:
            # Only a large change can push a stored item (≤ 400 KB) far over the limit;
            # a full encode for every small update would double the planning cost.
            _check_item_size(record.codec.encode_item(record.obj))
        if info.version is not None and not blind:
            read = self.read_version()
            new_version = (read or 0) + 1
            condition = self.version_condition(builder, read)
            sets.append(((info.version,), {"N": str(new_version)}))
            assert snapshot is not None
            snapshot = _replace(snapshot, self.version_index(), new_version)
        else:
            condition = builder.exists(info.pk)
            if info.version is not None:  # a blind update still moves the version on
                adds.append(((info.version,), {"N": "1"}))
        body: dict[str, Any] = {
            "TableName": self.table,
            "Key": key_item(info, record.key),
            "UpdateExpression": builder.update(sets, removes, adds),
            "ConditionExpression": condition,
        }
        body.update(builder.params())
        add_fields = tuple(str(op.path[0]) for op in ops if op.action == "ADD")
        guards = [] if blind else self.guards(record.snapshot, snapshot)
        return Planned(
            record,
            change,
            self.table,
            [Action("Update", body), *guards],
            new_snapshot=snapshot,
            add_fields=add_fields,
            new_version=new_version,
        )


def _replace(values: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*values[:index], value, *values[index + 1 :])


def plan_record(record: Record, prefix: str) -> Planned | None:
    """Plan one record's write, or `None` when it has nothing to write.

    Raises:
        ValidationError: the record cannot be written; the message names
            model, key and the problem.
    """
    try:
        net = net_change(record)
        if net is None:
            return None
        kind, ops = net
        change = _change(record, kind, ops)
        planner = _Planner(record, prefix)
        if kind is ChangeKind.DELETE:
            planned = planner.delete(change)
        elif kind in (ChangeKind.PUT, ChangeKind.CREATE):
            planned = planner.put(kind, change)
        else:
            planned = planner.update(change, ops, blind=record.state is RecordState.BLIND)
        for action in planned.actions:
            _check_expressions(action.body)
        return planned
    except ValidationError as exc:
        raise _fail(record, exc) from exc


# -- routing -----------------------------------------------------------------------------


def _batches(entries: list[Planned]) -> list[Request]:
    return [
        Request("BatchWriteItem", tuple(entries[i : i + BATCH_WRITE_LIMIT]))
        for i in range(0, len(entries), BATCH_WRITE_LIMIT)
    ]


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


def make_plan(records: Iterable[Record], prefix: str, *, atomic: bool = False) -> Plan:
    """Plan every pending record, in log order, and route each to a request.

    Raises:
        ValidationError: the first record that cannot be written, or an atomic
            commit over DynamoDB's transaction limits; nothing is sent.
    """
    entries: list[Planned] = []
    update_batch: list[Planned] = []
    remove_batch: list[Planned] = []
    updates: list[Request] = []
    removes: list[Request] = []
    for record in records:
        planned = plan_record(record, prefix)
        if planned is None:
            continue
        entries.append(planned)
        removing = planned.change.kind is ChangeKind.DELETE
        if atomic:
            continue
        if planned.batchable:
            (remove_batch if removing else update_batch).append(planned)
        elif len(planned.actions) > 1:
            (removes if removing else updates).append(Request("TransactWriteItems", (planned,)))
        else:
            api = _SINGLE_API[planned.actions[0].kind]
            (removes if removing else updates).append(Request(api, (planned,)))
    if atomic:
        _check_transaction(entries)
        group = (Request("TransactWriteItems", tuple(entries)),) if entries else ()
        return Plan(tuple(entries), update_group=group, remove_group=())
    return Plan(
        tuple(entries),
        update_group=(*updates, *_batches(update_batch)),
        remove_group=(*removes, *_batches(remove_batch)),
    )
