"""A FastAPI app with one `uow.Store` per app and one `uow.Session` per request.

Run it with `uvicorn examples.webapp:app` (install the `examples` dependency
group, and uvicorn). The store follows the standard AWS configuration chain
(`AWS_ENDPOINT_URL`, credentials, region) and signs its page cursors with the
secret in `CURSOR_KEY`; `create_app(store_factory=...)` takes any function
that makes an unopened `uow.Store`, which is how the tests point it at a
local server.

The pattern, explained in docs/howto/fastapi.md:

* the lifespan opens one `Store` for the app (one aioboto3 client, one
  connection pool) and creates the tables;
* the `session` dependency opens a session per request with
  `Depends(..., scope="function")`: its `async with` block ends when the
  handler returns, *before* the response is sent, so a commit failure becomes
  an error response instead of a 200 for data that was never written; and a
  handler that raises writes nothing;
* handlers that report what the commit produced (a new version) commit
  explicitly before building the response; the others let the dependency
  commit;
* a handler that must not oversell attaches a condition to its write
  (`POST /stock/{sku}/reserve`): DynamoDB refuses it when too little is left;
* a handler whose commit may be cut by a timeout takes an `Idempotency-Key`
  header and records it in the same transaction as its write, so that the
  client's retry of the same request lands once (`POST /users/{id}/credits`);
* a list endpoint answers a page at a time with `session.page`, and a cursor
  the client damaged or made up is a 400 (docs/howto/pages.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import attrs
from boto3.dynamodb.conditions import Attr, Key
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import uow

__all__ = [
    "Invite",
    "Order",
    "Processed",
    "Stock",
    "User",
    "app",
    "create_app",
    "store_from_environment",
]


@uow.model(table="web_users", pk="user_id", unique=("email",), version="version")
@attrs.define
class User:
    """A user; the email is unique across users, and every write is versioned."""

    user_id: str
    email: str
    name: str = ""
    visits: int = 0
    version: int = 0


@uow.model(table="web_invites", pk="code", version="version")
@attrs.define
class Invite:
    """An invitation code that admits `uses_left` more signups."""

    code: str
    uses_left: int = 0
    version: int = 0


@uow.model(table="web_orders", pk="user_id", sk="order_id")
@attrs.define
class Order:
    """An order of a user; order ids sort by time (e.g. `2024-05-01T10:00:00#0001`)."""

    user_id: str
    order_id: str
    item: str = ""
    status: str = "open"
    total: int = 0


@uow.model(table="web_requests", pk="key")
@attrs.define
class Processed:
    """A request that was applied, by its client's `Idempotency-Key`."""

    key: str
    # Epoch seconds after which the key may be forgotten: make it the table's TTL
    # attribute (DynamoDB deletes expired items), a day after the request.
    expires_at: int = 0


@uow.model(table="web_stock", pk="sku")
@attrs.define
class Stock:
    """How many units of a product are left."""

    sku: str
    qty: int = 0


MODELS = (User, Invite, Processed, Stock, Order)
# How long a handler waits for its commit before answering 503 (the client retries).
COMMIT_TIMEOUT = 2.0


class SignupBody(BaseModel):
    """The JSON body of `POST /signup`."""

    user_id: str
    email: str
    name: str = ""
    invite: str


class ReserveBody(BaseModel):
    """The JSON body of `POST /stock/{sku}/reserve`."""

    qty: int


class CreditBody(BaseModel):
    """The JSON body of `POST /users/{user_id}/credits`."""

    amount: int


class RenameBody(BaseModel):
    """The JSON body of `PATCH /users/{user_id}`."""

    name: str


# --8<-- [start:session]
def _store(request: Request) -> uow.Store:
    store: uow.Store = request.app.state.store
    return store


async def _session(store: Annotated[uow.Store, Depends(_store)]) -> AsyncIterator[uow.Session]:
    """One session per request: commits when the handler returns, rolls back when it raises."""
    async with store.session() as session:
        yield session


