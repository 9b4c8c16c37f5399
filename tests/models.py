"""Models shared by the test suites."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import attrs

import uow


class Status(enum.Enum):
    """An order's status, stored as its string value."""

    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class Priority(enum.IntEnum):
    """An int-valued enum, stored as a number."""

    LOW = 1
    HIGH = 2


@attrs.define
class Address:
    """A nested attrs class, stored as a map."""

    city: str
    street: str = ""
    zip: str | None = None
    codes: set[str] = attrs.Factory(set)


@uow.model(table="users", pk="user_id", unique=("email",), version="version")
@attrs.define
class User:
    """A user: the DESIGN.md example."""

    user_id: str
    email: str
    name: str = ""
    tags: set[str] = attrs.Factory(set)
    profile: dict[str, Any] = attrs.Factory(dict)
    score: int = 0
    version: int = 0


@uow.model(
    table="orders",
    pk="customer_id",
    sk="order_id",
    indexes={"by_status": uow.Index(pk="status", sk="created_at")},
)
@attrs.define
class Order:
    """An order with a composite key and a GSI."""

    customer_id: str
    order_id: str
    status: str = "open"
    created_at: str = ""
    total: Decimal = Decimal(0)
    lines: list[dict[str, Any]] = attrs.Factory(list)


@uow.model(table="everything", pk="id")
@attrs.define
class Everything:
    """One field of every supported type, for codec round trips."""

    id: str
    text: str = ""
    count: int = 0
    ratio: float = 0.0
    amount: Decimal = Decimal(0)
    flag: bool = False
    blob: bytes = b""
    maybe: str | None = None
    when: dt.datetime | None = None
    status: Status = Status.OPEN
    priority: Priority = Priority.LOW
    words: list[str] = attrs.Factory(list)
    nested_lists: list[list[int]] = attrs.Factory(list)
    scores: dict[str, float] = attrs.Factory(dict)
    names: set[str] = attrs.Factory(set)
    numbers: set[int] = attrs.Factory(set)
    blobs: set[bytes] = attrs.Factory(set)
    address: Address | None = None
    addresses: list[Address] = attrs.Factory(list)
    anything: Any = None
    doc: dict[str, Any] = attrs.Factory(dict)


ALL_MODELS = (User, Order, Everything)


# -- single-table design (DESIGN.md §9): three kinds of items in one table -------------


@uow.model(
    table="app",
    pk="pk",
    sk="sk",
    kind="customer",
    unique=(("tenant", "slug"),),
    indexes={"by_slug": uow.Index(pk="slug")},
)
@attrs.define
class Customer:
    """A customer's profile item: `pk="CUST#<id>"`, `sk="PROFILE"`; `slug` is sparse."""

    pk: str
    sk: str
    email: str
    tenant: str = ""
    slug: str | None = None


@uow.model(
    table="app",
    pk="pk",
    sk="sk",
    kind="invoice",
    ttl="expires_at",
    unique=(("tenant", "number"),),
    indexes={
        "open": uow.Index(pk="status", sk="due", projection="keys"),
        "by_number": uow.Index(pk="pk", sk="number", projection=("amount", "tenant")),
    },
)
@attrs.define
class Invoice:
    """An invoice item in its customer's collection: `sk="INV#<number>"`."""

    pk: str
    sk: str
    tenant: str
    number: int
    amount: int
    status: str | None = None  # only open invoices carry it: a sparse, keys-only index
    due: str | None = None
    expires_at: dt.datetime | None = None  # DynamoDB TTL
    note: str = "none"


@uow.model(table="app", pk="pk", sk="sk", kind="note")
@attrs.define
class Note:
    """A third kind in the same collection, never asked for by the tests that skip it."""

    pk: str
    sk: str
    text: str = ""


APP_MODELS = (Customer, Invoice, Note)
