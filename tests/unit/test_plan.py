"""The planner: from identity-map records to the update group and the remove group."""

from __future__ import annotations

import gc
import math
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.models import Address, Everything, Order, User
from tests.unit import records
from uow import ChangeKind, Key, ValidationError
from uow.changes import Op
from uow.codec import Item, codec_for
from uow.identity import Record, RecordState
from uow.model import info_of
from uow.plan import (
    BATCH_WRITE_LIMIT,
    GUARD_TABLE,
    ITEM_SIZE_LIMIT,
    TRANSACTION_ACTION_LIMIT,
    Plan,
    Planned,
    item_size,
    make_plan,
)

PREFIX = "t_"
ORDERS = codec_for(Order)
EVERYTHING = codec_for(Everything)


def order(n: int = 1, **fields: Any) -> Order:
    """An order of customer `c1`, with its index keys set."""
    return Order(
        customer_id="c1", order_id=f"o{n}", **{"created_at": "2024-05-01T12:00:00Z", **fields}
    )


def only(plan: Plan) -> Planned:
    """The single entry of a plan of one record."""
    (entry,) = plan.entries
    return entry


def body(entry: Planned) -> dict[str, Any]:
    """The request body of an entry's own write (its first action)."""
    return entry.actions[0].body


def apis(plan: Plan) -> tuple[list[str], list[str]]:
    """The API of each request of the update group and of the remove group."""
    return [r.api for r in plan.update_group], [r.api for r in plan.remove_group]


class TestRecordStates:
    """Each record state maps to the request documented in the `uow.plan` table."""

    @pytest.mark.parametrize(
        ("make", "kind", "update_apis", "remove_apis"),
        [
            pytest.param(
                lambda: records.new(order()), ChangeKind.CREATE, ["PutItem"], [], id="new"
            ),
            pytest.param(
                lambda: records.replace(order()),
                ChangeKind.PUT,
                ["BatchWriteItem"],
                [],
                id="replace",
            ),
            pytest.param(
                lambda: records.mutated(order(), lambda o: setattr(o, "status", "paid")),
                ChangeKind.UPDATE,
                ["UpdateItem"],
                [],
                id="loaded-and-changed",
            ),
            pytest.param(
                lambda: records.blind(Order, "c1", "o1", Op("SET", ("status",), "paid")),
                ChangeKind.UPDATE,
                ["UpdateItem"],
                [],
                id="blind",
            ),
            pytest.param(
                lambda: records.deleted(Order, "c1", "o1"),
                ChangeKind.DELETE,
                [],
                ["BatchWriteItem"],
                id="deleted",
            ),
        ],
    )
    def test_state_maps_to_api(
        self,
        make: Callable[[], Record],
        kind: ChangeKind,
        update_apis: list[str],
        remove_apis: list[str],
    ) -> None:
        """A record's state decides its change kind, its API and its group."""
        plan = make_plan([make()], PREFIX)
        entry = only(plan)
        assert entry.change.kind is kind
        assert entry.change.model is Order
        assert entry.change.key == Key("orders", "c1", "o1")
        assert entry.table == "t_orders"
        assert apis(plan) == (update_apis, remove_apis)

    def test_loaded_and_unchanged_writes_nothing(self) -> None:
        """A loaded record equal to its snapshot is not planned at all."""
        plan = make_plan([records.loaded(order())], PREFIX)
        assert plan.entries == ()
        assert plan.requests == ()

    def test_mutated_back_to_committed_writes_nothing(self) -> None:
        """A change undone before commit leaves nothing to write."""
        obj = order(status="open")
        record = records.loaded(obj)
        obj.status = "paid"
        obj.status = "open"
        assert make_plan([record], PREFIX).entries == ()

    def test_create(self) -> None:
        """A new record is a `PutItem` of the whole item, create-only, with its write marker."""
        obj = order(total=Decimal("9.50"))
        record = records.new(obj)
        entry = only(make_plan([record], PREFIX))
        assert [a.kind for a in entry.actions] == ["Put"]
        assert record.attempt is not None
        assert entry.marker == ("_uow_w0", record.attempt)
        assert body(entry) == {
            "TableName": "t_orders",
            "Item": {**ORDERS.encode_item(obj), "_uow_w0": {"S": record.attempt}},
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ExpressionAttributeNames": {"#n0": "customer_id"},
        }
        assert entry.new_snapshot == ORDERS.snapshot(obj)
        assert entry.change.obj is obj

    def test_replace(self) -> None:
        """A replaced record is an unconditional put inside a `BatchWriteItem`."""
        obj = order()
        entry = only(make_plan([records.replace(obj)], PREFIX))
        assert entry.batchable
        assert entry.write == {"PutRequest": {"Item": ORDERS.encode_item(obj)}}
        assert entry.new_snapshot == ORDERS.snapshot(obj)

    def test_delete(self) -> None:
        """A deleted record is a `DeleteRequest` of its key; nothing is kept afterwards."""
        entry = only(make_plan([records.deleted(Order, "c1", "o1")], PREFIX))
        assert entry.batchable
        assert entry.write == {
            "DeleteRequest": {"Key": {"customer_id": {"S": "c1"}, "order_id": {"S": "o1"}}}
        }
        assert entry.new_snapshot is None
        assert entry.change.obj is None

    def test_blind_update(self) -> None:
        """A blind update writes its coalesced operations and keeps no snapshot."""
        record = records.blind(
            Order,
            "c1",
            "o1",
            Op("SET", ("status",), "paid"),
            Op("REMOVE", ("created_at",)),
        )
        entry = only(make_plan([record], PREFIX))
        assert body(entry)["Key"] == {"customer_id": {"S": "c1"}, "order_id": {"S": "o1"}}
        assert records.read_update(body(entry)) == {
            ("SET", "status", (("S", "paid"),)),
            ("REMOVE", "created_at", None),
        }
        assert entry.new_snapshot is None
        assert entry.change.set == {"status": "paid"}
        assert entry.change.remove == ("created_at",)

    def test_no_prefix(self) -> None:
        """Without a table prefix the model's table name is used as is."""
        entry = only(make_plan([records.deleted(Order, "c1", "o1")], ""))
        assert entry.table == "orders"