# `scope="function"`: the code after `yield` (here, the end of `async with`, which commits)
# runs when the handler returns and before the response is sent. With FastAPI's default
# scope ("request", since 0.118) it would run after the response was sent.
SessionDep = Annotated[uow.Session, Depends(_session, scope="function")]
# --8<-- [end:session]


# --8<-- [start:errors]
def _commit_error(request: Request, error: Exception) -> JSONResponse:
    """A commit that failed: 409 for lost races and taken values, 503 otherwise."""
    assert isinstance(error, uow.CommitError)
    causes = [cause for _, cause in error.failed]
    conflict = all(
        isinstance(c, uow.ConflictError | uow.UniqueViolation | uow.AbortedError) for c in causes
    )
    failed = [
        {"change": change.describe(), "cause": type(cause).__name__}
        for change, cause in error.failed
    ]
    return JSONResponse(
        {"detail": "not written", "failed": failed}, status_code=409 if conflict else 503
    )


# --8<-- [end:errors]


# --8<-- [start:reserve]
async def reserve(sku: str, body: ReserveBody, session: SessionDep) -> dict[str, Any]:
    """Take `qty` units, only if at least that many are left: 409 with what is left otherwise.

    The condition is evaluated by DynamoDB on the stored item, in the same request as
    the `ADD`: two handlers racing for the last unit cannot both get it.
    """
    if body.qty < 1:
        raise HTTPException(status_code=422, detail="qty must be at least 1")
    session.update(Stock, sku, add={"qty": -body.qty}, condition=Attr("qty").gte(body.qty))
    try:
        await session.commit()
    except uow.CommitError as error:
        (_, cause), *_ = error.failed
        if not isinstance(cause, uow.ConditionFailed):
            raise  # a missing product (ConflictError) or a service error
        session.clear()  # nothing to write: the reservation is refused
        left = cause.item.qty if isinstance(cause.item, Stock) else 0
        raise HTTPException(
            status_code=409, detail={"error": "not enough stock", "available": left}
        ) from error
    return {"sku": sku, "reserved": body.qty}


# --8<-- [end:reserve]


