"""From the change log to DynamoDB requests: the update group and the remove group.

Planning is pure: it encodes and validates every pending record, and nothing
is sent if any record is invalid. Each record contributes one `Planned` entry:

| record state | change | request |
|---|---|---|
| `NEW` | create | `PutItem` conditioned on `attribute_not_exists(pk)` |
| `REPLACE` | put | `BatchWriteItem` put (≤ 25 per request) |
| `LOADED`, changed | update | `UpdateItem` of the changed paths, if `attribute_exists(pk)` |
| `BLIND` | update | `UpdateItem` of the coalesced operations, if `attribute_exists(pk)` |
| `DELETED` | delete | `BatchWriteItem` delete (≤ 25 per request) |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from uow.changes import Change, ChangeKind, Op, is_field, type_at
from uow.codec import AttributeValue, Item, Path, format_path
from uow.errors import ValidationError
from uow.expressions import ExpressionBuilder
from uow.identity import Record, RecordState, key_item, key_of_object

__all__ = [
    "BATCH_WRITE_LIMIT",
    "ITEM_SIZE_LIMIT",
    "Plan",
    "Planned",
    "Request",
    "change_of",
    "item_size",
    "make_plan",
    "plan_record",
]

BATCH_WRITE_LIMIT = 25
ITEM_SIZE_LIMIT = 400 * 1024


@attrs.define(slots=True, eq=False)
class Planned:
    """One record's write: the public `Change`, and what to install once confirmed."""

    record: Record
    change: Change
    table: str
    # Committed field values once the write is confirmed (None: drop the record).
    new_snapshot: tuple[Any, ...] | None = None
    # Top-level fields written with ADD: their committed value comes back in the response.
    add_fields: tuple[str, ...] = ()
    # For BatchWriteItem entries: the WriteRequest.
    write: dict[str, Any] | None = None
    # For single requests: API name and parameters.
    api: str = ""
    params: dict[str, Any] | None = None


@attrs.frozen(slots=True)
class Request:
    """One request to send: a single write, or a batch of up to 25."""

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


def _number_size(text: str) -> int:
    digits = sum(c.isdigit() for c in text.split("e", maxsplit=1)[0].split("E", maxsplit=1)[0])
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


def item_size(item: Item) -> int:
    """An item's size by DynamoDB's rules: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _value_size(av) for name, av in item.items())


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
    item = record.codec.encode_item(obj)
    size = item_size(item)
    if size > ITEM_SIZE_LIMIT:
        raise ValidationError(
            f"item is {size} bytes, over DynamoDB's 400 KB item limit ({ITEM_SIZE_LIMIT} bytes)"
        )
    return item


def _encode_at(record: Record, path: Path, value: Any) -> AttributeValue:
    kind = type_at(record.codec, path)
    if is_field(record.codec, path):
        av = kind.encode(value, path)
        if av is None:  # pragma: no cover - SET of None/empty is normalised to REMOVE
            raise ValidationError(f"{format_path(path)}: nothing to set")
        return av
    return kind.encode_element(value, path)


def _update_params(
    record: Record, table: str, ops: Iterable[Op], *, returns: bool
) -> dict[str, Any]:
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
    params: dict[str, Any] = {
        "TableName": table,
        "Key": key_item(record.info, record.key),
        "UpdateExpression": builder.update(sets, removes, adds),
        "ConditionExpression": builder.exists(record.info.pk),
    }
    params.update(builder.params())
    if returns:
        params["ReturnValues"] = "UPDATED_NEW"
    return params


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
    key_fields = record.info.key_fields
    codec = record.codec
    ops = []
    for action, path, value, kind in diff:
        if path[0] in key_fields:
            raise ValidationError(
                f"key field {path[0]!r} changed on a loaded object; keys are immutable: "
                "delete the record and add a new one"
            )
        if action == "SET" and len(path) == 1 and path[0] in record.adds:
            name = path[0]
            delta = record.adds[name]
            old = record.snapshot[codec.names.index(name)]
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
        ValidationError: a key field of a loaded object was changed.
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


def plan_record(record: Record, prefix: str) -> Planned | None:
    """Plan one record's write, or `None` when it has nothing to write.

    Raises:
        ValidationError: the record cannot be written; the message names
            model, key and the problem.
    """
    table = prefix + record.info.table
    try:
        net = net_change(record)
        if net is None:
            return None
        kind, ops = net
        change = _change(record, kind, ops)
        if kind is ChangeKind.DELETE:
            write = {"DeleteRequest": {"Key": key_item(record.info, record.key)}}
            return Planned(record, change, table, write=write)
        if kind is ChangeKind.PUT:
            write = {"PutRequest": {"Item": _encode_item(record)}}
            snapshot = record.codec.snapshot(record.obj)
            return Planned(record, change, table, new_snapshot=snapshot, write=write)
        if kind is ChangeKind.CREATE:
            builder = ExpressionBuilder()
            params = {
                "TableName": table,
                "Item": _encode_item(record),
                "ConditionExpression": builder.not_exists(record.info.pk),
                **builder.params(),
            }
            snapshot = record.codec.snapshot(record.obj)
            return Planned(
                record, change, table, new_snapshot=snapshot, api="PutItem", params=params
            )
        if record.state is RecordState.BLIND:
            params = _update_params(record, table, ops, returns=False)
            return Planned(record, change, table, api="UpdateItem", params=params)
        add_fields = tuple(str(op.path[0]) for op in ops if op.action == "ADD")
        params = _update_params(record, table, ops, returns=bool(add_fields))
        return Planned(
            record,
            change,
            table,
            new_snapshot=record.codec.snapshot(record.obj),
            add_fields=add_fields,
            api="UpdateItem",
            params=params,
        )
    except ValidationError as exc:
        raise _fail(record, exc) from exc


def _batches(entries: list[Planned]) -> list[Request]:
    return [
        Request("BatchWriteItem", tuple(entries[i : i + BATCH_WRITE_LIMIT]))
        for i in range(0, len(entries), BATCH_WRITE_LIMIT)
    ]


def make_plan(records: Iterable[Record], prefix: str) -> Plan:
    """Plan every pending record, in log order.

    Raises:
        ValidationError: the first record that cannot be written; nothing is sent.
    """
    entries: list[Planned] = []
    update_batch: list[Planned] = []
    remove_batch: list[Planned] = []
    singles: list[Request] = []
    for record in records:
        planned = plan_record(record, prefix)
        if planned is None:
            continue
        entries.append(planned)
        if planned.write is None:
            singles.append(Request(planned.api, (planned,)))
        elif planned.change.kind is ChangeKind.DELETE:
            remove_batch.append(planned)
        else:
            update_batch.append(planned)
    return Plan(
        tuple(entries),
        update_group=(*singles, *_batches(update_batch)),
        remove_group=tuple(_batches(remove_batch)),
    )