class TestUpdatePaths:
    """A changed loaded record is written as an `UpdateItem` of the changed paths only."""

    def test_only_changed_paths(self) -> None:
        """Unchanged fields never appear in the update; each changed path does, once."""
        obj = Everything(
            id="e1",
            text="t",
            maybe="m",
            doc={"keep": 1, "change": 2, "drop": 3},
            words=["a", "b"],
            address=Address(city="Oslo"),
        )
        record = records.loaded(obj)
        obj.doc["change"] = 20
        del obj.doc["drop"]
        obj.words[1] = "B"
        obj.maybe = None
        assert obj.address is not None
        obj.address.city = "Bergen"
        entry = only(make_plan([record], PREFIX))
        assert records.read_update(body(entry)) == {
            ("SET", "doc.change", (("N", "20"),)),
            ("REMOVE", "doc.drop", None),
            ("SET", "words[1]", (("S", "B"),)),
            ("REMOVE", "maybe", None),
            ("SET", "address.city", (("S", "Bergen"),)),
        }
        assert entry.change.set == {"doc.change": 20, "words[1]": "B", "address.city": "Bergen"}
        assert set(entry.change.remove) == {"doc.drop", "maybe"}
        assert entry.new_snapshot == EVERYTHING.snapshot(obj)

    def test_emptied_set_is_removed(self) -> None:
        """A set field emptied in place is removed, as DynamoDB has no empty sets."""
        obj = Everything(id="e1", names={"a"})
        record = records.loaded(obj)
        obj.names.clear()
        entry = only(make_plan([record], PREFIX))
        assert records.read_update(body(entry)) == {("REMOVE", "names", None)}

    def test_counter_is_an_add(self) -> None:
        """A field changed by `update(add=...)` is written with ADD and asks for its new value."""
        obj = Everything(id="e1", count=5, numbers={1})
        record = records.loaded(obj)
        obj.count += 3
        obj.numbers |= {2}
        record.adds = {"count": 3, "numbers": {2}}
        entry = only(make_plan([record], PREFIX))
        assert records.read_update(body(entry)) == {
            ("ADD", "count", (("N", "3"),)),
            ("ADD", "numbers", (("NS", ("2",)),)),
        }
        assert set(entry.add_fields) == {"count", "numbers"}
        assert entry.change.add == {"count": 3, "numbers": {2}}

    def test_counter_overwritten_is_a_set(self) -> None:
        """A field added to and then assigned is written with SET of the assigned value."""
        obj = Everything(id="e1", count=5)
        record = records.loaded(obj)
        obj.count = 100
        record.adds = {"count": 3}
        entry = only(make_plan([record], PREFIX))
        assert records.read_update(body(entry)) == {("SET", "count", (("N", "100"),))}
        assert entry.add_fields == ()


