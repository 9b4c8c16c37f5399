"""The session invariant across kinds: two models sharing one table (DESIGN.md §4 and §9).

A hypothesis state machine drives one `Session` with random adds, edits,
deletes, gets of either kind, queries of one kind or of both, rollbacks and
commits, on four keys of one item collection, so that the two kinds collide on
keys often. Its reference model holds what DynamoDB stores (model and field
values per key) and, per key, the object the session should show. After every
step it checks that:

* the identity map lists exactly the expected keys, each with the very object
  the model expects, equal to its expected value (committed state + edits);
* one object per item: a key is held by one model at most, whatever is read;

and per rule that a get of the wrong kind raises `SchemaError` without
touching the map, that queries yield exactly the expected objects in key order,
and after every commit that DynamoDB (scanned raw) holds exactly the model's
items, kind attribute included.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import attrs
import pytest
from boto3.dynamodb.conditions import Key
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import uow
from uow.codec import codec_for
from uow.testing import LocalDatabase

PK = "P"
SKS = ("1", "2", "3", "4")


@uow.model(table="mixed", pk="pk", sk="sk", kind="alpha")
@attrs.define
class Alpha:
    """One kind: a name and a counter."""

    pk: str
    sk: str
    name: str = ""
    n: int = 0


@uow.model(table="mixed", pk="pk", sk="sk", kind="beta", kind_attribute="_kind")
@attrs.define
class Beta:
    """The other kind: a set and a required field."""

    pk: str
    sk: str
    label: str
    tags: set[str] = attrs.Factory(set)


MODELS: tuple[type, ...] = (Alpha, Beta)
models = st.sampled_from(MODELS)
sks = st.sampled_from(SKS)
words = st.sampled_from(["", "x", "y"])


def build(model: type, sk: str, value: str, number: int) -> Any:
    """A new object of `model` at key (PK, sk)."""
    if model is Alpha:
        return Alpha(PK, sk, name=value, n=number)
    return Beta(PK, sk, label=value or "-", tags={value} if value else set())


def edit(obj: Any, value: str, number: int) -> None:
    """Change a loaded object in place (the same change is applied to its expected value)."""
    if type(obj) is Alpha:
        obj.name = value
        obj.n += number
    else:
        obj.tags.add(value or "z")
        obj.label = value or obj.label


@attrs.define
class Expected:
    """What the session should hold at one key."""

    model: type
    obj: Any  # the object the session shows; None for a pending delete
    state: str  # "new" | "replace" | "loaded" | "deleted"
    value: Any = None  # what `obj` should equal
    base: Any = None  # the loaded object that rollback brings back (deleted, replace)


class KindsMachine(RuleBasedStateMachine):
    """Random calls on one session over two kinds of one table."""

    def __init__(self, runner: asyncio.Runner, store: uow.Store) -> None:
        super().__init__()
        self.runner = runner
        self.store = store
        self.run(self.empty())
        self.session = store.session()
        self.committed: dict[str, Any] = {}  # sk -> the stored object (its model, its values)
        self.records: dict[str, Expected] = {}

    def run(self, awaitable: Any) -> Any:
        """Run a coroutine on the test's event loop."""
        return self.runner.run(awaitable)

    def teardown(self) -> None:
        """Close the session (the store and the loop outlive the machine)."""
        if self.session.state is uow.SessionState.OPEN:
            self.session.close()

    async def empty(self) -> None:
        """Delete every item of the table."""
        client = self.store.client
        table = self.store.table_name(Alpha)
        for item in (await client.scan(TableName=table, ConsistentRead=True))["Items"]:
            await client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})

    def loaded(self, sk: str, obj: Any) -> None:
        """Expect `obj`, just read, to be mapped as the committed item."""
        self.records[sk] = Expected(type(obj), obj, "loaded", copy.deepcopy(self.committed[sk]))

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def map_is_the_expected_objects(self) -> None:
        """The map holds exactly the expected objects, each equal to its expected value."""
        shown = {sk: r for sk, r in self.records.items() if r.obj is not None}
        mapped = dict(self.session.identity_map.items())
        assert {key.sk for key in mapped} == set(shown)
        for key, obj in mapped.items():
            record = shown[str(key.sk)]
            assert obj is record.obj
            assert type(obj) is record.model
            assert obj == record.value

    # -- rules -----------------------------------------------------------------------

    @initialize(
        stored=st.fixed_dictionaries(
            {sk: st.one_of(st.none(), st.tuples(models, words, st.integers(0, 3))) for sk in SKS}
        )
    )
    def seed(self, stored: dict[str, tuple[type, str, int] | None]) -> None:
        """Items of either kind (or none) at each key, written by another session."""

        async def write() -> None:
            async with self.store.session() as other:
                for sk, spec in stored.items():
                    if spec is not None:
                        obj = build(spec[0], sk, spec[1], spec[2])
                        other.add(obj)
                        self.committed[sk] = copy.deepcopy(obj)

        self.run(write())

    @rule()
    def clear_cache(self) -> None:
        """Records without a pending change leave the map; the others stay."""
        self.session.clear_cache()
        for sk, record in list(self.records.items()):
            if record.state == "loaded" and record.value == self.committed.get(sk):
                del self.records[sk]

    @rule()
    def clear(self) -> None:
        """The map and the log are emptied."""
        self.session.clear()
        self.records.clear()

    @rule(model=models, sk=sks, value=words, number=st.integers(0, 3))
    def add(self, model: type, sk: str, value: str, number: int) -> None:
        """`add` of a new object: refused while another object holds the key."""
        obj = build(model, sk, value, number)
        record = self.records.get(sk)
        if record is not None and record.state != "deleted":
            with pytest.raises(uow.UsageError):
                self.session.add(obj)
            return
        self.session.add(obj)
        if record is None:
            self.records[sk] = Expected(model, obj, "new", copy.deepcopy(obj))
        else:  # a delete then an add: a replacement, whatever the kinds
            self.records[sk] = Expected(model, obj, "replace", copy.deepcopy(obj), record.base)

    @precondition(lambda self: any(r.obj is not None for r in self.records.values()))
    @rule(data=st.data(), value=words, number=st.integers(1, 3))
    def change(self, data: st.DataObject, value: str, number: int) -> None:
        """Edit a mapped object in place."""
        sk = data.draw(st.sampled_from(sorted(s for s, r in self.records.items() if r.obj)))
        record = self.records[sk]
        edit(record.obj, value, number)
        edit(record.value, value, number)

    @precondition(lambda self: any(r.obj is not None for r in self.records.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Delete a mapped object: a new one is forgotten, another becomes a pending delete."""
        sk = data.draw(st.sampled_from(sorted(s for s, r in self.records.items() if r.obj)))
        record = self.records[sk]
        self.session.delete(record.obj)
        if record.state == "new":
            del self.records[sk]
        else:
            base = record.base if record.state == "replace" else record.obj
            self.records[sk] = Expected(record.model, None, "deleted", None, base)

    @rule(model=models, sk=sks)
    def get(self, model: type, sk: str) -> None:
        """`get` of either kind: the mapped object, the stored one, None, or a SchemaError."""
        record = self.records.get(sk)
        stored = self.committed.get(sk)
        if record is not None:
            if record.obj is None:
                assert self.run(self.session.get(model, PK, sk)) is None
            elif record.model is model:
                assert self.run(self.session.get(model, PK, sk)) is record.obj
            else:
                with pytest.raises(uow.SchemaError, match="holds the item as"):
                    self.run(self.session.get(model, PK, sk))
            return
        if stored is None:
            assert self.run(self.session.get(model, PK, sk)) is None
        elif type(stored) is model:
            obj = self.run(self.session.get(model, PK, sk))
            assert obj == stored
            self.loaded(sk, obj)
        else:
            with pytest.raises(uow.SchemaError, match="the stored item is of kind"):
                self.run(self.session.get(model, PK, sk))

    @rule(which=st.sampled_from([(Alpha,), (Beta,), (Alpha, Beta), (Beta, Alpha)]))
    def query(self, which: tuple[type, ...]) -> None:
        """A query of one kind or both yields the expected objects, in key order."""

        async def rows() -> list[Any]:
            target: Any = which[0] if len(which) == 1 else which
            return [obj async for obj in self.session.query(target, Key("pk").eq(PK))]

        found = self.run(rows())
        expected = []
        for sk in sorted(self.committed):
            stored = self.committed[sk]
            if type(stored) not in which:
                continue
            record = self.records.get(sk)
            if record is None:
                expected.append(("new", sk))
            elif record.obj is not None and record.model in which:
                expected.append(("mapped", sk))
        assert [type(obj) for obj in found] == [
            type(self.committed[sk]) if how == "new" else self.records[sk].model
            for how, sk in expected
        ]
        for obj, (how, sk) in zip(found, expected, strict=True):
            if how == "mapped":
                assert obj is self.records[sk].obj
            else:
                assert obj == self.committed[sk]
                self.loaded(sk, obj)

    @rule()
    def rollback(self) -> None:
        """Every pending change dropped; loaded objects back to their committed values."""
        self.session.rollback()
        for sk, record in list(self.records.items()):
            if record.state == "new":
                del self.records[sk]
                continue
            obj = record.obj if record.state == "loaded" else record.base
            if obj is None:  # a replacement of a key never loaded (a blind delete first)
                del self.records[sk]
                continue
            self.records[sk] = Expected(type(obj), obj, "loaded", copy.deepcopy(self.committed[sk]))

    @precondition(lambda self: bool(self.records))
    @rule()
    def commit(self) -> None:
        """A commit writes every change but creates of stored keys, which stay pending."""
        duplicates = {
            sk for sk, r in self.records.items() if r.state == "new" and sk in self.committed
        }
        causes: dict[str, uow.ChangeError] = {}
        try:
            self.run(self.session.commit())
        except uow.CommitError as exc:
            causes = {str(change.key.sk): cause for change, cause in exc.failed}
        assert set(causes) == duplicates
        assert all(isinstance(cause, uow.DuplicateKeyError) for cause in causes.values())
        for sk, record in list(self.records.items()):
            if sk in duplicates:
                continue
            if record.state == "deleted":
                self.committed.pop(sk, None)
                del self.records[sk]
            else:
                self.committed[sk] = copy.deepcopy(record.value)
                record.state = "loaded"
                record.base = None
        self.run(self.check_database())

    async def check_database(self) -> None:
        """DynamoDB holds exactly the committed items, each with its kind."""
        client = self.store.client
        table = self.store.table_name(Alpha)
        items = (await client.scan(TableName=table, ConsistentRead=True))["Items"]
        stored = {}
        for item in items:
            model = {"alpha": Alpha, "beta": Beta}[item["_kind"]["S"]]
            stored[item["sk"]["S"]] = codec_for(model).decode_item(item)
        assert stored == self.committed


def test_session_invariant_across_kinds(uow_database: LocalDatabase) -> None:
    """Random call sequences on two kinds of one table keep the map/log invariant."""
    with asyncio.Runner() as runner:
        store = uow_database.store(max_concurrency=1)
        runner.run(store.__aenter__())
        try:
            runner.run(store.create_tables(*MODELS))
            run_state_machine_as_test(
                # hypothesis documents any factory of machines; its annotation says a class.
                lambda: KindsMachine(runner, store),  # type: ignore[arg-type]
                settings=settings(
                    max_examples=40,
                    stateful_step_count=30,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                    phases=[phase for phase in Phase if phase is not Phase.explain],
                ),
            )
        finally:
            runner.run(store.__aexit__(None, None, None))
