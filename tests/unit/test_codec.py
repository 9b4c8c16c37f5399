"""The codec: attrs instances ⇄ DynamoDB attribute values, snapshots and diffs."""

from __future__ import annotations

import copy
import datetime as dt
import enum
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.models import Address, Everything, Priority, Status
from uow import SchemaError, ValidationError
from uow.codec import AttributeValue, Item, ModelCodec, codec_for

UTC = dt.UTC
PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))
CODEC = codec_for(Everything)


def encode_field(name: str, value: Any) -> AttributeValue | None:
    """The attribute value `Everything.<name> = value` is stored as (None when absent)."""
    item = CODEC.encode_item(Everything(id="e1", **{name: value}))
    return item.get(name)


def canonical(av: Any) -> Any:
    """`av` with set members sorted, so that tests do not depend on set order."""
    if isinstance(av, dict):
        return {
            tag: sorted(value) if tag in ("SS", "NS", "BS") else canonical(value)
            for tag, value in av.items()
        }
    if isinstance(av, list):
        return [canonical(v) for v in av]
    return av


def diff_of(snapshot: tuple[Any, ...], obj: Any, codec: ModelCodec = CODEC) -> list[Any]:
    """The SET/REMOVE operations the codec emits from `snapshot` to `obj`."""
    out: list[Any] = []
    codec.diff(snapshot, obj, out)
    return out


# -- hypothesis strategies ---------------------------------------------------------------

MAX_38_DIGITS = 10**38 - 1

texts = st.text(max_size=8)
ints = st.integers(min_value=-MAX_38_DIGITS, max_value=MAX_38_DIGITS)
# DynamoDB numbers: zero, or a magnitude in [1E-130, 1E+126). Every float has < 38 digits.
floats = st.one_of(
    st.just(0.0),
    st.just(-0.0),
    st.floats(min_value=1e-130, max_value=9.999e125),
    st.floats(min_value=-9.999e125, max_value=-1e-130),
)
# Floats that `repr` writes in plain notation (with a point): what an `Any` field reads
# back as a float (see TestAnyNumbers for the exponent-notation case).
plain_floats = st.one_of(
    st.floats(min_value=1e-4, max_value=1e15),
    st.floats(min_value=-1e15, max_value=-1e-4),
)
# Up to 38 significant digits, and an exponent that keeps the magnitude in range.
decimals = st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(min_value=-MAX_38_DIGITS, max_value=MAX_38_DIGITS),
    st.integers(min_value=-130, max_value=88),
)
timezones = st.one_of(
    st.just(UTC),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
    ),
)
aware_datetimes = st.datetimes(timezones=timezones)
small_sets_of_text = st.sets(texts, max_size=3)
addresses = st.builds(
    Address,
    city=texts,
    street=texts,
    zip=st.none() | texts,
    codes=small_sets_of_text,
)


