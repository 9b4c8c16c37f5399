"""Single-table design with uow: customers and their invoices in one table.

Run it with `python -m examples.single_table` (an embedded moto server when no
endpoint is configured; `--endpoint URL` or `AWS_ENDPOINT_URL` otherwise).
docs/howto/single-table.md explains it section by section, and
tests/integration/test_howto_single_table.py checks that it prints what the
page says.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from collections.abc import Sequence

import attrs
from boto3.dynamodb.conditions import Key

import uow

__all__ = ["Customer", "Invoice", "run"]


# --8<-- [start:models]
@uow.model(table="shop", pk="pk", sk="sk", kind="customer")
@attrs.define
class Customer:
    """A customer's profile: the item `CUST#<id>` / `PROFILE` of its collection."""

    customer_id: str
    email: str
    name: str = ""
    # The keys are derived from the fields when the object is made (attrs defaults).
    pk: str = attrs.field(init=False)
    sk: str = attrs.field(init=False, default="PROFILE")

    @pk.default
    def _pk(self) -> str:
        return f"CUST#{self.customer_id}"


@uow.model(
    table="shop",
    pk="pk",
    sk="sk",
    kind="invoice",
    ttl="expires_at",
    unique=(("tenant", "number"),),
    indexes={"open": uow.Index(pk="status", sk="due", projection="keys")},
)
@attrs.define
class Invoice:
    """An invoice in its customer's collection: `CUST#<id>` / `INV#<number>`."""

    customer_id: str
    tenant: str
    number: int
    amount: int
    status: str | None = None  # only open invoices have one: a sparse index
    due: str | None = None
    expires_at: dt.datetime | None = None  # drafts expire (DynamoDB TTL)
    pk: str = attrs.field(init=False)
    sk: str = attrs.field(init=False)

    @pk.default
    def _pk(self) -> str:
        return f"CUST#{self.customer_id}"

    @sk.default
    def _sk(self) -> str:
        return f"INV#{self.number:04d}"

    @staticmethod
    def key(customer_id: str, number: int) -> tuple[str, str]:
        """The `(pk, sk)` of an invoice, for `get`."""
        return f"CUST#{customer_id}", f"INV#{number:04d}"


# --8<-- [end:models]


async def run(store: uow.Store) -> None:
    """Store a customer's collection and read it the ways the page shows."""
    # --8<-- [start:write]
    await store.create_tables(Customer, Invoice)  # one table, the union of their indexes
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    async with store.session() as session:
        session.add(Customer("42", "ada@example.com", "Ada"))
        session.add(Invoice("42", "acme", 1, 120, status="open", due="2025-02-01"))
        session.add(Invoice("42", "acme", 2, 80))  # paid: no status
        session.add(Invoice("42", "acme", 3, 10, expires_at=yesterday))  # an expired draft
    # --8<-- [end:write]

    # --8<-- [start:collection]
    async with store.session() as session:
        async for item in session.query((Customer, Invoice), Key("pk").eq("CUST#42")):
            print(f"{type(item).__name__:8} {item.sk}")
    # --8<-- [end:collection]

    # --8<-- [start:index]
    async with store.session() as session:
        async for row in session.query(Invoice, Key("status").eq("open"), index="open"):
            print(f"open: {row.sk} amount={row.amount}")
        print(f"requests: {dict(session.read_stats.requests)}")
    # --8<-- [end:index]

    # --8<-- [start:ttl]
    async with store.session() as session:
        print(f"draft: {await session.get(Invoice, *Invoice.key('42', 3))}")
    # --8<-- [end:ttl]

    # --8<-- [start:unique]
    async with store.session() as session:
        found = await session.get_by(Invoice, tenant="acme", number=2)
        assert found is not None
        print(f"acme #2: {found.sk} of {found.pk}")
        session.add(Invoice("7", "acme", 2, 99))  # acme's number 2 is taken
        try:
            await session.commit()
        except uow.CommitError as error:
            [(change, cause)] = error.failed
            print(f"refused: {type(cause).__name__} for {change.key}")
            session.clear_record(change.obj)
    # --8<-- [end:unique]

    # --8<-- [start:kinds]
    async with store.session() as session:
        try:
            await session.get(Invoice, "CUST#42", "PROFILE")
        except uow.SchemaError as error:
            print(f"SchemaError: {error}")
    # --8<-- [end:kinds]


async def run_on(endpoint: str | None) -> None:
    """Run on `endpoint`, or on an embedded moto server when it is `None`."""
    if endpoint is None:
        from uow.testing import MotoServer, local_store

        with MotoServer() as server:
            async with local_store(server.endpoint) as store:
                await run(store)
        return
    async with uow.Store(endpoint) as store:
        await run(store)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the example, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m examples.single_table", description=__doc__)
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
