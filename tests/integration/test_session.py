"""`Session` against a real (moto) server: one class per call of DESIGN.md §4."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

import uow
from tests.integration.support import (
    SEED,
    Calls,
    raw_count,
    raw_delete,
    raw_get,
    raw_put,
    raw_update,
    seed,
)
from tests.models import Everything, Order

pytestmark = pytest.mark.asyncio

E1 = uow.Key("everything", "e1")


class TestAdd:
    """`add` and `add_all`: new records, create-only unless `overwrite=True`."""

    async def test_add_writes_the_item_at_commit(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """An added record reaches DynamoDB at commit; later changes to it are updates."""
        obj = Everything(id="e1", text="hi", count=3)
        uow_session.add(obj)
        assert await raw_get(store, Everything, id="e1") is None

        result = await uow_session.commit()

        assert result.created == 1
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hi"
        assert stored["count"] == 3
        assert not uow_session.is_dirty(obj)
        assert uow_session.identity_map[E1] is obj
        obj.count = 4
        assert (await uow_session.commit()).requests == {"UpdateItem": 1}

    async def test_add_all_writes_every_record(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """`add_all` adds each record; each create is a conditional PutItem."""
        orders = [
            Order(customer_id="c1", order_id=f"o{i}", created_at="2024-05-01") for i in range(3)
        ]
        uow_session.add_all(orders)

        result = await uow_session.commit()

        assert result.created == 3
        assert result.requests == {"PutItem": 3}
        assert await raw_count(store, Order) == 3
        for params in calls.params("PutItem"):
            assert "attribute_not_exists" in params["ConditionExpression"]

    async def test_add_of_an_existing_key_fails_with_duplicate_key_error(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`add` is create-only: an existing item is reported as `DuplicateKeyError` at commit."""
        await seed(store, text="stored")
        obj = Everything(id="e1", text="new")
        uow_session.add(obj)

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()

        ((change, cause),) = info.value.failed
        assert isinstance(cause, uow.DuplicateKeyError)
        assert change.kind is uow.ChangeKind.CREATE
        assert change.key == E1
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "stored"
        assert uow_session.is_dirty(obj)

    async def test_add_with_overwrite_replaces_the_stored_item(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`add(overwrite=True)` is an unconditional put that replaces the whole item."""
        await seed(store, text="stored", count=5)
        uow_session.add(Everything(id="e1", text="new"), overwrite=True)

        result = await uow_session.commit()

        assert result.put == 1
        assert result.requests == {"BatchWriteItem": 1}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "new"
        assert stored["count"] == 0
        assert "maybe" not in stored

    async def test_add_refuses_objects_it_cannot_hold(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A second object for a held key raises `UsageError`; a non-model raises `NotMapped`."""
        await seed(store)
        await uow_session.get(Everything, "e1")

        with pytest.raises(uow.UsageError):
            uow_session.add(Everything(id="e1"))
        with pytest.raises(uow.UsageError):
            uow_session.add_all([Everything(id="a"), Everything(id="b"), Everything(id="a")])
        with pytest.raises(uow.NotMapped):
            uow_session.add(object())

        assert uow_session.pending == ()
        assert list(uow_session.identity_map) == [E1]


class TestDelete:
    """`delete` and `delete_key`: the remove group."""

    async def test_delete_removes_a_loaded_record(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A deleted loaded record is gone from the map at once and from DynamoDB at commit."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None

        uow_session.delete(obj)

        assert E1 not in uow_session.identity_map
        assert await raw_get(store, Everything, id="e1") is not None
        result = await uow_session.commit()
        assert result.deleted == 1
        assert result.requests == {"BatchWriteItem": 1}
        assert await raw_get(store, Everything, id="e1") is None

    async def test_delete_key_removes_without_loading(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """`delete_key` (composite key here) and `delete` of an unmapped object send no read."""
        await raw_put(store, Order, customer_id="c1", order_id="o1", status="open")
        await seed(store)
        calls.clear()

        uow_session.delete_key(Order, "c1", "o1")
        uow_session.delete(Everything(id="e1"))
        result = await uow_session.commit()

        assert calls.apis == {"BatchWriteItem": 1}
        assert result.deleted == 2
        assert await raw_get(store, Order, customer_id="c1", order_id="o1") is None
        assert await raw_get(store, Everything, id="e1") is None

    async def test_delete_of_an_uncommitted_add_forgets_it(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Deleting a record added in this session cancels the add: nothing is sent."""
        obj = Everything(id="e1")
        uow_session.add(obj)

        uow_session.delete(obj)

        assert uow_session.pending == ()
        result = await uow_session.commit()
        assert result.requests == {}
        assert await raw_get(store, Everything, id="e1") is None


class TestUpdate:
    """`update`: blind field-level updates by document path."""

    async def test_update_sets_a_nested_map_path(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """`doc.address.city` changes that one value, leaves its siblings alone, loads nothing."""
        await seed(store)
        calls.clear()

        uow_session.update(Everything, "e1", set={"doc.address.city": "Paris"})
        result = await uow_session.commit()

        assert calls.apis == {"UpdateItem": 1}
        assert result.updated == 1
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"] == {"address": {"city": "Paris", "zip": "69001"}, "lang": "fr"}
        assert stored["text"] == "hello"
        assert E1 not in uow_session.identity_map

    async def test_update_sets_a_list_element(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`words[2]` replaces one list element."""
        await seed(store)

        uow_session.update(Everything, "e1", set={"words[2]": "C"})
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["words"] == ["a", "b", "C", "d"]

    async def test_update_removes_paths(self, store: uow.Store, uow_session: uow.Session) -> None:
        """`remove=` (or setting `None`) removes map entries, list elements and whole fields."""
        await seed(store)

        uow_session.update(Everything, "e1", set={"maybe": None}, remove=["doc.lang", "words[0]"])
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"] == {"address": {"city": "Lyon", "zip": "69001"}}
        assert stored["words"] == ["b", "c", "d"]
        assert "maybe" not in stored

    async def test_update_adds_to_counters_and_sets_without_losing_other_writes(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`add=` uses DynamoDB's ADD, so a concurrent increment by another writer is kept."""
        await seed(store)
        uow_session.update(Everything, "e1", add={"count": 5, "names": {"y"}})
        await raw_update(
            store, Everything, {"id": "e1"}, "ADD #c :v", values={":v": 100}, names={"#c": "count"}
        )

        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["count"] == 1 + 100 + 5
        assert stored["names"] == {"x", "y"}

    async def test_update_is_applied_to_the_cached_object(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A loaded record's object changes at once, and the change is written at commit."""
        await seed(store)
        calls.clear()
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None

        uow_session.update(
            Everything,
            "e1",
            set={"doc.address.city": "Paris", "words[1]": "B"},
            remove=["maybe"],
            add={"count": 5, "names": {"y"}},
        )

        assert obj.doc["address"]["city"] == "Paris"
        assert obj.words == ["a", "B", "c", "d"]
        assert obj.maybe is None
        assert obj.count == 6
        assert obj.names == {"x", "y"}
        assert uow_session.is_dirty(obj)
        await uow_session.commit()
        assert calls.apis == {"GetItem": 1, "TransactWriteItems": 1}  # the ADD: exactly once
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"]["address"]["city"] == "Paris"
        assert stored["words"] == ["a", "B", "c", "d"]
        assert "maybe" not in stored
        assert stored["count"] == 6
        assert stored["names"] == {"x", "y"}
        assert not uow_session.is_dirty(obj)

    async def test_update_add_on_a_loaded_object_shows_the_read_value_plus_the_additions(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After commit an ADDed field shows the value read plus this session's additions; DynamoDB holds every writer's, and refresh() shows them."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        await raw_update(
            store,
            Everything,
            {"id": "e1"},
            "ADD #c :v, #n :w",
            values={":v": 10, ":w": {"w"}},
            names={"#c": "count", "#n": "names"},
        )

        uow_session.update(Everything, "e1", add={"count": 5, "names": {"y"}})
        assert (obj.count, obj.names) == (6, {"x", "y"})
        await uow_session.commit()

        # A transaction returns no values: the object keeps what this session knows.
        assert (obj.count, obj.names) == (6, {"x", "y"})
        assert not uow_session.is_dirty(obj)
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert (stored["count"], stored["names"]) == (16, {"x", "y", "w"})
        await uow_session.refresh(obj)
        assert (obj.count, obj.names) == (16, {"x", "y", "w"})

    async def test_blind_update_is_conditioned_on_the_item_existing(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A blind update of a missing item fails with `ConflictError` and creates nothing."""
        uow_session.update(Everything, "ghost", set={"text": "boo"})

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()

        ((change, cause),) = info.value.failed
        assert type(cause) is uow.ConflictError
        assert change.kind is uow.ChangeKind.UPDATE
        assert await raw_get(store, Everything, id="ghost") is None

    async def test_update_of_a_pending_delete_raises_usage_error(
        self, uow_session: uow.Session
    ) -> None:
        """A record pending deletion cannot be updated."""
        uow_session.delete_key(Everything, "e1")

        with pytest.raises(uow.UsageError):
            uow_session.update(Everything, "e1", set={"text": "x"})

    async def test_update_rejects_bad_operations(self, uow_session: uow.Session) -> None:
        """Malformed or ill-typed operations raise `ValidationError` and queue nothing."""
        bad: dict[str, dict[str, Any]] = {
            "key field": {"set": {"id": "other"}},
            "unknown field": {"set": {"nope": 1}},
            "malformed path": {"set": {"doc..city": 1}},
            "wrong type": {"set": {"count": "many"}},
            "nested ADD": {"add": {"doc.n": 1}},
            "ADD to a string": {"add": {"text": 1}},
        }
        refused = []
        for case, arguments in bad.items():
            try:
                uow_session.update(Everything, "e1", **arguments)
            except uow.ValidationError:
                refused.append(case)

        assert refused == list(bad)
        assert uow_session.pending == ()

    async def test_update_of_a_path_missing_from_the_cached_object_raises(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """On a loaded record, a path the object does not have raises `ValidationError`."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None

        with pytest.raises(uow.ValidationError):
            uow_session.update(Everything, "e1", set={"text": "x", "address.city": "Paris"})

        assert obj.text == "hello"
        assert not uow_session.is_dirty(obj)


class TestGet:
    """`get`: the identity map first, else one strongly consistent `GetItem`."""

    async def test_get_reads_with_a_consistent_get_item(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A first read sends one `GetItem` with `ConsistentRead` and decodes the item."""
        await seed(store)
        calls.clear()

        obj = await uow_session.get(Everything, "e1")

        assert obj is not None
        assert obj.text == SEED["text"]
        assert obj.words == SEED["words"]
        assert obj.doc == SEED["doc"]
        (params,) = calls.params("GetItem")
        assert params["ConsistentRead"] is True
        assert calls.apis == {"GetItem": 1}

    async def test_get_returns_the_mapped_object_without_a_request(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A second read comes from the map: no request, even if the item vanished meanwhile."""
        await seed(store)
        first = await uow_session.get(Everything, "e1")
        await raw_delete(store, Everything, id="e1")
        calls.clear()

        second = await uow_session.get(Everything, "e1")

        assert second is first
        assert calls.log == []

    async def test_get_with_a_composite_key(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Records with a sort key are read by `(Model, pk, sk)` and mapped under that key."""
        await raw_put(store, Order, customer_id="c1", order_id="o1", status="paid")

        order = await uow_session.get(Order, "c1", "o1")

        assert order is not None
        assert order.status == "paid"
        assert uow_session.identity_map[uow.Key("orders", "c1", "o1")] is order

    async def test_get_of_a_missing_or_deleted_record_is_none(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A missing item reads as `None`; so does a pending delete, without a request."""
        await seed(store)
        await seed(store, "e2")
        assert await uow_session.get(Everything, "missing") is None
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        uow_session.delete(obj)
        uow_session.delete_key(Everything, "e2")
        calls.clear()

        assert await uow_session.get(Everything, "e1") is None
        assert await uow_session.get(Everything, "e2") is None
        assert calls.log == []

    async def test_get_of_an_added_object_returns_it_without_a_request(
        self, uow_session: uow.Session, calls: Calls
    ) -> None:
        """An object added in this session is the one `get` returns, before any commit."""
        obj = Everything(id="e1")
        uow_session.add(obj)

        assert await uow_session.get(Everything, "e1") is obj
        assert calls.log == []

    async def test_get_after_a_blind_update_shows_the_pending_change(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Reading a key with a pending blind update returns the stored item plus that update."""
        await seed(store)
        uow_session.update(Everything, "e1", set={"doc.address.city": "Paris"}, add={"count": 2})

        obj = await uow_session.get(Everything, "e1")

        assert obj is not None
        assert obj.doc["address"]["city"] == "Paris"
        assert obj.count == 3
        assert obj.text == "hello"
        assert uow_session.is_dirty(obj)
        await uow_session.commit()
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"]["address"]["city"] == "Paris"
        assert stored["count"] == 3


class TestRefresh:
    """`refresh`: re-read from DynamoDB, dropping the record's pending changes."""

    async def test_refresh_rereads_in_place_and_drops_pending_changes(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """The same object gets DynamoDB's values; its local changes are gone."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "local"
        uow_session.update(Everything, "e1", add={"count": 1})
        await seed(store, text="remote", count=42)
        calls.clear()

        assert await uow_session.refresh(obj) is obj

        assert calls.apis == {"GetItem": 1}
        assert obj.text == "remote"
        assert obj.count == 42
        assert not uow_session.is_dirty(obj)
        assert uow_session.identity_map[E1] is obj
        result = await uow_session.commit()
        assert result.requests == {}

    async def test_refresh_of_a_vanished_item_raises_not_found(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`NotFoundError` when the item is gone; the record is expunged."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "local"
        await raw_delete(store, Everything, id="e1")

        with pytest.raises(uow.NotFoundError):
            await uow_session.refresh(obj)

        assert E1 not in uow_session.identity_map
        assert uow_session.pending == ()

    async def test_refresh_of_an_object_not_in_the_session_raises_usage_error(
        self, uow_session: uow.Session
    ) -> None:
        """Only objects the session holds can be refreshed."""
        with pytest.raises(uow.UsageError):
            await uow_session.refresh(Everything(id="e1"))


class TestExpunge:
    """`expunge`: forget a record and its pending changes."""

    async def test_expunge_forgets_the_record_and_its_changes(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After `expunge` (of a loaded or an added object), commit sends nothing; reads re-read."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "local"
        added = Everything(id="e2")
        uow_session.add(added)

        uow_session.expunge(obj)
        uow_session.expunge(added)

        assert len(uow_session.identity_map) == 0
        assert uow_session.pending == ()
        assert (await uow_session.commit()).requests == {}
        assert await raw_get(store, Everything, id="e2") is None
        again = await uow_session.get(Everything, "e1")
        assert again is not obj
        assert again is not None
        assert again.text == "hello"

    async def test_expunge_of_an_object_not_in_the_session_raises_usage_error(
        self, uow_session: uow.Session
    ) -> None:
        """Only objects the session holds can be expunged."""
        with pytest.raises(uow.UsageError):
            uow_session.expunge(Everything(id="e1"))


class TestRollback:
    """`rollback`: drop every pending change, restore objects in place."""

    async def test_rollback_restores_mutated_objects_in_place(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Objects changed by mutation (nested too) or by `update()` get committed values back."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        obj.doc["address"]["city"] = "Paris"
        obj.names.add("z")
        obj.words.append("e")
        uow_session.update(Everything, "e1", set={"doc.lang": "en"}, add={"count": 5})

        uow_session.rollback()

        assert uow_session.identity_map[E1] is obj
        assert obj.count == 1
        assert obj.text == "hello"
        assert obj.doc == SEED["doc"]
        assert obj.names == {"x"}
        assert obj.words == SEED["words"]
        assert not uow_session.is_dirty(obj)
        assert (await uow_session.commit()).requests == {}

    async def test_rollback_expunges_added_objects_and_drops_blind_updates(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Added objects leave the map and blind updates are dropped: nothing is sent."""
        await seed(store)
        uow_session.add(Everything(id="e2"))
        uow_session.update(Everything, "e1", set={"text": "blind"})

        uow_session.rollback()

        assert len(uow_session.identity_map) == 0
        assert uow_session.pending == ()
        assert (await uow_session.commit()).requests == {}
        assert await raw_get(store, Everything, id="e2") is None

    async def test_rollback_brings_deleted_objects_back(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A pending delete is undone: the same object reads from the map again."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        uow_session.delete(obj)

        uow_session.rollback()
        calls.clear()

        assert await uow_session.get(Everything, "e1") is obj
        assert calls.log == []
        assert obj.text == "hello"

    async def test_rollback_of_a_replacement_brings_the_original_object_back(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """After delete then add of one key, rollback restores the originally loaded object."""
        await seed(store)
        original = await uow_session.get(Everything, "e1")
        assert original is not None
        uow_session.delete(original)
        replacement = Everything(id="e1", text="replacement")
        uow_session.add(replacement)
        assert await uow_session.get(Everything, "e1") is replacement

        uow_session.rollback()

        assert await uow_session.get(Everything, "e1") is original
        assert original.text == "hello"
        assert uow_session.pending == ()


class TestClear:
    """`clear`: empty the map and the log."""

    async def test_clear_empties_the_map_and_the_log(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Every record and every pending change is forgotten; commit sends nothing."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        uow_session.add(Everything(id="e2"))
        uow_session.delete_key(Everything, "e3")
        uow_session.update(Everything, "e4", set={"text": "x"})

        uow_session.clear()

        assert len(uow_session.identity_map) == 0
        assert uow_session.pending == ()
        assert (await uow_session.commit()).requests == {}
        again = await uow_session.get(Everything, "e1")
        assert again is not obj
        assert again is not None
        assert again.text == "hello"


class TestClearCache:
    """`clear_cache`: evict clean records, keep those with pending changes."""

    async def test_clear_cache_evicts_clean_records(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A clean record is evicted: the next read goes to DynamoDB and builds a new object."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")

        uow_session.clear_cache()
        calls.clear()

        assert len(uow_session.identity_map) == 0
        again = await uow_session.get(Everything, "e1")
        assert again is not obj
        assert calls.apis == {"GetItem": 1}

    async def test_clear_cache_keeps_records_with_pending_changes(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Dirty, added, deleted and blind-updated records stay, with their changes."""
        await seed(store, "dirty")
        await seed(store, "clean")
        dirty = await uow_session.get(Everything, "dirty")
        assert dirty is not None
        await uow_session.get(Everything, "clean")
        dirty.text = "changed"
        added = Everything(id="added")
        uow_session.add(added)
        uow_session.delete_key(Everything, "deleted")
        uow_session.update(Everything, "blind", set={"text": "x"})

        uow_session.clear_cache()
        calls.clear()

        assert set(uow_session.identity_map) == {
            uow.Key("everything", "dirty"),
            uow.Key("everything", "added"),
        }
        assert {(c.kind, c.key.pk) for c in uow_session.pending} == {
            (uow.ChangeKind.UPDATE, "dirty"),
            (uow.ChangeKind.CREATE, "added"),
            (uow.ChangeKind.DELETE, "deleted"),
            (uow.ChangeKind.UPDATE, "blind"),
        }
        assert await uow_session.get(Everything, "dirty") is dirty
        assert await uow_session.get(Everything, "added") is added
        assert calls.log == []


class TestClearRecord:
    """`clear_record`: evict one record together with its pending changes."""

    async def test_clear_record_by_object(self, store: uow.Store, uow_session: uow.Session) -> None:
        """The record and its change are dropped; other records are untouched."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        other = await uow_session.get(Everything, "e2")
        assert obj is not None
        assert other is not None
        obj.text = "changed"
        other.text = "other"

        uow_session.clear_record(obj)

        assert E1 not in uow_session.identity_map
        assert [c.key.pk for c in uow_session.pending] == ["e2"]

    async def test_clear_record_by_key(self, store: uow.Store, uow_session: uow.Session) -> None:
        """`(Model, pk, sk)` evicts the record with that composite key."""
        await raw_put(store, Order, customer_id="c1", order_id="o1", status="open")
        order = await uow_session.get(Order, "c1", "o1")
        assert order is not None
        order.status = "paid"

        uow_session.clear_record(Order, "c1", "o1")

        assert uow_session.pending == ()
        assert len(uow_session.identity_map) == 0
        assert (await uow_session.commit()).requests == {}
        stored = await raw_get(store, Order, customer_id="c1", order_id="o1")
        assert stored is not None
        assert stored["status"] == "open"

    async def test_clear_record_by_key_drops_a_blind_update(self, uow_session: uow.Session) -> None:
        """A blind update, which has no object, is evicted by key; an unmapped key is ignored."""
        uow_session.update(Everything, "e1", set={"text": "x"})
        uow_session.add(Everything(id="e2"))

        uow_session.clear_record(Everything, "e1")
        uow_session.clear_record(Everything, "e3")

        assert [c.key.pk for c in uow_session.pending] == ["e2"]


class TestClearPending:
    """`clear_pending`: the same as `rollback`."""

    async def test_clear_pending_restores_and_expunges_like_rollback(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Mutated objects are restored, added ones expunged, deleted ones back in the map."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        gone = await uow_session.get(Everything, "e2")
        assert obj is not None
        assert gone is not None
        obj.doc["lang"] = "en"
        uow_session.delete(gone)
        uow_session.add(Everything(id="e3"))

        uow_session.clear_pending()

        assert uow_session.pending == ()
        assert obj.doc == SEED["doc"]
        assert await uow_session.get(Everything, "e2") is gone
        assert uow.Key("everything", "e3") not in uow_session.identity_map


class TestClearPendingUpdates:
    """`clear_pending_updates`: drop the update group only."""

    async def test_clear_pending_updates_keeps_the_deletes(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Updates, adds and blind updates are dropped and objects restored; deletes stay."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        uow_session.update(Everything, "e1", add={"count": 1})
        uow_session.delete_key(Everything, "e2")
        uow_session.add(Everything(id="e3"))
        uow_session.update(Everything, "e4", set={"text": "x"})

        uow_session.clear_pending_updates()

        assert obj.text == "hello"
        assert obj.count == 1
        assert not uow_session.is_dirty(obj)
        assert uow_session.identity_map[E1] is obj
        assert uow.Key("everything", "e3") not in uow_session.identity_map
        assert [(c.kind, c.key.pk) for c in uow_session.pending] == [(uow.ChangeKind.DELETE, "e2")]
        result = await uow_session.commit()
        assert result.requests == {"BatchWriteItem": 1}
        assert result.deleted == 1
        assert await raw_get(store, Everything, id="e2") is None
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hello"


class TestClearPendingRemoves:
    """`clear_pending_removes`: drop the remove group only."""

    async def test_clear_pending_removes_keeps_the_updates(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Deletes are undone (objects back in the map); updates stay pending."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        gone = await uow_session.get(Everything, "e2")
        assert obj is not None
        assert gone is not None
        obj.text = "changed"
        gone.text = "changed before delete"
        uow_session.delete(gone)
        uow_session.delete_key(Everything, "e3")

        uow_session.clear_pending_removes()
        calls.clear()

        assert await uow_session.get(Everything, "e2") is gone
        assert calls.log == []
        assert gone.text == "hello"
        assert not uow_session.is_dirty(gone)
        assert obj.text == "changed"
        assert [(c.kind, c.key.pk) for c in uow_session.pending] == [(uow.ChangeKind.UPDATE, "e1")]
        result = await uow_session.commit()
        assert result.requests == {"UpdateItem": 1}
        assert await raw_get(store, Everything, id="e2") is not None


class TestIsDirty:
    """`is_dirty`: whether an object has a pending change."""

    async def test_is_dirty_follows_changes_and_commits(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Clean when loaded, dirty when changed, clean again when changed back or committed."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        assert not uow_session.is_dirty(obj)

        obj.doc["address"]["city"] = "Paris"
        assert uow_session.is_dirty(obj)
        obj.doc["address"]["city"] = "Lyon"
        assert not uow_session.is_dirty(obj)

        uow_session.update(Everything, "e1", add={"count": 1})
        assert uow_session.is_dirty(obj)
        await uow_session.commit()
        assert not uow_session.is_dirty(obj)

    async def test_an_added_object_is_dirty_until_committed(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A new record is dirty, clean once committed; an unknown object raises `UsageError`."""
        obj = Everything(id="e1")
        with pytest.raises(uow.UsageError):
            uow_session.is_dirty(obj)
        uow_session.add(obj)
        assert uow_session.is_dirty(obj)

        await uow_session.commit()

        assert not uow_session.is_dirty(obj)


class TestPending:
    """`pending`: the net pending change of every record, in log order."""

    async def test_pending_lists_changes_in_the_order_they_were_made(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Records loaded earlier but changed later come later in the log."""
        for pk in ("a", "b", "c"):
            await seed(store, pk)
        for pk in ("a", "b", "c"):
            await uow_session.get(Everything, pk)

        uow_session.delete_key(Everything, "c")
        uow_session.update(Everything, "a", set={"text": "x"})
        uow_session.add(Everything(id="d"))
        uow_session.update(Everything, "b", set={"text": "y"})

        assert [(c.kind, c.key.pk) for c in uow_session.pending] == [
            (uow.ChangeKind.DELETE, "c"),
            (uow.ChangeKind.UPDATE, "a"),
            (uow.ChangeKind.CREATE, "d"),
            (uow.ChangeKind.UPDATE, "b"),
        ]

    async def test_pending_of_unloaded_keys_follows_call_order(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Adds, deletes and blind updates are listed in call order, and leave at commit."""
        await seed(store, "z")
        uow_session.update(Everything, "z", set={"text": "x"})
        uow_session.add(Everything(id="y"))
        uow_session.delete_key(Everything, "x")

        assert [(c.kind, c.key.pk) for c in uow_session.pending] == [
            (uow.ChangeKind.UPDATE, "z"),
            (uow.ChangeKind.CREATE, "y"),
            (uow.ChangeKind.DELETE, "x"),
        ]
        await uow_session.commit()
        assert uow_session.pending == ()

    async def test_pending_describes_each_change(self, uow_session: uow.Session) -> None:
        """Each `Change` names its model, key and operations by document path."""
        uow_session.update(
            Everything, "e1", set={"doc.address.city": "Paris"}, remove=["maybe"], add={"count": 2}
        )

        (change,) = uow_session.pending

        assert change.model is Everything
        assert change.key == E1
        assert change.kind is uow.ChangeKind.UPDATE
        assert dict(change.set) == {"doc.address.city": "Paris"}
        assert change.remove == ("maybe",)
        assert dict(change.add) == {"count": 2}


class TestIdentityMap:
    """`identity_map`: a read-only view key → object."""

    async def test_identity_map_holds_one_object_per_key(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Loaded and added objects are listed by `Key`; deletes and blind updates are not."""
        await seed(store)
        await seed(store, "e2")
        loaded = await uow_session.get(Everything, "e1")
        gone = await uow_session.get(Everything, "e2")
        assert gone is not None
        added = Everything(id="e3")
        uow_session.add(added)
        uow_session.delete(gone)
        uow_session.update(Everything, "e4", set={"text": "x"})

        view = uow_session.identity_map

        assert dict(view) == {E1: loaded, uow.Key("everything", "e3"): added}
        assert len(view) == 2
        assert uow.Key("everything", "e2") not in view
        with pytest.raises(KeyError):
            view[uow.Key("everything", "e4")]

    async def test_identity_map_is_a_live_read_only_view(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """The view offers no way to change the map, and reflects later changes to the session."""
        view = uow_session.identity_map
        assert not isinstance(view, MutableMapping)
        assert len(view) == 0

        uow_session.add(Everything(id="e1"))

        assert E1 in view


class TestSessionContext:
    """`async with store.session()`: commit on a clean exit, rollback on an exception."""

    async def test_clean_exit_commits_and_closes(self, store: uow.Store) -> None:
        """Leaving the block normally writes the pending changes, then closes the session."""
        async with store.session() as session:
            session.add(Everything(id="e1", text="committed"))

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "committed"
        assert session.state is uow.SessionState.CLOSED

    async def test_exception_rolls_back_and_propagates(self, store: uow.Store) -> None:
        """An exception in the block rolls back (objects restored), closes, and propagates."""
        await seed(store)
        session = store.session()
        loaded: list[Everything] = []

        async def work() -> None:
            async with session:
                obj = await session.get(Everything, "e1")
                assert obj is not None
                loaded.append(obj)
                obj.text = "changed"
                session.add(Everything(id="e2"))
                raise LookupError("boom")

        with pytest.raises(LookupError, match="boom"):
            await work()

        (obj,) = loaded
        assert obj.text == "hello"
        assert session.state is uow.SessionState.CLOSED
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hello"
        assert await raw_get(store, Everything, id="e2") is None

    async def test_a_failing_commit_on_exit_raises_commit_error(self, store: uow.Store) -> None:
        """A clean exit whose commit fails raises `CommitError`; nothing is lost silently."""
        await seed(store)

        with pytest.raises(uow.CommitError):
            async with store.session() as session:
                session.add(Everything(id="e1", text="duplicate"))

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hello"


def _every_sync_call() -> dict[str, Callable[[uow.Session], object]]:
    obj = Everything(id="e1")
    return {
        "add()": lambda s: s.add(obj),
        "add_all()": lambda s: s.add_all([obj]),
        "delete()": lambda s: s.delete(obj),
        "delete_key()": lambda s: s.delete_key(Everything, "e1"),
        "update()": lambda s: s.update(Everything, "e1", set={"text": "x"}),
        "expunge()": lambda s: s.expunge(obj),
        "rollback()": lambda s: s.rollback(),
        "clear()": lambda s: s.clear(),
        "clear_cache()": lambda s: s.clear_cache(),
        "clear_record()": lambda s: s.clear_record(Everything, "e1"),
        "clear_pending()": lambda s: s.clear_pending(),
        "clear_pending_updates()": lambda s: s.clear_pending_updates(),
        "clear_pending_removes()": lambda s: s.clear_pending_removes(),
        "is_dirty()": lambda s: s.is_dirty(obj),
        "pending": lambda s: s.pending,
    }


class TestUsageErrors:
    """A session refuses calls after close, on re-entry, and from a second task."""

    async def test_sync_calls_after_close_raise(self, uow_session: uow.Session) -> None:
        """Every call on a closed session raises `UsageError` naming the call and the state."""
        uow_session.close()

        messages = {}
        for name, call in _every_sync_call().items():
            with pytest.raises(uow.UsageError) as info:
                call(uow_session)
            messages[name] = str(info.value)

        misnamed = {name: m for name, m in messages.items() if name not in m or "closed" not in m}
        assert misnamed == {}

    async def test_async_calls_after_close_raise(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`get`, `refresh` and `commit` on a closed session raise `UsageError`."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        uow_session.close()

        with pytest.raises(uow.UsageError, match="closed"):
            await uow_session.get(Everything, "e1")
        with pytest.raises(uow.UsageError, match="closed"):
            await uow_session.refresh(obj)
        with pytest.raises(uow.UsageError, match="closed"):
            await uow_session.commit()

    async def test_a_session_used_after_its_block_raises(self, store: uow.Store) -> None:
        """Leaving `async with` closes the session for good."""
        async with store.session() as session:
            pass

        with pytest.raises(uow.UsageError, match="closed"):
            session.add(Everything(id="e1"))
        with pytest.raises(uow.UsageError):
            async with session:
                pass

    async def test_re_entering_a_session_raises(self, store: uow.Store) -> None:
        """`async with` on a session already entered raises `UsageError`."""
        async with store.session() as session:
            session.add(Everything(id="e1"))
            with pytest.raises(uow.UsageError):
                async with session:
                    pass

        assert await raw_get(store, Everything, id="e1") is not None

    async def test_a_second_task_is_refused_while_the_first_awaits_commit(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """While one task awaits `commit`, calls from another task raise `UsageError`."""
        uow_session.add_all([Everything(id=f"e{i}") for i in range(5)])
        committing = asyncio.create_task(uow_session.commit())
        await asyncio.sleep(0)
        states = [uow_session.state]

        with pytest.raises(uow.UsageError) as info:
            uow_session.add(Everything(id="other"))
        assert "add()" in str(info.value)
        assert "busy" in str(info.value)
        assert "commit()" in str(info.value)
        with pytest.raises(uow.UsageError):
            await uow_session.get(Everything, "e1")
        with pytest.raises(uow.UsageError):
            await uow_session.commit()

        result = await committing
        states.append(uow_session.state)
        assert states == [uow.SessionState.BUSY, uow.SessionState.OPEN]
        assert result.created == 5
        assert await raw_count(store, Everything) == 5


class TestRemovedFieldsReadBack:
    """A removed field shows what a re-read of the item would show."""

    async def test_removing_a_field_without_none_shows_its_default(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """update(remove=[...]) of a str field leaves the default on the object, as a re-read gives."""
        await seed(store, "e1")
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        uow_session.update(Everything, "e1", remove=["text"], set={"count": None})
        assert obj.text == ""
        assert obj.count == 0
        await uow_session.commit()
        uow_session.clear()
        again = await uow_session.get(Everything, "e1")
        assert again is not None
        assert (again.text, again.count) == ("", 0)