class TestBatching:
    """Puts and deletes are batched 25 to a `BatchWriteItem`; other writes go one by one."""

    @pytest.mark.parametrize(
        ("count", "sizes"),
        [
            pytest.param(1, [1], id="1"),
            pytest.param(25, [25], id="25"),
            pytest.param(26, [25, 1], id="26"),
            pytest.param(60, [25, 25, 10], id="60"),
        ],
    )
    def test_deletes(self, count: int, sizes: list[int]) -> None:
        """Deletes fill remove-group batches of at most 25, in log order."""
        recs = [records.deleted(Order, "c1", f"o{n}") for n in range(count)]
        plan = make_plan(recs, PREFIX)
        assert plan.update_group == ()
        assert [len(r.entries) for r in plan.remove_group] == sizes
        assert [e.record for r in plan.remove_group for e in r.entries] == recs

    @pytest.mark.parametrize(
        ("count", "sizes"),
        [
            pytest.param(25, [25], id="25"),
            pytest.param(51, [25, 25, 1], id="51"),
        ],
    )
    def test_puts(self, count: int, sizes: list[int]) -> None:
        """Replacing puts fill update-group batches of at most 25."""
        plan = make_plan([records.replace(order(n)) for n in range(count)], PREFIX)
        assert plan.remove_group == ()
        assert [r.api for r in plan.update_group] == ["BatchWriteItem"] * len(sizes)
        assert [len(r.entries) for r in plan.update_group] == sizes

    def test_limit(self) -> None:
        """The batch limit is DynamoDB's."""
        assert BATCH_WRITE_LIMIT == 25

    def test_mixed_log(self) -> None:
        """Creates and updates go one per request; puts and deletes are batched per group."""
        log = [
            *(records.new(order(n)) for n in range(3)),
            *(records.replace(order(n)) for n in range(10, 40)),
            *(records.deleted(Order, "c1", f"o{n}") for n in range(50, 55)),
            records.blind(Order, "c1", "o99", Op("SET", ("status",), "paid")),
            records.mutated(order(100), lambda o: setattr(o, "status", "paid")),
            records.loaded(order(101)),
        ]
        plan = make_plan(log, PREFIX)
        assert apis(plan) == (
            ["PutItem"] * 3 + ["UpdateItem"] * 2 + ["BatchWriteItem"] * 2,
            ["BatchWriteItem"],
        )
        assert [len(r.entries) for r in plan.update_group] == [1, 1, 1, 1, 1, 25, 5]
        assert len(plan.entries) == 3 + 30 + 5 + 2
        assert [e.record for e in plan.entries] == log[:-1]
        assert plan.requests == plan.update_group + plan.remove_group

    def test_empty_log(self) -> None:
        """Nothing pending plans no request."""
        plan = make_plan([], PREFIX)
        assert plan.requests == ()
        assert plan.entries == ()


def _user(**fields: Any) -> User:
    """User `u1`, versioned, with a unique email."""
    return User(**{"user_id": "u1", "email": "ann@example.com", **fields})


