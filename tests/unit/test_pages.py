"""Cursors of `Session.page`: bound to their listing, refused whole when anything is off."""

from __future__ import annotations

import base64
import re
from typing import Any

import attrs
import pytest
from boto3.dynamodb.conditions import ConditionBase, Key

import uow
from tests.models import Order, User
from uow._pages import Cursors, Shape
from uow.codec import Item
from uow.model import info_of

C1 = Key("customer_id").eq("c1")
KEY = b"k" * 32
OTHER_KEY = b"o" * 32

ROW: Item = {
    "customer_id": {"S": "c1"},
    "order_id": {"S": "o7"},
    "status": {"S": "open"},
    "created_at": {"S": "2024-05"},
    "total": {"N": "12.5"},
}
"""A raw `Order` item, as a Query returns it."""


@uow.model(table="orders", pk="customer_id", sk="order_id")
@attrs.define
class OtherOrder:
    """Another model on the `orders` table, with the same key."""

    customer_id: str
    order_id: str


@uow.model(table="blobs", pk="id", sk="n", indexes={"by_n": uow.Index(pk="n", sk="id")})
@attrs.define
class Blob:
    """A model with a binary partition key and a numeric sort key."""

    id: bytes
    n: int


def shape(
    model: type = Order,
    key_condition: ConditionBase | None = C1,
    *,
    index: str | None = None,
    reverse: bool = False,
    prefix: str = "",
) -> Shape:
    """The shape of a listing, as `Session.page` builds it."""
    info = info_of(model)
    return Shape.of(
        info, prefix + info.table, key_condition=key_condition, index=index, reverse=reverse
    )


def raw(cursor: str) -> bytes:
    """The bytes a cursor string encodes."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def text(data: bytes) -> str:
    """A cursor string of these bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestRoundTrip:
    """A cursor reads back as the start key of the row it was made from."""

    def test_a_table_cursor_holds_the_table_key(self) -> None:
        """On the table, the start key is the row's table key, values as the read returned them."""
        listing = shape()
        cursors = Cursors(KEY)
        start = cursors.decode(cursors.encode(listing, ROW), listing)
        assert start == {"customer_id": {"S": "c1"}, "order_id": {"S": "o7"}}

    def test_an_index_cursor_holds_the_table_key_and_the_index_key(self) -> None:
        """On a GSI, DynamoDB needs both keys to resume; the cursor carries all four attributes."""
        listing = shape(key_condition=Key("status").eq("open"), index="by_status")
        cursors = Cursors(None)
        start = cursors.decode(cursors.encode(listing, ROW), listing)
        assert start == {
            "customer_id": {"S": "c1"},
            "order_id": {"S": "o7"},
            "status": {"S": "open"},
            "created_at": {"S": "2024-05"},
        }

    def test_binary_and_number_keys_survive(self) -> None:
        """Bytes (base64 inside) and numbers come back exactly; an index attribute shared with the table key is carried once."""
        row: Item = {"id": {"B": b"\x00\xff/+="}, "n": {"N": "-12"}}
        for listing in (
            shape(Blob, Key("id").eq(b"\x00\xff/+=")),
            shape(Blob, Key("n").eq(-12), index="by_n", reverse=True),
            shape(Blob, None),
        ):
            cursors = Cursors(KEY)
            assert cursors.decode(cursors.encode(listing, row), listing) == row

    def test_the_longest_keys(self) -> None:
        """Keys of DynamoDB's maximum sizes, even all control characters, make cursors that read back."""
        row: Item = {
            "customer_id": {"S": "\x01" * 2048},
            "order_id": {"S": "\x02" * 1024},
            "status": {"S": "\x03" * 2048},
            "created_at": {"S": "\x04" * 1024},
        }
        listing = shape(key_condition=None, index="by_status")
        cursors = Cursors(KEY)
        assert cursors.decode(cursors.encode(listing, row), listing) == row

    def test_a_cursor_is_url_safe(self) -> None:
        """Only letters, digits, `-` and `_`: it travels in a query string as it is."""
        cursor = Cursors(KEY).encode(shape(), {**ROW, "order_id": {"S": "ä/ ?&=#+"}})
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)

    def test_the_same_key_in_another_process_reads_it(self) -> None:
        """Cursors depend on the key and the listing only: another `Cursors` with the key accepts them."""
        listing = shape()
        cursor = Cursors(KEY).encode(listing, ROW)
        assert Cursors(bytes(KEY)).decode(cursor, listing)["order_id"] == {"S": "o7"}


