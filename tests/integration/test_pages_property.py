"""Property: the pages of a listing, concatenated, are the listing; nothing skipped, nothing repeated.

Hypothesis writes random orders (two customers, few distinct index key
values so that index keys tie often), then pages through one listing: a
query of the table or of the GSI (either direction, with or without a sort
key condition) or a scan of either,
with or without a random filter, `limit` from 1 to 30, each page in a
session of its own as a web handler reads it. Without writes in between,
the concatenated pages equal the `query` (or `scan`) result exactly. With
records added and deleted between page requests, no record appears twice,
every record present throughout (and matching) appears exactly once, and
the pages keep the listing's order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

import uow
from tests.integration.support import raw_delete, raw_put_many
from tests.models import Order
from uow.testing import LocalDatabase

# Examples per run: each writes up to 40 records and pages through them. 100 take about 16 s
# on moto and 10 s on DynamoDB Local on the (shared, 2-core) development machine; about
# half the examples span several pages, and a third of those are written to in between.
EXAMPLES = 100

OrderKey = tuple[str, str]


@attrs.frozen
class Listing:
    """Which listing to page: the table or the GSI, by query or by scan."""

    name: str
    key_condition: ConditionBase | None
    index: str | None
    # Whether a stored record belongs to the listing (before the filter).
    contains: Any

    @property
    def is_query(self) -> bool:
        return self.key_condition is not None


LISTINGS = [
    Listing("table query", Key("customer_id").eq("c1"), None, lambda r: r["customer_id"] == "c1"),
    Listing(
        "table query between",
        Key("customer_id").eq("c1") & Key("order_id").between("b", "d"),
        None,
        lambda r: r["customer_id"] == "c1" and "b" <= r["order_id"] <= "d",
    ),
    Listing(
        "table query begins_with",
        Key("customer_id").eq("c1") & Key("order_id").begins_with("a"),
        None,
        lambda r: r["customer_id"] == "c1" and r["order_id"].startswith("a"),
    ),
    Listing("index query", Key("status").eq("open"), "by_status", lambda r: r["status"] == "open"),
    Listing(
        "index query >=",
        Key("status").eq("open") & Key("created_at").gte("2024-02"),
        "by_status",
        lambda r: r["status"] == "open" and r["created_at"] >= "2024-02",
    ),
    Listing("table scan", None, None, lambda r: True),
    Listing("index scan", None, "by_status", lambda r: True),
]

# Filters, with what they mean on a stored record, so that the test knows what must appear.
# Only on `total`: a query's filter may not name the key attributes of what it reads.
FILTERS: list[tuple[str, ConditionBase | None, Any]] = [
    ("none", None, lambda r: True),
    ("total >= 5", Attr("total").gte(5), lambda r: r["total"] >= 5),
    ("total < 2", Attr("total").lt(2), lambda r: r["total"] < 2),
    ("total = 7", Attr("total").eq(7), lambda r: r["total"] == 7),
    ("total in 1, 4, 8", Attr("total").is_in([1, 4, 8]), lambda r: r["total"] in (1, 4, 8)),
    ("3 <= total <= 6", Attr("total").between(3, 6), lambda r: 3 <= r["total"] <= 6),
]

order_ids = st.text("abcdef", min_size=1, max_size=3)
records = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["c1", "c1", "c1", "c2"]),
        "order_id": order_ids,
        "status": st.sampled_from(["open", "paid"]),
        "created_at": st.sampled_from(["2024-01", "2024-02", "2024-03"]),
        "total": st.integers(0, 9),
    }
)
# Writes between two page requests: deletes (by position among the stored records) and adds.
writes = st.lists(
    st.one_of(
        st.tuples(st.just("delete"), st.integers(0, 1000)), st.tuples(st.just("add"), records)
    ),
    min_size=1,
    max_size=4,
)


def disturbances(disturbed: bool) -> st.SearchStrategy[list[list[tuple[str, Any]]]]:
    """Batches of writes after pages 1, 2, ...; none for an undisturbed listing."""
    return st.lists(writes, min_size=1, max_size=8) if disturbed else st.just([])


@attrs.frozen
class Case:
    """One example: the records, the listing, and how it is paged."""

    records: list[dict[str, Any]]
    listing: Listing
    filter: tuple[str, ConditionBase | None, Any]
    limit: int
    reverse: bool
    # Writes made after page n (n = position); empty when the listing is paged undisturbed.
    between: list[list[tuple[str, Any]]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random listing of random records, paged undisturbed or with writes in between."""
    listing = draw(st.sampled_from(LISTINGS))
    # Sizes drawn first, small limits favoured: most examples then span several pages.
    size = draw(st.sampled_from([0, 25, 25]).flatmap(lambda low: st.integers(low, 40)))
    return Case(
        records=draw(st.lists(records, min_size=size, max_size=size, unique_by=key)),
        listing=listing,
        filter=draw(st.sampled_from(FILTERS)),
        limit=draw(st.sampled_from([4, 4, 30]).flatmap(lambda top: st.integers(1, top))),
        reverse=listing.is_query and draw(st.booleans()),
        # Two in three examples write between page requests.
        between=draw(st.sampled_from([False, True, True]).flatmap(disturbances)),
    )