class TestVersionAndUnique:
    """Versioned records are written conditionally; changed unique fields go with their guards."""

    def test_create_claims_guards_in_a_transaction(self) -> None:
        """A new record with a unique field is created together with its guard item."""
        plan = make_plan([records.new(_user())], PREFIX)
        entry = only(plan)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert [(a.kind, a.role, a.field) for a in entry.actions] == [
            ("Put", "record", None),
            ("Put", "claim", "email"),
        ]
        assert body(entry)["Item"]["version"] == {"N": "1"}
        assert entry.new_version == 1
        assert entry.actions[1].body["TableName"] == "t_" + GUARD_TABLE

    def test_update_is_conditioned_on_the_read_version(self) -> None:
        """A loaded versioned record is updated only if its version is still the one read."""
        record = records.mutated(_user(version=4), lambda u: setattr(u, "name", "Ann"))
        plan = make_plan([record], PREFIX)
        entry = only(plan)
        assert apis(plan) == (["UpdateItem"], [])
        assert records.read_update(body(entry)) == {
            ("SET", "name", (("S", "Ann"),)),
            ("SET", "version", (("N", "5"),)),
            ("SET", "_uow_w5", (("S", record.attempt),)),
        }
        names = body(entry)["ExpressionAttributeNames"]
        values = body(entry)["ExpressionAttributeValues"]
        condition = body(entry)["ConditionExpression"]
        placeholder, _, value = condition.partition(" = ")
        assert names[placeholder] == "version"
        assert values[value] == {"N": "4"}
        assert entry.new_version == 5

    def test_changed_unique_value_swaps_guards(self) -> None:
        """Changing a unique value releases the old guard and claims the new one, atomically."""
        record = records.mutated(_user(), lambda u: setattr(u, "email", "bob@example.com"))
        plan = make_plan([record], PREFIX)
        entry = only(plan)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert [(a.kind, a.role, a.value) for a in entry.actions] == [
            ("Update", "record", None),
            ("Delete", "release", "ann@example.com"),
            ("Put", "claim", "bob@example.com"),
        ]

    def test_delete_releases_guards(self) -> None:
        """Deleting a loaded record with a unique field releases its guard in the remove group."""
        record = records.loaded(_user())
        record.state = RecordState.DELETED
        plan = make_plan([record], PREFIX)
        assert apis(plan) == ([], ["TransactWriteItems"])
        assert [(a.kind, a.role) for a in only(plan).actions] == [
            ("Delete", "record"),
            ("Delete", "release"),
        ]

    def test_version_field_is_managed(self) -> None:
        """Assigning the version field of a loaded record is refused."""
        record = records.mutated(_user(), lambda u: setattr(u, "version", 9))
        with pytest.raises(ValidationError, match=r"User 'u1': the version field 'version'"):
            make_plan([record], PREFIX)


class TestAtomic:
    """`atomic=True` puts every write in one `TransactWriteItems`, within DynamoDB's limits."""

    def test_one_transaction(self) -> None:
        """Creates, puts, updates and deletes all go in a single transaction."""
        log = [
            records.new(order(1)),
            records.replace(order(2)),
            records.deleted(Order, "c1", "o3"),
            records.mutated(order(4), lambda o: setattr(o, "status", "paid")),
        ]
        plan = make_plan(log, PREFIX, atomic=True)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert [e.record for e in plan.update_group[0].entries] == log

    def test_over_100_actions(self) -> None:
        """More than 100 actions in an atomic commit is refused before any request."""
        log = [records.deleted(Order, "c1", f"o{n}") for n in range(TRANSACTION_ACTION_LIMIT + 1)]
        with pytest.raises(ValidationError, match="at most 100 actions"):
            make_plan(log, PREFIX, atomic=True)

    def test_100_actions(self) -> None:
        """Exactly 100 actions fit."""
        log = [records.deleted(Order, "c1", f"o{n}") for n in range(TRANSACTION_ACTION_LIMIT)]
        assert len(make_plan(log, PREFIX, atomic=True).update_group[0].entries) == 100

    def test_guards_count_as_actions(self) -> None:
        """Unique-field guards count towards the 100-action limit."""
        log = [records.new(_user(user_id=f"u{n}", email=f"{n}@x")) for n in range(51)]
        with pytest.raises(ValidationError, match="this one has 102"):
            make_plan(log, PREFIX, atomic=True)


def _sized(size: int) -> Everything:
    """An `Everything` whose encoded item is exactly `size` bytes (text padded)."""
    obj = Everything(id="e1")
    base = item_size(EVERYTHING.encode_item(obj))
    obj.text = "x" * (size - base)
    assert item_size(EVERYTHING.encode_item(obj)) == size
    return obj


