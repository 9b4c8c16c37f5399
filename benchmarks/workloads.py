"""The record every benchmark writes and reads, and the change sets of the commit workloads.

One realistic record of 10 attributes (strings, an int, a Decimal, a bool, a
string set and a nested free-form map) in three shapes: the `uow` model
`Product`, the plain dict a boto3 user holds (`record(i)`), and its DynamoDB
wire item (`wire_item(i)`). Everything is deterministic: the same index gives
the same record in every shape and every run.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
from boto3.dynamodb.types import TypeSerializer

import uow
from uow.testing import TEST_CREDENTIALS as _CREDENTIALS
from uow.testing import TEST_REGION as _REGION

__all__ = [
    "CONCURRENCY",
    "EDIT_REMOVES",
    "TABLE",
    "Change",
    "Product",
    "Workload",
    "edit_sets",
    "edited",
    "key_id",
    "merge_loaded",
    "pynamodb_model",
    "pynamodb_values",
    "record",
    "table_params",
    "wire_item",
]

TABLE = "bench_products"
# uow's default `max_concurrency`; the hand-tuned baselines use the same bound.
CONCURRENCY = 32

_CATEGORIES = ("books", "garden", "kitchen", "music", "sports", "tools", "toys")
_COLOURS = ("red", "green", "blue", "black", "white")


@uow.model(table=TABLE, pk="id")
@attrs.define
class Product:
    """A catalogue product: the record of every benchmark."""

    id: str
    name: str
    category: str
    price: Decimal
    stock: int
    active: bool
    created_at: str
    tags: set[str] = attrs.Factory(set)
    attributes: dict[str, Any] = attrs.Factory(dict)
    note: str | None = None


def key_id(i: int) -> str:
    """The partition key of record `i`."""
    return f"p{i:08d}"


def record(i: int) -> dict[str, Any]:
    """Record `i` as the plain dict a boto3 user holds (None-valued fields left out)."""
    return {
        "id": key_id(i),
        "name": f"Product number {i}",
        "category": _CATEGORIES[i % len(_CATEGORIES)],
        "price": Decimal(i % 50_000) / 100 + 1,
        "stock": i % 250,
        "active": i % 3 != 0,
        "created_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00+00:00",
        "tags": {"catalogue", f"tag-{i % 10}"},
        "attributes": {"colour": _COLOURS[i % len(_COLOURS)], "size": i % 12, "fragile": False},
        "note": f"imported in batch {i // 1000}",
    }


_SERIALIZER = TypeSerializer()


def wire_item(i: int) -> dict[str, Any]:
    """Record `i` as the DynamoDB item a server returns (attribute-value maps)."""
    return {name: _SERIALIZER.serialize(value) for name, value in record(i).items()}


# An edit changes two fields and removes one: `uow` finds it by diffing the
# loaded object; the baselines are told it.
EDIT_REMOVES = ("note",)


def edit_sets(values: dict[str, Any]) -> dict[str, Any]:
    """The fields an edit sets, given the record's current values."""
    return {"name": values["name"] + " (revised)", "stock": values["stock"] + 1}


def edited(values: dict[str, Any]) -> dict[str, Any]:
    """The whole record after its edit (what a full-item put writes)."""
    new = {**values, **edit_sets(values)}
    for name in EDIT_REMOVES:
        new.pop(name, None)
    return new


Change = tuple[str, int]  # ("edit" | "create" | "delete", record index)


