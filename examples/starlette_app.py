"""The same pattern in plain Starlette: one store per app, a session opened in the endpoint.

Starlette has no dependency injection, so each endpoint opens its session with
`async with store.session()`; the block (and its commit) ends before the
endpoint returns the response. Shares the models of `examples.webapp`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import uow
from examples.webapp import MODELS, User

__all__ = ["create_app"]


# --8<-- [start:endpoint]
async def rename(request: Request) -> JSONResponse:
    store: uow.Store = request.app.state.store
    async with store.session() as session:  # committed when the block ends
        user = await session.get(User, request.path_params["user_id"])
        if user is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        user.name = (await request.json())["name"]
    return JSONResponse({"version": user.version})  # after the commit


# --8<-- [end:endpoint]


def create_app(store_factory: Callable[[], uow.Store] = uow.Store) -> Starlette:
    """The app; `store_factory()` makes the (unopened) store the lifespan opens."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with store_factory() as store:
            await store.create_tables(*MODELS)
            app.state.store = store
            yield

    return Starlette(
        routes=[Route("/users/{user_id}", rename, methods=["PATCH"])], lifespan=lifespan
    )
