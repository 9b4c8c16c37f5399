"""Runs a plan through the store's transport: bounded concurrency, retries, error translation.

This module is the one boundary where `botocore` errors become `uow` errors
(`translate`). It never touches the session: it reports each planned entry's
outcome into an `Outcome`, which the session applies afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from uow._transport import Transport
from uow.changes import Change, ChangeKind
from uow.config import Retry
from uow.errors import (
    AbortedError,
    ChangeError,
    ConditionFailed,
    ConflictError,
    DuplicateKeyError,
    OutcomeUnknownError,
    ServiceError,
    ThrottledError,
    UniqueViolation,
)
from uow.model import ModelInfo
from uow.plan import (
    MARKER_SLOTS,
    Action,
    Plan,
    Planned,
    Request,
    attempt_of,
    read_version,
)

__all__ = [
    "HANDLED_CODES",
    "TOKEN_WINDOW",
    "Executor",
    "Flight",
    "InDoubt",
    "Outcome",
    "batch_get",
    "call",
    "landed",
    "request_token",
    "retryable",
    "transaction_causes",
    "translate",
]

log = logging.getLogger("uow.commit")

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ThrottlingError",  # a transaction's cancellation reason
    }
)
# Codes worth another attempt besides throttling: the service's transient failures.
TRANSIENT_CODES = frozenset(
    {"InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}
)
# Cancellation reasons that another attempt of the same transaction may get past.
_PASSING_REASONS = frozenset({"None", "TransactionConflict", *THROTTLING_CODES})
# Every DynamoDB error code `uow` treats specially, and the error it becomes.
# Any other code becomes a `ServiceError` carrying the code.
HANDLED_CODES: Mapping[str, type[ChangeError]] = {
    "ConditionalCheckFailedException": ConflictError,
    "TransactionCanceledException": ConflictError,
    "TransactionConflictException": ConflictError,
    "TransactionInProgressException": ServiceError,
    "IdempotentParameterMismatchException": ServiceError,
    **dict.fromkeys(THROTTLING_CODES, ThrottledError),
    "ResourceNotFoundException": ServiceError,
    "ValidationException": ServiceError,
    "InternalServerError": ServiceError,
    "ServiceUnavailable": ServiceError,
    "ItemCollectionSizeLimitExceededException": ServiceError,
}


def _condition_failed(change: Change, stored: Mapping[str, Any] | None) -> ChangeError:
    """The cause of a failed condition on a record's own write."""
    what = f"{change.model.__name__} {change.key}"
    if change.kind is ChangeKind.CREATE:
        return DuplicateKeyError(
            f"{what} already exists: add() is create-only; load the record and "
            "change it, or delete it first"
        )
    if stored:
        return ConflictError(
            f"{what} was changed by another writer since it was read; "
            "refresh() it, apply the change again and commit"
        )
    return ConflictError(
        f"{what} does not exist in DynamoDB (deleted elsewhere?); refresh it, or add it again"
    )


def _own_condition_held(planned: Planned, stored: Mapping[str, Any] | None) -> bool:
    """Did uow's own condition (create-only, existence, version) hold on `stored`?"""
    record = planned.record
    version = record.info.version
    if planned.kind is ChangeKind.CREATE:
        return not stored
    if planned.kind is ChangeKind.CHECK:
        return True
    read = read_version(record) if version is not None and record.base is not None else None
    if version is not None and record.base is not None:
        if planned.kind is ChangeKind.PUT and read is None:
            return True  # a replacement of a record read without a version: no check
        if not stored:
            return False
        current: Any = stored.get(version)
        return current is None if read is None else current == {"N": str(read)}
    if planned.kind is ChangeKind.UPDATE:  # exists, and is of the model's kind if it has one
        return stored is not None and bool(stored) and _of_kind(record.info, stored)
    return True  # an unconditional put or delete: only the user's condition


def _of_kind(info: ModelInfo, stored: Mapping[str, Any]) -> bool:
    """True when a stored item is of the model's kind (always, for a model without one)."""
    return info.kind is None or stored.get(info.kind_attribute) == {"S": info.kind}


