"""Static type tests: what mypy infers for the public API. Checked by `mypy --strict`, never run.

Each `assert_type` fails the type check when the inferred type drifts. A line
ending in `# type: ignore[code]` pins an error mypy must report: with
`warn_unused_ignores` (part of `--strict`), the ignore itself becomes an
error if mypy stops reporting it.
"""

from __future__ import annotations

from typing import assert_type

import attrs
from boto3.dynamodb.conditions import Attr, Key

import uow


@uow.model(table="users", pk="user_id", unique=("email",), version="version")
@attrs.define
class User:
    """A model with a unique field and a version."""

    user_id: str
    email: str
    name: str = ""
    version: int = 0


@uow.model(table="orders", pk="customer_id", sk="order_id")
@attrs.define
class Order:
    """A model with a sort key."""

    customer_id: str
    order_id: str


async def reads(session: uow.Session) -> None:
    """Reads are typed by the model class they are given."""
    assert_type(await session.get(User, "u1"), User | None)
    assert_type(await session.get(Order, "c1", "o1"), Order | None)
    assert_type(await session.get_many(User, ["u1", "u2"]), list[User | None])
    assert_type(await session.get_many(Order, [("c1", "o1")]), list[Order | None])
    assert_type(await session.get_by(User, email="ada@example.com"), User | None)
    async for user in session.query(User, Key("user_id").eq("u1")):
        assert_type(user, User)
    async for order in session.query(
        Order, Key("customer_id").eq("c1"), filter=Attr("total").gt(1), limit=5, reverse=True
    ):
        assert_type(order, Order)
    async for scanned in session.scan(User, filter=Attr("name").eq("Ada")):
        assert_type(scanned, User)


async def pages(session: uow.Session, after: str | None) -> None:
    """A page is typed by its model; its cursor may be `None`; `limit` is required."""
    page = await session.page(Order, Key("customer_id").eq("c1"), limit=20, after=after)
    assert_type(page, uow.Page[Order])
    assert_type(page.items, tuple[Order, ...])
    assert_type(page.cursor, str | None)
    assert_type(await session.page(User, limit=5), uow.Page[User])
    await session.page(User)  # type: ignore[call-arg]  # pins that limit has no default


async def none_must_be_handled(session: uow.Session) -> None:
    """A read may find nothing: using the result unchecked is a type error."""
    user = await session.get(User, "u1")
    print(user.name)  # type: ignore[union-attr]  # pins that get() may return None
    found = await session.get_by(User, email="ada@example.com")
    print(found.email)  # type: ignore[union-attr]  # pins that get_by() may return None


async def commits(session: uow.Session) -> None:
    """Commits return a `CommitResult`; errors carry typed changes and causes."""
    assert_type(await session.commit(), uow.CommitResult)
    assert_type(await session.commit(atomic=True), uow.CommitResult)
    try:
        await session.commit()
    except uow.CommitError as error:
        for change, cause in error.failed:
            assert_type(change, uow.Change)
            assert_type(cause, uow.ChangeError)
        assert_type(error.succeeded, tuple[uow.Change, ...])
        assert_type(error.result, uow.CommitResult | None)
    assert_type(session.pending, tuple[uow.Change, ...])
    assert_type(session.state, uow.SessionState)
    assert_type(session.read_stats, uow.ReadStats)


async def stores() -> None:
    """Stores and sessions as async context managers keep their types."""
    async with uow.Store(region_name="eu-west-1") as store:
        assert_type(store, uow.Store)
        async with store.session() as session:
            assert_type(session, uow.Session)

        async def work(session: uow.Session) -> int:
            user = await session.get(User, "u1")
            return 0 if user is None else len(user.name)

        assert_type(await uow.retry_on_conflict(store, work), int)


def models() -> None:
    """`@uow.model` keeps the class as it is."""
    assert_type(User("u1", "ada@example.com"), User)
    assert_type(uow.info_of(User), uow.ModelInfo)