# --8<-- [start:credits]
async def add_credits(
    user_id: str,
    body: CreditBody,
    idempotency_key: Annotated[str, Header(min_length=8, max_length=128)],
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    """Add to a user's visits, once per `Idempotency-Key`, whatever the client retries.

    The key is recorded create-only in the same transaction as the ADD: a retry of a
    request that landed fails on that record (`DuplicateKeyError`), so it is
    answered "already applied" and writes nothing. A commit cut by the timeout
    answers 503; whether it landed or not, the client's retry with the same key is
    safe.
    """
    expires = int(time.time()) + 24 * 3600
    session.add(Processed(f"credits#{idempotency_key}", expires_at=expires))
    session.update(User, user_id, add={"visits": body.amount})
    try:
        async with asyncio.timeout(request.app.state.commit_timeout):
            await session.commit(atomic=True)
    except TimeoutError:
        # Raising rolls the session back: the write in doubt is not sent again by
        # this request; the client's retry settles it through the key.
        raise HTTPException(
            status_code=503, detail="not confirmed in time: retry with the same key"
        ) from None
    except uow.CommitError as error:
        if any(
            isinstance(cause, uow.DuplicateKeyError) and change.model is Processed
            for change, cause in error.failed
        ):
            session.clear()  # nothing of this request is written: drop it all
            return {"user_id": user_id, "applied": False}
        raise
    return {"user_id": user_id, "applied": True}


# --8<-- [end:credits]


# --8<-- [start:orders]
async def list_orders(
    user_id: str,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: str | None = None,
) -> dict[str, Any]:
    """A user's orders, newest first, `limit` at a time; `next` resumes the listing.

    The client sends `next` back as `?after=`. A cursor it damaged or made
    up (or one of another user's listing) answers 400; a bug of this
    handler's own (a `ValidationError` on the first page) stays a 500.
    """
    try:
        page = await session.page(
            Order,
            Key("user_id").eq(user_id),
            filter=Attr("status").eq(status) if status else None,
            limit=limit,
            after=after,
            reverse=True,
        )
    except uow.ValidationError as error:
        if after is None:
            raise
        raise HTTPException(
            status_code=400, detail="invalid `after` cursor: list again without it"
        ) from error
    return {"items": [attrs.asdict(order) for order in page.items], "next": page.cursor}


# --8<-- [end:orders]


# --8<-- [start:store]
def store_from_environment() -> uow.Store:
    """The app's store: the AWS configuration chain, cursors signed with `CURSOR_KEY`.

    Every instance of the app needs the same `CURSOR_KEY` (at least 16
    characters; `python -c "import secrets; print(secrets.token_urlsafe(32))"`),
    from your secret store. Without it, cursors are checked but not signed.
    """
    secret = os.environ.get("CURSOR_KEY")
    return uow.Store(cursor_key=secret.encode() if secret else None)


# --8<-- [end:store]


def create_app(
    store_factory: Callable[[], uow.Store] = store_from_environment,
    *,
    commit_timeout: float = COMMIT_TIMEOUT,
) -> FastAPI:
    """The app; `store_factory()` makes the (unopened) store the lifespan opens.

    Args:
        store_factory: makes the app's `uow.Store`; default
            `store_from_environment`, which follows the standard AWS
            configuration chain.
        commit_timeout: seconds `POST /users/{id}/credits` waits for its commit.
    """

    # --8<-- [start:lifespan]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store_factory() as store:
            await store.create_tables(*MODELS)
            app.state.store = store
            yield

    app = FastAPI(title="uow example", lifespan=lifespan)
    app.add_exception_handler(uow.CommitError, _commit_error)
    app.state.commit_timeout = commit_timeout
    # --8<-- [end:lifespan]

    # --8<-- [start:signup]
    @app.post("/signup", status_code=201)
    async def signup(body: SignupBody, session: SessionDep) -> dict[str, Any]:
        """Create a user and use up one use of an invite, atomically."""
        user = User(body.user_id, body.email, body.name)
        session.add(user)
        invite = await session.get(Invite, body.invite)
        if invite is None or invite.uses_left < 1:
            # Raising writes nothing: the dependency rolls the session back,
            # so the user added above is never sent.
            raise HTTPException(status_code=403, detail="invalid or used-up invite")
        invite.uses_left -= 1
        # Explicit and atomic: the user, its email guard and the invite in one transaction,
        # and the response shows the version the commit wrote.
        await session.commit(atomic=True)
        return {"user_id": user.user_id, "version": user.version}

    # --8<-- [end:signup]

    @app.get("/users/{user_id}")
    async def get_user(user_id: str, session: SessionDep) -> dict[str, Any]:
        """One user, or 404."""
        user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"no user {user_id!r}")
        return attrs.asdict(user)

    @app.patch("/users/{user_id}")
    async def rename(user_id: str, body: RenameBody, session: SessionDep) -> dict[str, Any]:
        """Change a user's name; the response shows the version the commit wrote."""
        user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"no user {user_id!r}")
        user.name = body.name
        await session.commit()
        return {"user_id": user.user_id, "name": user.name, "version": user.version}

    # --8<-- [start:visits]
    @app.post("/users/{user_id}/visits", status_code=204)
    async def count_visit(user_id: str, session: SessionDep) -> None:
        """Count a visit without reading the user: a blind ADD, committed by the dependency.

        A missing user fails that commit (`ConflictError`), which happens before the
        response is sent: the client gets 409, not 204.
        """
        session.update(User, user_id, add={"visits": 1})

    # --8<-- [end:visits]

    app.post("/stock/{sku}/reserve")(reserve)
    app.post("/users/{user_id}/credits")(add_credits)
    app.get("/users/{user_id}/orders")(list_orders)

    return app


app = create_app()