def condition_cause(planned: Planned, stored: Mapping[str, Any] | None) -> ChangeError:
    """The cause of a failed condition on a record's own write (or a check)."""
    change = planned.change
    if not planned.user_condition or not _own_condition_held(planned, stored):
        return _condition_failed(change, stored)
    item = None
    if stored and _of_kind(planned.record.info, stored):
        try:
            item = planned.record.codec.decode_item(dict(stored))
        except Exception:  # a stored item that does not fit the model: no object to show
            item = None
    what = f"{change.model.__name__} {change.key}"
    state = "no item" if not stored else "the stored item"
    return ConditionFailed(
        f"{what}: your condition does not hold on {state} (see .item); the change stays "
        "pending: refresh(), decide, and commit again, or drop it",
        item=item,
    )


def translate(exc: BaseException, change: Change) -> ChangeError:
    """Turn a botocore error for one change into its `uow` cause, chained to `exc`."""
    what = f"{change.model.__name__} {change.key}"
    cause: ChangeError
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        if code == "ConditionalCheckFailedException":
            stored: Any = exc.response.get("Item")
            cause = _condition_failed(change, stored)
        elif code in ("TransactionCanceledException", "TransactionConflictException"):
            cause = ConflictError(
                f"{what}: another transaction kept conflicting with this write; commit again"
            )
        elif code in THROTTLING_CODES:
            cause = ThrottledError(
                f"{what}: DynamoDB throttled every attempt ({code}); commit again later"
            )
        elif code == "ResourceNotFoundException":
            cause = ServiceError(
                f"{what}: table not found ({message}); create it with "
                "`await store.create_tables(...)`",
                code=code,
            )
        else:
            cause = ServiceError(f"{what}: DynamoDB returned {code}: {message}", code=code)
    else:
        name = type(exc).__name__
        cause = ServiceError(f"{what}: {name}: {exc}", code=name)
    cause.__cause__ = exc
    return cause


@attrs.define(eq=False)
class Outcome:
    """What happened to each planned entry, filled in while the plan runs."""

    succeeded: list[tuple[Planned, dict[str, Any] | None]] = attrs.Factory(list)
    failed: list[tuple[Planned, ChangeError]] = attrs.Factory(list)
    requests: dict[str, int] = attrs.Factory(dict)
    retries: int = 0
    # Ask DynamoDB for consumed capacity (`Store(consumed_capacity=True)`); None: not asked.
    consumed_capacity: float | None = None
    items: int = 0
    # Writes whose outcome is (still) unknown when their request ended; the session
    # keeps each on its records until a later commit settles it.
    doubtful: list[InDoubt] = attrs.Factory(list)
    # Changes whose outcome was unknown at some point, and how each was settled.
    unknown: int = 0
    resolved: dict[str, int] = attrs.Factory(dict)

    @property
    def asks_capacity(self) -> bool:
        return self.consumed_capacity is not None

    def settle(self, way: str, changes: int = 1) -> None:
        """Count `changes` unknown outcomes settled `way` (see `CommitResult.resolved`)."""
        self.resolved[way] = self.resolved.get(way, 0) + changes

    def count(self, api: str, response: Mapping[str, Any]) -> None:
        self.requests[api] = self.requests.get(api, 0) + 1
        if "Item" in response:
            self.items += 1
        self.items += len(response.get("Items", ()))
        for rows in (response.get("Responses") or {}).values():
            self.items += len(rows)
        self.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        capacity = response.get("ConsumedCapacity")
        if isinstance(capacity, dict):
            capacity = [capacity]
        if capacity and self.consumed_capacity is not None:
            for entry in capacity:
                self.consumed_capacity += float(entry.get("CapacityUnits", 0.0))


# DynamoDB drops a re-sent transaction whose `ClientRequestToken` it saw in the last 10
# minutes; past that, the same token is a new request. A token-only write (see
# `Planned.token_only`) first sent longer ago than this is not re-sent: a margin of a
# minute covers the time the first attempt spent in flight.
TOKEN_WINDOW = 9 * 60.0


@attrs.define(slots=True, eq=False)
class Flight:
    """Whether one request (over all its attempts) may have been applied unseen."""

    # An attempt ended without an answer that says what happened (connection lost
    # after sending, a read timeout, a 5xx, a cancellation in flight): it may have landed.
    lost: bool = False
    # Wall-clock time of the first attempt (time.time()), for `TOKEN_WINDOW`.
    first_sent: float = 0.0


