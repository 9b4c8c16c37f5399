"""An order-processing unit of work, printing what each commit sent.

Run it with `make demo` (or `python -m examples.demo`). With no endpoint
configured it starts an embedded moto server on 127.0.0.1; with
`AWS_ENDPOINT_URL` set, or `--endpoint URL`, it runs against that endpoint
(credentials and region from the standard AWS configuration chain), in tables
with a fresh prefix that it deletes at the end.

The story:

1. seed three products, a customer and one earlier order (commit 1);
2. in a new session: load the customer, place three orders, take their
   quantities from stock (a mutation of a loaded product, an `update(add=...)`
   of a loaded product, a blind `update(add=...)` of a product never loaded),
   cancel the earlier order (commit 2);
3. place an order whose id is already taken: the commit raises
   `uow.CommitError`, the other change is written, the failed one stays
   pending until it is fixed and committed again (commit 3).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

import attrs

import uow

T = TypeVar("T")


@uow.model(table="customers", pk="customer_id")
@attrs.define
class Customer:
    """A shop customer."""

    customer_id: str
    name: str
    email: str
    orders_placed: int = 0
    loyalty_points: int = 0


@uow.model(table="products", pk="sku")
@attrs.define
class Product:
    """A product and its stock level."""

    sku: str
    name: str
    price: Decimal
    stock: int = 0


@attrs.define
class Line:
    """One line of an order (stored as a map inside the order)."""

    sku: str
    quantity: int
    unit_price: Decimal


@uow.model(table="orders", pk="customer_id", sk="order_id")
@attrs.define
class Order:
    """An order: one item per (customer, order id)."""

    customer_id: str
    order_id: str
    lines: list[Line] = attrs.Factory(list)
    total: Decimal = Decimal(0)


MODELS = (Customer, Product, Order)


def new_order(customer: Customer, order_id: str, *lines: tuple[Product, int]) -> Order:
    """An order of `quantity` units of each product in `(product, quantity)`, priced now."""
    items = [Line(product.sku, quantity, product.price) for product, quantity in lines]
    total = sum((line.unit_price * line.quantity for line in items), Decimal(0))
    return Order(customer.customer_id, order_id, items, total)


async def load(session: uow.Session, model: type[T], pk: str, sk: str | None = None) -> T:
    """`session.get`, for records the story knows exist."""
    obj = await session.get(model, pk, sk)
    if obj is None:
        raise LookupError(f"{model.__name__} {pk} {sk or ''} is missing")
    return obj


def sent(result: uow.CommitResult) -> None:
    print(f"  sent: {result.summary()}")


def show_pending(session: uow.Session) -> None:
    print("  session.pending (one net change per record):")
    for change in session.pending:
        print(f"    {change.describe()}")


async def seed(store: uow.Store) -> None:
    """Commit 1: the catalogue, a customer and an earlier order."""
    print("commit 1: seed 3 products, 1 customer, 1 earlier order")
    async with store.session() as session:
        beans = Product("sku-1", "Espresso beans 1kg", Decimal("18.50"), stock=40)
        frother = Product("sku-2", "Milk frother", Decimal("45.00"), stock=10)
        cups = Product("sku-3", "Ceramic cup", Decimal("7.90"), stock=100)
        ada = Customer("c-1", "Ada", "ada@example.com", orders_placed=1)
        session.add_all([beans, frother, cups, ada, new_order(ada, "o-0001", (frother, 1))])
        sent(await session.commit())


async def place_orders(store: uow.Store) -> None:
    """Commit 2: three orders, stock taken, one order cancelled."""
    print("commit 2: place 3 orders, take stock, cancel the earlier order")
    async with store.session() as session:
        ada = await load(session, Customer, "c-1")
        beans = await load(session, Product, "sku-1")
        frother = await load(session, Product, "sku-2")
        orders = [
            new_order(ada, "o-0002", (beans, 2)),
            new_order(ada, "o-0003", (beans, 1), (frother, 1)),
            new_order(ada, "o-0004", (frother, 2)),
        ]
        session.add_all(orders)
        ada.orders_placed += len(orders)
        ada.loyalty_points += int(sum(order.total for order in orders))

        # A mutation of a loaded object: diffed at commit, sent as `SET stock = 37`.
        beans.stock -= 3
        # update() of a loaded object changes it at once; sent as `ADD stock -3`,
        # so a concurrent writer's decrement is not overwritten.
        session.update(Product, "sku-2", add={"stock": -3})
        print(f"  update(Product, 'sku-2', add={{'stock': -3}}) -> frother.stock = {frother.stock}")
        # Two cups broke in the warehouse: a blind ADD, the product is never loaded.
        session.update(Product, "sku-3", add={"stock": -2})

        cancelled = await load(session, Order, "c-1", "o-0001")
        session.delete(cancelled)
        for line in cancelled.lines:
            session.update(Product, line.sku, add={"stock": line.quantity})

        show_pending(session)
        sent(await session.commit())
        cups = await load(session, Product, "sku-3")
        print(
            f"  stock now: sku-1={beans.stock} sku-2={frother.stock} sku-3={cups.stock}; "
            f"Ada: {ada.orders_placed} orders, {ada.loyalty_points} points"
        )


async def duplicate_order(store: uow.Store) -> None:
    """Commit 3: one change fails, the other is written; the failure stays pending."""
    print("commit 3: a retried request reuses order id o-0004 (already exists)")
    async with store.session() as session:
        ada = await load(session, Customer, "c-1")
        cups = await load(session, Product, "sku-3")
        retried = new_order(ada, "o-0004", (cups, 4))
        session.add_all([retried, new_order(ada, "o-0005", (cups, 1))])
        try:
            await session.commit()
        except uow.CommitError as error:
            if isinstance(error.result, uow.CommitResult):
                sent(error.result)
            print(f"  CommitError: {len(error.failed)} failed, {len(error.succeeded)} written")
            for change in error.succeeded:
                print(f"    written: {change.describe()}")
            for change, cause in error.failed:
                print(f"    failed:  {change.describe()}: {type(cause).__name__}")
                print(f"             {cause}")
        else:
            raise RuntimeError("o-0004 exists: this commit should have raised CommitError")
        print(f"  still pending: {[change.describe() for change in session.pending]}")

        # Fix: forget the failed record, give the order a fresh id, commit again.
        session.clear_record(retried)
        retried.order_id = "o-0006"
        session.add(retried)
        print("  clear_record(order); order.order_id = 'o-0006'; add(order)")
        sent(await session.commit())
        print(f"  still pending: {[change.describe() for change in session.pending]}")


async def run(store: uow.Store) -> None:
    """The whole story on an open store."""
    await store.create_tables(*MODELS)
    await seed(store)
    await place_orders(store)
    await duplicate_order(store)


async def run_on(endpoint: str | None) -> None:
    """Run on `endpoint`, or on an embedded moto server when it is `None`."""
    if endpoint is None:
        from uow.testing import MotoServer, local_store

        with MotoServer() as server:
            print(f"embedded moto server at {server.endpoint}")
            async with local_store(server.endpoint) as store:
                await run(store)
        return
    # A fresh prefix: `add()` is create-only, so a second run must not meet the first's items.
    prefix = f"uow_demo_{uuid.uuid4().hex[:8]}_"
    print(f"endpoint {endpoint}, tables prefixed {prefix}")
    async with uow.Store(endpoint, table_prefix=prefix) as store:
        try:
            await run(store)
        finally:
            for model in MODELS:
                await store.client.delete_table(TableName=store.table_name(model))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the story, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL") or None,
        help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL, else an embedded moto server)",
    )
    args = parser.parse_args(argv)
    asyncio.run(run_on(args.endpoint))
    return 0


if __name__ == "__main__":
    sys.exit(main())