def any_values(*, scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of an `Any` field that read back equal: documents of `scalars`, plus sets."""
    leaves = st.one_of(
        scalars,
        st.sets(texts, min_size=1, max_size=3),
        st.sets(ints, min_size=1, max_size=3),
        st.sets(st.binary(max_size=4), min_size=1, max_size=3),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=6,
    )


# Bool and float scalars are left out of `diff_anys`: True == 1 == 1.0 in Python, yet they
# are stored as different DynamoDB types, so the diff rightly reports a change between them.
round_trip_anys = any_values(
    scalars=st.one_of(st.none(), st.booleans(), ints, texts, st.binary(max_size=4), plain_floats)
)
diff_anys = any_values(scalars=st.one_of(st.none(), ints, texts, st.binary(max_size=4)))


def field_strategies(anys: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    """One strategy per field of `Everything`."""
    return {
        "id": st.text(min_size=1, max_size=8),
        "text": texts,
        "count": ints,
        "ratio": floats,
        "amount": decimals,
        "flag": st.booleans(),
        "blob": st.binary(max_size=8),
        "maybe": st.none() | texts,
        "when": st.none() | aware_datetimes,
        "status": st.sampled_from(Status),
        "priority": st.sampled_from(Priority),
        "words": st.lists(texts, max_size=3),
        "nested_lists": st.lists(st.lists(ints, max_size=3), max_size=3),
        "scores": st.dictionaries(texts, floats, max_size=3),
        "names": small_sets_of_text,
        "numbers": st.sets(ints, max_size=3),
        "blobs": st.sets(st.binary(max_size=4), max_size=3),
        "address": st.none() | addresses,
        "addresses": st.lists(addresses, max_size=2),
        "anything": anys,
        "doc": st.dictionaries(texts, anys, max_size=3),
    }


ROUND_TRIP_FIELDS = field_strategies(round_trip_anys)
DIFF_FIELDS = field_strategies(diff_anys)
everything = st.builds(Everything, **ROUND_TRIP_FIELDS)
diffable_everything = st.builds(Everything, **DIFF_FIELDS)


def mutables(value: Any) -> Iterator[Any]:
    """Every mutable container reachable from `value` (lists, dicts, sets, attrs instances)."""
    if isinstance(value, list | dict | set | bytearray) or attrs.has(type(value)):
        yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from mutables(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from mutables(item)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from mutables(getattr(value, field.name))


def mutate_everything_inside(obj: Any) -> None:
    """Change every mutable container reachable from `obj`'s fields, in place."""
    found = [m for field in attrs.fields(type(obj)) for m in mutables(getattr(obj, field.name))]
    for container in found:
        if isinstance(container, list):
            container.append("mutated")
        elif isinstance(container, dict):
            container["mutated"] = "mutated"
        elif isinstance(container, set):
            container.add("mutated")
        elif isinstance(container, Address):
            container.city += " (mutated)"


# -- tests ------------------------------------------------------------------------------


class TestEncode:
    """Each supported field type is stored as the DynamoDB attribute value it maps to."""

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            pytest.param("text", "héllo", {"S": "héllo"}, id="str"),
            pytest.param("text", "", {"S": ""}, id="str-empty"),
            pytest.param("count", 42, {"N": "42"}, id="int"),
            pytest.param("count", -7, {"N": "-7"}, id="int-negative"),
            pytest.param("count", MAX_38_DIGITS, {"N": "9" * 38}, id="int-38-digits"),
            pytest.param("count", 10**125, {"N": "1" + "0" * 125}, id="int-1e125"),
            pytest.param("ratio", 1.5, {"N": "1.5"}, id="float"),
            pytest.param("ratio", 2, {"N": "2"}, id="float-given-an-int"),
            pytest.param("ratio", 1e-130, {"N": "1e-130"}, id="float-smallest-magnitude"),
            pytest.param("amount", Decimal("12.50"), {"N": "12.50"}, id="decimal"),
            pytest.param("amount", Decimal("-0.001"), {"N": "-0.001"}, id="decimal-negative"),
            pytest.param("amount", Decimal("1E-130"), {"N": "1E-130"}, id="decimal-1e-130"),
            pytest.param(
                "amount",
                Decimal("9" * 38 + "E88"),
                {"N": "9.9999999999999999999999999999999999999E+125"},
                id="decimal-largest",
            ),
            pytest.param(
                "amount",
                Decimal("1" * 38),
                {"N": "1" * 38},
                id="decimal-38-digits",
            ),
            pytest.param("flag", True, {"BOOL": True}, id="bool"),
            pytest.param("blob", b"\x00\xff", {"B": b"\x00\xff"}, id="bytes"),
            pytest.param("maybe", "x", {"S": "x"}, id="optional-present"),
            pytest.param(
                "when",
                dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
                {"S": "2024-05-01T12:30:00+00:00"},
                id="datetime-utc",
            ),
            pytest.param(
                "when",
                dt.datetime(2024, 5, 1, 12, 30, 0, 250, tzinfo=PARIS_SUMMER),
                {"S": "2024-05-01T12:30:00.000250+02:00"},
                id="datetime-offset",
            ),
            pytest.param("status", Status.PAID, {"S": "paid"}, id="enum"),
            pytest.param("priority", Priority.HIGH, {"N": "2"}, id="int-enum"),
            pytest.param("words", ["a", "b"], {"L": [{"S": "a"}, {"S": "b"}]}, id="list"),
            pytest.param("words", [], {"L": []}, id="list-empty"),
            pytest.param(
                "nested_lists",
                [[1], []],
                {"L": [{"L": [{"N": "1"}]}, {"L": []}]},
                id="list-of-lists",
            ),
            pytest.param("scores", {"a": 0.5}, {"M": {"a": {"N": "0.5"}}}, id="dict"),
            pytest.param("scores", {}, {"M": {}}, id="dict-empty"),
            pytest.param("names", {"b", "a"}, {"SS": ["a", "b"]}, id="set-str"),
            pytest.param("numbers", {10, -1}, {"NS": ["-1", "10"]}, id="set-int"),
            pytest.param("blobs", {b"x", b"y"}, {"BS": [b"x", b"y"]}, id="set-bytes"),
            pytest.param("names", frozenset({"a"}), {"SS": ["a"]}, id="frozenset"),
            pytest.param(
                "address",
                Address(city="Paris", codes={"75"}),
                {"M": {"city": {"S": "Paris"}, "street": {"S": ""}, "codes": {"SS": ["75"]}}},
                id="nested-attrs-absent-inner-fields",
            ),
            pytest.param(
                "addresses",
                [Address(city="Oslo", zip="0150")],
                {"L": [{"M": {"city": {"S": "Oslo"}, "street": {"S": ""}, "zip": {"S": "0150"}}}]},
                id="list-of-attrs",
            ),
            pytest.param("anything", "s", {"S": "s"}, id="any-str"),
            pytest.param("anything", 3, {"N": "3"}, id="any-int"),
            pytest.param("anything", 0.25, {"N": "0.25"}, id="any-float"),
            pytest.param("anything", Decimal("1.10"), {"N": "1.10"}, id="any-decimal"),
            pytest.param("anything", False, {"BOOL": False}, id="any-bool"),
            pytest.param("anything", b"b", {"B": b"b"}, id="any-bytes"),
            pytest.param(
                "anything",
                [1, "a", None],
                {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]},
                id="any-list-with-null",
            ),
            pytest.param("anything", ("a",), {"L": [{"S": "a"}]}, id="any-tuple"),
            pytest.param("anything", {"k": {"a"}}, {"M": {"k": {"SS": ["a"]}}}, id="any-map"),
            pytest.param("anything", {1, 2}, {"NS": ["1", "2"]}, id="any-set"),
            pytest.param("anything", Status.OPEN, {"S": "open"}, id="any-enum"),
            pytest.param(
                "anything",
                dt.datetime(2024, 1, 1, tzinfo=UTC),
                {"S": "2024-01-01T00:00:00+00:00"},
                id="any-datetime",
            ),
            pytest.param(
                "anything",
                Address(city="Rome"),
                {"M": {"city": {"S": "Rome"}, "street": {"S": ""}}},
                id="any-attrs",
            ),
            pytest.param("doc", {"x": None}, {"M": {"x": {"NULL": True}}}, id="null-in-map"),
        ],
    )
    def test_encodes(self, field: str, value: Any, expected: AttributeValue) -> None:
        """A field value is stored as the expected attribute value."""
        assert canonical(encode_field(field, value)) == canonical(expected)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            pytest.param("maybe", None, id="optional-none"),
            pytest.param("when", None, id="optional-datetime-none"),
            pytest.param("address", None, id="optional-attrs-none"),
            pytest.param("anything", None, id="any-none"),
            pytest.param("anything", set(), id="any-empty-set"),
            pytest.param("names", set(), id="set-str-empty"),
            pytest.param("numbers", set(), id="set-int-empty"),
            pytest.param("blobs", frozenset(), id="set-bytes-empty"),
        ],
    )
    def test_nothing_is_an_absent_attribute(self, field: str, value: Any) -> None:
        """`None` and an empty set in a field leave the attribute out of the item."""
        assert encode_field(field, value) is None

    def test_whole_item(self) -> None:
        """A default instance encodes every field that holds something, and nothing else."""
        item = CODEC.encode_item(Everything(id="e1"))
        assert set(item) == {
            "id",
            "text",
            "count",
            "ratio",
            "amount",
            "flag",
            "blob",
            "status",
            "priority",
            "words",
            "nested_lists",
            "scores",
            "addresses",
            "doc",
        }
        assert item["id"] == {"S": "e1"}


