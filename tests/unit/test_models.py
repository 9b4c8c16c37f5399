"""Model declarations for single-table design: `@uow.model` checks and the merged table definition."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

import uow
from tests.models import APP_MODELS, Customer, Invoice
from uow._items import expired, model_of_item, rows_are_whole
from uow._tables import table_spec
from uow.codec import codec_for
from uow.identity import key_size_error
from uow.plan import guard_key


def infos(*models: type) -> list[uow.ModelInfo]:
    """The `ModelInfo` of each model."""
    return [uow.info_of(model) for model in models]


def declare(**options: Any) -> type:
    """A model of table `app` (pk/sk strings, `status: str | None`) declared with `options`."""
    settings: dict[str, Any] = {"table": "app", "pk": "pk", "sk": "sk", **options}

    @uow.model(**settings)
    @attrs.define
    class Item:
        pk: str
        sk: str
        status: str | None = None
        count: int = 0
        when: dt.datetime | None = None

    return Item


class TestDeclaration:
    """`@uow.model` refuses malformed single-table options when the class is declared."""

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            pytest.param({"kind": ""}, "kind= must be a non-empty string", id="empty-kind"),
            pytest.param({"kind_attribute": ""}, "kind_attribute= must be", id="empty-attr"),
            pytest.param({"kind_attribute": "status"}, "is a field", id="attr-is-a-field"),
            pytest.param({"ttl": "nope"}, "has no field 'nope'", id="unknown-ttl"),
            pytest.param({"ttl": "status"}, "must be a datetime", id="str-ttl"),
            pytest.param({"unique": "status"}, "takes a tuple of fields", id="unique-string"),
            pytest.param({"unique": (("status", "status"),)}, "names a field twice", id="twice"),
            pytest.param({"unique": (("status", "x"),)}, "has no field 'x'", id="unknown-unique"),
            pytest.param({"unique": ((),)}, "is not a field name", id="empty-tuple"),
            pytest.param({"unique": ("status", ("status",))}, "declared twice", id="duplicate"),
            pytest.param(
                {"indexes": {"i": uow.Index("status", projection=("x",))}},
                "has no field 'x'",
                id="unknown-projected",
            ),
        ],
    )
    def test_refused(self, options: dict[str, Any], message: str) -> None:
        """Each malformed option raises `ValidationError` naming the problem."""
        with pytest.raises(uow.ValidationError, match=message):
            declare(**options)

    def test_a_projection_is_all_keys_or_fields(self) -> None:
        """`Index.projection` accepts "all", "keys" or field names; anything else is refused."""
        assert uow.Index("a").projection == "all"
        assert uow.Index("a", projection="keys").projection == "keys"
        assert uow.Index("a", projection=["b", "c"]).projection == ("b", "c")
        with pytest.raises(uow.ValidationError, match="projection"):
            uow.Index("a", projection="some")

    def test_unique_entries_are_normalised(self) -> None:
        """One field is a one-field constraint; `unique_fields` lists every field once."""
        info = uow.info_of(declare(unique=("status", ("status", "count"))))
        assert info.unique == (("status",), ("status", "count"))
        assert info.unique_fields == ("status", "count")

    def test_the_kind_defaults(self) -> None:
        """No kind by default; the attribute is `_kind` unless renamed."""
        info = uow.info_of(declare())
        assert (info.kind, info.kind_attribute, info.ttl) == (None, "_kind", None)


class TestGuardKeys:
    """Guard keys are unambiguous, and scoped by kind."""

    def test_a_single_field_keeps_the_0_1_format(self) -> None:
        """A model without kind: `table#field#s:value`, as 0.1.0 stored it."""
        info = uow.info_of(declare(unique=("status",)))
        assert guard_key(info, ("status",), ("x",)) == "app#status#s:x"

    def test_a_kind_scopes_the_guard(self) -> None:
        """Models sharing a table do not share guards."""
        info = uow.info_of(declare(kind="a", unique=("status",)))
        assert guard_key(info, ("status",), ("x",)) == "app#a#status#s:x"

    def test_compound_values_cannot_collide(self) -> None:
        """Values holding the separator still make distinct keys."""
        info = uow.info_of(Invoice)
        one = guard_key(info, ("tenant", "number"), ('a", "n:1', 1))
        two = guard_key(info, ("tenant", "number"), ("a", 1))
        assert one != two


class TestTableSpec:
    """`create_tables` merges the models of one table, or refuses them before any request."""

    def test_the_union_of_indexes(self) -> None:
        """Customer's and Invoice's indexes on one table, with their projections."""
        spec = table_spec("app", infos(*APP_MODELS))
        projections = {
            index["IndexName"]: index["Projection"]["ProjectionType"]
            for index in spec.params["GlobalSecondaryIndexes"]
        }
        assert projections == {"by_number": "INCLUDE", "by_slug": "ALL", "open": "KEYS_ONLY"}
        assert spec.ttl == "expires_at"

    def test_a_sparse_index_key_takes_the_inner_type(self) -> None:
        """`status: str | None` is an `S` attribute."""
        spec = table_spec("app", infos(declare(indexes={"i": uow.Index("status")})))
        assert {"AttributeName": "status", "AttributeType": "S"} in spec.params[
            "AttributeDefinitions"
        ]

    @pytest.mark.parametrize(
        ("models", "message"),
        [
            pytest.param(
                lambda: (declare(kind="a"), declare(kind="a")), "share table .* kind 'a'", id="kind"
            ),
            pytest.param(lambda: (declare(kind="a"), declare()), "has no kind=", id="no-kind"),
            pytest.param(
                lambda: (declare(kind="a"), declare(kind="b", kind_attribute="t")),
                "name the kind attribute differently",
                id="kind-attribute",
            ),
            pytest.param(
                lambda: (declare(kind="a", ttl="count"), declare(kind="b", ttl="when")),
                "different TTL attributes",
                id="ttl",
            ),
            pytest.param(
                lambda: (
                    declare(kind="a", indexes={"i": uow.Index("status")}),
                    declare(kind="b", indexes={"i": uow.Index("status", projection="keys")}),
                ),
                "declare index 'i' differently",
                id="index",
            ),
            pytest.param(
                lambda: (
                    declare(kind="a", indexes={"i": uow.Index("status")}),
                    declare(kind="b", indexes={"j": uow.Index("count")}),
                    declare(kind="c", indexes={"k": uow.Index("status", "count")}),
                ),
                None,
                id="agreeing",
            ),
            pytest.param(
                lambda: (declare(kind="a", indexes={"i": uow.Index("when")}),),
                "key attribute of type datetime",
                id="key-type",
            ),
        ],
    )
    def test_disagreements(self, models: Any, message: str | None) -> None:
        """Each disagreement raises `ValidationError`; agreeing models merge."""
        declared = infos(*models())
        if message is None:
            assert table_spec("app", declared).params["TableName"] == "app"
        else:
            with pytest.raises(uow.ValidationError, match=message):
                table_spec("app", declared)

    def test_index_key_types_must_agree(self) -> None:
        """`status` is a string in one model and a number in the other: refused."""

        @uow.model(table="app", pk="pk", sk="sk", kind="n", indexes={"x": uow.Index("status")})
        @attrs.define
        class Numbered:
            pk: str
            sk: str
            status: int | None = None

        other = declare(kind="s", indexes={"y": uow.Index("status")})
        with pytest.raises(uow.ValidationError, match="type of key attribute 'status'"):
            table_spec("app", infos(Numbered, other))

    def test_an_optional_table_key_is_refused(self) -> None:
        """Only index keys may be optional."""

        @uow.model(table="t", pk="id")
        @attrs.define
        class Loose:
            id: str | None = None

        with pytest.raises(uow.ValidationError, match="cannot be optional"):
            table_spec("t", infos(Loose))


class TestItems:
    """How a stored item is read: its kind, its expiry, whether an index row is whole."""

    def test_model_of_item(self) -> None:
        """The model of the item's kind among those asked for; a kindless model takes all."""
        customer, invoice = infos(Customer, Invoice)
        item = {"_kind": {"S": "invoice"}}
        assert model_of_item([customer, invoice], item) is invoice
        assert model_of_item([customer], item) is None
        assert model_of_item([customer], {}) is None
        assert model_of_item(infos(declare()), item) is not None

    @pytest.mark.parametrize(
        ("stored", "now", "expected"),
        [
            pytest.param({"N": "100"}, 99.5, False, id="future"),
            pytest.param({"N": "100"}, 100.0, True, id="now"),
            pytest.param({"N": "100"}, 101.0, True, id="past"),
            pytest.param({"S": "100"}, 101.0, False, id="not-a-number"),
            pytest.param(None, 101.0, False, id="absent"),
        ],
    )
    def test_expired(self, stored: Any, now: float, expected: bool) -> None:
        """An item expires once its epoch seconds are reached; only Numbers count."""
        item = {} if stored is None else {"expires_at": stored}
        assert expired(uow.info_of(Invoice), item, now) is expected

    def test_whole_rows(self) -> None:
        """The table and ALL indexes hold whole items; KEYS_ONLY and a partial INCLUDE do not."""
        customer, invoice = infos(Customer, Invoice)
        assert rows_are_whole([invoice], None)
        assert rows_are_whole([customer], "by_slug")
        assert not rows_are_whole([invoice], "open")
        assert not rows_are_whole([invoice], "by_number")
        every = declare(indexes={"i": uow.Index("status", projection=("count", "when"))})
        assert rows_are_whole(infos(every), "i")