class TestValidation:
    """An invalid record raises `ValidationError` naming model and key; no plan is made."""

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: records.new(_sized(ITEM_SIZE_LIMIT + 1)), id="new"),
            pytest.param(lambda: records.replace(_sized(ITEM_SIZE_LIMIT + 1)), id="replace"),
            pytest.param(
                lambda: records.mutated(
                    Everything(id="e1"), lambda o: setattr(o, "text", "x" * ITEM_SIZE_LIMIT)
                ),
                id="loaded-update",
            ),
        ],
    )
    def test_item_over_400_kb(self, make: Callable[[], Record]) -> None:
        """An item over 400 KB is refused before any request."""
        with pytest.raises(ValidationError, match=r"Everything 'e1': .*400 KB"):
            make_plan([make()], PREFIX)

    def test_item_of_exactly_400_kb(self) -> None:
        """An item of exactly 400 KB is accepted."""
        plan = make_plan([records.replace(_sized(ITEM_SIZE_LIMIT))], PREFIX)
        assert apis(plan) == (["BatchWriteItem"], [])

    def test_a_created_items_marker_counts_toward_400_kb(self) -> None:
        """A create stores its write marker in the item, and DynamoDB counts its bytes."""
        marker = len("_uow_w0") + len(secrets.token_urlsafe(9))
        plan = make_plan([records.new(_sized(ITEM_SIZE_LIMIT - marker))], PREFIX)
        assert apis(plan) == (["PutItem"], [])
        with pytest.raises(ValidationError, match="over DynamoDB's 400 KB item limit"):
            make_plan([records.new(_sized(ITEM_SIZE_LIMIT - marker + 1))], PREFIX)

    def test_limit(self) -> None:
        """The item size limit is DynamoDB's 400 KB."""
        assert ITEM_SIZE_LIMIT == 400 * 1024

    @pytest.mark.parametrize(
        ("make", "match"),
        [
            pytest.param(
                lambda: _key_changed(records.new, order()),
                r"Order \('c1', 'o1'\): customer_id/order_id changed",
                id="new",
            ),
            pytest.param(
                lambda: _key_changed(records.replace, order()),
                r"Order \('c1', 'o1'\): customer_id/order_id changed",
                id="replace",
            ),
            pytest.param(
                lambda: _key_changed(records.loaded, order()),
                r"Order \('c1', 'o1'\): key field 'order_id' changed",
                id="loaded",
            ),
        ],
    )
    def test_key_changed(self, make: Callable[[], Record], match: str) -> None:
        """A key field changed after the object entered the session is refused."""
        with pytest.raises(ValidationError, match=match):
            make_plan([make()], PREFIX)

    @pytest.mark.parametrize(
        ("make", "match"),
        [
            pytest.param(
                lambda: records.mutated(
                    Everything(id="e1"), lambda o: setattr(o, "ratio", math.nan)
                ),
                "ratio: DynamoDB cannot store nan",
                id="nan-in-update",
            ),
            pytest.param(
                lambda: records.new(Everything(id="e1", doc={"s": set()})),
                r"doc\.s: an empty set",
                id="empty-set-in-map",
            ),
            pytest.param(
                lambda: records.mutated(
                    Everything(id="e1"), lambda o: o.doc.__setitem__("s", frozenset())
                ),
                r"doc\.s: an empty set",
                id="empty-set-in-map-update",
            ),
            pytest.param(
                lambda: records.replace(Everything(id="e1", count="1")),  # type: ignore[arg-type]  # the wrong type is the point
                "count: expected int",
                id="wrong-type",
            ),
            pytest.param(
                lambda: records.new(Everything(id="e1", anything=object())),
                "anything: cannot store a object",
                id="unstorable",
            ),
        ],
    )
    def test_unencodable(self, make: Callable[[], Record], match: str) -> None:
        """A value DynamoDB cannot hold is refused, naming model, key and path."""
        with pytest.raises(ValidationError, match=f"Everything 'e1': .*{match}"):
            make_plan([make()], PREFIX)

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: records.new(order(created_at="")), id="new"),
            pytest.param(lambda: records.replace(order(status="")), id="replace"),
        ],
    )
    def test_empty_index_key(self, make: Callable[[], Record]) -> None:
        """An empty string in a GSI key attribute is refused, as DynamoDB would."""
        with pytest.raises(ValidationError, match=r"Order \('c1', 'o1'\): .*index keys cannot"):
            make_plan([make()], PREFIX)

    def test_expression_over_4_kb(self) -> None:
        """An update expression over DynamoDB's 4 KB limit is refused before any request."""
        ops = [Op("SET", ("doc", f"key{n}"), n) for n in range(400)]
        with pytest.raises(ValidationError, match=r"Everything 'e1': .*4 KB expression limit"):
            make_plan([records.blind(Everything, "e1", None, *ops)], PREFIX)

    def test_one_bad_record_stops_the_plan(self) -> None:
        """A bad record anywhere in the log fails the whole plan and names that record."""
        log = [
            records.replace(order(1)),
            records.deleted(Order, "c1", "o2"),
            records.new(order(3, total=Decimal("NaN"))),
            records.new(order(4)),
        ]
        with pytest.raises(ValidationError, match=r"^Order \('c1', 'o3'\): total: ") as info:
            make_plan(log, PREFIX)
        assert "'o1'" not in str(info.value)

    def test_error_chains_the_cause(self) -> None:
        """The named error keeps the codec's error as its cause."""
        with pytest.raises(ValidationError) as info:
            make_plan([records.new(order(total=Decimal("NaN")))], PREFIX)
        assert isinstance(info.value.__cause__, ValidationError)