class TestEncodeErrors:
    """Values DynamoDB cannot hold raise `ValidationError` naming the path, before any request."""

    @pytest.mark.parametrize(
        ("field", "value", "match"),
        [
            pytest.param("when", dt.datetime(2024, 5, 1, 12, 30), "naive datetime", id="naive"),
            pytest.param("ratio", float("nan"), "not finite", id="float-nan"),
            pytest.param("ratio", float("inf"), "not finite", id="float-inf"),
            pytest.param("ratio", float("-inf"), "not finite", id="float-minus-inf"),
            pytest.param("scores", {"a": float("nan")}, r"scores\.a", id="float-nan-in-map"),
            pytest.param("anything", [float("inf")], r"anything\[0\]", id="float-inf-in-any"),
            pytest.param("ratio", 1e126, "range", id="float-too-large"),
            pytest.param("ratio", 5e-324, "range", id="float-too-small"),
            pytest.param("amount", Decimal("NaN"), "not finite", id="decimal-nan"),
            pytest.param("amount", Decimal("-Infinity"), "not finite", id="decimal-inf"),
            pytest.param("amount", Decimal("1E126"), "range", id="decimal-too-large"),
            pytest.param("amount", Decimal("1E-131"), "range", id="decimal-too-small"),
            pytest.param("amount", Decimal("1" * 39), "significant digits", id="decimal-39-digits"),
            pytest.param(
                "amount",
                Decimal("1234567890123456789012345678901234567890"),
                "significant digits",
                id="decimal-39-digits-and-a-trailing-zero",
            ),
            pytest.param(
                "amount", Decimal("0." + "1" * 39), "significant digits", id="decimal-39-decimals"
            ),
            pytest.param("count", int("1" * 39), "significant digits", id="int-39-digits"),
            pytest.param("count", 10**126, "range", id="int-too-large"),
            pytest.param("numbers", {int("1" * 39)}, "significant digits", id="int-in-set"),
            pytest.param("text", 5, "expected str", id="int-as-str"),
            pytest.param("count", "5", "expected int", id="str-as-int"),
            pytest.param("count", True, "expected int", id="bool-as-int"),
            pytest.param("count", 1.5, "expected int", id="float-as-int"),
            pytest.param("ratio", "1.5", "expected float", id="str-as-float"),
            pytest.param("amount", 1.5, "expected Decimal", id="float-as-decimal"),
            pytest.param("flag", 1, "expected bool", id="int-as-bool"),
            pytest.param("blob", "x", "expected bytes", id="str-as-bytes"),
            pytest.param("when", "2024-05-01", "expected datetime", id="str-as-datetime"),
            pytest.param("status", "open", "expected Status", id="str-as-enum"),
            pytest.param("priority", 1, "expected Priority", id="int-as-int-enum"),
            pytest.param("words", "abc", "expected list", id="str-as-list"),
            pytest.param("words", [1], r"words\[0\]: expected str", id="wrong-list-element"),
            pytest.param("scores", [], "expected dict", id="list-as-dict"),
            pytest.param("names", ["a"], r"expected set\[str\]", id="list-as-set"),
            pytest.param("names", {1}, r"expected str in set\[str\]", id="int-in-set-str"),
            pytest.param("numbers", {True}, r"expected int in set\[int\]", id="bool-in-set-int"),
            pytest.param("address", {"city": "x"}, "expected Address", id="dict-as-attrs"),
            pytest.param("anything", object(), "cannot store a object", id="any-object"),
            pytest.param("anything", {1.5}, "sets may hold", id="any-set-of-floats"),
            pytest.param("anything", {True}, "sets may hold", id="any-set-of-bools"),
            pytest.param("anything", {1, "a"}, "expected", id="any-mixed-set"),
            pytest.param("doc", {"x": set()}, r"doc\.x: an empty set", id="empty-set-in-map"),
            pytest.param(
                "anything", [{"a"}, set()], r"anything\[1\]: an empty set", id="empty-set-in-list"
            ),
            pytest.param("scores", {1: 1.0}, "map keys must be str", id="int-key"),
            pytest.param("doc", {("a",): 1}, "map keys must be str", id="tuple-key"),
            pytest.param("anything", {None: 1}, "map keys must be str", id="none-key-in-any"),
            pytest.param(
                "address",
                Address(city=5),  # type: ignore[arg-type]  # the wrong type is the point
                r"address\.city: expected str",
                id="wrong-type-in-nested-attrs",
            ),
        ],
    )
    def test_refused(self, field: str, value: Any, match: str) -> None:
        """A value of the wrong type or outside DynamoDB's limits raises `ValidationError`."""
        with pytest.raises(ValidationError, match=match):
            encode_field(field, value)

    def test_validation_error_is_a_value_error(self) -> None:
        """Callers may catch the builtin `ValueError`."""
        with pytest.raises(ValueError, match="naive datetime"):
            encode_field("when", dt.datetime(2024, 1, 1))