@attrs.define(slots=True, eq=False)
class InDoubt:
    """A write whose outcome is unknown: sent, and no answer said whether it landed.

    It stays on its records (`Record.doubt`) until a commit settles it:
    `params` is the request exactly as sent (its token and markers included),
    re-sent as it is before anything else is sent for those records; `None`
    for idempotent batch writes, which are simply planned and sent again.
    `unsettled` is set when no sound check can settle it: the change then
    fails with that cause at every commit and is never re-sent.
    """

    request: Request
    params: dict[str, Any] | None
    first_sent: float
    unsettled: ChangeError | None = None


def _maybe_unsent(exc: BaseException) -> bool:
    """True for failures that happen before a request leaves: it surely did not land."""
    return isinstance(exc, EndpointConnectionError | ConnectTimeoutError)


def landed(planned: Planned, stored: Mapping[str, Any] | None) -> bool | None:
    """Did an earlier attempt of this write land? Asked when a re-send's condition fails.

    `stored` is the item DynamoDB returned with the failed condition
    (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), `None` if absent.
    True: the earlier attempt is stored (its marker holds this change's token;
    for a delete, the item is gone). False: it is not, and it cannot land any
    more (its condition no longer holds). None: no sound check tells: a
    versioned item has moved on by `MARKER_SLOTS` versions or more since.
    """
    if planned.kind is ChangeKind.DELETE:
        return not stored
    if planned.marker is None or not stored:
        return False
    name, token = planned.marker
    marker: Any = stored.get(name)
    if isinstance(marker, Mapping) and marker.get("S") == token:
        return True
    version = planned.record.info.version
    if version is not None and planned.new_version is not None:
        number: Any = stored.get(version)
        current = number.get("N") if isinstance(number, Mapping) else None
        if current is not None and int(current) >= planned.new_version + MARKER_SLOTS:
            return None
    return False


def _signature(planned: Planned) -> tuple[str, str, str]:
    return _write_signature(planned.table, planned.write, planned.record.info.key_fields)


def _write_signature(
    table: str, write: Mapping[str, Any], key_fields: tuple[str, ...]
) -> tuple[str, str, str]:
    if "PutRequest" in write:
        item = write["PutRequest"]["Item"]
        return table, "put", repr([item.get(name) for name in key_fields])
    key = write["DeleteRequest"]["Key"]
    return table, "delete", repr([key.get(name) for name in key_fields])