class TestTtlCodec:
    """A TTL `datetime` is stored as whole epoch seconds and reads back in UTC."""

    def test_round_trip(self) -> None:
        """Sub-second precision is dropped; the instant is kept."""
        codec = codec_for(declare(ttl="when"))
        when = dt.datetime(2030, 5, 6, 7, 8, 9, 500, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
        item = codec.encode_item(codec.cls("p", "s", when=when))
        assert item["when"] == {"N": str(int(when.timestamp()))}
        assert codec.decode_item(item).when == when.replace(microsecond=0)

    def test_a_naive_datetime_is_refused(self) -> None:
        """As for every datetime field: an aware one is needed."""
        codec = codec_for(declare(ttl="when"))
        with pytest.raises(uow.ValidationError, match="naive datetime"):
            codec.encode_item(codec.cls("p", "s", when=dt.datetime(2030, 1, 1)))


class TestLimits:
    """DynamoDB's nesting and key-size limits, at the boundary and one past it."""

    @staticmethod
    def nested(levels: int, container: type) -> Any:
        """`levels` maps (or lists) inside one another, around a number."""
        value: Any = 1
        for _ in range(levels):
            value = {"a": value} if container is dict else [value]
        return value

    @pytest.mark.parametrize("container", [dict, list], ids=["map", "list"])
    def test_nesting(self, container: type) -> None:
        """31 containers in a field (32 levels with the item) encode; 32 raise."""
        any_codec = codec_for(AnyDoc)
        any_codec.encode_item(AnyDoc("d", self.nested(31, container)))
        with pytest.raises(uow.ValidationError, match="nested 33 levels deep"):
            any_codec.encode_item(AnyDoc("d", self.nested(32, container)))

    def test_nested_attrs_classes_count_too(self) -> None:
        """A chain of nested attrs classes is a chain of maps."""
        value: Any = None
        for _ in range(32):
            value = Link(value)
        with pytest.raises(uow.ValidationError, match="nested 33 levels deep"):
            codec_for(Chain).encode_item(Chain("c", value))
        codec_for(Chain).encode_item(Chain("c", value.next))

    @pytest.mark.parametrize(
        ("value", "sort", "problem"),
        [
            pytest.param("é" * 1024, False, False, id="pk-2048"),
            pytest.param("é" * 1024 + "x", False, True, id="pk-2049"),
            pytest.param(b"x" * 2048, False, False, id="binary-pk-2048"),
            pytest.param(b"x" * 2049, False, True, id="binary-pk-2049"),
            pytest.param("x" * 1024, True, False, id="sk-1024"),
            pytest.param("x" * 1025, True, True, id="sk-1025"),
            pytest.param(10**37, True, False, id="number"),
        ],
    )
    def test_key_sizes(self, value: Any, sort: bool, problem: bool) -> None:
        """A key value is measured in bytes (UTF-8 for strings) against its own limit."""
        assert (key_size_error(value, sort=sort) is not None) is problem


@uow.model(table="anydocs", pk="id")
@attrs.define
class AnyDoc:
    """A free-form body."""

    id: str
    body: Any = None


@attrs.define
class Link:
    """One link of a chain of nested attrs classes."""

    next: Link | None = None


@uow.model(table="chains", pk="id")
@attrs.define
class Chain:
    """A model holding a chain of links."""

    id: str
    head: Link | None = None