@attrs.define
class _Point:
    """A class with no unsupported field."""

    x: int = 0


@attrs.define
class _FloatSet:
    """DynamoDB sets hold no floats."""

    values: set[float] = attrs.Factory(set)


@attrs.define
class _IntKeys:
    """DynamoDB map keys are strings."""

    values: dict[int, str] = attrs.Factory(dict)


@attrs.define
class _Arbitrary:
    """A plain class is not storable."""

    value: _Unstorable | None = None


class _Unstorable:
    """Neither attrs nor a supported scalar."""


class TestCompileType:
    """Field types DynamoDB cannot store are refused when the codec is built."""

    @pytest.mark.parametrize(
        ("cls", "match"),
        [
            pytest.param(_FloatSet, r"_FloatSet\.values: DynamoDB sets hold", id="set-of-float"),
            pytest.param(_IntKeys, r"_IntKeys\.values: DynamoDB map keys", id="dict-int-keys"),
            pytest.param(_Arbitrary, r"_Arbitrary\.value: cannot store", id="plain-class"),
        ],
    )
    def test_unsupported_field_type(self, cls: type, match: str) -> None:
        """Building the codec of a class with an unsupported field type raises."""
        with pytest.raises(ValidationError, match=match):
            codec_for(cls)

    def test_codec_is_cached(self) -> None:
        """`codec_for` returns one codec per class."""
        assert codec_for(_Point) is codec_for(_Point)