def key(record: dict[str, Any] | Order) -> OrderKey:
    """An order's table key."""
    if isinstance(record, Order):
        return (record.customer_id, record.order_id)
    return (record["customer_id"], record["order_id"])


async def empty(store: uow.Store) -> None:
    """Delete every order."""
    table = store.table_name(Order)
    items = (await store.client.scan(TableName=table, ConsistentRead=True))["Items"]
    for start in range(0, len(items), 25):
        deletes = [
            {"DeleteRequest": {"Key": {k: item[k] for k in ("customer_id", "order_id")}}}
            for item in items[start : start + 25]
        ]
        await store.client.batch_write_item(RequestItems={table: deletes})


async def listing_of(store: uow.Store, case: Case) -> list[Order]:
    """The whole listing, read at once with `query` or `scan`."""
    listing, condition = case.listing, case.filter[1]
    async with store.session() as session:
        if listing.key_condition is None:
            rows = session.scan(Order, filter=condition, index=listing.index)
        else:
            rows = session.query(
                Order,
                listing.key_condition,
                index=listing.index,
                filter=condition,
                reverse=case.reverse,
            )
        return [order async for order in rows]


async def write(
    store: uow.Store,
    stored: dict[OrderKey, dict[str, Any]],
    written: set[OrderKey],
    ops: list[tuple[str, Any]],
) -> None:
    """Apply one batch of writes behind the pages' back, keeping `stored` and `written` in step.

    Adds use new keys only: a record written again may move in the index and,
    rightly, be listed twice; it is not "present throughout" either.
    """
    for action, argument in ops:
        if action == "delete" and stored:
            doomed = sorted(stored)[argument % len(stored)]
            await raw_delete(store, Order, customer_id=doomed[0], order_id=doomed[1])
            del stored[doomed]
        elif action == "add" and key(argument) not in written:
            await raw_put_many(store, Order, [argument])
            stored[key(argument)] = argument
            written.add(key(argument))


async def check(store: uow.Store, case: Case) -> None:
    """Page through the case's listing and check the pages against the records."""
    await empty(store)
    await raw_put_many(store, Order, case.records)
    stored = {key(r): r for r in case.records}
    written = set(stored)
    present = set(stored)  # the records present throughout
    listing, (_, condition, matches) = case.listing, case.filter
    pages: list[uow.Page[Order]] = []
    after = None
    while True:
        async with store.session() as session:
            page = await session.page(
                Order,
                listing.key_condition,
                index=listing.index,
                filter=condition,
                limit=case.limit,
                after=after,
                reverse=case.reverse,
            )
        pages.append(page)
        note(f"page {len(pages)}: {[key(o) for o in page.items]} cursor={page.cursor is not None}")
        # A cursor is given only when a record follows the page, so only after a full page.
        assert len(page.items) == case.limit if page.cursor else len(page.items) <= case.limit
        if page.cursor is None:
            break
        after = page.cursor
        if len(pages) <= len(case.between):
            ops = case.between[len(pages) - 1]
            await write(store, stored, written, ops)
            present &= set(stored)
        assert len(pages) <= 100, "the pages do not end"
    event(f"{case.listing.name}, {'reversed, ' if case.reverse else ''}filter {case.filter[0]}")
    event("one page" if len(pages) == 1 else "several pages")
    event("writes between pages" if any(case.between[: len(pages) - 1]) else "undisturbed")
    paged = [order for page in pages for order in page.items]
    paged_keys = [key(o) for o in paged]
    final = await listing_of(store, case)
    if not any(case.between[: len(pages) - 1]):
        assert paged == final
        return
    assert len(set(paged_keys)) == len(paged_keys), "a record appeared twice"
    expected = {k for k in present if listing.contains(stored[k]) and matches(stored[k])}
    assert expected <= set(paged_keys), f"skipped: {sorted(expected - set(paged_keys))}"
    # Pages keep the listing's order: the records still there at the end come in its order.
    final_keys = [key(o) for o in final]
    assert [k for k in paged_keys if k in set(final_keys)] == [
        k for k in final_keys if k in set(paged_keys)
    ]


def test_pages_concatenate_to_the_listing(uow_database: LocalDatabase) -> None:
    """Random records, filters, limits 1-30, both directions, table and GSI: pages are the listing, also with writes between requests."""
    with asyncio.Runner() as runner:
        store = uow_database.store()
        runner.run(store.__aenter__())
        try:
            runner.run(store.create_tables(Order))

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                # Explaining a failure re-runs it many times under a tracer: minutes here.
                phases=[phase for phase in Phase if phase is not Phase.explain],
            )
            @given(case=cases())
            def pages_are_the_listing(case: Case) -> None:
                runner.run(check(store, case))

            started = time.perf_counter()
            pages_are_the_listing()
            print(f"{EXAMPLES} examples in {time.perf_counter() - started:.1f} s")
        finally:
            runner.run(store.__aexit__(None, None, None))
