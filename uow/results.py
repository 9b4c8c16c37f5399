"""What a commit reports: `CommitResult`."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["CommitResult", "ReadStats"]


@attrs.frozen(kw_only=True)
class CommitResult:
    """What one `Session.commit()` sent and how it went.

    Attributes:
        created: records written create-only (`add`).
        put: records written as unconditional puts (replacements).
        updated: records written with `UpdateItem` (changed paths only).
        deleted: records deleted.
        failed: changes that failed (non-zero only on `CommitError.result`).
        requests: requests sent per DynamoDB API, e.g. `{"BatchWriteItem": 4}`.
        retries: re-sends: unprocessed batch items and botocore's own retries.
        consumed_capacity: capacity units DynamoDB reported as consumed, or `None`
            unless the store was made with `consumed_capacity=True`.
        elapsed: seconds from the start of commit to its end.
        unknown: changes whose outcome was unknown during this commit: a
            request of theirs got no answer (lost, timed out, a 5xx) in this
            commit, or they were left unsettled by an earlier, interrupted one.
        resolved: how those outcomes were settled, per way: `"resent"` (the
            write had not landed, or is idempotent, and was sent again),
            `"found"` (its earlier attempt had landed: found by its marker in
            the item, or the item was already gone for a delete), `"token"`
            (re-sent in a transaction with the same `ClientRequestToken`, which
            DynamoDB applies at most once), `"conflict"` (it had not landed,
            and another writer's change now stands in its way), `"unsettled"`
            (no sound check could tell: `OutcomeUnknownError`), `"pending"`
            (not settled in this commit: out of retries, or cancelled again).
    """

    created: int = 0
    put: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    requests: Mapping[str, int] = attrs.field(factory=dict)
    retries: int = 0
    consumed_capacity: float | None = None
    elapsed: float = 0.0
    unknown: int = 0
    resolved: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def written(self) -> int:
        """Records written successfully."""
        return self.created + self.put + self.updated + self.deleted

    @property
    def request_count(self) -> int:
        """Requests sent, all APIs together."""
        return sum(self.requests.values())

    def summary(self) -> str:
        """One line for logs and the demo: counts, requests per API, retries, time."""
        apis = ", ".join(f"{api}={n}" for api, n in sorted(self.requests.items())) or "none"
        return (
            f"created={self.created} put={self.put} updated={self.updated} "
            f"deleted={self.deleted} failed={self.failed} requests[{apis}] "
            f"retries={self.retries}{self._unknown_text()} elapsed={self.elapsed * 1000:.1f}ms"
        )

    def _unknown_text(self) -> str:
        if not self.unknown:
            return ""
        ways = ", ".join(f"{way}={n}" for way, n in sorted(self.resolved.items()))
        return f" unknown={self.unknown}[{ways}]"


@attrs.frozen(kw_only=True)
class ReadStats:
    """What a session's reads cost so far (`Session.read_stats`).

    Attributes:
        hits: records served from the identity map, without a request.
        misses: records that needed a request (found or not).
        items: items DynamoDB returned (gets, batch gets, queries, scans).
        requests: requests sent per DynamoDB API, e.g. `{"BatchGetItem": 2}`.
        retries: re-sends after throttling, 5xx, or unprocessed keys.
        consumed_capacity: read capacity units DynamoDB reported, or `None`
            unless the store was made with `consumed_capacity=True`.
    """

    hits: int = 0
    misses: int = 0
    items: int = 0
    requests: Mapping[str, int] = attrs.field(factory=dict)
    retries: int = 0
    consumed_capacity: float | None = None

    @property
    def request_count(self) -> int:
        """Requests sent, all APIs together."""
        return sum(self.requests.values())
