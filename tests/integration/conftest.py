"""Integration fixtures: a record of the requests the store's client sends."""

from __future__ import annotations

import pytest

import uow
from tests.integration.support import Calls


@pytest.fixture
def calls(store: uow.Store) -> Calls:
    """Every DynamoDB API call the store's client makes from now on, in order."""
    recorder = Calls()
    recorder.attach(store.client)
    return recorder