class TestDecode:
    """Stored attribute values read back as the field's declared type."""

    @pytest.mark.parametrize(
        ("field", "av", "expected", "kind"),
        [
            pytest.param("ratio", {"N": "2"}, 2.0, float, id="float-from-integral-number"),
            pytest.param("ratio", {"N": "0.1"}, 0.1, float, id="float"),
            pytest.param("count", {"N": "7"}, 7, int, id="int"),
            pytest.param("count", {"N": "1E+2"}, 100, int, id="int-from-exponent"),
            pytest.param("amount", {"N": "0.10"}, Decimal("0.10"), Decimal, id="decimal-exact"),
            pytest.param("blob", {"B": bytearray(b"z")}, b"z", bytes, id="bytes"),
            pytest.param(
                "when",
                {"S": "2024-05-01T12:30:00+02:00"},
                dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
                dt.datetime,
                id="datetime",
            ),
            pytest.param("status", {"S": "cancelled"}, Status.CANCELLED, Status, id="enum"),
            pytest.param("priority", {"N": "2"}, Priority.HIGH, Priority, id="int-enum"),
            pytest.param("numbers", {"NS": ["1", "2"]}, {1, 2}, set, id="set-int"),
            pytest.param(
                "words", {"L": [{"S": "a"}, {"NULL": True}]}, ["a", None], list, id="null"
            ),
            pytest.param("anything", {"N": "3"}, 3, int, id="any-integral-number"),
            pytest.param("anything", {"N": "3.5"}, 3.5, float, id="any-fraction"),
            pytest.param("anything", {"NS": ["1", "2.5"]}, {1, 2.5}, set, id="any-number-set"),
            pytest.param("anything", {"BS": [b"a"]}, {b"a"}, set, id="any-bytes-set"),
            pytest.param(
                "anything",
                {"M": {"a": {"L": [{"BOOL": True}, {"NULL": True}]}}},
                {"a": [True, None]},
                dict,
                id="any-document",
            ),
        ],
    )
    def test_decodes(self, field: str, av: AttributeValue, expected: Any, kind: type) -> None:
        """An attribute value reads back as the expected value and type."""
        value = getattr(CODEC.decode_item({"id": {"S": "e1"}, field: av}), field)
        assert value == expected
        assert type(value) is kind

    def test_datetime_keeps_its_offset(self) -> None:
        """A datetime reads back with the UTC offset it was written with."""
        when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=PARIS_SUMMER)
        decoded = CODEC.decode_item(CODEC.encode_item(Everything(id="e1", when=when)))
        assert decoded.when.utcoffset() == dt.timedelta(hours=2)

    def test_absent_attributes(self) -> None:
        """Absent attributes read back as `None`, an empty set, or the field's default."""
        decoded = CODEC.decode_item({"id": {"S": "e1"}})
        assert decoded == Everything(id="e1")
        assert decoded.maybe is None
        assert decoded.address is None
        assert decoded.anything is None
        assert decoded.names == set()
        assert decoded.text == ""
        assert decoded.status is Status.OPEN
        assert decoded.words == []

    def test_absent_attributes_get_fresh_defaults(self) -> None:
        """Two decoded objects never share a default container."""
        first = CODEC.decode_item({"id": {"S": "e1"}})
        second = CODEC.decode_item({"id": {"S": "e2"}})
        assert first.words is not second.words
        assert first.names is not second.names
        assert first.doc is not second.doc

    def test_absent_required_field_in_nested_attrs(self) -> None:
        """A nested class's required field with no attribute raises `SchemaError` naming both."""
        with pytest.raises(SchemaError, match=r"Everything\.address: Address\.city: .* no default"):
            CODEC.decode_item({"id": {"S": "e1"}, "address": {"M": {}}})

    def test_decode_skips_init(self) -> None:
        """Decoding does not run `__init__`, so stored values are not re-validated."""
        decoded = CODEC.decode_item({"id": {"S": "e1"}, "address": {"M": {"city": {"S": "X"}}}})
        assert decoded.address == Address(city="X")

    @pytest.mark.parametrize(
        ("field", "av"),
        [
            pytest.param("count", {"S": "seven"}, id="string-for-int"),
            pytest.param("status", {"S": "lost"}, id="unknown-enum-value"),
            pytest.param("when", {"S": "yesterday"}, id="malformed-datetime"),
            pytest.param("words", {"SS": ["a"]}, id="set-for-list"),
            pytest.param("count", {"N": "1.5"}, id="fraction-for-int"),
            pytest.param("count", {"NULL": True}, id="null-for-int"),
        ],
    )
    def test_undecodable(self, field: str, av: AttributeValue) -> None:
        """A stored value of the wrong shape raises `SchemaError` naming model and field."""
        with pytest.raises(SchemaError, match=f"Everything.{field}"):
            CODEC.decode_item({"id": {"S": "e1"}, field: av})


