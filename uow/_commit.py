"""One `Session.commit()`: settle what an interrupted commit left unknown, plan, send, apply.

The order of a commit:

1. **Settle.** Writes an earlier commit sent without getting an answer
   (`Record.doubt`: cancelled in flight, answer lost, out of retries after a
   lost answer) are re-sent exactly as they were, before anything else is
   sent for their records: same `ClientRequestToken`, same markers, same
   conditions, so a write that had landed is recognised (`_execute.landed`) or
   dropped by DynamoDB (a repeated token), never applied twice.
2. **Plan** every other pending record (`uow.plan`): a `ValidationError`
   here means nothing of this step was sent.
3. **Send** the plan (`uow._execute.Executor`), concurrently and bounded.
4. **Apply** what DynamoDB confirmed, in one place (`apply`), after each
   of steps 1 and 3 — also when the commit is cancelled: what was confirmed is
   committed state, what was on the wire is kept in doubt for the next commit,
   the rest is still pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from uow._execute import Executor, InDoubt, Outcome, translate
from uow._items import model_of_item, wrong_kind
from uow.changes import ChangeKind
from uow.codec import Item, codec_for, unwrap
from uow.conditions import Check
from uow.errors import AbortedError, CommitError, OutcomeUnknownError, SchemaError
from uow.identity import Key, Record, RecordState, key_item
from uow.model import ModelInfo
from uow.plan import change_of, make_plan
from uow.results import CommitResult

if TYPE_CHECKING:
    from uow.store import Store

__all__ = ["apply", "run_commit"]

log = logging.getLogger("uow.session")


async def run_commit(
    records: dict[Key, Record], store: Store, *, atomic: bool, checks: list[Check] | None = None
) -> tuple[CommitResult, CommitError | None]:
    """Commit every pending record of `records` (a session's map, changed in place).

    Returns the result, and the `CommitError` to raise if any change failed.
    `checks` (the session's pending condition checks) loses those that a settled
    transaction confirmed.

    Raises:
        ValidationError: a pending record cannot be written; nothing of it was sent.
        CommitError: reading stored items before a blind unique-field write failed.
        asyncio.CancelledError: the commit was cancelled; confirmed changes are
            applied, writes on the wire are kept in doubt.
    """
    started = time.perf_counter()
    capacity = 0.0 if store.consumed_capacity else None
    executor = Executor(store.transport, max_concurrency=store.max_concurrency, retry=store.retry)
    outcomes: list[Outcome] = []
    entries = 0
    try:
        doubts = _doubts(records)
        if doubts:
            settled = Outcome(consumed_capacity=capacity)
            outcomes.append(settled)
            for doubt in doubts:
                for planned in doubt.request.entries:
                    planned.record.doubt = None  # set again below if still unknown
            try:
                await executor.settle(doubts, settled)
            finally:
                _keep_unanswered(doubts, settled)
                apply(records, settled)
                if checks:
                    _drop_confirmed(checks, settled)
            entries += sum(len(doubt.request.entries) for doubt in doubts)
        failed = {id(planned.record) for outcome in outcomes for planned, _ in outcome.failed}
        pending = [
            record
            for record in records.values()
            if id(record) not in failed and (record.doubt is None or record.doubt.params is None)
        ]
        resent = _resent(pending)
        plan = make_plan(pending, store.table_prefix, atomic=atomic, checks=checks or ())
        outcome = Outcome(consumed_capacity=capacity)
        outcomes.append(outcome)
        if atomic and (failed or any(r.doubt is not None for r in records.values())):
            # All or nothing: an earlier write that did not settle keeps this one unsent.
            for planned in plan.entries:
                outcome.failed.append(
                    (
                        planned,
                        AbortedError(
                            f"{planned.change.describe()}: not sent: the atomic commit could "
                            "not settle an earlier write of this session first (see the "
                            "other failures)"
                        ),
                    )
                )
            entries += len(plan.entries)
            return _finish(outcomes, started, entries)
        try:
            if await _read_stored(pending, executor, outcome, store.table_prefix):
                plan = make_plan(pending, store.table_prefix, atomic=atomic, checks=checks or ())
            await executor.run(plan, outcome)
        finally:
            apply(records, outcome)
            _count_resent(resent, outcome)
        entries += len(plan.entries)
    except asyncio.CancelledError:
        _log_cancelled(outcomes)
        raise
    return _finish(outcomes, started, entries)


def _finish(
    outcomes: list[Outcome], started: float, entries: int
) -> tuple[CommitResult, CommitError | None]:
    """The result of a commit, logged, and the error to raise if anything failed."""
    result = _result(outcomes, time.perf_counter() - started)
    log.info("commit %s", result.summary())
    failures = [
        (planned.change, cause) for outcome in outcomes for planned, cause in outcome.failed
    ]
    if not failures:
        return result, None
    succeeded = [planned.change for outcome in outcomes for planned, _ in outcome.succeeded]
    first = failures[0]
    error = CommitError(
        f"{len(failures)} of {entries} changes failed and stay pending "
        f"(first: {first[0].describe()}: {first[1]}); commit() again sends only them",
        succeeded=succeeded,
        failed=failures,
        result=result,
    )
    return result, error


def _doubts(records: dict[Key, Record]) -> list[InDoubt]:
    """The writes to settle first: each once, however many records it wrote."""
    found: dict[int, InDoubt] = {}
    for record in records.values():
        doubt = record.doubt
        if doubt is not None and doubt.params is not None:
            found[id(doubt)] = doubt
    settle = []
    for doubt in found.values():
        kept = tuple(
            planned
            for planned in doubt.request.entries
            if planned.kind is ChangeKind.CHECK  # a check's record is never in the map
            or (records.get(planned.record.key) is planned.record and planned.record.doubt is doubt)
        )
        if len(kept) < len(doubt.request.entries):
            dropped = next(p for p in doubt.request.entries if p not in kept)
            # Re-sending the transaction would write the dropped record's change too,
            # and one without it would carry another token: neither is sound.
            reason = doubt.unsettled or OutcomeUnknownError(
                f"{dropped.change.describe()} was sent in the same transaction and has "
                "since been dropped from the session (rollback, clear_record...)"
            )
            settle.append(
                InDoubt(
                    doubt.request._replace(entries=kept), doubt.params, doubt.first_sent, reason
                )
            )
            continue
        settle.append(doubt)
    return settle


def _drop_confirmed(checks: list[Check], outcome: Outcome) -> None:
    """Forget the checks that a settled transaction confirmed (in place)."""
    confirmed = {
        id(planned.record.conditions[0])
        for planned, _ in outcome.succeeded
        if planned.kind is ChangeKind.CHECK
    }
    checks[:] = [check for check in checks if id(check.condition) not in confirmed]


def _keep_unanswered(doubts: list[InDoubt], outcome: Outcome) -> None:
    """Keep in doubt what a cancelled settle did not get to (its tasks never ran)."""
    answered = {id(planned) for planned, _ in outcome.succeeded}
    answered.update(id(planned) for planned, _ in outcome.failed)
    kept = {id(doubt.request) for doubt in outcome.doubtful}
    for doubt in doubts:
        if id(doubt.request) in kept:
            continue
        if not any(id(planned) in answered for planned in doubt.request.entries):
            outcome.doubtful.append(doubt)


def _resent(pending: Sequence[Record]) -> list[Record]:
    """Records whose idempotent write was left in doubt: planned and sent again now."""
    resent = [record for record in pending if record.doubt is not None]
    for record in resent:
        record.doubt = None
    return resent


def _count_resent(resent: list[Record], outcome: Outcome) -> None:
    if not resent:
        return
    confirmed = {id(planned.record) for planned, _ in outcome.succeeded}
    outcome.unknown += len(resent)
    done = sum(1 for record in resent if id(record) in confirmed)
    if done:
        outcome.settle("resent", done)
    if done < len(resent):
        outcome.settle("pending", len(resent) - done)


def _log_cancelled(outcomes: list[Outcome]) -> None:
    confirmed = sum(len(outcome.succeeded) for outcome in outcomes)
    unknown = sum(len(d.request.entries) for outcome in outcomes for d in outcome.doubtful)
    log.info(
        "commit cancelled: %d changes confirmed, %d in doubt (the next commit settles them), "
        "the rest still pending",
        confirmed,
        unknown,
    )


def _stored_values(info: ModelInfo, key: Key, item: Item) -> tuple[Any, ...]:
    """The field values of a stored item read before a blind delete or overwrite.

    Raises:
        SchemaError: the item is of another kind, or does not fit the model.
    """
    if info.kind is not None and model_of_item((info,), item) is None:
        raise wrong_kind(info, key, item, None)
    try:
        return codec_for(info.cls).read(item)[1]
    except SchemaError as exc:
        raise SchemaError(f"{info.name} {key}: {exc}") from exc


async def _read_stored(
    records: list[Record], executor: Executor, outcome: Outcome, prefix: str
) -> bool:
    """Read the stored items of blind deletes/overwrites of models with unique fields.

    Their guard items can only be released if their current values are
    known; the write is then conditioned on those values. Returns True when
    anything was read (the plan must be made again).
    """
    blind = [
        record
        for record in records
        if record.info.unique
        and record.base is None
        and record.state in (RecordState.DELETED, RecordState.REPLACE)
    ]
    if not blind:
        return False

    async def read(record: Record) -> None:
        key = key_item(record.info, record.key)
        item = await executor.get_item(prefix + record.info.table, key, outcome)
        record.stored = None if item is None else _stored_values(record.info, record.key, item)

    results = await asyncio.gather(*(read(r) for r in blind), return_exceptions=True)
    failed = []
    for record, result in zip(blind, results, strict=True):
        if isinstance(result, ClientError | BotoCoreError):
            change = change_of(record)
            assert change is not None
            failed.append((change, translate(result, change)))
        elif isinstance(result, BaseException):
            raise result
    if failed:
        raise CommitError(
            f"reading {len(failed)} records before releasing their unique guards failed; "
            "nothing was written and every change stays pending",
            succeeded=(),
            failed=failed,
        )
    return True


def apply(records: dict[Key, Record], outcome: Outcome) -> None:
    """Install what DynamoDB confirmed (new snapshots, dropped records) and keep what
    is in doubt on its records."""
    for planned, attributes in outcome.succeeded:
        record = planned.record
        if records.get(record.key) is not record:
            continue
        record.attempt = None  # confirmed: a later change is a new one
        record.doubt = None
        record.conditions = []
        if planned.new_snapshot is None:
            del records[record.key]  # a delete, or a blind update of an unloaded item
            continue
        snapshot = planned.new_snapshot
        if planned.add_fields and attributes:
            snapshot = _with_returned(record, planned.add_fields, snapshot, attributes)
        if planned.new_version is not None and record.info.version is not None:
            object.__setattr__(record.obj, record.info.version, planned.new_version)
        record.snapshot = snapshot
        record.base = record.obj
        record.state = RecordState.LOADED
        record.adds = {}
    for doubt in outcome.doubtful:
        for planned in doubt.request.entries:
            record = planned.record
            if records.get(record.key) is record:
                record.doubt = doubt


def _with_returned(
    record: Record, fields: tuple[str, ...], snapshot: tuple[Any, ...], attributes: Item
) -> tuple[Any, ...]:
    """Take ADDed fields' committed values from DynamoDB's response (other writers count)."""
    codec = record.codec
    values = list(snapshot)
    for name in fields:
        av = attributes.get(name)
        if av is None:
            continue
        kind = codec.types[name]
        value = kind.decode(av)
        at = codec.index[name]
        planned = unwrap(values[at])
        values[at] = kind.clone(value)
        current = getattr(record.obj, name)
        # The object shows the committed value, unless it was changed (by assignment,
        # while this write was in doubt) since the write was planned: that change stays.
        if current is planned or (type(current) is type(planned) and current == planned):
            object.__setattr__(record.obj, name, value)
    return tuple(values)


def _result(outcomes: list[Outcome], elapsed: float) -> CommitResult:
    kinds = [planned.kind for outcome in outcomes for planned, _ in outcome.succeeded]
    requests: dict[str, int] = {}
    resolved: dict[str, int] = {}
    capacity: float | None = None
    for outcome in outcomes:
        for api, count in outcome.requests.items():
            requests[api] = requests.get(api, 0) + count
        for way, count in outcome.resolved.items():
            resolved[way] = resolved.get(way, 0) + count
        if outcome.consumed_capacity is not None:
            capacity = (capacity or 0.0) + outcome.consumed_capacity
    return CommitResult(
        created=kinds.count(ChangeKind.CREATE),
        put=kinds.count(ChangeKind.PUT),
        updated=kinds.count(ChangeKind.UPDATE),
        deleted=kinds.count(ChangeKind.DELETE),
        failed=sum(len(outcome.failed) for outcome in outcomes),
        requests=requests,
        retries=sum(outcome.retries for outcome in outcomes),
        consumed_capacity=capacity,
        elapsed=elapsed,
        unknown=sum(outcome.unknown for outcome in outcomes),
        resolved=resolved,
    )
