"""`Session.commit()` against a real (moto) server: DESIGN.md §5 steps 1-3, 5 and 6."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

import uow
from tests.integration.support import (
    Calls,
    raw_count,
    raw_delete,
    raw_get,
    raw_put_many,
    seed,
    update_names,
)
from tests.models import Everything, Order, User
from uow.testing import LocalDatabase

pytestmark = pytest.mark.asyncio


def _kinds(session: uow.Session) -> list[tuple[uow.ChangeKind, Any]]:
    return [(change.kind, change.key.pk) for change in session.pending]


class TestValidation:
    """Step 1: everything is validated before the first request."""

    async def test_a_non_finite_float_in_one_of_many_records_sends_nothing(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """One NaN among twenty records raises `ValidationError`; no request reaches DynamoDB."""
        objs = [Everything(id=f"e{i:02}", ratio=0.5) for i in range(20)]
        objs[13].ratio = math.nan
        uow_session.add_all(objs)

        with pytest.raises(uow.ValidationError) as info:
            await uow_session.commit()

        assert "Everything" in str(info.value)
        assert "e13" in str(info.value)
        assert calls.log == []
        assert await raw_count(store, Everything) == 0
        assert len(uow_session.pending) == 20
        objs[13].ratio = 0.25
        result = await uow_session.commit()
        assert result.created == 20

    async def test_a_naive_datetime_on_a_loaded_record_sends_nothing(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A naive datetime blocks the whole commit, deletes and other updates included."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        obj.when = dt.datetime(2024, 5, 1, 12, 0)  # naive on purpose
        uow_session.delete_key(Everything, "e2")
        uow_session.add(Everything(id="e3"))
        calls.clear()

        with pytest.raises(uow.ValidationError, match="naive"):
            await uow_session.commit()

        assert calls.log == []
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "hello"
        assert await raw_get(store, Everything, id="e2") is not None
        assert await raw_get(store, Everything, id="e3") is None
        assert len(uow_session.pending) == 3

    async def test_an_empty_set_inside_a_map_is_refused(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """DynamoDB cannot store an empty set nested in a map: `ValidationError`, nothing sent."""
        uow_session.add(Everything(id="e1", doc={"tags": set()}))

        with pytest.raises(uow.ValidationError):
            await uow_session.commit()

        assert calls.log == []

    async def test_a_top_level_empty_set_is_stored_as_an_absent_attribute(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """An empty set field is written as no attribute and reads back as an empty set."""
        uow_session.add(Everything(id="e1", names=set()))
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert "names" not in stored
        async with store.session() as other:
            again = await other.get(Everything, "e1")
            assert again is not None
            assert again.names == set()

    async def test_an_item_over_400_kb_is_refused(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """An item over DynamoDB's 400 KB limit raises `ValidationError` before any request."""
        uow_session.add(Everything(id="small"))
        uow_session.add(Everything(id="big", text="x" * (400 * 1024)))

        with pytest.raises(uow.ValidationError, match="400 KB"):
            await uow_session.commit()

        assert calls.log == []

    async def test_an_empty_index_key_is_refused_before_sending(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """An empty string as a GSI key is an empty key: `ValidationError`, nothing sent."""
        uow_session.add(Order(customer_id="c1", order_id="o1", created_at=""))

        with pytest.raises(uow.ValidationError):
            await uow_session.commit()

        assert calls.log == []

    async def test_a_changed_key_field_is_refused(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Keys are immutable: changing one on a loaded object raises `ValidationError`."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.id = "e2"
        calls.clear()

        with pytest.raises(uow.ValidationError):
            await uow_session.commit()

        assert calls.log == []


class TestCoalescing:
    """Step 2: the log is coalesced per key, in order."""

    async def test_update_then_delete_is_a_delete(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A changed and then deleted record is only deleted."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "changed"
        uow_session.update(Everything, "e1", add={"count": 1})
        uow_session.delete(obj)
        uow_session.update(Everything, "e2", set={"text": "blind"})
        uow_session.delete_key(Everything, "e2")
        calls.clear()

        assert _kinds(uow_session) == [(uow.ChangeKind.DELETE, "e1"), (uow.ChangeKind.DELETE, "e2")]
        result = await uow_session.commit()

        assert calls.apis == {"BatchWriteItem": 1}
        assert (result.deleted, result.updated) == (2, 0)
        assert await raw_get(store, Everything, id="e1") is None

    async def test_delete_then_add_is_a_put(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Deleting a record and adding a new object for its key writes one replacing put."""
        await seed(store)
        await seed(store, "e2")
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        uow_session.delete(obj)
        uow_session.add(Everything(id="e1", text="replaced"))
        uow_session.delete_key(Everything, "e2")
        uow_session.add(Everything(id="e2", text="replaced too"))
        calls.clear()

        assert _kinds(uow_session) == [(uow.ChangeKind.PUT, "e1"), (uow.ChangeKind.PUT, "e2")]
        result = await uow_session.commit()

        assert result.put == 2
        assert calls.apis == {"BatchWriteItem": 1}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["text"] == "replaced"
        assert "maybe" not in stored
        replacement = await uow_session.get(Everything, "e1")
        assert replacement is not None
        assert replacement is not obj
        assert replacement.text == "replaced"
        assert uow_session.pending == ()

    async def test_set_then_remove_of_a_path_is_a_remove(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A SET followed by a REMOVE of the same path leaves only the REMOVE."""
        await seed(store)
        uow_session.update(Everything, "e1", set={"doc.lang": "en", "text": "kept"})
        uow_session.update(Everything, "e1", remove=["doc.lang"])

        (change,) = uow_session.pending
        assert dict(change.set) == {"text": "kept"}
        assert change.remove == ("doc.lang",)
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert "lang" not in stored["doc"]
        assert stored["text"] == "kept"

    async def test_remove_then_set_of_a_path_is_a_set(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A REMOVE followed by a SET of the same path leaves only the SET."""
        await seed(store)
        uow_session.update(Everything, "e1", remove=["maybe"])
        uow_session.update(Everything, "e1", set={"maybe": "back"})

        (change,) = uow_session.pending
        assert dict(change.set) == {"maybe": "back"}
        assert change.remove == ()
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["maybe"] == "back"

    async def test_a_path_inside_a_pending_set_is_folded_into_it(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """`doc` then `doc.b`: one SET of `doc` carrying both, never two overlapping paths."""
        await seed(store)
        uow_session.update(Everything, "e1", set={"doc": {"a": 1}})
        uow_session.update(Everything, "e1", set={"doc.b": 2})
        calls.clear()

        (change,) = uow_session.pending
        assert dict(change.set) == {"doc": {"a": 1, "b": 2}}
        await uow_session.commit()

        (params,) = calls.params("UpdateItem")
        assert update_names(params) == {"id", "doc"}
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"] == {"a": 1, "b": 2}

    async def test_a_set_of_a_parent_replaces_pending_child_paths(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`doc.lang` then `doc`: the later SET of the whole map wins."""
        await seed(store)
        uow_session.update(Everything, "e1", set={"doc.lang": "en"})
        uow_session.update(Everything, "e1", set={"doc": {"z": 1}})

        (change,) = uow_session.pending
        assert dict(change.set) == {"doc": {"z": 1}}
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"] == {"z": 1}

    async def test_a_set_below_a_removed_map_sets_a_new_map(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """`REMOVE doc` then `SET doc.x`: `doc` becomes a map holding only `x`."""
        await seed(store)
        uow_session.update(Everything, "e1", remove=["doc"])
        uow_session.update(Everything, "e1", set={"doc.x": "only"})
        await uow_session.commit()

        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["doc"] == {"x": "only"}

    async def test_repeated_adds_accumulate(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Several ADDs to one counter or set are sent as one ADD of the total."""
        await seed(store)
        uow_session.update(Everything, "e1", add={"count": 2, "names": {"y"}})
        uow_session.update(Everything, "e1", add={"count": 3, "names": {"z"}})
        calls.clear()

        (change,) = uow_session.pending
        assert dict(change.add) == {"count": 5, "names": {"y", "z"}}
        await uow_session.commit()

        assert calls.apis == {"TransactWriteItems": 1}  # an ADD goes with a token
        stored = await raw_get(store, Everything, id="e1")
        assert stored is not None
        assert stored["count"] == 6
        assert stored["names"] == {"x", "y", "z"}


class TestGroups:
    """Step 3: the update group and the remove group, batched and sent concurrently."""

    async def test_sixty_deletes_are_three_batch_writes(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Deletes go in `BatchWriteItem` requests of at most 25."""
        await raw_put_many(store, Everything, [{"id": f"e{i:02}"} for i in range(60)])
        calls.clear()
        for i in range(60):
            uow_session.delete_key(Everything, f"e{i:02}")

        result = await uow_session.commit()

        assert result.deleted == 60
        assert result.requests == {"BatchWriteItem": 3}
        sizes = sorted(
            len(writes)
            for p in calls.params("BatchWriteItem")
            for writes in p["RequestItems"].values()
        )
        assert sizes == [10, 25, 25]
        assert await raw_count(store, Everything) == 0

    async def test_puts_and_deletes_go_in_separate_batches(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Replacing puts (update group) and deletes (remove group) never share a batch."""
        await raw_put_many(store, Everything, [{"id": f"old{i}"} for i in range(10)])
        calls.clear()
        uow_session.add_all([Everything(id=f"new{i}") for i in range(10)], overwrite=True)
        for i in range(10):
            uow_session.delete_key(Everything, f"old{i}")

        result = await uow_session.commit()

        assert (result.put, result.deleted) == (10, 10)
        assert result.requests == {"BatchWriteItem": 2}
        kinds = [
            {next(iter(write)) for writes in p["RequestItems"].values() for write in writes}
            for p in calls.params("BatchWriteItem")
        ]
        assert sorted(map(sorted, kinds)) == [["DeleteRequest"], ["PutRequest"]]

    async def test_loaded_records_are_written_as_updates_of_the_changed_paths(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A changed loaded record is one `UpdateItem` naming only its changed paths."""
        for pk in ("a", "b", "c"):
            await seed(store, pk)
        a = await uow_session.get(Everything, "a")
        b = await uow_session.get(Everything, "b")
        await uow_session.get(Everything, "c")
        assert a is not None
        assert b is not None
        a.text = "changed"
        b.doc["address"]["city"] = "Paris"
        calls.clear()

        result = await uow_session.commit()

        assert result.updated == 2
        assert result.requests == {"UpdateItem": 2}
        names = sorted(update_names(p) for p in calls.params("UpdateItem"))
        assert sorted(names, key=len) == [{"id", "text"}, {"id", "doc", "address", "city"}]
        stored = await raw_get(store, Everything, id="b")
        assert stored is not None
        assert stored["doc"] == {"address": {"city": "Paris", "zip": "69001"}, "lang": "fr"}

    async def test_an_unchanged_session_sends_nothing(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Loaded records that were not changed produce no request."""
        await seed(store)
        await uow_session.get(Everything, "e1")

        result = await uow_session.commit()

        assert result.requests == {}
        assert result.written == 0

    async def test_every_kind_of_change_in_one_commit(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Creates, blind updates, loaded updates, puts and deletes go to their own APIs."""
        for pk in ("loaded", "blind", "gone", "replaced"):
            await seed(store, pk)
        loaded = await uow_session.get(Everything, "loaded")
        assert loaded is not None
        loaded.text = "changed"
        uow_session.update(Everything, "blind", add={"count": 1})
        uow_session.add_all([Everything(id="new1"), Everything(id="new2")])
        uow_session.add(Everything(id="replaced", text="replaced"), overwrite=True)
        uow_session.delete_key(Everything, "gone")

        result = await uow_session.commit()

        # The blind ADD goes in a transaction with a token: exactly once (DESIGN §11).
        assert result.requests == {
            "PutItem": 2,
            "UpdateItem": 1,
            "TransactWriteItems": 1,
            "BatchWriteItem": 2,
        }
        assert (result.created, result.put, result.updated, result.deleted) == (2, 1, 2, 1)
        assert await raw_count(store, Everything) == 5

    async def test_requests_run_concurrently_within_max_concurrency(
        self, store: uow.Store, uow_database: LocalDatabase
    ) -> None:
        """No more than `max_concurrency` requests are in flight, and more than one is."""
        async with uow_database.store(max_concurrency=3) as narrow:
            calls = Calls()
            calls.attach(narrow)
            async with narrow.session() as session:
                session.add_all([Everything(id=f"e{i}") for i in range(12)])
            assert calls.apis == {"PutItem": 12}
            assert calls.max_in_flight == 3

    async def test_the_update_and_remove_groups_are_sent_together(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """A batch of puts and a batch of deletes are in flight at the same time."""
        await seed(store)
        calls.clear()
        uow_session.add(Everything(id="e2"), overwrite=True)
        uow_session.delete_key(Everything, "e1")

        await uow_session.commit()

        assert calls.apis == {"BatchWriteItem": 2}
        assert calls.max_in_flight == 2


class TestUniqueAndVersion:
    """Step 3: unique fields go with their guard items; versioned writes are conditioned."""

    async def test_a_record_with_unique_fields_is_written_with_its_guard(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Adding a `User` writes the record and its email guard in one `TransactWriteItems`."""
        uow_session.add(User(user_id="u1", email="ann@example.com"))

        result = await uow_session.commit()

        assert result.created == 1
        assert result.requests == {"TransactWriteItems": 1}
        assert await raw_get(store, User, user_id="u1") is not None

    async def test_a_taken_unique_value_fails_with_unique_violation(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A second user with the same email is refused by DynamoDB: `UniqueViolation`."""
        uow_session.add(User(user_id="u1", email="ann@example.com"))
        await uow_session.commit()

        async with store.session() as other:
            other.add(User(user_id="u2", email="ann@example.com"))
            with pytest.raises(uow.CommitError) as info:
                await other.commit()
            other.clear()

        ((_, cause),) = info.value.failed
        assert isinstance(cause, uow.UniqueViolation)
        assert await raw_get(store, User, user_id="u2") is None

    async def test_a_versioned_update_increments_the_version(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """Each write of a versioned record increments its version, in DynamoDB and in memory."""
        uow_session.add(User(user_id="u1", email="ann@example.com"))
        await uow_session.commit()
        user = await uow_session.get(User, "u1")
        assert user is not None
        assert user.version == 1

        user.name = "Ann"
        await uow_session.commit()

        assert user.version == 2
        stored = await raw_get(store, User, user_id="u1")
        assert stored is not None
        assert stored["version"] == 2

    async def test_a_stale_versioned_write_fails_with_conflict(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A write based on an outdated version fails with `ConflictError`; the other one stays."""
        uow_session.add(User(user_id="u1", email="ann@example.com"))
        await uow_session.commit()
        async with store.session() as first, store.session() as second:
            mine = await first.get(User, "u1")
            theirs = await second.get(User, "u1")
            assert mine is not None
            assert theirs is not None
            theirs.name = "theirs"
            await second.commit()
            mine.name = "mine"
            with pytest.raises(uow.CommitError) as info:
                await first.commit()
            first.clear()

        ((_, cause),) = info.value.failed
        assert isinstance(cause, uow.ConflictError)
        stored = await raw_get(store, User, user_id="u1")
        assert stored is not None
        assert stored["name"] == "theirs"


class TestCommitError:
    """Step 5: partial failure raises `CommitError`; failed changes stay pending."""

    async def test_a_duplicate_add_fails_alone_and_is_retried_alone(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Other changes are committed; the next commit sends only the failed create."""
        await seed(store, "taken")
        await seed(store, "gone")
        uow_session.add_all([Everything(id="new1"), Everything(id="taken"), Everything(id="new2")])
        uow_session.delete_key(Everything, "gone")

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()

        error = info.value
        ((change, cause),) = error.failed
        assert (change.kind, change.key.pk) == (uow.ChangeKind.CREATE, "taken")
        assert isinstance(cause, uow.DuplicateKeyError)
        assert isinstance(cause.__cause__, ClientError)
        assert sorted((c.kind.value, c.key.pk) for c in error.succeeded) == [
            ("create", "new1"),
            ("create", "new2"),
            ("delete", "gone"),
        ]
        assert isinstance(error.result, uow.CommitResult)
        assert (error.result.created, error.result.deleted, error.result.failed) == (2, 1, 1)
        assert _kinds(uow_session) == [(uow.ChangeKind.CREATE, "taken")]
        assert await raw_get(store, Everything, id="new1") is not None
        assert await raw_get(store, Everything, id="gone") is None

        await raw_delete(store, Everything, id="taken")
        calls.clear()
        result = await uow_session.commit()

        assert calls.apis == {"PutItem": 1}
        assert result.created == 1
        assert uow_session.pending == ()

    async def test_a_blind_update_of_a_missing_item_fails_with_conflict_and_stays_pending(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """The update is not lost: once the item exists, the next commit writes only it."""
        uow_session.update(Everything, "late", set={"text": "finally"}, add={"count": 2})
        uow_session.add(Everything(id="other"))

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()

        ((change, cause),) = info.value.failed
        assert (change.kind, change.key.pk) == (uow.ChangeKind.UPDATE, "late")
        assert type(cause) is uow.ConflictError
        assert await raw_get(store, Everything, id="late") is None
        assert _kinds(uow_session) == [(uow.ChangeKind.UPDATE, "late")]

        await seed(store, "late")
        calls.clear()
        result = await uow_session.commit()

        assert calls.apis == {"TransactWriteItems": 1}  # an ADD goes with a token
        assert result.updated == 1
        stored = await raw_get(store, Everything, id="late")
        assert stored is not None
        assert (stored["text"], stored["count"]) == ("finally", 3)

    async def test_an_update_of_an_item_deleted_elsewhere_keeps_the_local_changes(
        self, store: uow.Store, uow_session: uow.Session
    ) -> None:
        """A loaded record deleted elsewhere fails with `ConflictError` and stays dirty."""
        await seed(store)
        obj = await uow_session.get(Everything, "e1")
        assert obj is not None
        obj.text = "mine"
        await raw_delete(store, Everything, id="e1")

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()

        ((_, cause),) = info.value.failed
        assert isinstance(cause, uow.ConflictError)
        assert uow_session.is_dirty(obj)
        assert obj.text == "mine"
        assert await raw_get(store, Everything, id="e1") is None

    async def test_failed_changes_in_a_large_commit_do_not_resend_the_batches(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """After 30 deletes succeed and one create fails, the retry sends one `PutItem` only."""
        await raw_put_many(store, Everything, [{"id": f"d{i:02}"} for i in range(30)])
        await seed(store, "taken")
        for i in range(30):
            uow_session.delete_key(Everything, f"d{i:02}")
        uow_session.add(Everything(id="taken"))

        with pytest.raises(uow.CommitError) as info:
            await uow_session.commit()
        assert len(info.value.succeeded) == 30

        calls.clear()
        with pytest.raises(uow.CommitError):
            await uow_session.commit()
        assert calls.apis == {"PutItem": 1}


class TestCommitResult:
    """Step 6: what a commit reports."""

    async def test_counts_per_operation_and_requests_per_api(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Counts per change kind and requests per API match what was sent."""
        for pk in ("loaded", "gone", "replaced"):
            await seed(store, pk)
        loaded = await uow_session.get(Everything, "loaded")
        assert loaded is not None
        loaded.count = 99
        uow_session.add_all([Everything(id="new1"), Everything(id="new2")])
        uow_session.add(Everything(id="replaced"), overwrite=True)
        uow_session.delete_key(Everything, "gone")
        calls.clear()

        result = await uow_session.commit()

        assert (result.created, result.put, result.updated, result.deleted) == (2, 1, 1, 1)
        assert result.failed == 0
        assert result.written == 5
        assert dict(result.requests) == calls.apis
        assert result.request_count == 5
        assert result.retries == 0
        measured_seconds = result.elapsed  # reported, not judged: speed is for make bench
        assert measured_seconds > 0
        assert result.consumed_capacity is None  # not asked for: see the next test
        assert not any("ReturnConsumedCapacity" in params for _, params in calls.log)
        summary = result.summary()
        assert "created=2" in summary
        assert "BatchWriteItem=2" in summary

    async def test_consumed_capacity_when_asked(
        self, uow_database: LocalDatabase, store: uow.Store
    ) -> None:
        """`Store(consumed_capacity=True)` asks every write for it and adds it up."""
        async with uow_database.store(consumed_capacity=True) as counting:
            recorder = Calls()
            recorder.attach(counting)
            async with counting.session() as session:
                session.add_all([Everything(id="c1"), Everything(id="c2")])
                session.add(Everything(id="c3"), overwrite=True)
                result = await session.commit()
            async with counting.session() as session:
                assert session.read_stats.consumed_capacity == 0.0
                assert None not in await session.get_many(Everything, ["c1", "c2"])
                reads = session.read_stats.consumed_capacity
        assert result.consumed_capacity is not None
        assert result.consumed_capacity > 0
        assert reads is not None
        assert reads > 0
        assert recorder.log
        for api, params in recorder.log:
            assert params.get("ReturnConsumedCapacity") == "TOTAL", api

    async def test_an_empty_commit_reports_nothing_sent(
        self, store: uow.Store, uow_session: uow.Session, calls: Calls
    ) -> None:
        """Committing an empty session sends no request and reports zeros."""
        result = await uow_session.commit()

        assert calls.log == []
        assert result.requests == {}
        assert result.written == 0
        assert result.retries == 0


class TestItemsWrittenElsewhere:
    """Items lacking attributes (older schema, other programs) are changed safely."""

    async def test_a_nested_change_to_an_absent_map_writes_the_whole_map(
        self, store: uow.Store
    ) -> None:
        """A map the item lacks decodes to {}; changing it inside writes the map whole, not a path below it."""
        await store.client.put_item(
            TableName="everything", Item={"id": {"S": "bare"}, "text": {"S": "old"}}
        )
        session = store.session()
        bare = await session.get(Everything, "bare")
        assert bare is not None
        assert bare.doc == {}
        assert session.pending == ()

        bare.doc["a"] = {"x": 0}
        await session.commit()
        bare.doc["a"]["x"] = 1
        bare.text = "new"
        await session.commit()

        stored = await store.client.get_item(TableName="everything", Key={"id": {"S": "bare"}})
        assert stored["Item"]["doc"] == {"M": {"a": {"M": {"x": {"N": "1"}}}}}
        assert stored["Item"]["text"] == {"S": "new"}

    async def test_untouched_absent_attributes_are_not_written(self, store: uow.Store) -> None:
        """Changing another field leaves absent attributes absent, and rollback keeps the defaults."""
        await store.client.put_item(TableName="everything", Item={"id": {"S": "bare"}})
        session = store.session()
        bare = await session.get(Everything, "bare")
        assert bare is not None
        bare.count = 3
        await session.commit()
        bare.words.append("w")
        session.rollback()
        assert bare.words == []
        stored = await store.client.get_item(TableName="everything", Key={"id": {"S": "bare"}})
        assert set(stored["Item"]) == {"id", "count"}