@attrs.frozen
class Workload:
    """A commit: `edits` loaded records changed, `creates` new records, `deletes` removed.

    Record indexes: edited records are `0..edits-1`, deleted ones follow, new
    ones follow those; the table is seeded with the edited and deleted ones.
    """

    name: str
    edits: int
    creates: int
    deletes: int

    @property
    def size(self) -> int:
        return self.edits + self.creates + self.deletes

    def scaled(self, factor: float) -> Workload:
        """The same mix at `factor` times the size (at least one change of each present kind)."""

        def part(n: int) -> int:
            return 0 if n == 0 else max(1, round(n * factor))

        return Workload(self.name, part(self.edits), part(self.creates), part(self.deletes))

    @property
    def seeded(self) -> range:
        """Indexes of the records that exist before the commit."""
        return range(self.edits + self.deletes)

    def changes(self) -> list[Change]:
        """The changes in commit order: kinds interleaved evenly, as a real request mixes them."""
        queues = {
            "edit": iter(range(self.edits)),
            "delete": iter(range(self.edits, self.edits + self.deletes)),
            "create": iter(range(self.edits + self.deletes, self.size)),
        }
        totals = {"edit": self.edits, "delete": self.deletes, "create": self.creates}
        done = dict.fromkeys(totals, 0)
        out: list[Change] = []
        for step in range(1, self.size + 1):
            # The kind furthest behind its share of the first `step` changes goes next.
            kind = max(totals, key=lambda k: totals[k] * step / self.size - done[k])
            done[kind] += 1
            out.append((kind, next(queues[kind])))
        return out

    def min_requests(self, *, create_only: bool) -> int:
        """The fewest requests that write this commit at uow's safety level.

        Each edit is an `UpdateItem` of the changed paths, conditioned on the
        item existing; deletes go 25 to a `BatchWriteItem`; creates are one
        conditional `PutItem` each (create-only) or 25 to a batch (overwrite).
        """
        if create_only:
            return self.edits + self.creates + math.ceil(self.deletes / 25)
        return self.edits + math.ceil((self.creates + self.deletes) / 25)

    def describe(self) -> str:
        return (
            f"{self.size:,} changes: {self.edits:,} edits, {self.creates:,} new, "
            f"{self.deletes:,} deletes"
        )


def table_params(name: str) -> dict[str, Any]:
    """`CreateTable` parameters of the benchmark table `name`."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def merge_loaded(session: Any, item: dict[str, Any]) -> Any:
    """Merge one read item into a session's map the way `Session.get` does; return the object.

    The benchmarks that need many loaded records without a server (CPU cost,
    memory) use the session's private `_merge`, the one place every read ends.
    """
    from uow.identity import key_from_item

    info = uow.info_of(Product)
    merge = session._merge
    if "refresh" in inspect.signature(merge).parameters:
        return merge(info, key_from_item(info, item), item, refresh=False)
    return merge(info, key_from_item(info, item), item)


def pynamodb_model(table: str, host: str) -> Any:
    """A PynamoDB model of the benchmark record for `table`, pointed at `host`.

    PynamoDB's `NumberAttribute` stores floats (it serializes with `json`), so
    `price` is a float here.
    """
    from pynamodb.attributes import (
        BooleanAttribute,
        MapAttribute,
        NumberAttribute,
        UnicodeAttribute,
        UnicodeSetAttribute,
    )
    from pynamodb.models import Model

    # A raw map (no declared keys); its constructor carries no annotations.
    map_attribute: Any = MapAttribute

    meta = type(
        "Meta",
        (),
        {
            "table_name": table,
            "host": host,
            "region": _REGION,
            "aws_access_key_id": _CREDENTIALS["aws_access_key_id"],
            "aws_secret_access_key": _CREDENTIALS["aws_secret_access_key"],
        },
    )
    return type(
        "PynamoProduct",
        (Model,),
        {
            "Meta": meta,
            "id": UnicodeAttribute(hash_key=True),
            "name": UnicodeAttribute(),
            "category": UnicodeAttribute(),
            "price": NumberAttribute(),
            "stock": NumberAttribute(),
            "active": BooleanAttribute(),
            "created_at": UnicodeAttribute(),
            "tags": UnicodeSetAttribute(),
            "attributes": map_attribute(),
            "note": UnicodeAttribute(null=True),
        },
    )


def pynamodb_values(values: dict[str, Any]) -> dict[str, Any]:
    """A record's values as PynamoDB takes them (a float price)."""
    return {**values, "price": float(values["price"])}