def retryable(exc: BaseException) -> bool:
    """True for throttling, 5xx answers and connection failures: worth another attempt."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "TransactionCanceledException":
            reasons = {str(r.get("Code")) for r in exc.response.get("CancellationReasons") or ()}
            return bool(reasons) and reasons <= _PASSING_REASONS and reasons != {"None"}
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500
    return isinstance(exc, BotoCoreError)


async def call(
    transport: Transport,
    api: str,
    params: dict[str, Any],
    *,
    retry: Retry,
    deadline: float,
    outcome: Outcome | None = None,
    limit: asyncio.Semaphore | None = None,
    flight: Flight | None = None,
) -> dict[str, Any]:
    """Send one request, retrying what `retryable` accepts with backoff until `deadline`.

    Transports never retry (on the aioboto3 one `Store` sets one attempt) so
    that one policy, `uow.Retry`, governs every re-send and every re-send is
    counted. `flight`, when given, learns whether an attempt may have landed
    unseen.

    Raises:
        ClientError, BotoCoreError: the last failure, when not retryable or out
            of attempts or time.
    """
    send = transport.send
    if outcome is not None and outcome.asks_capacity:
        params = {**params, "ReturnConsumedCapacity": "TOTAL"}
    attempt = 1
    while True:
        started = time.perf_counter()
        try:
            if limit is None:
                response: dict[str, Any] = await _attempt(send, api, params, flight)
            else:
                async with limit:
                    response = await _attempt(send, api, params, flight)
        except (ClientError, BotoCoreError) as exc:
            if outcome is not None:
                outcome.requests[api] = outcome.requests.get(api, 0) + 1
            delay = retry.delay(attempt)
            if (
                not retryable(exc)
                or attempt >= retry.max_attempts
                or time.monotonic() + delay > deadline
            ):
                raise
            log.debug("%s failed (%s); attempt %d in %.3fs", api, exc, attempt + 1, delay)
            if outcome is not None:
                outcome.retries += 1
            attempt += 1
            await asyncio.sleep(delay)
            continue
        if outcome is not None:
            outcome.count(api, response)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s table=%s elapsed=%.1fms attempt=%d",
                api,
                params.get("TableName") or ",".join(params.get("RequestItems", ())),
                (time.perf_counter() - started) * 1000,
                attempt,
            )
        return response


async def _attempt(
    send: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
    api: str,
    params: dict[str, Any],
    flight: Flight | None,
) -> dict[str, Any]:
    """One attempt, telling `flight` whether it may have landed without an answer."""
    if flight is None:
        return await send(api, params)
    if not flight.first_sent:
        flight.first_sent = time.time()
    try:
        return await send(api, params)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500:  # DynamoDB: a 5xx write may or may not have been applied
            flight.lost = True
        raise
    except BotoCoreError as exc:
        if not _maybe_unsent(exc):
            flight.lost = True
        raise
    except asyncio.CancelledError:
        flight.lost = True  # cancelled on the wire: DynamoDB may still apply it
        raise


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


def request_token(seed: str, items: list[dict[str, Any]]) -> str:
    """A `ClientRequestToken` derived from the changes sent and the transaction's content.

    `seed` joins the `Record.attempt` of every change in the transaction: set
    when a change is first sent and kept until DynamoDB confirms it. So the
    same pending changes re-sent (a retry after a timeout, or `commit()` again
    after a failure) carry the same token, and DynamoDB applies them at most
    once within its 10-minute idempotency window; a new change with identical
    content gets a new seed and is not mistaken for a repeat.
    """
    digest = hashlib.sha256(seed.encode())
    digest.update(json.dumps(items, sort_keys=True, default=_json_default).encode())
    return digest.hexdigest()[:36]


def transaction_causes(
    exc: BaseException, actions: list[tuple[Planned, Action]]
) -> dict[int, ChangeError]:
    """Map a failed transaction back to the changes whose actions caused it (by `id`)."""
    reasons: list[dict[str, Any]] = []
    if isinstance(exc, ClientError):
        found: Any = exc.response.get("CancellationReasons") or ()
        reasons = list(found)
    causes: dict[int, ChangeError] = {}
    for (planned, action), reason in zip(actions, reasons, strict=False):
        code = str(reason.get("Code") or "None")
        if code == "None" or id(planned) in causes:
            continue
        change = planned.change
        what = f"{change.model.__name__} {change.key}"
        cause: ChangeError
        if code == "ConditionalCheckFailed":
            if action.role == "claim":
                cause = UniqueViolation(
                    f"{what}: {change.model.__name__}.{action.field} = {action.value!r} "
                    "already belongs to another record; choose another value"
                )
            elif action.role == "release":
                cause = ConflictError(
                    f"{what}: the guard of {action.field} = {action.value!r} is held by another "
                    "record; refresh this one and commit again"
                )
            else:
                cause = condition_cause(planned, reason.get("Item"))
        elif code == "TransactionConflict":
            cause = ConflictError(
                f"{what}: another transaction kept conflicting with this write; commit again"
            )
        elif code in THROTTLING_CODES:
            cause = ThrottledError(f"{what}: DynamoDB throttled every attempt ({code})")
        else:
            message = reason.get("Message", "")
            cause = ServiceError(f"{what}: DynamoDB cancelled it: {code}: {message}", code=code)
        cause.__cause__ = exc
        causes[id(planned)] = cause
    if not causes:
        for planned, _ in actions:
            causes.setdefault(id(planned), translate(exc, planned.change))
    return causes


BATCH_GET_LIMIT = 100


async def batch_get(
    transport: Transport,
    table: str,
    keys: list[dict[str, Any]],
    *,
    retry: Retry,
    max_concurrency: int,
    outcome: Outcome,
) -> list[dict[str, Any]]:
    """Strongly consistent `BatchGetItem`s of up to 100 keys each, sent concurrently.

    `UnprocessedKeys` are re-sent with backoff and jitter until `retry.budget`
    runs out.

    Raises:
        ClientError, BotoCoreError: a request failed for good.
        ThrottledError: keys stayed unprocessed through every attempt.
    """
    limit = asyncio.Semaphore(max_concurrency)
    deadline = time.monotonic() + retry.budget
    found: list[dict[str, Any]] = []

    async def fetch(chunk: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {table: {"Keys": chunk, "ConsistentRead": True}}
        attempt = 0
        while True:
            params: dict[str, Any] = {"RequestItems": request}
            response = await call(
                transport,
                "BatchGetItem",
                params,
                retry=retry,
                deadline=deadline,
                outcome=outcome,
                limit=limit,
            )
            found.extend(response.get("Responses", {}).get(table, ()))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            attempt += 1
            delay = retry.delay(attempt)
            if attempt >= retry.max_attempts or time.monotonic() + delay > deadline:
                left = len(request.get(table, {}).get("Keys", ()))
                raise ThrottledError(
                    f"BatchGetItem on {table}: {left} keys stayed unprocessed through "
                    f"{attempt} attempts; read them again later"
                )
            outcome.retries += 1
            await asyncio.sleep(delay)

    chunks = [keys[i : i + BATCH_GET_LIMIT] for i in range(0, len(keys), BATCH_GET_LIMIT)]
    await asyncio.gather(*(fetch(chunk) for chunk in chunks))
    return found


class Executor:
    """Sends a plan's requests concurrently, at most `max_concurrency` at a time.

    Every request's fate goes into an `Outcome`: succeeded, failed with a
    cause, or in doubt (sent, no answer). A cancelled run records the requests
    that were on the wire as in doubt, then lets the cancellation propagate.
    """

    def __init__(self, transport: Transport, *, max_concurrency: int, retry: Retry) -> None:
        self._transport = transport
        self._limit = asyncio.Semaphore(max_concurrency)
        self._retry = retry
        self._deadline = time.monotonic() + retry.budget

    async def run(self, plan: Plan, outcome: Outcome) -> None:
        """Send every request of `plan`; results go into `outcome`, never raised."""
        requests = plan.requests
        if not requests:
            return
        await asyncio.gather(*(self._send(request, outcome) for request in requests))

    async def settle(self, doubts: list[InDoubt], outcome: Outcome) -> None:
        """Settle writes left in doubt by an earlier commit: each is re-sent exactly as
        it was (same token, same markers), unless no sound re-send exists."""
        sends = []
        now = time.time()
        for doubt in doubts:
            changes = len(doubt.request.entries)
            token_only = any(planned.token_only for planned in doubt.request.entries)
            if doubt.unsettled is None and token_only and now - doubt.first_sent > TOKEN_WINDOW:
                doubt.unsettled = OutcomeUnknownError(
                    f"sent {now - doubt.first_sent:.0f} s ago without an answer, and "
                    "DynamoDB drops a repeated transaction only within 10 minutes: "
                    "re-sending could apply it twice"
                )
            if doubt.unsettled is not None:
                outcome.unknown += changes
                outcome.settle("unsettled", changes)
                outcome.doubtful.append(doubt)
                for planned in doubt.request.entries:
                    outcome.failed.append((planned, _unsettled(planned, doubt.unsettled)))
                continue
            sends.append(self._send(doubt.request, outcome, doubt))
        await asyncio.gather(*sends)

    async def _send(self, request: Request, outcome: Outcome, doubt: InDoubt | None = None) -> None:
        flight = Flight()
        if doubt is not None:  # an earlier commit's attempt may have landed
            flight.lost, flight.first_sent = True, doubt.first_sent
        if request.api == "BatchWriteItem":
            await self._batch(request, outcome, flight)
            return
        params = (
            doubt.params if doubt is not None and doubt.params is not None else _params(request)
        )
        try:
            if request.api == "TransactWriteItems":
                await self._transact(request, params, outcome, flight)
            else:
                await self._single(request, params, outcome, flight)
        except asyncio.CancelledError:
            if flight.lost:
                outcome.doubtful.append(InDoubt(request, params, flight.first_sent))
            raise

    async def _call(
        self, api: str, params: dict[str, Any], outcome: Outcome, flight: Flight | None = None
    ) -> dict[str, Any]:
        return await call(
            self._transport,
            api,
            params,
            retry=self._retry,
            deadline=self._deadline,
            outcome=outcome,
            limit=self._limit,
            flight=flight,
        )

    async def _single(
        self, request: Request, params: dict[str, Any], outcome: Outcome, flight: Flight
    ) -> None:
        (planned,) = request.entries
        try:
            response = await self._call(request.api, params, outcome, flight)
        except (ClientError, BotoCoreError) as exc:
            if flight.lost and _condition_failed_code(exc):
                stored: Any = exc.response.get("Item")  # type: ignore[union-attr]  # a ClientError
                verdict = landed(planned, stored)
                if verdict:
                    outcome.unknown += 1
                    outcome.settle("found")
                    outcome.succeeded.append((planned, None))
                    return
                if verdict is None:
                    cause: ChangeError = _unsettled(
                        planned,
                        OutcomeUnknownError(
                            f"its item has moved on by {MARKER_SLOTS} versions or more since "
                            "the write was sent, so its marker is gone"
                        ),
                    )
                    cause.__cause__ = exc
                    self._doubt(request, params, flight, outcome, cause)
                    outcome.failed.append((planned, cause))
                    return
                outcome.unknown += 1
                outcome.settle("conflict")
            elif flight.lost:
                self._doubt(request, params, flight, outcome)
            outcome.failed.append((planned, _cause(exc, planned)))
            return
        if flight.lost:
            outcome.unknown += 1
            outcome.settle("resent")
        outcome.succeeded.append((planned, response.get("Attributes")))

    @staticmethod
    def _doubt(
        request: Request,
        params: dict[str, Any] | None,
        flight: Flight,
        outcome: Outcome,
        unsettled: ChangeError | None = None,
    ) -> None:
        """Keep a write that may have landed in doubt: the next commit settles it."""
        changes = len(request.entries)
        outcome.unknown += changes
        outcome.settle("unsettled" if unsettled else "pending", changes)
        outcome.doubtful.append(InDoubt(request, params, flight.first_sent, unsettled))

    async def get_item(
        self, table: str, key: dict[str, Any], outcome: Outcome
    ) -> dict[str, Any] | None:
        """One strongly consistent read, retried like every other request."""
        params = {"TableName": table, "Key": key, "ConsistentRead": True}
        response = await self._call("GetItem", params, outcome)
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def _transact(
        self, request: Request, params: dict[str, Any], outcome: Outcome, flight: Flight
    ) -> None:
        actions = [(planned, action) for planned in request.entries for action in planned.actions]
        changes = len(request.entries)
        try:
            await self._call("TransactWriteItems", params, outcome, flight)
        except (ClientError, BotoCoreError) as exc:
            earlier = _earlier_landed(exc, actions) if flight.lost else False
            if earlier:
                outcome.unknown += changes
                outcome.settle("found", changes)
                outcome.succeeded.extend((planned, None) for planned in request.entries)
                return
            if earlier is None:
                reason = OutcomeUnknownError(
                    f"an item of the transaction has moved on by {MARKER_SLOTS} versions or "
                    "more since it was sent, so its marker is gone"
                )
                reason.__cause__ = exc
                self._doubt(request, params, flight, outcome, reason)
                outcome.failed.extend(
                    (planned, _unsettled(planned, reason)) for planned in request.entries
                )
                return
            causes = transaction_causes(exc, actions)
            culprits = "; ".join(str(cause) for cause in causes.values())
            if flight.lost:
                if isinstance(exc, ClientError) and _definitive(exc):
                    outcome.unknown += changes
                    outcome.settle("conflict", changes)
                else:
                    self._doubt(request, params, flight, outcome)
            for planned in request.entries:
                cause = causes.get(id(planned))
                if cause is None:
                    cause = AbortedError(
                        f"{planned.change.describe()}: not written, because the atomic commit "
                        f"was cancelled by another change ({culprits})"
                    )
                    cause.__cause__ = exc
                outcome.failed.append((planned, cause))
            return
        if flight.lost:  # the same token: DynamoDB applied it once, now or before
            outcome.unknown += changes
            outcome.settle("token", changes)
        outcome.succeeded.extend((planned, None) for planned in request.entries)

    async def _batch(self, request: Request, outcome: Outcome, flight: Flight) -> None:
        retry = self._retry
        pending = {_signature(planned): planned for planned in request.entries}
        started = time.monotonic()
        attempt = 0
        try:
            while True:
                items: dict[str, list[dict[str, Any]]] = {}
                for planned in pending.values():
                    items.setdefault(planned.table, []).append(planned.write)
                params: dict[str, Any] = {"RequestItems": items}
                try:
                    response = await self._call("BatchWriteItem", params, outcome, flight)
                except (ClientError, BotoCoreError) as exc:
                    if flight.lost:  # idempotent: planned and sent again by the next commit
                        outcome.unknown += len(pending)
                        outcome.settle("pending", len(pending))
                    outcome.failed.extend((p, translate(exc, p.change)) for p in pending.values())
                    return
                left: dict[tuple[str, str, str], Planned] = {}
                for table, writes in (response.get("UnprocessedItems") or {}).items():
                    for write in writes:
                        some = next(iter(pending.values()))
                        for planned in pending.values():
                            if planned.table == table:
                                some = planned
                                break
                        signature = _write_signature(table, write, some.record.info.key_fields)
                        if signature in pending:
                            left[signature] = pending[signature]
                done = [p for s, p in pending.items() if s not in left]
                if flight.lost:
                    outcome.unknown += len(done)
                    outcome.settle("resent", len(done))
                outcome.succeeded.extend((p, None) for p in done)
                if not left:
                    return
                pending = left
                attempt += 1
                delay = retry.delay(attempt)
                spent = time.monotonic() - started
                if attempt >= retry.max_attempts or time.monotonic() + delay > self._deadline:
                    for planned in pending.values():
                        what = f"{planned.change.model.__name__} {planned.change.key}"
                        outcome.failed.append(
                            (
                                planned,
                                ThrottledError(
                                    f"{what}: DynamoDB left the write unprocessed through "
                                    f"{attempt} attempts ({spent:.1f}s); it is still pending"
                                ),
                            )
                        )
                    return
                outcome.retries += len(pending)
                log.debug(
                    "BatchWriteItem: %d unprocessed, re-sending in %.3fs", len(pending), delay
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if flight.lost:  # idempotent puts and deletes: the next commit sends them again
                doubt = Request("BatchWriteItem", tuple(pending.values()))
                outcome.doubtful.append(InDoubt(doubt, None, flight.first_sent))
            raise


def _params(request: Request) -> dict[str, Any]:
    """The parameters of a single write or a transaction, as sent (and re-sent) verbatim."""
    if request.api == "TransactWriteItems":
        items = []
        for planned in request.entries:
            for action in planned.actions:
                body = action.body
                if action.role == "record" and action.conditional:
                    # The stored item comes back with a failed condition (`landed`).
                    body = {**body, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
                items.append({action.kind: body})
        # Each change's token, made when it is first sent and kept until it is confirmed:
        # a re-send carries the same `ClientRequestToken`, a new identical change another.
        seed = ":".join(attempt_of(planned.record) for planned in request.entries)
        return {"TransactItems": items, "ClientRequestToken": request_token(seed, items)}
    (planned,) = request.entries
    (action,) = planned.actions
    params = dict(action.body)
    if planned.add_fields:
        params["ReturnValues"] = "UPDATED_NEW"
    if action.conditional:
        # Tells "changed by another writer" from "deleted" in the error, and lets a
        # re-send find its own earlier attempt (`landed`).
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return params


def _unsettled(planned: Planned, reason: ChangeError) -> OutcomeUnknownError:
    cause = OutcomeUnknownError(
        f"{planned.change.describe()}: its outcome is unknown and cannot be settled "
        f"safely ({reason}); it is not sent again: refresh() the record (or "
        "clear_record() it) and apply again what is missing"
    )
    cause.__cause__ = reason.__cause__
    return cause


def _cause(exc: BaseException, planned: Planned) -> ChangeError:
    """A single write's failure as its `uow` cause (a failed condition told apart)."""
    if not _condition_failed_code(exc):
        return translate(exc, planned.change)
    stored: Any = exc.response.get("Item")  # type: ignore[attr-defined]  # a ClientError
    cause = condition_cause(planned, stored)
    cause.__cause__ = exc
    return cause


def _condition_failed_code(exc: BaseException) -> bool:
    return (
        isinstance(exc, ClientError)
        and exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )


def _definitive(exc: ClientError) -> bool:
    """A transaction refused for a reason that rules out that it was applied."""
    return exc.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _earlier_landed(exc: BaseException, actions: list[tuple[Planned, Action]]) -> bool | None:
    """Was a re-sent transaction cancelled because its own earlier attempt landed?

    True if a failed action's marker names this change, None if a marker may be
    gone (no sound answer), False otherwise.
    """
    if not isinstance(exc, ClientError):
        return False
    reasons: Any = exc.response.get("CancellationReasons") or ()
    verdict: bool | None = False
    for (planned, action), reason in zip(actions, reasons, strict=False):
        if action.role != "record" or reason.get("Code") != "ConditionalCheckFailed":
            continue
        if planned.marker is None:
            continue
        found = landed(planned, reason.get("Item"))
        if found:
            return True
        if found is None:
            verdict = None
    return verdict
