"""The FastAPI example: one store per app, one session per request, committed before the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI, Request
from starlette.types import Message, Receive, Scope, Send

import uow
from examples import starlette_app
from examples.webapp import Invite, Order, SessionDep, Stock, User, create_app
from tests.integration.support import Calls
from uow.testing import FaultProxy, Faults, LocalDatabase

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def app(uow_database: LocalDatabase) -> AsyncIterator[FastAPI]:
    """The example app on this test's database, inside its lifespan (tables created)."""
    application = create_app(uow_database.store)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in process; app errors become 500 responses."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http


async def stored(store: uow.Store, model: type[Any], pk: str) -> Any:
    """The record as DynamoDB holds it now, read in a fresh session."""
    async with store.session() as session:
        return await session.get(model, pk)


async def count_items(store: uow.Store, table: str) -> int:
    """How many items a table holds (`table` without the store's prefix)."""
    name = store.table_prefix + table
    return int((await store.client.scan(TableName=name, Select="COUNT"))["Count"])


def state_of(store: uow.Store) -> uow.StoreState:
    """The store's state, read afresh (a function call: no narrowing carried over)."""
    return store.state


async def seed_invite(store: uow.Store, code: str = "welcome", uses: int = 1) -> None:
    """An invite with `uses` signups left."""
    async with store.session() as session:
        session.add(Invite(code, uses_left=uses))


async def request_scoped(request: Request) -> AsyncIterator[uow.Session]:
    """The naive dependency: FastAPI's default scope runs its commit after the response."""
    async with request.app.state.store.session() as session:
        yield session