class TestRefused:
    """Anything but an intact cursor of this listing from this store raises `ValidationError`."""

    @pytest.mark.parametrize("signed", [True, False], ids=["signed", "checked"])
    def test_every_changed_character(self, signed: bool) -> None:
        """Replacing any one character of the string is refused."""
        listing = shape()
        cursors = Cursors(KEY if signed else None)
        cursor = cursors.encode(listing, ROW)
        for position, char in enumerate(cursor):
            for other in {"A", "-", "z"} - {char}:
                changed = cursor[:position] + other + cursor[position + 1 :]
                with pytest.raises(uow.ValidationError, match="after= is not a cursor"):
                    cursors.decode(changed, listing)

    @pytest.mark.parametrize("signed", [True, False], ids=["signed", "checked"])
    def test_every_flipped_bit(self, signed: bool) -> None:
        """Flipping any bit of the encoded bytes is refused."""
        listing = shape(key_condition=Key("status").eq("open"), index="by_status")
        cursors = Cursors(KEY if signed else None)
        data = raw(cursors.encode(listing, ROW))
        for position in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[position] ^= 1 << bit
                with pytest.raises(uow.ValidationError):
                    cursors.decode(text(bytes(flipped)), listing)

    def test_every_truncation(self) -> None:
        """Every proper prefix of a cursor, and the cursor with characters added, is refused."""
        listing = shape()
        cursors = Cursors(KEY)
        cursor = cursors.encode(listing, ROW)
        for length in range(len(cursor)):
            with pytest.raises(uow.ValidationError):
                cursors.decode(cursor[:length], listing)
        for extra in ("A", "AA", "AAAA", cursor):
            with pytest.raises(uow.ValidationError):
                cursors.decode(cursor + extra, listing)

    @pytest.mark.parametrize(
        "garbage",
        [
            pytest.param("", id="empty"),
            pytest.param("x", id="one-char"),
            pytest.param("not a cursor", id="spaces"),
            pytest.param("abc+def/ghi=", id="standard-base64"),
            pytest.param("%41%42", id="percent-encoded"),
            pytest.param("A" * 40, id="zeros"),
            pytest.param("A" * 70_000, id="too-long"),
            pytest.param(text(b"\x01\x00" + b"\x00" * 40), id="header-only"),
            pytest.param(42, id="int"),
            pytest.param(b"AAAA", id="bytes"),
            pytest.param(["A"], id="list"),
        ],
    )
    def test_garbage(self, garbage: Any) -> None:
        """Strings that were never cursors, and values that are not strings, are refused."""
        with pytest.raises(uow.ValidationError, match=r"page\(Order\): after="):
            Cursors(KEY).decode(garbage, shape())

    @pytest.mark.parametrize(
        "other",
        [
            pytest.param(lambda: shape(OtherOrder), id="another-model"),
            pytest.param(lambda: shape(prefix="prod_"), id="another-table"),
            pytest.param(
                lambda: shape(index="by_status", key_condition=Key("status").eq("c1")),
                id="an-index",
            ),
            pytest.param(lambda: shape(reverse=True), id="reversed"),
            pytest.param(
                lambda: shape(key_condition=Key("customer_id").eq("c2")), id="another-partition"
            ),
            pytest.param(
                lambda: shape(key_condition=Key("customer_id").eq("c1") & Key("order_id").gt("o")),
                id="a-sort-key-condition",
            ),
            pytest.param(lambda: shape(key_condition=None), id="a-scan"),
        ],
    )
    def test_another_listing(self, other: Any) -> None:
        """A cursor of one listing is refused by a listing that differs in model, table, index, direction or key condition."""
        cursors = Cursors(KEY)
        cursor = cursors.encode(shape(), ROW)
        with pytest.raises(uow.ValidationError, match="made for another listing"):
            cursors.decode(cursor, other())

    def test_a_cursor_signed_with_another_key(self) -> None:
        """A store with another `cursor_key` refuses the cursor."""
        listing = shape()
        cursor = Cursors(OTHER_KEY).encode(listing, ROW)
        with pytest.raises(uow.ValidationError, match="signed with another cursor_key"):
            Cursors(KEY).decode(cursor, listing)

    def test_signed_and_unsigned_cursors_do_not_mix(self) -> None:
        """A signing store refuses unsigned cursors (which anyone can make), and the reverse."""
        listing = shape()
        with pytest.raises(uow.ValidationError, match="takes signed cursors only"):
            Cursors(KEY).decode(Cursors(None).encode(listing, ROW), listing)
        with pytest.raises(uow.ValidationError, match="this Store has none"):
            Cursors(None).decode(Cursors(KEY).encode(listing, ROW), listing)


