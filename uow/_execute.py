"""Runs a plan on the DynamoDB client: bounded concurrency, retries, error translation.

This module is the one boundary where `botocore` errors become `uow` errors
(`translate`). It never touches the session: it reports each planned entry's
outcome into an `Outcome`, which the session applies afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from uow.changes import Change, ChangeKind
from uow.config import Retry
from uow.errors import (
    ChangeError,
    ConflictError,
    DuplicateKeyError,
    ServiceError,
    ThrottledError,
)
from uow.plan import Plan, Planned, Request

__all__ = ["HANDLED_CODES", "Executor", "Outcome", "call", "retryable", "translate"]

log = logging.getLogger("uow.commit")

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
# Codes worth another attempt besides throttling: the service's transient failures.
TRANSIENT_CODES = frozenset({"InternalServerError", "ServiceUnavailable"})
# Every DynamoDB error code `uow` treats specially, and the error it becomes.
# Any other code becomes a `ServiceError` carrying the code.
HANDLED_CODES: Mapping[str, type[ChangeError]] = {
    "ConditionalCheckFailedException": ConflictError,
    **dict.fromkeys(THROTTLING_CODES, ThrottledError),
    "ResourceNotFoundException": ServiceError,
    "ValidationException": ServiceError,
    "InternalServerError": ServiceError,
    "ServiceUnavailable": ServiceError,
    "ItemCollectionSizeLimitExceededException": ServiceError,
}


def translate(exc: BaseException, change: Change) -> ChangeError:
    """Turn a botocore error for one change into its `uow` cause, chained to `exc`."""
    what = f"{change.model.__name__} {change.key}"
    cause: ChangeError
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        if code == "ConditionalCheckFailedException":
            if change.kind is ChangeKind.CREATE:
                cause = DuplicateKeyError(
                    f"{what} already exists: add() is create-only; load the record and "
                    "change it, or delete it first"
                )
            else:
                cause = ConflictError(
                    f"{what} no longer exists in DynamoDB (deleted elsewhere?); "
                    "refresh it, or add it again"
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
    consumed_capacity: float = 0.0

    def count(self, api: str, response: Mapping[str, Any]) -> None:
        self.requests[api] = self.requests.get(api, 0) + 1
        self.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        capacity = response.get("ConsumedCapacity")
        if isinstance(capacity, dict):
            capacity = [capacity]
        for entry in capacity or ():
            self.consumed_capacity += float(entry.get("CapacityUnits", 0.0))


def _signature(planned: Planned) -> tuple[str, str, str]:
    return _write_signature(planned.table, planned.write or {}, planned.record.info.key_fields)


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
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500
    return isinstance(exc, BotoCoreError)


async def call(
    client: Any,
    api: str,
    params: dict[str, Any],
    *,
    retry: Retry,
    deadline: float,
    outcome: Outcome | None = None,
    limit: asyncio.Semaphore | None = None,
) -> dict[str, Any]:
    """Send one request, retrying what `retryable` accepts with backoff until `deadline`.

    botocore's own retries are off (`Store` sets one attempt) so that one
    policy, `uow.Retry`, governs every re-send and every re-send is counted.

    Raises:
        ClientError, BotoCoreError: the last failure, when not retryable or out
            of attempts or time.
    """
    method = getattr(client, _METHOD_NAMES[api])
    attempt = 1
    while True:
        started = time.perf_counter()
        try:
            if limit is None:
                response: dict[str, Any] = await method(**params)
            else:
                async with limit:
                    response = await method(**params)
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


_METHOD_NAMES = {
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "BatchWriteItem": "batch_write_item",
    "GetItem": "get_item",
}


class Executor:
    """Sends a plan's requests concurrently, at most `max_concurrency` at a time."""

    def __init__(self, client: Any, *, max_concurrency: int, retry: Retry) -> None:
        self._client = client
        self._limit = asyncio.Semaphore(max_concurrency)
        self._retry = retry
        self._deadline = time.monotonic() + retry.budget

    async def run(self, plan: Plan, outcome: Outcome) -> None:
        """Send every request of `plan`; results go into `outcome`, never raised."""
        requests = plan.requests
        if not requests:
            return
        await asyncio.gather(*(self._send(request, outcome) for request in requests))

    async def _send(self, request: Request, outcome: Outcome) -> None:
        if request.api == "BatchWriteItem":
            await self._batch(request, outcome)
        else:
            await self._single(request, outcome)

    async def _call(self, api: str, params: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        return await call(
            self._client,
            api,
            params,
            retry=self._retry,
            deadline=self._deadline,
            outcome=outcome,
            limit=self._limit,
        )

    async def _single(self, request: Request, outcome: Outcome) -> None:
        (planned,) = request.entries
        assert planned.params is not None
        params = {**planned.params, "ReturnConsumedCapacity": "TOTAL"}
        try:
            response = await self._call(request.api, params, outcome)
        except (ClientError, BotoCoreError) as exc:
            outcome.failed.append((planned, translate(exc, planned.change)))
            return
        outcome.succeeded.append((planned, response.get("Attributes")))

    async def _batch(self, request: Request, outcome: Outcome) -> None:
        retry = self._retry
        pending = {_signature(planned): planned for planned in request.entries}
        started = time.monotonic()
        attempt = 0
        while True:
            items: dict[str, list[dict[str, Any]]] = {}
            for planned in pending.values():
                assert planned.write is not None
                items.setdefault(planned.table, []).append(planned.write)
            params = {"RequestItems": items, "ReturnConsumedCapacity": "TOTAL"}
            try:
                response = await self._call("BatchWriteItem", params, outcome)
            except (ClientError, BotoCoreError) as exc:
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
            outcome.succeeded.extend((p, None) for s, p in pending.items() if s not in left)
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
            log.debug("BatchWriteItem: %d unprocessed, re-sending in %.3fs", len(pending), delay)
            await asyncio.sleep(delay)