class TestAnyNumbers:
    """Numbers in an `Any` field read back as ints when integral, floats otherwise."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(1e23, id="1e23"),
            pytest.param(1e100, id="1e100"),
            pytest.param(-2.5e20, id="-2.5e20"),
            pytest.param(1.5e-7, id="1.5e-7"),
        ],
    )
    def test_float_in_exponent_notation_reads_back_equal(self, value: float) -> None:
        """A float that `repr` writes with an exponent reads back as the same number."""
        decoded = CODEC.decode_item(CODEC.encode_item(Everything(id="e1", anything=value)))
        assert decoded.anything == value


class TestRoundTrip:
    """`decode_item(encode_item(x)) == x` for every supported value."""

    @settings(max_examples=300, deadline=None)
    @given(everything)
    def test_round_trip(self, obj: Everything) -> None:
        """Any instance of every supported type reads back equal."""
        assert CODEC.decode_item(CODEC.encode_item(obj)) == obj

    @settings(deadline=None)
    @given(everything)
    def test_encoding_is_stable(self, obj: Everything) -> None:
        """Encoding a decoded item gives back the same item."""
        item = CODEC.encode_item(obj)
        assert canonical(CODEC.encode_item(CODEC.decode_item(item))) == canonical(item)

    @settings(deadline=None)
    @given(everything)
    def test_decoded_object_shares_nothing_with_the_item(self, obj: Everything) -> None:
        """Mutating a decoded object leaves the item it came from unchanged."""
        item = CODEC.encode_item(obj)
        expected: Item = copy.deepcopy(item)
        mutate_everything_inside(CODEC.decode_item(item))
        assert item == expected


class TestSnapshotAndDiff:
    """`snapshot` freezes committed state; `diff` reports the minimal SET/REMOVE paths."""

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_diff_is_empty_iff_equal(self, data: st.DataObject) -> None:
        """The diff from `a`'s snapshot to `b` is empty exactly when `a == b`."""
        a = data.draw(diffable_everything, label="a")
        b = copy.deepcopy(a)
        for name in data.draw(st.lists(st.sampled_from(sorted(DIFF_FIELDS)), max_size=3)):
            setattr(b, name, data.draw(DIFF_FIELDS[name], label=name))
        assert (diff_of(CODEC.snapshot(a), b) == []) == (a == b)

    @settings(deadline=None)
    @given(diffable_everything, diffable_everything)
    def test_diff_of_unrelated_objects(self, a: Everything, b: Everything) -> None:
        """The diff between two independent objects is empty exactly when they are equal."""
        assert (diff_of(CODEC.snapshot(a), b) == []) == (a == b)

    @settings(deadline=None)
    @given(everything)
    def test_snapshot_of_itself_has_no_diff(self, obj: Everything) -> None:
        """An unchanged object has no diff from its own snapshot."""
        assert diff_of(CODEC.snapshot(obj), obj) == []

    @settings(deadline=None)
    @given(everything)
    def test_snapshot_shares_no_mutable_container(self, obj: Everything) -> None:
        """No list, dict, set or attrs instance is reachable from both object and snapshot."""
        snapshot = CODEC.snapshot(obj)
        in_obj = {id(m) for f in attrs.fields(Everything) for m in mutables(getattr(obj, f.name))}
        in_snapshot = {id(m) for value in snapshot for m in mutables(value)}
        assert not in_obj & in_snapshot

    @settings(deadline=None)
    @given(everything)
    def test_mutating_the_object_leaves_the_snapshot(self, obj: Everything) -> None:
        """Mutating every container of the object in place leaves its snapshot unchanged."""
        snapshot = CODEC.snapshot(obj)
        expected = copy.deepcopy(snapshot)
        mutate_everything_inside(obj)
        assert snapshot == expected

    def test_snapshot_copies_lists_inside_a_tuple(self) -> None:
        """A list inside a tuple held by an `Any` field is copied, so mutating it is a change."""
        obj = Everything(id="e1", anything=(["a"],))
        snapshot = CODEC.snapshot(obj)
        obj.anything[0].append("b")
        assert snapshot[CODEC.names.index("anything")] == (["a"],)
        assert diff_of(snapshot, obj) != []

    def test_restore_puts_the_object_back(self) -> None:
        """`restore` brings an object back to its snapshot and keeps the snapshot intact."""
        obj = Everything(id="e1", words=["a"], address=Address(city="Oslo"))
        snapshot = CODEC.snapshot(obj)
        obj.words.append("b")
        obj.address = None
        CODEC.restore(obj, snapshot)
        assert obj == Everything(id="e1", words=["a"], address=Address(city="Oslo"))
        obj.words.append("c")
        assert snapshot == CODEC.snapshot(Everything(id="e1", words=["a"], address=Address("Oslo")))

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            pytest.param(lambda o: setattr(o, "text", "new"), [("SET", ("text",))], id="scalar"),
            pytest.param(lambda o: setattr(o, "maybe", None), [("REMOVE", ("maybe",))], id="none"),
            pytest.param(lambda o: o.names.clear(), [("REMOVE", ("names",))], id="emptied-set"),
            pytest.param(lambda o: o.names.add("z"), [("SET", ("names",))], id="set-grows"),
            pytest.param(
                lambda o: o.doc.__setitem__("k", 2), [("SET", ("doc", "k"))], id="map-value"
            ),
            pytest.param(
                lambda o: o.doc.__setitem__("new", 1), [("SET", ("doc", "new"))], id="map-key-added"
            ),
            pytest.param(lambda o: o.doc.pop("k"), [("REMOVE", ("doc", "k"))], id="map-key-gone"),
            pytest.param(
                lambda o: o.words.__setitem__(1, "B"), [("SET", ("words", 1))], id="list-element"
            ),
            pytest.param(lambda o: o.words.append("c"), [("SET", ("words",))], id="list-grows"),
            pytest.param(
                lambda o: setattr(o.address, "city", "Bergen"),
                [("SET", ("address", "city"))],
                id="nested-attrs-field",
            ),
            pytest.param(
                lambda o: setattr(o.address, "zip", None),
                [("REMOVE", ("address", "zip"))],
                id="nested-attrs-field-none",
            ),
            pytest.param(
                lambda o: o.doc["deep"]["x"].append(3),
                [("SET", ("doc", "deep", "x"))],
                id="deep-any-list-grows",
            ),
            pytest.param(
                lambda o: o.doc["deep"].__setitem__("x", [1, 5]),
                [("SET", ("doc", "deep", "x", 1))],
                id="deep-any-list-element",
            ),
            pytest.param(
                lambda o: setattr(o, "anything", 1), [("SET", ("anything",))], id="any-true-to-1"
            ),
            pytest.param(lambda o: setattr(o, "ratio", 1), [], id="float-field-int-equal"),
            pytest.param(lambda o: None, [], id="unchanged"),
        ],
    )
    def test_minimal_paths(
        self, change: Callable[[Everything], object], expected: list[tuple[str, Any]]
    ) -> None:
        """A mutation is reported as the narrowest SET or REMOVE of the paths it touched."""
        obj = Everything(
            id="e1",
            maybe="m",
            ratio=1.0,
            names={"a"},
            doc={"k": 1, "deep": {"x": [1, 2]}},
            words=["a", "b"],
            address=Address(city="Oslo", zip="0150"),
            anything=True,
        )
        snapshot = CODEC.snapshot(obj)
        change(obj)
        assert [(action, path) for action, path, *_ in diff_of(snapshot, obj)] == expected