class TestForgedUnsignedCursors:
    """Without a key anyone can make a cursor; its start key is still checked before any request."""

    def test_a_start_key_outside_the_queried_partition(self) -> None:
        """A forged cursor that points into another customer's orders is refused."""
        listing = shape()
        forged = Cursors(None).encode(listing, {**ROW, "customer_id": {"S": "c2"}})
        with pytest.raises(uow.ValidationError, match="customer_id lies outside the key condition"):
            Cursors(None).decode(forged, listing)

    @pytest.mark.parametrize(
        ("condition", "inside", "outside"),
        [
            pytest.param(Key("order_id").eq("o5"), ["o5"], ["o4", "o50"], id="eq"),
            pytest.param(Key("order_id").lt("o5"), ["o4", "a"], ["o5", "p"], id="lt"),
            pytest.param(Key("order_id").lte("o5"), ["o5", "o"], ["o50"], id="lte"),
            pytest.param(Key("order_id").gt("o5"), ["o50", "p"], ["o5", "o4"], id="gt"),
            pytest.param(Key("order_id").gte("o5"), ["o5", "z"], ["o49"], id="gte"),
            pytest.param(
                Key("order_id").between("o2", "o5"), ["o2", "o3", "o5"], ["o1", "o50"], id="between"
            ),
            pytest.param(
                Key("order_id").begins_with("o2"), ["o2", "o29"], ["o3", "o"], id="begins-with"
            ),
            pytest.param(Key("order_id").gt("é"), ["ü"], ["z"], id="code-point-order"),
        ],
    )
    def test_a_start_key_outside_the_sort_key_condition(
        self, condition: ConditionBase, inside: list[str], outside: list[str]
    ) -> None:
        """DynamoDB refuses a start key outside the key condition: so does `decode`, first."""
        listing = shape(key_condition=C1 & condition)
        cursors = Cursors(None)
        for value in inside:
            cursor = cursors.encode(listing, {**ROW, "order_id": {"S": value}})
            assert cursors.decode(cursor, listing)["order_id"] == {"S": value}
        for value in outside:
            cursor = cursors.encode(listing, {**ROW, "order_id": {"S": value}})
            with pytest.raises(
                uow.ValidationError, match="order_id lies outside the key condition"
            ):
                cursors.decode(cursor, listing)

    @pytest.mark.parametrize(
        ("condition", "inside", "outside"),
        [
            pytest.param(Key("n").gt(9), ["10", "100"], ["9", "-10"], id="numbers-by-value"),
            pytest.param(
                Key("n").between(-1, 1), ["-1", "0", "1"], ["2", "-2"], id="number-between"
            ),
        ],
    )
    def test_numbers_compare_by_value(
        self, condition: ConditionBase, inside: list[str], outside: list[str]
    ) -> None:
        """Number keys are ordered by value, as DynamoDB orders them, not as text."""
        listing = shape(Blob, Key("id").eq(b"x") & condition)
        cursors = Cursors(None)
        row: Item = {"id": {"B": b"x"}}
        for value in inside:
            assert cursors.decode(cursors.encode(listing, {**row, "n": {"N": value}}), listing)
        for value in outside:
            cursor = cursors.encode(listing, {**row, "n": {"N": value}})
            with pytest.raises(uow.ValidationError, match="n lies outside the key condition"):
                cursors.decode(cursor, listing)

    @pytest.mark.parametrize(
        ("condition", "inside", "outside"),
        [
            pytest.param(
                Key("id").gt(b"\x01"), [b"\xff", b"\x01\x00"], [b"\x00\xff"], id="unsigned"
            ),
            pytest.param(
                Key("id").begins_with(b"\xfe"), [b"\xfe\x00"], [b"\xff"], id="begins-with"
            ),
        ],
    )
    def test_binary_keys_compare_as_unsigned_bytes(
        self, condition: ConditionBase, inside: list[bytes], outside: list[bytes]
    ) -> None:
        """Binary keys are ordered by unsigned bytes, `\\xff` after `\\x01`."""
        listing = shape(Blob, Key("n").eq(1) & condition, index="by_n")
        cursors = Cursors(None)
        for value in inside:
            cursor = cursors.encode(listing, {"id": {"B": value}, "n": {"N": "1"}})
            assert cursors.decode(cursor, listing)["id"] == {"B": value}
        for value in outside:
            cursor = cursors.encode(listing, {"id": {"B": value}, "n": {"N": "1"}})
            with pytest.raises(uow.ValidationError, match="id lies outside the key condition"):
                cursors.decode(cursor, listing)

    def test_a_number_partition_is_compared_as_a_number(self) -> None:
        """`-12` and `-12.0` are one DynamoDB number: the partition check compares values."""
        listing = shape(Blob, Key("n").eq(-12), index="by_n")
        row: Item = {"id": {"B": b"x"}, "n": {"N": "-12.0"}}
        assert Cursors(None).decode(Cursors(None).encode(listing, row), listing)["n"] == {
            "N": "-12.0"
        }


class TestCursorKey:
    """`Store(cursor_key=...)` takes a secret of at least 16 bytes."""

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("a string secret of 32 characters", id="str"),
            pytest.param(b"short", id="short"),
            pytest.param(b"", id="empty"),
        ],
    )
    def test_a_bad_key_is_refused(self, key: Any) -> None:
        """A str, or fewer than 16 bytes, raises `ValidationError` when the store is made."""
        with pytest.raises(uow.ValidationError, match="cursor_key"):
            uow.Store(cursor_key=key)

    def test_a_good_key(self) -> None:
        """Sixteen bytes or more make a store whose cursors are signed."""
        assert Cursors(b"0123456789abcdef").signed
        assert not Cursors(None).signed


class TestPage:
    """`uow.Page` is a frozen value."""

    def test_frozen(self) -> None:
        """Its fields cannot be reassigned."""
        page = uow.Page((User("u1", "a@x"),), "cursor")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            page.cursor = None  # type: ignore[misc]  # the point: frozen
        assert page == uow.Page((User("u1", "a@x"),), "cursor")
