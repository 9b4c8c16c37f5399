"""Integration fixtures: a record of the requests the store's transport sends."""

from __future__ import annotations

import pytest

import uow
from tests.integration.support import Calls


@pytest.fixture
def calls(store: uow.Store) -> Calls:
    """Every data-plane request the store's transport sends from now on, in order."""
    recorder = Calls()
    recorder.attach(store)
    return recorder