def _key_changed(make: Callable[[Any], Record], obj: Order) -> Record:
    """A record of `obj`, then its sort key changed on the live object."""
    record = make(obj)
    obj.order_id = "o-changed"
    return record


class TestItemSize:
    """`item_size` follows DynamoDB's item size rules."""

    @pytest.mark.parametrize(
        ("item", "size"),
        [
            pytest.param({}, 0, id="empty"),
            pytest.param({"name": {"S": "abc"}}, 4 + 3, id="str"),
            pytest.param({"name": {"S": ""}}, 4, id="str-empty"),
            pytest.param({"név": {"S": "é"}}, 4 + 2, id="str-utf8-bytes"),
            pytest.param({"n": {"N": "123"}}, 1 + 2 + 1, id="number-odd-digits"),
            pytest.param({"n": {"N": "1234"}}, 1 + 2 + 1, id="number-even-digits"),
            pytest.param({"n": {"N": "-12.5"}}, 1 + 2 + 1, id="number-sign-and-point"),
            pytest.param({"n": {"N": "1.5E+10"}}, 1 + 1 + 1, id="number-exponent"),
            pytest.param({"n": {"N": "1000000"}}, 1 + 1 + 1, id="number-trailing-zeros"),
            pytest.param({"n": {"N": "0.0001"}}, 1 + 1 + 1, id="number-leading-zeros"),
            pytest.param({"b": {"B": b"\x00\x01\x02"}}, 1 + 3, id="binary-raw-length"),
            pytest.param({"f": {"BOOL": False}}, 1 + 1, id="bool"),
            pytest.param({"z": {"NULL": True}}, 1 + 1, id="null"),
            pytest.param({"s": {"SS": ["ab", "c"]}}, 1 + 3, id="string-set"),
            pytest.param({"s": {"NS": ["1", "22"]}}, 1 + 2 + 2, id="number-set"),
            pytest.param({"s": {"BS": [b"ab", b"c"]}}, 1 + 3, id="binary-set"),
            pytest.param({"l": {"L": []}}, 1 + 3, id="list-empty"),
            pytest.param(
                {"l": {"L": [{"S": "ab"}, {"BOOL": True}]}},
                1 + 3 + (1 + 2) + (1 + 1),
                id="list-one-byte-per-element",
            ),
            pytest.param({"m": {"M": {}}}, 1 + 3, id="map-empty"),
            pytest.param(
                {"m": {"M": {"key": {"S": "ab"}}}}, 1 + 3 + (1 + 3 + 2), id="map-names-count"
            ),
            pytest.param(
                {"m": {"M": {"l": {"L": [{"M": {}}]}}}},
                1 + 3 + (1 + 1 + 3 + (1 + 3)),
                id="nested",
            ),
            pytest.param(
                {"a": {"S": "x"}, "bb": {"N": "7"}}, (1 + 1) + (2 + 2), id="sum-of-attributes"
            ),
        ],
    )
    def test_size(self, item: Item, size: int) -> None:
        """An item's size is its attribute names plus values, with the documented overheads."""
        assert item_size(item) == size