class _Color(enum.Enum):
    """A str enum for the `Any` field tests."""

    RED = "red"


class TestAnyIsLossy:
    """`Any` decodes generically: types DynamoDB lacks read back as their stored form."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(_Color.RED, "red", id="enum-as-value"),
            pytest.param(("a", 1), ["a", 1], id="tuple-as-list"),
            pytest.param(
                dt.datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00+00:00", id="datetime"
            ),
            pytest.param(Address(city="Rome"), {"city": "Rome", "street": ""}, id="attrs-as-dict"),
        ],
    )
    def test_reads_back_stored_form(self, value: Any, expected: Any) -> None:
        """The documented lossy cases read back as what DynamoDB holds."""
        decoded = CODEC.decode_item(CODEC.encode_item(Everything(id="e1", anything=value)))
        assert decoded.anything == expected


class TestGeneratedDiff:
    """The per-model diff takes shortcuts; each keeps the result of the full diff."""

    @pytest.mark.parametrize(
        ("field", "before", "after"),
        [
            pytest.param("anything", {"a": 1}, {"a": True}, id="int-to-bool-in-any-map"),
            pytest.param("anything", [1, 2], [1, True], id="int-to-bool-in-any-list"),
            pytest.param("anything", {"a": 1}, {"a": 1.0}, id="int-to-float-in-any-map"),
            pytest.param("doc", {"a": 0}, {"a": False}, id="zero-to-false-in-map"),
            pytest.param("doc", {"a": {"b": 1}}, {"a": {"b": True}}, id="nested-map"),
            pytest.param("words", ["a", "b"], ["a", "c"], id="list-element"),
            pytest.param("doc", {"a": 1}, {"b": 1}, id="map-key-renamed"),
        ],
    )
    def test_equal_in_python_but_stored_differently(
        self, field: str, before: Any, after: Any
    ) -> None:
        """`True == 1`, yet DynamoDB stores a BOOL, not a number: the diff sees the change."""
        obj = Everything(id="e1", **{field: before})
        snapshot = CODEC.snapshot(obj)
        setattr(obj, field, copy.deepcopy(after))
        assert diff_of(snapshot, obj) != []

    def test_untouched_containers_have_no_diff(self) -> None:
        """Maps and lists holding the snapshot's own values (nothing changed) diff to nothing."""
        obj = Everything(id="e1", doc={"a": 1, "b": [1, 2]}, anything=["x", 2], words=["w"])
        assert diff_of(CODEC.snapshot(obj), obj) == []

    @pytest.mark.parametrize(
        ("field", "before"),
        [
            pytest.param("text", "x", id="str"),
            pytest.param("count", 3, id="int"),
            pytest.param("maybe", "x", id="optional-str"),
            pytest.param("status", Status.PAID, id="enum"),
        ],
    )
    def test_a_value_set_to_none_is_removed(self, field: str, before: Any) -> None:
        """Setting a stored scalar to `None` removes the attribute."""
        obj = Everything(id="e1", **{field: before})
        snapshot = CODEC.snapshot(obj)
        setattr(obj, field, None)
        assert [(a, p) for a, p, *_ in diff_of(snapshot, obj)] == [("REMOVE", (field,))]

    def test_an_int_equal_to_the_stored_float_is_no_change(self) -> None:
        """A float field given the same number as an int stores the same number: no write."""
        obj = Everything(id="e1", ratio=2.0)
        snapshot = CODEC.snapshot(obj)
        obj.ratio = 2
        assert diff_of(snapshot, obj) == []

    def test_same_type_new_value_is_a_set(self) -> None:
        """A scalar replaced by another value of its type is one SET of the new value."""
        obj = Everything(id="e1", text="a", count=1)
        snapshot = CODEC.snapshot(obj)
        obj.text, obj.count = "b", 2
        assert [(a, p, v) for a, p, v, _ in diff_of(snapshot, obj)] == [
            ("SET", ("text",), "b"),
            ("SET", ("count",), 2),
        ]

    @pytest.mark.parametrize(
        ("value", "accepted"),
        [
            pytest.param(Decimal("1E125"), True, id="largest-power"),
            pytest.param(Decimal("9.99E125"), True, id="just-below-the-maximum"),
            pytest.param(Decimal("1E-130"), True, id="smallest"),
            pytest.param(Decimal("1" * 38 + "0"), True, id="38-significant-and-a-zero"),
            pytest.param(Decimal("1" * 38 + "E+87"), True, id="38-digits-at-the-fast-bound"),
            pytest.param(Decimal("1" * 38 + "E+88"), True, id="38-digits-past-the-fast-bound"),
            pytest.param(Decimal("1" * 38 + "E+89"), False, id="38-digits-past-the-maximum"),
            pytest.param(Decimal("1E-131"), False, id="too-small"),
        ],
    )
    def test_decimal_limits_around_the_quick_check(self, value: Decimal, accepted: bool) -> None:
        """Decimals inside the quick check's bounds and just outside them meet DynamoDB's rules."""
        obj = Everything(id="e1", amount=value)
        if accepted:
            assert CODEC.encode_item(obj)["amount"] == {"N": str(value)}
        else:
            with pytest.raises(ValidationError):
                CODEC.encode_item(obj)

    def test_an_unstored_field_set_to_none_is_no_change(self) -> None:
        """A field the stored item lacks, set to `None`: nothing to remove, so no operation."""
        obj, snapshot = CODEC.read({"id": {"S": "e1"}})
        assert obj.text == ""  # the default, marked as not stored in the snapshot
        obj.text = None
        assert diff_of(snapshot, obj) == []

    def test_a_bytearray_changed_in_place_is_a_change(self) -> None:
        """A `bytes` field holding a bytearray: the snapshot keeps its own copy."""
        blob: Any = bytearray(b"ab")  # a bytearray where the field says bytes
        obj = Everything(id="e1", blob=blob)
        snapshot = CODEC.snapshot(obj)
        assert diff_of(snapshot, obj) == []
        blob[0] = ord("x")
        assert [(a, p, v) for a, p, v, _ in diff_of(snapshot, obj)] == [
            ("SET", ("blob",), bytearray(b"xb"))
        ]

    def test_bytes_and_an_equal_bytearray_are_no_change(self) -> None:
        """Replacing stored bytes with a bytearray of the same contents writes nothing."""
        obj = Everything(id="e1", blob=b"ab")
        snapshot = CODEC.snapshot(obj)
        same: Any = bytearray(b"ab")
        obj.blob = same
        assert diff_of(snapshot, obj) == []


class TestAnyField:
    """A field typed `Any` may hold scalars and containers alike."""

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            pytest.param(0, 1, id="int-to-int"),
            pytest.param("a", "b", id="str-to-str"),
            pytest.param(0, [1], id="int-to-list"),
            pytest.param({"a": 1}, {"a": 2}, id="dict-to-dict"),
        ],
    )
    def test_a_changed_value_is_one_set(self, before: Any, after: Any) -> None:
        """Changing an `Any` field's value diffs to a SET of the field (no crash on scalars)."""
        obj = Everything(id="e1", anything=before)
        snapshot = CODEC.snapshot(obj)
        obj.anything = after
        ops = diff_of(snapshot, obj)
        assert [(op[0], op[1][0]) for op in ops][:1] == [("SET", "anything")]
