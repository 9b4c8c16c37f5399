"""The cache/pending-write discrepancies that write-caching DynamoDB wrappers warn about.

StructNoSQL's `CachingTable` documents two ways its cache and DynamoDB can
disagree: clearing pending operations after removing a field leaves the field
gone from the cache although DynamoDB still holds it, and clearing the cache
while a write is queued makes a re-read return the stored item without the
queued change, which is still written later. `uow` keeps "object = committed
snapshot + pending changes" instead; these tests pin that down.
"""

from __future__ import annotations

import pytest

import uow
from tests.integration.support import Calls, raw_get, seed
from tests.models import Everything

pytestmark = pytest.mark.asyncio


class TestClearPendingAfterRemove:
    """Removing a field, then dropping the pending changes."""

    async def test_a_field_removed_by_assignment_comes_back(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After `maybe = None` and `clear_pending()`, the object shows the field again."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.maybe = None

        uow_session.clear_pending()

        assert obj.maybe == "here"
        assert not uow_session.is_dirty(obj)
        assert await uow_session.get(Everything, "e1") is obj
        assert (await uow_session.commit()).requests == {}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["maybe"] == "here"

    async def test_a_field_removed_by_update_comes_back(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After `update(remove=...)` and `clear_pending()`, the object and DynamoDB agree."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        uow_session.update(Everything, "e1", remove=["maybe", "doc.address"])
        assert obj.maybe is None
        assert "address" not in obj.doc

        uow_session.clear_pending()

        assert obj.maybe == "here"
        assert obj.doc["address"] == {"city": "Lyon", "zip": "69001"}
        assert (await uow_session.commit()).requests == {}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["maybe"] == "here"
        assert stored["doc"]["address"] == {"city": "Lyon", "zip": "69001"}


class TestClearCacheWithQueuedWrite:
    """Evicting the cache while a write is queued, then reading the record again."""

    async def test_clear_cache_keeps_the_record_and_its_queued_change(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """The re-read returns the same object with its pending change, and commit writes it."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "queued"

        uow_session.clear_cache()
        calls.clear()
        again = await uow_session.get(Everything, "e1")

        assert again is obj
        assert obj.text == "queued"
        assert calls.log == []
        result = await uow_session.commit()
        assert result.updated == 1
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "queued"

    async def test_clear_record_drops_the_queued_change_with_the_record(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After `clear_record`, a re-read shows DynamoDB's state and commit writes nothing."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "queued"

        uow_session.clear_record(obj)
        again = await uow_session.get(Everything, "e1")

        assert again is not None
        assert again is not obj
        assert again.text == "hello"
        assert (await uow_session.commit()).requests == {}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hello"