class TestSharedTemplates:
    """Updates of one shape share their expression text; values stay per record."""

    def test_records_edited_alike_share_expressions_not_values(self) -> None:
        """Two records with the same change get the same expressions and their own values."""
        first = records.mutated(_user(user_id="u1", name="a"), lambda u: setattr(u, "name", "A"))
        second = records.mutated(_user(user_id="u2", name="b"), lambda u: setattr(u, "name", "B"))
        one, two = make_plan([first, second], PREFIX).entries
        assert body(one)["UpdateExpression"] is body(two)["UpdateExpression"]
        assert body(one)["Key"] != body(two)["Key"]
        assert records.read_update(body(one)) == {
            ("SET", "name", (("S", "A"),)),
            ("SET", "version", (("N", "1"),)),
            ("SET", "_uow_w1", (("S", first.attempt),)),
        }
        assert records.read_update(body(two)) == {
            ("SET", "name", (("S", "B"),)),
            ("SET", "version", (("N", "1"),)),
            ("SET", "_uow_w1", (("S", second.attempt),)),
        }

    @pytest.mark.parametrize(
        ("make", "condition"),
        [
            pytest.param(
                lambda: records.mutated(_user(version=3), lambda u: setattr(u, "name", "A")),
                "version = 3",
                id="read-version",
            ),
            pytest.param(
                lambda: records.mutated(_user(), lambda u: setattr(u, "name", "A")),
                "version = 0",
                id="version-zero",
            ),
            pytest.param(
                lambda: records.blind(User, "u1", None, Op("SET", ("name",), "A")),
                "exists user_id",
                id="blind",
            ),
            pytest.param(
                lambda: records.mutated(order(), lambda o: setattr(o, "total", Decimal(2))),
                "exists customer_id",
                id="no-version",
            ),
        ],
    )
    def test_the_condition_follows_the_version(
        self, make: Callable[[], Record], condition: str
    ) -> None:
        """The same changed paths under different version rules get different conditions."""
        entry = only(make_plan([make()], PREFIX))
        params = body(entry)
        names = params["ExpressionAttributeNames"]
        values = params.get("ExpressionAttributeValues", {})
        text = params["ConditionExpression"]
        for placeholder, name in names.items():
            text = text.replace(placeholder, name)
        for placeholder, value in values.items():
            text = text.replace(placeholder, value.get("N", "?"))
        readable = text.replace("attribute_exists(", "exists ").rstrip(")")
        assert readable == condition

    def test_many_shapes_stay_correct(self) -> None:
        """More shapes than the template cache holds: each update still says what changed."""
        made = []
        for n in range(600):
            obj = Everything(id=f"e{n}", doc={})
            record = records.loaded(obj)
            obj.doc[f"key{n}"] = n
            made.append(record)
        for n, entry in enumerate(make_plan(made, PREFIX).entries):
            assert records.read_update(body(entry)) == {("SET", f"doc.key{n}", (("N", str(n)),))}


class TestSnapshotOnceConfirmed:
    """An update's confirmed snapshot changes only the fields it writes."""

    def test_unwritten_fields_keep_their_entries(self) -> None:
        """Fields the update does not write keep their snapshot entries, `Absent` marks included."""
        obj, snapshot = EVERYTHING.read({"id": {"S": "e1"}, "text": {"S": "t"}})
        record = Record(
            Key("everything", "e1"),
            info_of(Everything),
            EVERYTHING,
            RecordState.LOADED,
            obj,
            obj,
            snapshot,
        )
        obj.text = "new"
        entry = only(make_plan([record], PREFIX))
        assert entry.new_snapshot is not None
        for name, before, after in zip(EVERYTHING.names, snapshot, entry.new_snapshot, strict=True):
            if name == "text":
                assert after == "new"
            else:
                assert after is before, name


class TestCollector:
    """Planning a large commit pauses the cyclic garbage collector, and only while it plans."""

    @pytest.mark.parametrize("enabled", [True, False])
    def test_collector_state_is_kept(self, enabled: bool) -> None:
        """After planning, the collector is enabled exactly when it was before."""
        made = [records.new(Everything(id=f"e{n}")) for n in range(1_500)]
        was = gc.isenabled()
        try:
            (gc.enable if enabled else gc.disable)()
            plan = make_plan(made, PREFIX)
            assert gc.isenabled() is enabled
        finally:
            (gc.enable if was else gc.disable)()
        assert len(plan.entries) == 1_500

    def test_collector_is_enabled_after_a_failed_plan(self) -> None:
        """A record that cannot be written stops planning; the collector runs again."""
        made = [records.new(Everything(id=f"e{n}")) for n in range(1_500)]
        made.append(records.new(Everything(id="bad", ratio=math.inf)))
        assert gc.isenabled()
        with pytest.raises(ValidationError, match="not finite"):
            make_plan(made, PREFIX)
        assert gc.isenabled()


