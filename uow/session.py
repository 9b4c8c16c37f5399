"""`Session`: the identity map, the change log, commit, rollback and the `clear_*` family.

Every method keeps one invariant: for every key, the object in the map equals
"committed snapshot + pending changes", and every pending change belongs to a
record in the map. Memory changes only after DynamoDB confirms a write
(`_apply`), in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from boto3.dynamodb.conditions import ConditionBase

from uow._commit import run_commit
from uow._execute import Outcome
from uow._lifecycle import SessionState
from uow._reads import Reads
from uow.changes import (
    Change,
    Op,
    merge_op,
    missing_at,
    parse_path,
    path_remove,
    path_set,
    resolve_op,
    type_at,
)
from uow.codec import ModelCodec, codec_for
from uow.conditions import Check
from uow.conditions import checked as checked_condition
from uow.errors import NotMapped, UsageError, ValidationError
from uow.identity import (
    IdentityMap,
    Key,
    Record,
    RecordState,
    key_of,
    key_of_object,
)
from uow.model import ModelInfo, info_of
from uow.plan import change_of, loaded_ops
from uow.results import CommitResult, ReadStats
from uow.telemetry import commit_span, record_result

if TYPE_CHECKING:
    from uow.store import Store

__all__ = ["Session", "SessionState"]

log = logging.getLogger("uow.session")
T = TypeVar("T")


def _combine(current: Any, delta: Any) -> Any:
    if isinstance(delta, set):
        return set(current or ()) | delta
    return (current or 0) + delta


class Session(Reads):
    """A unit of work: one object per item, pending changes, and `commit()`.

    Make one per web request or job with `store.session()`, preferably as
    `async with store.session() as session:`, which commits on a clean exit
    and rolls back when the block raises.

    A Session must not be shared between tasks at the same time: a call from
    a second task while one task awaits `commit`/`get`/`refresh` raises
    `UsageError`.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records: dict[Key, Record] = {}
        self._view = IdentityMap(self._records)
        self._state = SessionState.OPEN
        self._entered = False
        self._busy_call = ""
        self._busy_task: asyncio.Task[Any] | None = None
        self._reads = Outcome(consumed_capacity=0.0 if store.consumed_capacity else None)
        self._hits = 0
        self._checks: list[Check] = []
        self._misses = 0

    def __repr__(self) -> str:
        return f"<uow.Session {self._state.value} records={len(self._records)}>"

    # -- lifecycle -----------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    def _guard(self, call: str) -> None:
        if self._state is SessionState.OPEN:
            return
        if self._state is SessionState.CLOSED:
            raise UsageError(f"Session.{call}: the session is closed; open a new one")
        task = self._busy_task.get_name() if self._busy_task else "?"
        raise UsageError(
            f"Session.{call}: the session is busy in {self._busy_call} (task {task}); "
            "a Session must not be shared between tasks at the same time"
        )

    def _begin(self, call: str) -> None:
        self._guard(call)
        self._state = SessionState.BUSY
        self._busy_call = call
        self._busy_task = asyncio.current_task()

    def _end(self) -> None:
        if self._state is SessionState.BUSY:
            self._state = SessionState.OPEN
        self._busy_call = ""
        self._busy_task = None

    async def __aenter__(self) -> Self:
        if self._entered:
            raise UsageError("Session: re-entering `async with` on a session is not allowed")
        self._guard("__aenter__")
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is SessionState.CLOSED:
            return
        try:
            if exc_type is None:
                await self.commit()
            elif self._state is SessionState.OPEN:
                self.rollback()
        finally:
            self.close()

    def close(self) -> None:
        """Forget every record and pending change; later calls raise `UsageError`.

        `async with store.session()` closes for you, after committing.
        """
        self._guard("close()")
        self._records.clear()
        self._state = SessionState.CLOSED

    # -- lookups ---------------------------------------------------------------

    def _info(self, obj: Any) -> ModelInfo:
        try:
            return info_of(type(obj))
        except NotMapped:
            raise NotMapped(
                f"{type(obj).__name__} object is not a uow model: decorate its class with "
                "@uow.model(...)"
            ) from None

    def _record_of(self, obj: Any, call: str) -> Record:
        info = self._info(obj)
        record = self._records.get(key_of_object(info, obj))
        if record is None or (record.obj is not obj and record.base is not obj):
            raise UsageError(
                f"Session.{call}: this {info.name} object is not in the session "
                "(never added or loaded, or expunged)"
            )
        return record

    # -- read-only views ---------------------------------------------------------

    @property
    def identity_map(self) -> IdentityMap:
        """Read-only map key → object, for every record the session shows."""
        return self._view

    @property
    def pending(self) -> tuple[Change, ...]:
        """The net pending change of every record, in change-log order."""
        self._guard("pending")
        changes = (change_of(record) for record in self._records.values())
        return tuple(change for change in changes if change is not None)

    @property
    def read_stats(self) -> ReadStats:
        """What this session's reads cost so far: map hits, misses, requests per API."""
        reads = self._reads
        return ReadStats(
            hits=self._hits,
            misses=self._misses,
            items=reads.items,
            requests=dict(reads.requests),
            retries=reads.retries,
            consumed_capacity=reads.consumed_capacity,
        )

    def is_dirty(self, obj: Any) -> bool:
        """True when `obj` has a pending change (added, deleted, mutated or updated).

        Raises:
            UsageError: `obj` is not in this session.
        """
        self._guard("is_dirty()")
        return self._is_dirty(self._record_of(obj, "is_dirty()"))

    @staticmethod
    def _is_dirty(record: Record) -> bool:
        """True when commit would write something for the record.

        A loaded record is dirty when its object differs from its snapshot;
        an `ADD` that changed nothing (elements already in the set) is not a
        change, as commit would send nothing for it.
        """
        if record.state is not RecordState.LOADED:
            return True
        return bool(loaded_ops(record))

    # -- changes -----------------------------------------------------------------

    def add(
        self, obj: Any, *, overwrite: bool = False, condition: ConditionBase | None = None
    ) -> None:
        """Add a new record; it is written at commit.

        By default the write is create-only: if DynamoDB already holds the key,
        the commit reports `DuplicateKeyError` for it. `overwrite=True` writes
        an unconditional put that replaces any stored item. Adding an object
        already in the session does nothing; adding after a pending delete of
        the same key replaces the item. `condition` (a
        `boto3.dynamodb.conditions` object) must also hold on the stored item
        (see `update`).

        Raises:
            NotMapped: `obj` is not a model instance.
            ValidationError: its key is missing, empty or of a wrong type, or
                `condition` is not a condition DynamoDB can evaluate.
            UsageError: another object already holds this key in the session.
        """
        self._guard("add()")
        info = self._info(obj)
        conditions = self._conditions(condition, "add()")
        key = key_of_object(info, obj)
        self._add(info, key, obj, overwrite=overwrite)
        self._records[key].conditions += conditions

    def add_all(self, objs: Iterable[Any], *, overwrite: bool = False) -> None:
        """Add several records; nothing is added if any of them is refused."""
        self._guard("add_all()")
        items = []
        seen: dict[Key, Any] = {}
        for obj in objs:
            info = self._info(obj)
            key = key_of_object(info, obj)
            if seen.setdefault(key, obj) is not obj:
                raise UsageError(f"Session.add_all(): two objects share the key {info.name} {key}")
            self._check_add(info, key, obj)
            items.append((info, key, obj))
        for info, key, obj in items:
            self._add(info, key, obj, overwrite=overwrite)

    @staticmethod
    def _check_settled(record: Record | None, call: str) -> None:
        """Refuse a new change to a record whose last write's outcome is unknown.

        That write is re-sent exactly as it was by the next commit (so that it
        lands once); a change made before then could not be told from it.
        """
        if record is not None and record.doubt is not None and record.doubt.params is not None:
            raise UsageError(
                f"Session.{call}: {record.info.name} {record.key} has a write whose outcome "
                "is unknown (its commit was interrupted); commit() again to settle it "
                "first, or clear_record() it"
            )

    def _check_add(self, info: ModelInfo, key: Key, obj: Any) -> None:
        record = self._records.get(key)
        self._check_settled(record, "add()")
        if record is None or record.obj is obj:
            return
        if record.state in (RecordState.DELETED, RecordState.BLIND):
            return
        raise UsageError(
            f"Session.add(): another {record.info.name} object already holds key {key} in this "
            "session; change that object, or delete it first"
        )

    def _touch(self, record: Record) -> None:
        """Put a record that gets its first pending change at the end of the change log.

        The map's insertion order is the log order: loaded records sit where
        they were loaded until an explicit call (add, delete, update) gives
        them a pending change. Mutations by assignment cannot be observed, so
        such a record keeps its place until then.
        """
        if record.state is not RecordState.LOADED or self._is_dirty(record):
            return  # already pending: it keeps its place
        records = self._records
        del records[record.key]
        records[record.key] = record

    def _add(self, info: ModelInfo, key: Key, obj: Any, *, overwrite: bool) -> None:
        self._check_add(info, key, obj)
        record = self._records.get(key)
        codec = codec_for(info.cls)
        if record is None:
            state = RecordState.REPLACE if overwrite else RecordState.NEW
            self._records[key] = Record(key, info, codec, state, obj=obj)
        elif record.state is RecordState.DELETED:
            # A delete then an add of one key: the item is replaced by one put.
            record.obj, record.info, record.codec = obj, info, codec
            record.state = RecordState.REPLACE
        elif record.state is RecordState.BLIND:
            # A full put supersedes earlier blind updates of the same key.
            record.obj, record.info, record.codec = obj, info, codec
            record.blind = []
            record.state = RecordState.REPLACE if overwrite else RecordState.NEW

    def delete(self, obj: Any, *, condition: ConditionBase | None = None) -> None:
        """Delete a record at commit (remove group).

        Deleting a record added in this session and not yet committed simply
        forgets it. An object that is not in the session is deleted by its key.
        With `condition`, the item is deleted only if it holds on the stored
        item (see `update`); a conditioned delete is never batched.

        Raises:
            NotMapped: `obj` is not a model instance.
            ValidationError: `condition` is not a condition DynamoDB can evaluate.
            UsageError: another object holds this key in the session.
        """
        self._guard("delete()")
        info = self._info(obj)
        conditions = self._conditions(condition, "delete()")
        key = key_of_object(info, obj)
        record = self._records.get(key)
        if record is not None and record.obj is not obj and record.visible is not None:
            raise UsageError(
                f"Session.delete(): another {info.name} object holds key {key} in this session; "
                "delete that one"
            )
        self._delete(info, key, conditions)

    def delete_key(
        self, model: type, pk: Any, sk: Any = None, *, condition: ConditionBase | None = None
    ) -> None:
        """Delete the record with this key at commit, without loading it.

        With `condition`, only if it holds on the stored item (see `update`).
        """
        self._guard("delete_key()")
        info = info_of(model)
        conditions = self._conditions(condition, "delete_key()")
        self._delete(info, key_of(info, pk, sk), conditions)

    def _delete(self, info: ModelInfo, key: Key, conditions: list[ConditionBase]) -> None:
        record = self._records.get(key)
        self._check_settled(record, "delete()")
        if record is None:
            codec = codec_for(info.cls)
            record = Record(key, info, codec, RecordState.DELETED)
            record.conditions = conditions
            self._records[key] = record
            return
        state = record.state
        record.conditions += conditions
        if state is RecordState.NEW:
            del self._records[key]
        elif state is RecordState.DELETED:
            return
        else:
            self._touch(record)
            if state is RecordState.REPLACE and record.base is not None:
                _to_base(record)
            record.blind = []
            record.adds = {}
            record.state = RecordState.DELETED

    def update(
        self,
        model: type,
        pk: Any,
        sk: Any = None,
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: ConditionBase | None = None,
    ) -> None:
        """A field-level update by document path, without loading the record.

        Paths look like `"name"`, `"profile.address.city"` or `"tags[2]"`.
        `set` assigns values (`None` removes a field), `remove` removes paths,
        `add` adds to top-level numbers (counters) or sets (elements) with
        DynamoDB's `ADD`, so concurrent increments from many processes are not
        lost. If the record is in the map, its object is changed at once.
        Otherwise the operations are written at commit with `UpdateItem`,
        conditioned on the item existing (a missing item fails the change
        with `ConflictError`).

        `condition` (a `boto3.dynamodb.conditions` object, such as
        `Attr("qty").gte(2)`) is evaluated by DynamoDB on the stored item,
        ANDed with uow's own conditions; if it does not hold, the change fails
        with `ConditionFailed` (whose `.item` is the stored item) and stays
        pending. It applies to this record's next write, and lives until that
        write is confirmed or the change is dropped (`rollback`, `clear*`).

        Raises:
            ValidationError: an unknown field, a key field, a value of the wrong
                type, a malformed path, a path missing from the mapped object,
                or a condition DynamoDB cannot evaluate.
            UsageError: the record is pending deletion.
        """
        self._guard("update()")
        info = info_of(model)
        key = key_of(info, pk, sk)
        conditions = self._conditions(condition, "update()")
        codec = codec_for(info.cls)
        ops: list[Op] = []
        try:
            for text, value in (set or {}).items():
                ops.append(resolve_op(codec, info.key_fields, Op("SET", parse_path(text), value)))
            for text in remove:
                ops.append(resolve_op(codec, info.key_fields, Op("REMOVE", parse_path(text))))
            for text, value in (add or {}).items():
                ops.append(resolve_op(codec, info.key_fields, Op("ADD", parse_path(text), value)))
        except ValidationError as exc:
            raise ValidationError(f"Session.update({info.name} {key}): {exc}") from exc
        managed = {str(op.path[0]) for op in ops} & {info.version}
        if managed:
            raise ValidationError(
                f"Session.update({info.name} {key}): the version field {info.version!r} "
                "is managed by uow; every write increments it"
            )
        record = self._records.get(key)
        self._check_settled(record, "update()")
        # Guards follow these fields (and the TTL field, whose expiry guards carry).
        guarded = {*info.unique_fields, *([info.ttl] if info.ttl and info.unique else [])}
        unique = {str(op.path[0]) for op in ops}.intersection(guarded)
        if unique and (record is None or record.state is RecordState.BLIND):
            raise ValidationError(
                f"Session.update({info.name} {key}): {sorted(unique)} are unique fields "
                "(or the TTL their guards follow); changing one needs the current value, "
                "so get() the record and change it"
            )
        if record is None:
            record = Record(key, info, codec, RecordState.BLIND)
            self._merge_blind(record, ops)
            record.conditions = conditions
            self._records[key] = record
        elif record.state is RecordState.BLIND:
            self._merge_blind(record, ops)
            record.conditions += conditions
        elif record.state is RecordState.DELETED:
            raise UsageError(
                f"Session.update(): {info.name} {key} is pending deletion; add a new object "
                "to recreate it, or rollback the delete first"
            )
        else:
            self._touch(record)
            try:
                self._apply_ops(record, ops)
            except ValidationError as exc:
                raise ValidationError(f"Session.update({info.name} {key}): {exc}") from exc
            record.conditions += conditions

    def expect(self, obj: Any, condition: ConditionBase) -> None:
        """Attach a condition to the next write of a loaded (or added) record.

        For records changed by assignment (`user.plan = "team"`), which no call
        carries a condition for: `session.expect(user, Attr("plan").eq("pro"))`.
        DynamoDB evaluates it on the stored item, ANDed with uow's own
        conditions; see `update` for what happens when it does not hold.

        Raises:
            UsageError: `obj` is not in this session.
            ValidationError: `condition` is not a condition DynamoDB can evaluate.
        """
        self._guard("expect()")
        record = self._record_of(obj, "expect()")
        self._check_settled(record, "expect()")
        record.conditions += self._conditions(condition, "expect()")

    def check(self, model: type, pk: Any, sk: Any = None, *, condition: ConditionBase) -> None:
        """Make the next atomic commit depend on an item it does not write.

        Adds a `ConditionCheck` of `condition` on the item with this key to
        the transaction of `commit(atomic=True)`: if it does not hold, nothing
        is written and the check fails with `ConditionFailed`. A plain
        `commit()` with a pending check raises `ValidationError` before any
        request. Checks are dropped once an atomic commit confirms them, or
        by `rollback()`/`clear()`/`clear_pending()`.

        Raises:
            ValidationError: a bad key, or a condition DynamoDB cannot evaluate.
        """
        self._guard("check()")
        info = info_of(model)
        (checked,) = self._conditions(condition, "check()")
        self._checks.append(Check(info, key_of(info, pk, sk), checked))

    @staticmethod
    def _conditions(condition: Any, call: str) -> list[ConditionBase]:
        return [] if condition is None else [checked_condition(condition, f"Session.{call}")]

    @staticmethod
    def _merge_blind(record: Record, ops: list[Op]) -> None:
        merged = list(record.blind)
        for op in ops:
            merge_op(merged, op)
        record.blind = merged

    @staticmethod
    def _apply_ops(record: Record, ops: Sequence[Op]) -> None:
        """Apply operations to the record's object, all or nothing."""
        codec = record.codec
        trial = codec.clone(record.obj)
        _apply_to(codec, trial, ops, None)
        adds = dict(record.adds) if record.state is RecordState.LOADED else None
        _apply_to(codec, record.obj, ops, adds)
        if adds is not None:
            record.adds = adds

    # -- forgetting ----------------------------------------------------------------

    def expunge(self, obj: Any) -> None:
        """Forget `obj` and its pending changes; DynamoDB is not touched.

        Raises:
            UsageError: `obj` is not in this session.
        """
        self._guard("expunge()")
        del self._records[self._record_of(obj, "expunge()").key]

    @overload
    def clear_record(self, obj: Any, /) -> None: ...

    @overload
    def clear_record(self, model: type, pk: Any, sk: Any = None, /) -> None: ...

    def clear_record(self, target: Any, pk: Any = None, sk: Any = None, /) -> None:
        """Evict one record together with its pending changes.

        Call it with the object, or with `(Model, pk, sk=None)`; evicting a key
        that is not in the map does nothing.
        """
        self._guard("clear_record()")
        if isinstance(target, type):
            info = info_of(target)
            self._records.pop(key_of(info, pk, sk), None)
        else:
            del self._records[self._record_of(target, "clear_record()").key]

    def clear(self) -> None:
        """Empty the map and the change log (condition checks included)."""
        self._guard("clear()")
        self._records.clear()
        self._checks.clear()

    def clear_cache(self) -> None:
        """Evict every record that has no pending change.

        Records with pending changes stay: their changes need them.
        """
        self._guard("clear_cache()")
        for key in [k for k, r in self._records.items() if not self._is_dirty(r)]:
            del self._records[key]

    def rollback(self) -> None:
        """Drop every pending change and restore every object in place to committed state.

        Added objects are expunged; deleted objects are back in the map;
        mutated and updated objects get their committed values back.
        """
        self._guard("rollback()")
        self._checks.clear()
        self._revert(lambda record: True)

    def clear_pending(self) -> None:
        """The same as `rollback()`."""
        self._guard("clear_pending()")
        self._checks.clear()
        self._revert(lambda record: True)

    def clear_pending_updates(self) -> None:
        """Drop the update group (adds, puts, mutations, updates); deletes stay pending.

        Affected objects are restored to committed state; added objects are expunged.
        """
        self._guard("clear_pending_updates()")
        self._revert(lambda record: record.state is not RecordState.DELETED)

    def clear_pending_removes(self) -> None:
        """Drop the remove group: pending deletes are undone, objects back in the map."""
        self._guard("clear_pending_removes()")
        self._revert(lambda record: record.state is RecordState.DELETED)

    def _revert(self, selected: Callable[[Record], bool]) -> None:
        for key, record in list(self._records.items()):
            if not selected(record):
                continue
            if record.doubt is not None:
                # A write of it may have landed: its committed state is unknown, so it
                # leaves the map (the next read sees what DynamoDB holds).
                del self._records[key]
                continue
            record.attempt = None  # a change made after this is a new one
            record.conditions = []
            if not self._is_dirty(record):
                record.adds = {}  # ADDs that changed nothing leave nothing behind
                continue
            if record.snapshot is None or record.base is None:
                del self._records[key]  # new, blind, or deleted without a loaded object
                continue
            _to_base(record)
            record.codec.restore(record.base, record.snapshot)
            record.state = RecordState.LOADED
            record.blind = []
            record.adds = {}

    # -- commit --------------------------------------------------------------------

    async def commit(self, *, atomic: bool = False) -> CommitResult:
        """Write every pending change; return what was sent.

        The log is validated and planned first (a `ValidationError` means
        nothing was sent). Puts and deletes go in `BatchWriteItem` requests of
        up to 25; creates (`add`) go as conditional `PutItem`s; changed loaded
        records and blind updates go as `UpdateItem`s of the changed paths.
        The update group and the remove group are sent concurrently, at most
        `max_concurrency` requests at a time.

        Confirmed changes become committed state. If any change fails,
        `CommitError` is raised after every request has finished: it lists
        `.succeeded` and `.failed` (with causes); failed changes stay pending,
        and calling `commit()` again sends only them.

        With `atomic=True` the whole log goes in one `TransactWriteItems`:
        everything is written or nothing is. DynamoDB caps a transaction at 100
        actions (unique-field guards count) and 4 MB, and one item may appear
        once; a larger log raises `ValidationError` before any request.

        Records with a `version` field are written only if their stored version
        is the one they were read at, and the version is incremented; records
        with `unique` fields claim and release guard items in the same
        transaction as their write.

        Raises:
            ValidationError: a pending record cannot be written; nothing was sent.
            CommitError: some changes failed; see above.
            UsageError: the session is closed or busy in another task.
        """
        self._guard("commit()")
        with commit_span(atomic=atomic) as span:
            if self._checks and not atomic:
                raise ValidationError(
                    f"Session.commit(): {len(self._checks)} condition checks are pending; a "
                    "check holds only inside a transaction: commit(atomic=True), or drop "
                    "them with rollback()"
                )
            self._begin("commit()")
            try:
                result, error = await run_commit(
                    self._records, self._store, atomic=atomic, checks=self._checks
                )
            finally:
                self._end()
            if error is None:
                self._checks.clear()  # confirmed by the transaction
            record_result(span, result)
        if error is not None:
            raise error
        return result


def _to_base(record: Record) -> None:
    """Show the loaded object again, with its own model (a replacement may be of another kind)."""
    base = record.base
    record.obj = base
    if type(base) is not record.info.cls:
        record.info, record.codec = info_of(type(base)), codec_for(type(base))


def _apply_to(codec: ModelCodec, obj: Any, ops: Sequence[Op], adds: dict[str, Any] | None) -> None:
    for op in ops:
        path = op.path
        kind = type_at(codec, path)
        if op.action == "SET":
            path_set(obj, path, kind.clone(op.value))
        elif op.action == "REMOVE":
            # A removed field reads back as its missing value (None, an empty set, or
            # the default of a type without None), so the object shows exactly that.
            path_remove(obj, path, absent=missing_at(codec, path))
        else:
            name = str(path[0])
            object.__setattr__(obj, name, _combine(getattr(obj, name), op.value))
            if adds is not None:
                adds[name] = _combine(adds.get(name), op.value)
