"""docs/howto/single-table.md: the example prints what the page shows, and the page's promises hold."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import pytest_asyncio
from boto3.dynamodb.conditions import Key

import uow
from examples.single_table import Customer, Invoice, run
from tests.integration.support import Calls, raw_get, raw_put

pytestmark = pytest.mark.asyncio

PAGE = Path(__file__).resolve().parents[2] / "docs" / "howto" / "single-table.md"


def printed_on_the_page() -> list[str]:
    """The output the page says the example prints."""
    block = re.search(r"It prints:\n\n```\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None, "the single-table page lost its 'It prints:' block"
    return block[1].splitlines()


@pytest_asyncio.fixture
async def shop(uow_store: uow.Store) -> AsyncIterator[uow.Store]:
    """The example's `shop` table, empty."""
    await uow_store.create_tables(Customer, Invoice)
    yield uow_store


async def test_the_example_prints_what_the_page_shows(
    uow_store: uow.Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run(store)` prints the page's 'It prints:' block, line for line."""
    await run(uow_store)
    assert capsys.readouterr().out.splitlines() == printed_on_the_page()


async def test_keys_are_derived_from_the_fields() -> None:
    """`pk`/`sk` come from the fields at construction; `Invoice.key` builds the same pair."""
    invoice = Invoice("42", "acme", 7, 1)
    assert (invoice.pk, invoice.sk) == ("CUST#42", "INV#0007") == Invoice.key("42", 7)
    assert (Customer("42", "a@x").pk, Customer("42", "a@x").sk) == ("CUST#42", "PROFILE")


async def test_derived_keys_read_back_unchanged(shop: uow.Store) -> None:
    """A stored invoice reads back equal, derived keys included, and is found by them."""
    async with shop.session() as s:
        s.add(Invoice("42", "acme", 7, 1))
    async with shop.session() as s:
        assert await s.get(Invoice, *Invoice.key("42", 7)) == Invoice("42", "acme", 7, 1)


async def test_an_empty_index_key_is_refused(shop: uow.Store) -> None:
    """`status=""` is not a value DynamoDB accepts in an index key: `commit()` refuses it."""
    s = shop.session()
    s.add(Invoice("42", "acme", 1, 1, status=""))
    with pytest.raises(uow.ValidationError, match="index keys cannot be empty"):
        await s.commit()


async def test_a_mapped_object_outlives_its_ttl(shop: uow.Store) -> None:
    """An object already in the map stays until refreshed, even once expired."""
    async with shop.session() as s:
        s.add(Invoice("42", "acme", 1, 1))
    async with shop.session() as s:
        invoice = await s.get(Invoice, *Invoice.key("42", 1))
        assert invoice is not None
        await shop.client.update_item(
            TableName=shop.table_name(Invoice),
            Key={"pk": {"S": "CUST#42"}, "sk": {"S": "INV#0001"}},
            UpdateExpression="SET expires_at = :t",
            ExpressionAttributeValues={":t": {"N": "1000"}},
        )
        assert await s.get(Invoice, *Invoice.key("42", 1)) is invoice
        with pytest.raises(uow.NotFoundError):
            await s.refresh(invoice)


async def test_delete_key_is_not_conditioned_on_the_kind(shop: uow.Store) -> None:
    """`delete_key(Customer, <invoice key>)` deletes the invoice item, as the page warns."""
    async with shop.session() as s:
        s.add(Invoice("42", "acme", 1, 1))
    async with shop.session() as s:
        s.delete_key(Customer, *Invoice.key("42", 1))
    assert await raw_get(shop, Invoice, pk="CUST#42", sk="INV#0001") is None


async def test_delete_key_of_a_model_with_guards_checks_the_kind(shop: uow.Store) -> None:
    """A model with unique fields reads the item first: another kind is a SchemaError, nothing sent."""
    async with shop.session() as s:
        s.add(Customer("42", "a@x"))
    s = shop.session()
    s.delete_key(Invoice, "CUST#42", "PROFILE")
    with pytest.raises(uow.SchemaError, match="of kind 'customer', not 'invoice'"):
        await s.commit()
    assert await raw_get(shop, Customer, pk="CUST#42", sk="PROFILE") is not None


async def test_an_overwrite_replaces_the_whole_item(shop: uow.Store) -> None:
    """`add(..., overwrite=True)` drops undeclared attributes; an update keeps them."""
    await raw_put(shop, Customer, pk="CUST#1", sk="PROFILE", _kind="customer",
                  customer_id="1", email="a@x", legacy="x")  # fmt: skip
    async with shop.session() as s:
        customer = await s.get(Customer, "CUST#1", "PROFILE")
        assert customer is not None
        customer.name = "Ann"
    stored = await raw_get(shop, Customer, pk="CUST#1", sk="PROFILE")
    assert stored is not None
    assert stored["legacy"] == "x"
    async with shop.session() as s:
        s.add(Customer("1", "a@x", "Bo"), overwrite=True)
    stored = await raw_get(shop, Customer, pk="CUST#1", sk="PROFILE")
    assert stored is not None
    assert "legacy" not in stored
    assert stored["_kind"] == "customer"


async def test_kinds_do_not_share_unique_values(uow_store: uow.Store) -> None:
    """Two models of one table, both `unique=("email",)`, may hold the same email."""

    @uow.model(table="people", pk="pk", kind="staff", unique=("email",))
    @attrs.define
    class Staff:
        pk: str
        email: str

    @uow.model(table="people", pk="pk", kind="client", unique=("email",))
    @attrs.define
    class Client:
        pk: str
        email: str

    await uow_store.create_tables(Staff, Client)
    async with uow_store.session() as s:
        s.add_all([Staff("s1", "a@x"), Client("c1", "a@x")])
    s = uow_store.session()
    assert await s.get_by(Staff, email="a@x") == Staff("s1", "a@x")
    assert await s.get_by(Client, email="a@x") == Client("c1", "a@x")
    s.add(Staff("s2", "a@x"))
    with pytest.raises(uow.CommitError) as caught:
        await s.commit()
    assert isinstance(caught.value.failed[0][1], uow.UniqueViolation)


@uow.model(
    table="tickets",
    pk="pk",
    sk="sk",
    kind="ticket",
    indexes={"queue": uow.Index(pk="queue", sk="sk", projection="keys")},
)
@attrs.define
class Ticket:
    """A ticket in a keys-only index."""

    pk: str
    sk: str
    queue: str | None = None
    body: str = ""


async def test_one_batch_get_per_hundred_rows(uow_store: uow.Store) -> None:
    """150 keys-only rows in one page are completed by two `BatchGetItem`s, in index order."""
    await uow_store.create_tables(Ticket)
    async with uow_store.session() as s:
        s.add_all([Ticket("T", f"{n:03d}", queue="q", body=str(n)) for n in range(150)])
    calls = Calls()
    calls.attach(uow_store)
    async with uow_store.session() as s:
        found = [t async for t in s.query(Ticket, Key("queue").eq("q"), index="queue")]
        assert [t.body for t in found] == [str(n) for n in range(150)]
    assert calls.apis == {"Query": 1, "BatchGetItem": 2}