class TestExactlyOnce:
    """Writes carry what lets a re-send after a lost answer land once: markers or tokens."""

    def test_blind_add_without_version_is_a_transaction(self) -> None:
        """An unversioned ADD has no condition refusing a second copy: it goes with a token."""
        record = records.blind(Order, "c1", "o1", Op("ADD", ("total",), Decimal(2)))
        plan = make_plan([record], PREFIX)
        entry = only(plan)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert entry.token_only
        assert entry.marker is None

    def test_loaded_add_without_version_is_a_transaction(self) -> None:
        """A loaded record whose counter changed only by `update(add=...)` is sent with a token."""
        record = records.loaded(order(total=Decimal(1)))
        record.obj.total += 2
        record.adds = {"total": Decimal(2)}
        plan = make_plan([record], PREFIX)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert only(plan).token_only

    def test_set_only_update_without_version_is_plain(self) -> None:
        """An idempotent update (SET/REMOVE only) stays a plain `UpdateItem`, with no marker."""
        record = records.blind(Order, "c1", "o1", Op("SET", ("status",), "paid"))
        plan = make_plan([record], PREFIX)
        assert apis(plan) == (["UpdateItem"], [])
        assert only(plan).marker is None
        assert not only(plan).token_only

    def test_blind_versioned_update_is_a_transaction(self) -> None:
        """A blind update of a versioned model bumps the version with ADD: it goes with a token."""
        record = records.blind(User, "u1", None, Op("SET", ("name",), "Ann"))
        plan = make_plan([record], PREFIX)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert only(plan).token_only

    def test_versioned_add_is_a_plain_update_with_a_marker(self) -> None:
        """The version condition refuses a second copy of a versioned ADD: no token needed."""
        record = records.loaded(_user(version=2))
        record.obj.score += 5
        record.adds = {"score": 5}
        plan = make_plan([record], PREFIX)
        entry = only(plan)
        assert apis(plan) == (["UpdateItem"], [])
        assert entry.marker == ("_uow_w3", record.attempt)
        assert ("ADD", "score", (("N", "5"),)) in records.read_update(body(entry))

    @pytest.mark.parametrize(
        ("version", "slot"),
        [
            pytest.param(0, "_uow_w1", id="first"),
            pytest.param(30, "_uow_w31", id="last-slot"),
            pytest.param(31, "_uow_w0", id="wraps"),
        ],
    )
    def test_marker_slot_is_the_new_version_modulo_32(self, version: int, slot: str) -> None:
        """The write that makes version n stores its token in `_uow_w{n % 32}`."""
        record = records.mutated(_user(version=version), lambda u: setattr(u, "name", "B"))
        entry = only(make_plan([record], PREFIX))
        assert entry.marker == (slot, record.attempt)

    def test_versioned_create_marks_its_version_slot(self) -> None:
        """A versioned create (version 0 → 1) stores its token in `_uow_w1`."""
        record = records.new(_user())
        entry = only(make_plan([record], PREFIX))
        assert entry.marker == ("_uow_w1", record.attempt)
        assert entry.actions[0].body["Item"]["_uow_w1"] == {"S": record.attempt}

    def test_token_is_kept_until_the_change_is_confirmed(self) -> None:
        """Planning the same pending change twice reuses its token; a new change gets a new one."""
        record = records.new(order())
        first = only(make_plan([record], PREFIX)).marker
        again = only(make_plan([record], PREFIX)).marker
        assert first == again
        record.attempt = None
        assert only(make_plan([record], PREFIX)).marker != first

    def test_a_blind_list_remove_goes_with_a_token(self) -> None:
        """REMOVE of a list element shifts the list again if re-sent: it needs the token."""
        record = records.blind(Order, "c1", "o1", Op("REMOVE", ("lines", 0)))
        plan = make_plan([record], PREFIX)
        assert apis(plan) == (["TransactWriteItems"], [])
        assert only(plan).token_only
