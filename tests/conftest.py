"""Project-wide fixtures. The uow pytest plugin (entry point) provides uow_endpoint, uow_store, uow_session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

import uow
from tests.models import ALL_MODELS


@pytest_asyncio.fixture
async def store(uow_store: uow.Store) -> AsyncIterator[uow.Store]:
    """`uow_store` with the test models' tables created."""
    await uow_store.create_tables(*ALL_MODELS)
    yield uow_store