class TestWebapp:
    """Each request is a unit of work whose commit ends before the response is sent."""

    async def test_signup_writes_the_user_and_uses_the_invite(
        self, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A signup creates the user at version 1 and takes one use of the invite, atomically."""
        await seed_invite(uow_store)
        response = await client.post(
            "/signup", json={"user_id": "u1", "email": "ada@example.com", "invite": "welcome"}
        )
        assert response.status_code == 201, response.text
        assert response.json() == {"user_id": "u1", "version": 1}
        user = await stored(uow_store, User, "u1")
        assert user == User("u1", "ada@example.com", version=1)
        invite = await stored(uow_store, Invite, "welcome")
        assert invite.uses_left == 0
        fetched = await client.get("/users/u1")
        assert fetched.json()["email"] == "ada@example.com"

    async def test_a_handler_error_writes_nothing(
        self, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A handler that adds a user and then raises HTTPException leaves DynamoDB untouched."""
        response = await client.post(
            "/signup", json={"user_id": "u1", "email": "ada@example.com", "invite": "nope"}
        )
        assert response.status_code == 403
        assert await count_items(uow_store, "web_users") == 0
        assert await count_items(uow_store, "uow_unique") == 0

    async def test_an_unexpected_exception_writes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A handler that changes records and then crashes answers 500 and writes nothing."""
        await seed_invite(uow_store, uses=5)

        @app.post("/crash")
        async def crash(session: SessionDep) -> None:
            session.add(User("u9", "crash@example.com"))
            invite = await session.get(Invite, "welcome")
            assert invite is not None
            invite.uses_left = 0
            raise RuntimeError("bug after the changes")

        response = await client.post("/crash")
        assert response.status_code == 500
        assert await count_items(uow_store, "web_users") == 0
        assert (await stored(uow_store, Invite, "welcome")).uses_left == 5

    async def test_a_taken_email_is_409_and_the_invite_is_kept(
        self, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """An atomic signup whose email is taken writes neither the user nor the invite's use."""
        await seed_invite(uow_store, uses=2)
        first = {"user_id": "u1", "email": "ada@example.com", "invite": "welcome"}
        assert (await client.post("/signup", json=first)).status_code == 201
        second = {**first, "user_id": "u2"}
        response = await client.post("/signup", json=second)
        assert response.status_code == 409
        causes = {failure["cause"] for failure in response.json()["failed"]}
        assert causes == {"UniqueViolation", "AbortedError"}
        assert await stored(uow_store, User, "u2") is None
        assert (await stored(uow_store, Invite, "welcome")).uses_left == 1

    async def test_rename_answers_with_the_committed_version(
        self, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A handler that commits explicitly can put the new version in its response."""
        await seed_invite(uow_store)
        signup = {"user_id": "u1", "email": "ada@example.com", "invite": "welcome"}
        await client.post("/signup", json=signup)
        response = await client.patch("/users/u1", json={"name": "Ada Lovelace"})
        assert response.json() == {"user_id": "u1", "name": "Ada Lovelace", "version": 2}
        assert (await stored(uow_store, User, "u1")).name == "Ada Lovelace"

    async def test_the_dependency_commits_before_the_response(
        self, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A commit made by the dependency lands before 204, and its failure is a 409, not a 204."""
        await seed_invite(uow_store)
        signup = {"user_id": "u1", "email": "ada@example.com", "invite": "welcome"}
        await client.post("/signup", json=signup)
        assert (await client.post("/users/u1/visits")).status_code == 204
        assert (await stored(uow_store, User, "u1")).visits == 1

        missing = await client.post("/users/nobody/visits")
        assert missing.status_code == 409
        assert missing.json()["failed"] == [
            {"change": "update User 'nobody'", "cause": "ConflictError"}
        ]

    async def test_each_request_has_its_own_session_and_the_app_one_store(
        self, app: FastAPI, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """Twenty concurrent requests all succeed (a shared session would refuse them) on one store."""
        store = app.state.store
        await seed_invite(uow_store)
        signup = {"user_id": "u1", "email": "ada@example.com", "invite": "welcome"}
        await client.post("/signup", json=signup)
        responses = await asyncio.gather(*(client.get("/users/u1") for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert app.state.store is store
        assert store.state is uow.StoreState.OPEN

    async def test_the_lifespan_closes_the_store(self, uow_database: LocalDatabase) -> None:
        """The app's store opens with the lifespan and is closed when it ends."""
        application = create_app(uow_database.store)
        async with application.router.lifespan_context(application):
            store: uow.Store = application.state.store
            assert state_of(store) is uow.StoreState.OPEN
        assert state_of(store) is uow.StoreState.CLOSED


class TestDefaultScopePitfall:
    """Why the example uses `scope="function"`: FastAPI's default runs exit code after the response."""

    async def test_a_request_scoped_commit_fails_after_a_success_was_sent(
        self, app: FastAPI, uow_store: uow.Store
    ) -> None:
        """With the default scope, 204 is sent first, and the commit fails afterwards."""

        @app.post("/late/{user_id}", status_code=204)
        async def late_visit(
            user_id: str, session: Annotated[uow.Session, Depends(request_scoped)]
        ) -> None:
            session.update(User, user_id, add={"visits": 1})

        statuses: list[int] = []

        async def spy(scope: Scope, receive: Receive, send: Send) -> None:
            async def record(message: Message) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                await send(message)

            await app(scope, receive, record)

        transport = httpx.ASGITransport(app=spy)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            # The app's CommitError handler cannot answer any more: Starlette says so.
            with pytest.raises(RuntimeError, match="response already started") as raised:
                await http.post("/late/nobody")
        assert statuses == [204]
        assert isinstance(raised.value.__cause__, uow.CommitError)

    async def test_the_response_is_built_before_the_dependency_commits(
        self, app: FastAPI, client: httpx.AsyncClient, uow_store: uow.Store
    ) -> None:
        """A handler that leaves the commit to the dependency answers with pre-commit values."""

        @app.patch("/lazy/{user_id}")
        async def lazy_rename(user_id: str, session: SessionDep) -> dict[str, int]:
            user = await session.get(User, user_id)
            assert user is not None
            user.name = "renamed"
            return {"version": user.version}

        async with uow_store.session() as session:
            session.add(User("u1", "ada@example.com"))
        response = await client.patch("/lazy/u1")
        assert response.json() == {"version": 1}
        assert (await stored(uow_store, User, "u1")).version == 2


class TestStarlette:
    """The plain Starlette variant: the session's block ends, and commits, before the response."""

    async def test_rename_commits_before_answering(
        self, uow_database: LocalDatabase, uow_store: uow.Store
    ) -> None:
        """PATCH renames a stored user and answers with the version the commit wrote; 404 if absent."""
        application = starlette_app.create_app(uow_database.store)
        async with application.router.lifespan_context(application):
            async with uow_store.session() as session:
                session.add(User("u1", "ada@example.com", "Ada"))
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                response = await http.patch("/users/u1", json={"name": "Ada Lovelace"})
                missing = await http.patch("/users/u2", json={"name": "Nobody"})
        assert response.json() == {"version": 2}
        assert missing.status_code == 404
        user = await stored(uow_store, User, "u1")
        assert (user.name, user.version) == ("Ada Lovelace", 2)


class TestRetriedRequests:
    """A request whose commit was cut by a timeout, retried by its client, lands once."""

    @pytest_asyncio.fixture
    async def slow(
        self, uow_database: LocalDatabase, uow_endpoint: str
    ) -> AsyncIterator[tuple[httpx.AsyncClient, FaultProxy, uow.Store]]:
        """The app behind a proxy (healthy at first), with a 1 s commit timeout."""
        with FaultProxy(uow_endpoint, seed=1) as proxy:
            application = create_app(lambda: uow_database.store(proxy.endpoint), commit_timeout=1.0)
            async with application.router.lifespan_context(application):
                store: uow.Store = application.state.store
                async with store.session() as seed:
                    seed.add(User("u1", "u1@example.com"))
                transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://127.0.0.1"
                ) as http:
                    yield http, proxy, store

    async def test_a_timed_out_commit_that_landed_is_not_applied_again(
        self, slow: tuple[httpx.AsyncClient, FaultProxy, uow.Store]
    ) -> None:
        """The first attempt times out (503) but lands; the retry with the same key answers "already applied"."""
        http, proxy, store = slow
        headers = {"Idempotency-Key": "req-0001-abcdef"}
        proxy.faults = Faults(latency=1.5)  # the commit outlasts the handler's timeout
        first = await http.post("/users/u1/credits", json={"amount": 5}, headers=headers)
        assert first.status_code == 503
        for _ in range(100):  # the cut request reaches DynamoDB meanwhile (wait for it)
            user = await stored(store, User, "u1")
            if user is not None and user.visits == 5:
                break
            await asyncio.sleep(0.1)
        proxy.faults = Faults()

        retry = await http.post("/users/u1/credits", json={"amount": 5}, headers=headers)

        assert retry.status_code == 200
        assert retry.json() == {"user_id": "u1", "applied": False}
        user = await stored(store, User, "u1")
        assert user is not None
        assert user.visits == 5

    async def test_a_timed_out_commit_that_never_arrived_is_applied_by_the_retry(
        self, slow: tuple[httpx.AsyncClient, FaultProxy, uow.Store]
    ) -> None:
        """The first attempt is dropped before DynamoDB; the retry with the same key applies it, once."""
        http, proxy, store = slow
        headers = {"Idempotency-Key": "req-0002-abcdef"}
        proxy.faults = Faults(drop=1.0, latency=0.02)
        first = await http.post("/users/u1/credits", json={"amount": 3}, headers=headers)
        assert first.status_code == 503
        proxy.faults = Faults()

        retry = await http.post("/users/u1/credits", json={"amount": 3}, headers=headers)
        again = await http.post("/users/u1/credits", json={"amount": 3}, headers=headers)

        assert retry.json() == {"user_id": "u1", "applied": True}
        assert again.json() == {"user_id": "u1", "applied": False}
        user = await stored(store, User, "u1")
        assert user is not None
        assert user.visits == 3

    async def test_the_key_is_required(
        self, slow: tuple[httpx.AsyncClient, FaultProxy, uow.Store]
    ) -> None:
        """Without an `Idempotency-Key` the request is refused (422) and writes nothing."""
        http, _, store = slow
        response = await http.post("/users/u1/credits", json={"amount": 1})
        assert response.status_code == 422
        user = await stored(store, User, "u1")
        assert user is not None
        assert user.visits == 0


class TestReserveStock:
    """`POST /stock/{sku}/reserve` takes stock only while enough is left."""

    async def test_reserve_until_the_stock_runs_out(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """3 then 2 of 4 units: the first is 200, the second 409 with 1 available; stock 1."""
        store: uow.Store = app.state.store
        async with store.session() as seed:
            seed.add(Stock("mug", qty=4))

        first = await client.post("/stock/mug/reserve", json={"qty": 3})
        second = await client.post("/stock/mug/reserve", json={"qty": 2})

        assert first.status_code == 200
        assert first.json() == {"sku": "mug", "reserved": 3}
        assert second.status_code == 409
        assert second.json()["detail"] == {"error": "not enough stock", "available": 1}
        left = await stored(store, Stock, "mug")
        assert left is not None
        assert left.qty == 1

    @pytest.mark.uow_skip_on(
        "moto",
        reason="moto can let two concurrent conditional writes both win (measured)",
    )
    async def test_concurrent_requests_never_oversell(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """10 concurrent requests for 1 unit each, 6 in stock: 6 are 200, 4 are 409, stock 0."""
        store: uow.Store = app.state.store
        async with store.session() as seed:
            seed.add(Stock("lamp", qty=6))

        responses = await asyncio.gather(
            *(client.post("/stock/lamp/reserve", json={"qty": 1}) for _ in range(10))
        )

        codes = sorted(response.status_code for response in responses)
        assert codes == [200] * 6 + [409] * 4
        left = await stored(store, Stock, "lamp")
        assert left is not None
        assert left.qty == 0

    async def test_an_unknown_product_is_409_conflict(self, client: httpx.AsyncClient) -> None:
        """A product that does not exist fails the update's existence condition: 409 from the commit handler."""
        response = await client.post("/stock/ghost/reserve", json={"qty": 1})
        assert response.status_code == 409
        assert response.json()["failed"][0]["cause"] == "ConflictError"


CURSOR_KEY = b"the example's cursor key, 32 b."


async def seed_orders(store: uow.Store, user_id: str, count: int) -> None:
    """`count` orders of a user, `{user_id}-00`.., every third one paid."""
    async with store.session() as session:
        session.add_all(
            Order(user_id, f"{user_id}-{i:02}", status="paid" if i % 3 == 0 else "open", total=i)
            for i in range(count)
        )


async def walk(http: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list endpoint, following `next` as a client would."""
    pages = [(await http.get(path, params=params)).json()]
    while pages[-1]["next"] is not None:
        pages.append((await http.get(path, params={**params, "after": pages[-1]["next"]})).json())
        assert len(pages) < 50
    return pages


class TestOrderPages:
    """`GET /users/{id}/orders` answers a page at a time; a bad cursor is the client's 400."""

    @pytest_asyncio.fixture
    async def orders_app(self, uow_database: LocalDatabase) -> AsyncIterator[FastAPI]:
        """The app on a store that signs its cursors, with seven orders of u1 and two of u2."""
        application = create_app(lambda: uow_database.store(cursor_key=CURSOR_KEY))
        async with application.router.lifespan_context(application):
            await seed_orders(application.state.store, "u1", 7)
            await seed_orders(application.state.store, "u2", 2)
            yield application

    @pytest_asyncio.fixture
    async def http(self, orders_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        """A client of that app; app errors become 500 responses."""
        transport = httpx.ASGITransport(app=orders_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http

    async def test_pages_newest_first(self, http: httpx.AsyncClient) -> None:
        """Pages of `limit` orders, newest first, until `next` is null; nothing skipped or repeated."""
        pages = await walk(http, "/users/u1/orders", limit=3)
        assert [[o["order_id"] for o in page["items"]] for page in pages] == [
            ["u1-06", "u1-05", "u1-04"],
            ["u1-03", "u1-02", "u1-01"],
            ["u1-00"],
        ]
        assert pages[0]["items"][0] == {
            "user_id": "u1",
            "order_id": "u1-06",
            "item": "",
            "status": "paid",
            "total": 6,
        }

    async def test_a_filter_keeps_pages_full(self, http: httpx.AsyncClient) -> None:
        """`?status=open` still gives `limit` orders per page."""
        pages = await walk(http, "/users/u1/orders", limit=2, status="open")
        assert [[o["order_id"] for o in page["items"]] for page in pages] == [
            ["u1-05", "u1-04"],
            ["u1-02", "u1-01"],
        ]

    @pytest.mark.parametrize(
        "spoil",
        [
            pytest.param(lambda c: c[:-2], id="truncated"),
            pytest.param(lambda c: c[:5] + ("x" if c[5] != "x" else "y") + c[6:], id="changed"),
            pytest.param(lambda c: "garbage", id="garbage"),
            pytest.param(lambda c: "", id="empty"),
        ],
    )
    async def test_a_spoiled_cursor_is_400(
        self, orders_app: FastAPI, http: httpx.AsyncClient, spoil: Any
    ) -> None:
        """A cursor the client damaged answers 400, not 500, and reads nothing."""
        cursor = (await http.get("/users/u1/orders?limit=2")).json()["next"]
        calls = Calls()
        calls.attach(orders_app.state.store)
        response = await http.get("/users/u1/orders", params={"limit": 2, "after": spoil(cursor)})
        assert response.status_code == 400
        assert response.json() == {"detail": "invalid `after` cursor: list again without it"}
        assert calls.log == []

    async def test_another_users_cursor_is_400(self, http: httpx.AsyncClient) -> None:
        """A cursor of u2's listing does not open u1's (nor does the reverse)."""
        cursor = (await http.get("/users/u1/orders?limit=1")).json()["next"]
        response = await http.get("/users/u2/orders", params={"after": cursor})
        assert response.status_code == 400

    async def test_a_limit_out_of_range_is_422(self, http: httpx.AsyncClient) -> None:
        """FastAPI checks `1 <= limit <= 100` before the handler runs."""
        assert (await http.get("/users/u1/orders?limit=0")).status_code == 422
        assert (await http.get("/users/u1/orders?limit=101")).status_code == 422

    async def test_the_default_store_signs_with_cursor_key(
        self, uow_database: LocalDatabase, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`create_app()` signs with `CURSOR_KEY`: an app with another key, or none, refuses its cursors."""
        if uow_database.table_prefix:
            pytest.skip("the default store has no table prefix; this database needs one")
        for name, value in uow_database.environ().items():
            monkeypatch.setenv(name, value)

        async def get(url: str, *, seed: bool = False) -> httpx.Response:
            """One request to a new app made by `create_app()` from the environment."""
            application = create_app()
            async with application.router.lifespan_context(application):
                if seed:
                    await seed_orders(application.state.store, "u1", 3)
                transport = httpx.ASGITransport(app=application)
                async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
                    return await http.get(url)

        monkeypatch.setenv("CURSOR_KEY", "one secret of at least 16 characters")
        cursor = (await get("/users/u1/orders?limit=1", seed=True)).json()["next"]
        after = f"/users/u1/orders?limit=1&after={cursor}"
        assert (await get(after)).json()["items"][0]["order_id"] == "u1-01"
        monkeypatch.setenv("CURSOR_KEY", "another secret, 16 characters or more")
        assert (await get(after)).status_code == 400
        monkeypatch.delenv("CURSOR_KEY")
        assert (await get(after)).status_code == 400
