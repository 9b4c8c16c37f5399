"""Store configuration values: `Retry`."""

from __future__ import annotations

import random
from typing import Any

import attrs

from uow.errors import ValidationError

__all__ = ["Retry"]


def _at_least(minimum: float, *, strict: bool = False) -> Any:
    def check(instance: Any, attribute: Any, value: float) -> None:
        if value < minimum or (strict and value == minimum):
            bound = "greater than" if strict else "at least"
            raise ValidationError(f"Retry.{attribute.name} must be {bound} {minimum}, got {value}")

    return check


@attrs.frozen(kw_only=True)
class Retry:
    """How `uow` retries throttled and failed requests.

    Attributes:
        max_attempts: attempts per request, first included, for throttling,
            5xx answers and connection failures, and for re-sending a
            batch's unprocessed items.
        base_delay: first backoff delay in seconds; doubles per attempt.
        max_delay: cap of one backoff delay in seconds.
        budget: seconds a commit (or a read) may spend retrying; past it, what
            is left fails (`ThrottledError` or `ServiceError`) and stays pending.
    """

    max_attempts: int = attrs.field(default=8, validator=_at_least(1))
    base_delay: float = attrs.field(default=0.025, validator=_at_least(0, strict=True))
    max_delay: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    budget: float = attrs.field(default=20.0, validator=_at_least(0, strict=True))

    def delay(self, attempt: int) -> float:
        """Backoff before re-send number `attempt` (1-based): exponential, full jitter."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)
