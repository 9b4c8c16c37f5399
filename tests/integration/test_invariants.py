"""The session invariant of DESIGN.md §4, checked on random call sequences on a real server.

A hypothesis state machine drives one `Session` with random sequences of every
§4 call on a handful of `User` keys, so that calls collide on keys often; it
starts from items written raw, some lacking attributes as items written by
other code may. It keeps its own reference model, deliberately naive: the
committed items (what DynamoDB holds, decoded) and, per key, what the session
should show. After every step it checks that:

* the identity map lists exactly the expected keys, each with the very object
  the model expects, equal to "committed state + pending changes";
* `get` of a mapped key returns that very object (identity);
* `pending` and `is_dirty` agree with the model;

and after every commit that DynamoDB (read raw with a Scan and decoded by the
codec) holds exactly the model's committed items, and that exactly the changes
the model predicts failed (create of an existing key, blind update of a missing
item or below a missing map) and stayed pending.

`User.email` is fixed per key, so unique guards never collide: they have their
own tests. `User.version` is never assigned; the model only expects what every
write does to it (the version read, or the object's own when never read, plus one).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

import uow
from tests.models import User
from uow.codec import codec_for
from uow.testing import LocalDatabase

# A small key space, so that rules collide on keys often.
PKS = ("u1", "u2", "u3", "u4")

# One `update()` operation: (action, document path, value).
Edit = tuple[str, str, Any]
# A blind record's net pending operation per top-level field: (kind, value), where
# kind is SET, REMOVE, ADD, or PARTIAL (a dict of `profile` key -> (SET|REMOVE, value)).
Net = dict[str, tuple[str, Any]]

NEW = uow.RecordState.NEW
REPLACE = uow.RecordState.REPLACE
LOADED = uow.RecordState.LOADED
BLIND = uow.RecordState.BLIND
DELETED = uow.RecordState.DELETED
SHOWN = frozenset({NEW, REPLACE, LOADED})
KINDS = {
    NEW: uow.ChangeKind.CREATE,
    REPLACE: uow.ChangeKind.PUT,
    LOADED: uow.ChangeKind.UPDATE,
    BLIND: uow.ChangeKind.UPDATE,
    DELETED: uow.ChangeKind.DELETE,
}

names = st.sampled_from(["", "ann", "bob"])
scores = st.integers(0, 5)
tag_sets = st.sets(st.sampled_from(["x", "y", "z"]), max_size=3)
leaves = st.one_of(st.integers(0, 3), st.sampled_from(["p", "q"]))
inner_maps = st.dictionaries(st.sampled_from(["x", "y"]), leaves, max_size=2)
profile_values = st.one_of(leaves, inner_maps)
profiles = st.dictionaries(st.sampled_from(["a", "b"]), profile_values, max_size=2)
profile_keys = st.sampled_from(["a", "b"])
# Attributes an item may lack when it was written by other code.
dropped = st.sets(st.sampled_from(["name", "tags", "profile", "score"]))
user_fields = st.fixed_dictionaries(
    {"name": names, "tags": tag_sets, "profile": profiles, "score": scores}
)

# What DynamoDB holds when the session starts: per key, an item (and the attributes it
# lacks) or nothing.
stored_items = st.fixed_dictionaries(
    {pk: st.one_of(st.tuples(user_fields, dropped), st.none()) for pk in PKS}
)


def new_user(pk: str, fields: dict[str, Any]) -> User:
    """A `User` with the email of its key (so that unique guards never collide)."""
    return User(user_id=pk, email=f"{pk}@example.com", **copy.deepcopy(fields))


new_users = st.builds(new_user, st.sampled_from(PKS), user_fields)

edits: st.SearchStrategy[Edit] = st.one_of(
    st.tuples(st.just("SET"), st.just("name"), st.one_of(names, st.none())),
    st.tuples(st.just("SET"), st.just("score"), scores),
    st.tuples(st.just("ADD"), st.just("score"), st.integers(1, 3)),
    st.tuples(st.just("SET"), st.just("tags"), tag_sets),
    st.tuples(st.just("ADD"), st.just("tags"), tag_sets.filter(bool)),
    st.tuples(st.just("SET"), st.just("profile"), profiles),
    st.tuples(st.just("SET"), profile_keys.map("profile.{}".format), profile_values),
    st.tuples(st.just("REMOVE"), profile_keys.map("profile.{}".format), st.none()),
    st.tuples(st.just("SET"), st.sampled_from(["profile.a.x", "profile.b.y"]), leaves),
    st.tuples(st.just("REMOVE"), st.sampled_from(["profile.a.x", "profile.b.y"]), st.none()),
    st.tuples(st.just("REMOVE"), st.sampled_from(["name", "score", "tags", "profile"]), st.none()),
)
# Operations of one call touch distinct top-level fields: the order of `set`,
# `remove` and `add` inside one call is then irrelevant.
update_calls = st.lists(edits, min_size=1, max_size=2, unique_by=lambda e: e[1].split(".")[0])


@attrs.frozen
class Mutation:
    """An in-place change of an object, shown as the statement it runs (`obj.tags.add('x')`)."""

    action: str
    args: tuple[Any, ...]

    def __repr__(self) -> str:
        a = [repr(arg) for arg in self.args]
        return {
            "name": "obj.name = {0}",
            "score": "obj.score = {0}",
            "tag": "obj.tags.add({0})",
            "untag": "obj.tags.discard({0})",
            "set": "obj.profile[{0}] = {1}",
            "set_nested": "obj.profile[{0}][{1}] = {2}",
            "pop": "obj.profile.pop({0}, None)",
            "pop_nested": "obj.profile[{0}].pop({1}, None)",
        }[self.action].format(*a)

    def __call__(self, obj: User) -> None:
        """Run it on `obj`; nested changes below a non-map first make it a map."""
        args = copy.deepcopy(self.args)
        profile: dict[str, Any] = obj.profile
        if self.action in ("name", "score"):
            setattr(obj, self.action, args[0])
        elif self.action == "tag":
            obj.tags.add(args[0])
        elif self.action == "untag":
            obj.tags.discard(args[0])
        elif self.action == "set":
            profile[args[0]] = args[1]
        elif self.action == "pop":
            profile.pop(args[0], None)
        else:
            if not isinstance(profile.get(args[0]), dict):
                profile[args[0]] = {}
            if self.action == "set_nested":
                profile[args[0]][args[1]] = args[2]
            else:
                profile[args[0]].pop(args[1], None)


def _mutation(action: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Mutation]:
    return st.tuples(*args).map(lambda values: Mutation(action, values))


inner_keys = st.sampled_from(["x", "y"])
tag_values = st.sampled_from(["x", "y", "z"])
mutations = st.one_of(
    _mutation("name", names),
    _mutation("score", scores),
    _mutation("tag", tag_values),
    _mutation("untag", tag_values),
    _mutation("set", profile_keys, profile_values),
    _mutation("set_nested", profile_keys, inner_keys, leaves),
    _mutation("pop", profile_keys),
    _mutation("pop_nested", profile_keys, inner_keys),
)


def _absent(field: str) -> Any:
    """What a field reads as when its attribute is absent (the field's default)."""
    return {"name": "", "score": 0, "tags": set(), "profile": {}}[field]


def _plus(current: Any, delta: Any) -> Any:
    """DynamoDB's ADD: numbers add up, sets unite; an absent attribute starts empty."""
    if isinstance(delta, set):
        return set(current or ()) | delta
    return (current or 0) + delta


def _clears(value: Any) -> bool:
    """A top-level SET of this value removes the attribute (`None`, an empty set)."""
    return value is None or value == set()


class _NoPath(Exception):
    """A document path whose parent does not exist on the object."""


def _apply(obj: User, edit: Edit) -> None:
    """Apply one operation to a mapped object, as `update()` does on it."""
    action, path, value = edit
    field, *rest = path.split(".")
    if not rest:
        if action == "ADD":
            setattr(obj, field, _plus(getattr(obj, field), value))
        elif action == "SET" and not _clears(value):
            setattr(obj, field, copy.deepcopy(value))
        else:
            setattr(obj, field, _absent(field))
        return
    profile: dict[str, Any] = obj.profile
    if len(rest) == 1:
        if action == "SET":
            profile[rest[0]] = copy.deepcopy(value)
        else:
            profile.pop(rest[0], None)
        return
    node = profile.get(rest[0])
    if action == "SET":
        if not isinstance(node, dict):
            raise _NoPath(path)
        node[rest[1]] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node.pop(rest[1], None)


def _fold(net: Net, edit: Edit) -> None:
    """Fold one blind operation into a record's net pending operations (changes.py rules)."""
    action, path, value = edit
    field, _, sub = path.partition(".")
    current = net.get(field)
    if not sub:
        if action == "SET" and _clears(value):
            action, value = "REMOVE", None
        if action == "ADD" and current is not None:
            kind, old = current
            if kind == "ADD":
                net[field] = ("ADD", _plus(old, value))
            else:  # onto a pending SET, or a REMOVE: starts from nothing
                net[field] = ("SET", _plus(old if kind == "SET" else None, value))
        else:
            net[field] = (action, copy.deepcopy(value))
        return
    value = copy.deepcopy(value)
    if current is None:
        net[field] = ("PARTIAL", {sub: (action, value)})
    elif current[0] == "SET":
        whole = copy.deepcopy(current[1])
        if action == "SET":
            whole[sub] = value
        else:
            whole.pop(sub, None)
        net[field] = ("SET", whole)
    elif current[0] == "REMOVE":
        if action == "SET":  # a SET below a pending REMOVE sets a new map holding it
            net[field] = ("SET", {sub: value})
    else:
        current[1][sub] = (action, value)


def _apply_net(obj: User, net: Net) -> None:
    """Apply a blind record's net operations to an object (a read merge, or DynamoDB)."""
    for field, (kind, value) in net.items():
        if kind == "PARTIAL":
            for sub, (action, inner) in value.items():
                _apply(obj, (action, f"{field}.{sub}", inner))
        else:
            _apply(obj, (kind, field, value))


@attrs.define
class Expected:
    """The model's view of one session record."""

    state: uow.RecordState
    obj: User | None = None  # the live object the session holds for the key
    base: User | None = None  # the object DynamoDB's state was loaded into or committed from
    shown: User | None = None  # what `obj` must equal (states in SHOWN)
    net: Net = attrs.Factory(dict)  # blind operations (BLIND)

    @property
    def visible(self) -> User | None:
        """What `get` returns for the key."""
        return self.obj if self.state in SHOWN else None


class SessionMachine(RuleBasedStateMachine):
    """Random §4 calls on one session; the reference model lives in `committed` and `records`."""

    users = Bundle("users")

    def __init__(
        self, runner: asyncio.Runner, store: uow.Store, tables: dict[str, list[str]]
    ) -> None:
        super().__init__()
        self.runner = runner
        self.store = store
        self.run(_empty_tables(store, tables))
        self.session = store.session()
        self.table = store.table_name(User)
        self.committed: dict[str, User] = {}
        self.records: dict[str, Expected] = {}
        # Keys whose stored item has no `profile` attribute (as of the last commit's scan).
        self.no_profile: set[str] = set()
        # ids of the objects in the `users` bundle (which keeps them alive).
        self.seen: set[int] = set()

    def run(self, awaitable: Any) -> Any:
        """Run a coroutine on the test's event loop."""
        return self.runner.run(awaitable)

    def teardown(self) -> None:
        """Close the session (the store and the loop outlive the machine)."""
        if self.session.state is uow.SessionState.OPEN:
            self.session.close()

    # -- the model's helpers ---------------------------------------------------------

    def dirty(self, pk: str, record: Expected) -> bool:
        """Whether a record has a pending change: not loaded, or differing from DynamoDB."""
        if record.state is not LOADED:
            return True
        assert pk in self.committed, "a loaded record of a key DynamoDB does not hold"
        return record.shown != self.committed[pk]

    def holder(self, obj: User) -> Expected | None:
        """The record that accepts `obj` in calls taking an object (its object or its base)."""
        record = self.records.get(obj.user_id)
        if record is not None and (record.obj is obj or record.base is obj):
            return record
        return None

    def loaded(self, pk: str, obj: User) -> Expected:
        """A clean record for `obj`, holding the committed item."""
        return Expected(LOADED, obj=obj, base=obj, shown=copy.deepcopy(self.committed[pk]))

    def revert(self, selected: Callable[[Expected], bool]) -> None:
        """What rollback and clear_pending_* do to the selected dirty records."""
        for pk, record in list(self.records.items()):
            if not selected(record) or not self.dirty(pk, record):
                continue
            if record.base is None:
                del self.records[pk]
            else:
                self.records[pk] = self.loaded(pk, record.base)

    async def scan(self) -> list[dict[str, Any]]:
        """Every stored item, raw, read behind the session's back."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = await self.store.client.scan(**params)
            items.extend(page.get("Items", ()))
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def check_database(self) -> None:
        """DynamoDB holds exactly the model's committed items."""
        items = self.run(self.scan())
        codec = codec_for(User)
        stored = {obj.user_id: obj for obj in map(codec.decode_item, items)}
        assert stored == self.committed
        self.no_profile = {item["user_id"]["S"] for item in items if "profile" not in item}

    # -- the invariant ---------------------------------------------------------------

    @invariant()
    def map_is_committed_state_plus_pending_changes(self) -> None:
        """Every mapped object is the expected one and equals committed state + pending changes."""
        session = self.session
        shown = {uow.Key("users", pk): r for pk, r in self.records.items() if r.state in SHOWN}
        assert set(session.identity_map) == set(shown)
        for key, record in shown.items():
            obj = session.identity_map[key]
            assert obj is record.obj
            assert obj == record.shown
            assert session.is_dirty(obj) == self.dirty(str(key.pk), record)
        pending = {(change.key.pk, change.kind) for change in session.pending}
        expected = {
            (pk, KINDS[record.state])
            for pk, record in self.records.items()
            if self.dirty(pk, record)
        }
        assert pending == expected

    @invariant()
    def get_returns_the_mapped_object(self) -> None:
        """`get` of a mapped (or deleted) key returns the map's very object (or None)."""
        for pk, record in self.records.items():
            if record.state is not BLIND:
                assert self.run(self.session.get(User, pk)) is record.visible

    # -- the stored items to start from ------------------------------------------------

    @initialize(stored=stored_items)
    def seed(self, stored: dict[str, tuple[dict[str, Any], set[str]] | None]) -> None:
        """Items stored before the session starts, written raw, some missing attributes."""
        codec = codec_for(User)
        for pk, value in stored.items():
            if value is None:
                continue
            fields, missing = value
            obj = new_user(pk, fields)
            item = codec.encode_item(obj)
            for field in missing:
                item.pop(field, None)
                setattr(obj, field, _absent(field))
            self.run(self.store.client.put_item(TableName=self.table, Item=item))
            self.committed[pk] = obj
        self.check_database()

    # -- adding and deleting ---------------------------------------------------------

    @rule(target=users, obj=st.one_of(new_users, users), overwrite=st.booleans())
    def add(self, obj: User, overwrite: bool) -> Any:
        """`add` a new object, or one seen before (create-only, or a put with `overwrite=True`)."""
        self.add_object(obj, overwrite)
        return self.remember(obj)

    def remember(self, obj: User) -> Any:
        """Put an object in the `users` bundle, once."""
        if id(obj) in self.seen:
            return multiple()
        self.seen.add(id(obj))
        return obj

    def add_object(self, obj: User, overwrite: bool) -> None:
        """`add(obj)`, and the model's expectation of it."""
        pk = obj.user_id
        record = self.records.get(pk)
        if record is not None and record.obj is not obj and record.state in SHOWN:
            with pytest.raises(uow.UsageError):
                self.session.add(obj, overwrite=overwrite)
            return
        self.session.add(obj, overwrite=overwrite)
        shown = copy.deepcopy(obj)
        if record is None:
            state = REPLACE if overwrite else NEW
            self.records[pk] = Expected(state, obj=obj, shown=shown)
        elif record.state is DELETED:
            record.state, record.obj, record.shown = REPLACE, obj, shown
        elif record.state is BLIND:
            record.state = REPLACE if overwrite else NEW
            record.obj, record.shown, record.net = obj, shown, {}

    @rule(what=st.one_of(users, st.sampled_from(PKS)))
    def delete(self, what: User | str) -> None:
        """`delete(obj)` of any object seen so far, or `delete_key(User, pk)` of any key."""
        if isinstance(what, str):
            self.session.delete_key(User, what)
            self.deleted(what)
            return
        record = self.records.get(what.user_id)
        if record is not None and record.obj is not what and record.state in SHOWN:
            with pytest.raises(uow.UsageError):
                self.session.delete(what)
            return
        self.session.delete(what)
        self.deleted(what.user_id)

    def deleted(self, pk: str) -> None:
        """The model's side of a delete."""
        record = self.records.get(pk)
        if record is None:
            self.records[pk] = Expected(DELETED)
        elif record.state is NEW:
            del self.records[pk]
        elif record.state is not DELETED:
            if record.state is REPLACE and record.base is not None:
                record.obj = record.base
            record.state, record.shown, record.net = DELETED, None, {}

    # -- changing ----------------------------------------------------------------------

    @precondition(lambda self: any(r.state in SHOWN for r in self.records.values()))
    @rule(data=st.data(), change=mutations)
    def mutate_mapped(self, data: st.DataObject, change: Mutation) -> None:
        """Mutate a mapped object in place: assign a field, change its set or (nested) profile."""
        shown = sorted(pk for pk, record in self.records.items() if record.state in SHOWN)
        obj = self.records[data.draw(st.sampled_from(shown), label="pk")].obj
        assert obj is not None
        self.mutate(obj, change)

    @rule(obj=users, change=mutations)
    def mutate(self, obj: User, change: Mutation) -> None:
        """Mutate any object seen so far in place (mapped, deleted, or forgotten)."""
        change(obj)
        record = self.records.get(obj.user_id)
        if record is not None and record.obj is obj and record.shown is not None:
            change(record.shown)

    @precondition(lambda self: any(r.state in SHOWN for r in self.records.values()))
    @rule(data=st.data(), call=update_calls)
    def update_mapped(self, data: st.DataObject, call: list[Edit]) -> None:
        """`update(User, pk, ...)` of a key the session maps: applied to its object at once."""
        shown = sorted(pk for pk, record in self.records.items() if record.state in SHOWN)
        self.update(data.draw(st.sampled_from(shown), label="pk"), call)

    @rule(pk=st.sampled_from(PKS), call=update_calls)
    def update(self, pk: str, call: list[Edit]) -> None:
        """A blind `update(User, pk, set=..., remove=..., add=...)` of a mapped or unmapped key."""
        record = self.records.get(pk)
        if record is None or record.state is BLIND:
            # Two-level paths on unloaded items are left out: whether DynamoDB accepts them
            # depends on the stored item's shape, and moto does not check it as DynamoDB does.
            call = [edit for edit in call if edit[1].count(".") < 2]
            if not call:
                return
        kwargs: dict[str, Any] = {
            "set": {path: value for action, path, value in call if action == "SET"},
            "remove": [path for action, path, _ in call if action == "REMOVE"],
            "add": {path: value for action, path, value in call if action == "ADD"},
        }
        if record is not None and record.state is DELETED:
            with pytest.raises(uow.UsageError):
                self.session.update(User, pk, **kwargs)
            return
        if record is None or record.state is BLIND:
            self.session.update(User, pk, **kwargs)
            record = self.records.setdefault(pk, Expected(BLIND))
            for edit in call:
                _fold(record.net, edit)
            return
        trial = copy.deepcopy(record.shown)
        assert trial is not None
        try:
            for edit in call:
                _apply(trial, edit)
        except _NoPath:
            with pytest.raises(uow.ValidationError):
                self.session.update(User, pk, **kwargs)
            return
        self.session.update(User, pk, **kwargs)
        record.shown = trial

    # -- reading -------------------------------------------------------------------------

    @rule(target=users, pk=st.sampled_from(PKS))
    def get(self, pk: str) -> Any:
        """`get`: from the map when mapped, else read (merging pending blind updates)."""
        record = self.records.get(pk)
        got = self.run(self.session.get(User, pk))
        if record is not None and record.state is not BLIND:
            assert got is record.visible
            return multiple()
        if pk not in self.committed:
            assert got is None
            return multiple()
        assert got is not None
        loaded = self.loaded(pk, got)
        if record is not None:
            assert loaded.shown is not None
            _apply_net(loaded.shown, record.net)
        self.records[pk] = loaded
        return self.remember(got)

    @rule(obj=users)
    def refresh(self, obj: User) -> None:
        """`refresh(obj)`: re-read in place, dropping the record's pending changes."""
        pk = obj.user_id
        if self.holder(obj) is None:
            with pytest.raises(uow.UsageError):
                self.run(self.session.refresh(obj))
        elif pk not in self.committed:
            with pytest.raises(uow.NotFoundError):
                self.run(self.session.refresh(obj))
            del self.records[pk]
        else:
            assert self.run(self.session.refresh(obj)) is obj
            self.records[pk] = self.loaded(pk, obj)

    # -- committing and forgetting ---------------------------------------------------------

    @precondition(lambda self: any(self.dirty(pk, r) for pk, r in self.records.items()))
    @rule()
    def commit(self) -> None:
        """`commit()`: exactly the predicted changes fail and stay pending; DynamoDB matches."""
        causes: dict[str, type[uow.ChangeError]] = {}
        counts = dict.fromkeys(uow.ChangeKind, 0)
        committed = dict(self.committed)
        written: list[str] = []
        for pk, record in self.records.items():
            if not self.dirty(pk, record):
                continue
            if record.state is NEW and pk in self.committed:
                causes[pk] = uow.DuplicateKeyError
            elif record.state is BLIND and pk not in self.committed:
                causes[pk] = uow.ConflictError
            elif (
                record.state is BLIND
                and pk in self.no_profile
                and record.net.get("profile", ("",))[0] == "PARTIAL"
            ):
                causes[pk] = uow.ServiceError  # DynamoDB: a path below a missing map
            elif record.state is BLIND:
                committed[pk] = copy.deepcopy(self.committed[pk])
                _apply_net(committed[pk], record.net)
                committed[pk].version += 1
            elif record.state is DELETED:
                committed.pop(pk, None)
            else:
                assert record.shown is not None
                # The version goes up by one from the version read, or from the object's
                # own for a record that was never read.
                read = self.committed[pk] if record.base is not None else record.shown
                committed[pk] = copy.deepcopy(record.shown)
                committed[pk].version = read.version + 1
            if pk not in causes:
                counts[KINDS[record.state]] += 1
                written.append(pk)
        try:
            result = self.run(self.session.commit())
            failed: dict[str, uow.ChangeError] = {}
        except uow.CommitError as exc:
            result = exc.result
            failed = {str(change.key.pk): cause for change, cause in exc.failed}
        assert {pk: type(cause) for pk, cause in failed.items()} == causes
        assert isinstance(result, uow.CommitResult)
        assert (result.created, result.put, result.updated, result.deleted) == (
            counts[uow.ChangeKind.CREATE],
            counts[uow.ChangeKind.PUT],
            counts[uow.ChangeKind.UPDATE],
            counts[uow.ChangeKind.DELETE],
        )
        for pk in written:
            record = self.records[pk]
            if record.state in (BLIND, DELETED):
                del self.records[pk]
            else:
                assert record.shown is not None
                record.state, record.base = LOADED, record.obj
                record.shown.version = committed[pk].version
        self.committed = committed
        self.check_database()

    @precondition(lambda self: any(self.dirty(pk, r) for pk, r in self.records.items()))
    @rule(
        call=st.sampled_from(
            ["rollback", "clear_pending", "clear_pending_updates", "clear_pending_removes"]
        )
    )
    def revert_pending(self, call: str) -> None:
        """`rollback()`/`clear_pending()` drop every pending change, `clear_pending_*` one group."""
        getattr(self.session, call)()
        if call == "clear_pending_updates":
            self.revert(lambda record: record.state is not DELETED)
        elif call == "clear_pending_removes":
            self.revert(lambda record: record.state is DELETED)
        else:
            self.revert(lambda record: True)

    @precondition(lambda self: bool(self.records))
    @rule(call=st.sampled_from(["clear", "clear_cache", "clear_record"]), pk=st.sampled_from(PKS))
    def evict(self, call: str, pk: str) -> None:
        """`clear()`, `clear_cache()` (clean records only) or `clear_record(User, pk)`."""
        if call == "clear":
            self.session.clear()
            self.records.clear()
        elif call == "clear_cache":
            self.session.clear_cache()
            for key, record in list(self.records.items()):
                if not self.dirty(key, record):
                    del self.records[key]
        else:
            self.session.clear_record(User, pk)
            self.records.pop(pk, None)

    @rule(obj=users, call=st.sampled_from(["expunge", "clear_record"]))
    def forget(self, obj: User, call: str) -> None:
        """`expunge(obj)` / `clear_record(obj)`: the record and its pending changes are forgotten."""
        if self.holder(obj) is None:
            with pytest.raises(uow.UsageError):
                getattr(self.session, call)(obj)
            return
        getattr(self.session, call)(obj)
        del self.records[obj.user_id]


async def _key_names(store: uow.Store) -> dict[str, list[str]]:
    """The key attribute names of the store's tables (the model's and the guards')."""
    client = store.client
    tables = {}
    for name in (await client.list_tables())["TableNames"]:
        if not name.startswith(store.table_prefix):
            continue
        schema = (await client.describe_table(TableName=name))["Table"]["KeySchema"]
        tables[name] = [key["AttributeName"] for key in schema]
    return tables


async def _empty_tables(store: uow.Store, tables: dict[str, list[str]]) -> None:
    """Delete every item of every table: much cheaper than re-creating the tables."""
    client = store.client

    async def empty(name: str, keys: list[str]) -> None:
        items = (await client.scan(TableName=name, ConsistentRead=True))["Items"]
        deletes = [{"DeleteRequest": {"Key": {k: item[k] for k in keys}}} for item in items]
        for start in range(0, len(deletes), 25):
            await client.batch_write_item(RequestItems={name: deletes[start : start + 25]})

    await asyncio.gather(*(empty(name, keys) for name, keys in tables.items()))


def test_session_invariant(uow_database: LocalDatabase) -> None:
    """Random call sequences keep the map equal to committed state + pending changes."""
    with asyncio.Runner() as runner:
        # One request at a time: moto runs a transaction on a copy of the table and, when the
        # transaction is cancelled, puts the copy back, undoing concurrent writes to other items.
        store = uow_database.store(max_concurrency=1)
        runner.run(store.__aenter__())
        try:
            runner.run(store.create_tables(User))
            tables = runner.run(_key_names(store))
            run_state_machine_as_test(
                # hypothesis documents any factory of machines; its annotation says a class.
                lambda: SessionMachine(runner, store, tables),  # type: ignore[arg-type]
                settings=settings(
                    max_examples=50,
                    stateful_step_count=25,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                    # Explaining a failure re-runs it many times under a tracer: minutes here.
                    phases=[phase for phase in Phase if phase is not Phase.explain],
                ),
            )
        finally:
            runner.run(store.__aexit__(None, None, None))
