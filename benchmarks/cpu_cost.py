"""Client CPU with no server: what `uow` adds per record before and around a request.

Run it with `python -m benchmarks.cpu_cost` (`--records N`, `--repeat R`).

* plan, per record: a session holding `N` loaded records (merged into its map
  as `Session.get` does, no server involved) is changed, and
  `uow.plan.make_plan` turns its records into requests: the snapshot diff, the
  encoding of the changed values, the expressions and the routing. Measured
  per edited record (two fields set, one removed), per new record, per
  deleted record, and per *clean* record (nothing changed: the diff alone,
  which every commit pays for every record the session holds).
  The hand-written column builds the same request parameters with boto3's
  `TypeSerializer` from changes the code already knows (no diff).
* cached get: `await session.get(Product, pk)` of a record in the map, against
  `await cached(pk)`, a hand-written async function returning `dict.get(pk)`.
* single-table design: the same record as a model with `kind=` (DESIGN.md §9).
  A read row goes through the path every query, scan and page row takes
  (`_merge_page`: kind and TTL checks, decode, snapshot, into the map), with
  and without a kind, against boto3's `TypeDeserializer` of the item; an edit
  and a create are planned as above. The "kind check" rows are the
  differences: what a kind costs per read row and per written record.

Each figure is the best of `R` timed passes over all `N` records, in µs per record.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

import uow
from benchmarks.workloads import (
    EDIT_REMOVES,
    TABLE,
    Product,
    edit_sets,
    key_id,
    merge_loaded,
    record,
    wire_item,
)
from uow.plan import make_plan
from uow.session import Session
from uow.testing import TEST_REGION

__all__ = ["main", "measure"]

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


@uow.model(table=TABLE + "_kinds", pk="id", kind="product")
@attrs.define
class KindProduct:
    """`Product` as one kind of a shared table: its items carry `_kind`.

    The same fields as `Product`, declared again rather than inherited, so that the
    two differ only by the kind.
    """

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


def _kind_item(i: int) -> dict[str, Any]:
    return {**wire_item(i), "_kind": {"S": "product"}}


def _loaded_kind(n: int) -> tuple[Session, list[Any]]:
    from uow.identity import key_from_item

    session = _session()
    info = uow.info_of(KindProduct)
    objs = []
    for i in range(n):
        item = _kind_item(i)
        objs.append(session._merge(info, key_from_item(info, item), item, refresh=False))
    return session, objs


def _merge_rows(model: type, items: list[dict[str, Any]]) -> Callable[[], None]:
    """One pass: a new session merges every item as a page of query rows."""
    infos = (uow.info_of(model),)

    def run() -> None:
        session = _session()
        asyncio.run(session._merge_page(infos, items, index=None, refresh=False))

    return run


def _hand_read(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(av) for name, av in item.items()}


def _edit(objs: list[Any]) -> None:
    for obj in objs:
        obj.name += " (revised)"
        obj.stock += 1
        obj.note = None


def _session() -> Session:
    # A store that is never opened: no client, no server. Planning and cached
    # reads do not touch the client.
    return Session(uow.Store(region_name=TEST_REGION))


def _loaded(n: int) -> tuple[Session, list[Any]]:
    session = _session()
    return session, [merge_loaded(session, wire_item(i)) for i in range(n)]


def _best(run: Callable[[], object], n: int, repeat: int) -> float:
    """Best of `repeat` runs of `run`, in µs per record (`n` records per run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / n * 1e6


def _plan_cost(session: Session, repeat: int, *, writes: bool = True) -> float:
    """µs per record of `make_plan` over every record of `session`."""
    records = list(session._records.values())
    plan = make_plan(records, "")
    assert len(plan.entries) == (len(records) if writes else 0), len(plan.entries)
    return _best(lambda: make_plan(records, ""), len(records), repeat)


def _best_pair(
    first: Callable[[], object], second: Callable[[], object], n: int, repeat: int
) -> tuple[float, float]:
    """Best of `repeat` interleaved runs of each, in µs per record: a difference between
    the two is then not an artefact of which one ran first (warm-up, collector, host load)."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for at, run in enumerate((first, second)):
            started = time.process_time()
            run()
            best[at] = min(best[at], time.process_time() - started)
    return best[0] / n * 1e6, best[1] / n * 1e6


def _planner(session: Session) -> Callable[[], object]:
    """`make_plan` over every record of `session`, checked once to write each of them."""
    records = list(session._records.values())
    assert len(make_plan(records, "").entries) == len(records)
    return lambda: make_plan(records, "")


def _hand_update(values: dict[str, Any]) -> dict[str, Any]:
    """UpdateItem parameters a careful hand-written helper builds for a known edit."""
    sets = edit_sets(values)
    names = {f"#s{n}": name for n, name in enumerate(sets)}
    names.update({f"#r{n}": name for n, name in enumerate(EDIT_REMOVES)})
    names["#id"] = "id"
    return {
        "TableName": TABLE,
        "Key": {"id": {"S": values["id"]}},
        "UpdateExpression": "SET "
        + ", ".join(f"#s{n} = :s{n}" for n in range(len(sets)))
        + " REMOVE "
        + ", ".join(f"#r{n}" for n in range(len(EDIT_REMOVES))),
        "ConditionExpression": "attribute_exists(#id)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            f":s{n}": _SERIALIZER.serialize(value) for n, value in enumerate(sets.values())
        },
    }


def _hand_create(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "Item": {k: _SERIALIZER.serialize(v) for k, v in values.items() if v is not None},
        "ConditionExpression": "attribute_not_exists(#id)",
        "ExpressionAttributeNames": {"#id": "id"},
    }


def _hand_delete(values: dict[str, Any]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": {"id": _SERIALIZER.serialize(values["id"])}}}


def _each(
    build: Callable[[dict[str, Any]], object], rows: list[dict[str, Any]]
) -> Callable[[], None]:
    def run() -> None:
        for values in rows:
            build(values)

    return run


async def _gets(session: Session, keys: list[str]) -> float:
    get = session.get
    started = time.process_time()
    for key in keys:
        await get(Product, key)
    return time.process_time() - started


async def _dict_gets(cache: dict[str, Any], keys: list[str]) -> float:
    async def cached(key: str) -> Any:
        return cache.get(key)

    started = time.process_time()
    for key in keys:
        await cached(key)
    return time.process_time() - started


def measure(n: int, repeat: int) -> list[dict[str, Any]]:
    """Every figure of this benchmark: one dict per operation (µs per record, ratio)."""
    rows = [record(i) for i in range(n)]
    out = []

    session, objs = _loaded(n)
    out.append(_row("clean record (diff only)", _plan_cost(session, repeat, writes=False), None))

    _edit(objs)
    hand_update = _best(_each(_hand_update, rows), n, repeat)
    edit = _plan_cost(session, repeat)
    out.append(_row("edit: diff + encode + plan", edit, hand_update))

    session = _session()
    for i in range(n):
        session.add(Product(**record(i)))
    out.append(
        _row(
            "create: encode + plan",
            _plan_cost(session, repeat),
            _best(_each(_hand_create, rows), n, repeat),
        )
    )

    session, objs = _loaded(n)
    for obj in objs:
        session.delete(obj)
    out.append(
        _row(
            "delete: plan", _plan_cost(session, repeat), _best(_each(_hand_delete, rows), n, repeat)
        )
    )

    session, objs = _loaded(n)
    keys = [key_id(i) for i in range(n)]
    cache = {key_id(i): values for i, values in enumerate(rows)}
    uow_get = min(asyncio.run(_gets(session, keys)) for _ in range(repeat)) / n * 1e6
    dict_get = min(asyncio.run(_dict_gets(cache, keys)) for _ in range(repeat)) / n * 1e6
    out.append(_row("cached get (map hit)", uow_get, dict_get))

    # Single-table design: the same record with a kind.
    items = [wire_item(i) for i in range(n)]
    kind_items = [_kind_item(i) for i in range(n)]
    hand_read = _best(_each(_hand_read, items), n, repeat)
    read, kind_read = _best_pair(
        _merge_rows(Product, items), _merge_rows(KindProduct, kind_items), n, repeat
    )
    out.append(_row("read row: merge", read, hand_read))
    out.append(_row("read row: merge, with kind", kind_read, hand_read))
    plain, objs = _loaded(n)
    _edit(objs)
    kinded, objs = _loaded_kind(n)
    _edit(objs)
    edit, kind_edit = _best_pair(_planner(plain), _planner(kinded), n, repeat)
    out.append(_row("edit with kind: diff+encode+plan", kind_edit, hand_update))
    out.append(_row("kind check per read row", kind_read - read, None))
    out.append(_row("kind check per edited record", kind_edit - edit, None))
    return out


def _row(operation: str, uow_us: float, hand_us: float | None) -> dict[str, Any]:
    return {
        "operation": operation,
        "uow_us": round(uow_us, 2),
        "hand_written_us": None if hand_us is None else round(hand_us, 2),
        "ratio": None if hand_us is None else round(hand_us / uow_us, 2),
    }


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The figures as text lines."""
    lines = [f"{'operation':32}{'uow µs':>10}{'by hand µs':>12}{'by hand / uow':>15}"]
    for row in rows:
        hand = row["hand_written_us"]
        ratio = row["ratio"]
        lines.append(
            f"{row['operation']:32}{row['uow_us']:>10.2f}"
            f"{'' if hand is None else f'{hand:.2f}':>12}"
            f"{'' if ratio is None else f'{ratio:.2f}x':>15}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("\n".join(table(measure(args.records, args.repeat))))


if __name__ == "__main__":
    main()
