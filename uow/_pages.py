"""Pages of a read for web handlers: `Page`, and the cursors that resume a listing.

A cursor says where the next page starts: the key of the last record a page
returned (its table key, and on an index its index key too), which becomes
the next read's `ExclusiveStartKey`. It is bound to the listing's *shape*: the
model, the table, the index, the direction, and the key condition (the
request `read_params` builds without a filter). The filter is not part of the
shape: it does not move the position in key order, and a handler may well
filter on the clock (`Attr("expires").gt(now)`).

Layout, before URL-safe base64 without padding::

    version (1 byte) | mode (1) | shape fingerprint (4) | start key (JSON) | tag (16)

`tag` is HMAC-SHA256, truncated to 16 bytes, over version, mode, the SHA-256
of the whole shape and the start key. In `SIGNED` mode its key is the
store's `cursor_key`: nobody without it can make a cursor the store accepts.
In `CHECKED` mode (no `cursor_key`) its key is a constant written below: the
tag catches damage (a flipped or lost character) and a cursor used with
another listing, but anyone who reads this module can compute it, so a
client can build a cursor that starts anywhere. The start key is checked
against the model's key types (and, for a query, against its key condition)
either way, so a forged one that does not fit the listing fails with
`ValidationError` before the request, not in DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import operator
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

import attrs
from boto3.dynamodb.conditions import ConditionBase
from boto3.dynamodb.conditions import Key as KeyAttribute

from uow._query import read_params
from uow.codec import ANY, AttributeValue, FieldType, Item, codec_for
from uow.errors import ValidationError
from uow.model import ModelInfo

__all__ = ["Cursors", "Page", "Shape"]

T = TypeVar("T")

_VERSION = 1
_FINGERPRINT = 4
_TAG = 16
_HEADER = 2 + _FINGERPRINT
# The longest start key (partition 2048 bytes, sort 1024, on an index twice that) makes
# a cursor of about 11,000 characters, or 50,000 if every byte is a control character
# (six in JSON); anything longer is not ours.
_MAX_LENGTH = 65_536
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# The HMAC key of unsigned cursors. Public on purpose: see the module docstring.
_CHECKED_KEY = b"uow.page: an unsigned cursor, checked only"
_TAGS = ("S", "N", "B")
# A shorter HMAC key could be guessed; 32 random bytes is what the docs recommend.
_MIN_KEY_BYTES = 16


class CursorMode(enum.IntEnum):
    """How a cursor's tag is keyed: with the store's `cursor_key`, or publicly."""

    CHECKED = 0
    SIGNED = 1


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing: its records, and the cursor that resumes after them.

    Returned by `Session.page`. `items` holds `limit` records while that many
    remain (fewer only on the last page), each the session's one object for
    its item. `cursor` is `None` when no record follows; otherwise pass it
    as `after=` to the same `page()` call to get the next page: it is a
    URL-safe string, made to travel through a client (`?after=...`).

    Attributes:
        items: the records of this page, in the listing's order.
        cursor: where the next page starts, or `None` after the last page.
    """

    items: tuple[T, ...]
    cursor: str | None


@attrs.frozen
class Shape:
    """What a cursor is bound to, and the attributes of its start key.

    Build it with `Shape.of`. `text` is the canonical JSON of the model's
    name and the listing's request without its filter; `attributes` names
    the start key's attributes in order (table key, then the index key),
    with the codec type of each; `bounds` are the terms of a query's key
    condition a start key must satisfy, as `(attribute, operator, values)`
    (none for a scan).
    """

    model: str
    text: bytes
    attributes: tuple[tuple[str, FieldType], ...]
    bounds: tuple[tuple[str, str, tuple[AttributeValue, ...]], ...]
    digest: bytes = attrs.field(init=False)

    @digest.default
    def _digest(self) -> bytes:
        return hashlib.sha256(self.text).digest()

    @classmethod
    def of(
        cls,
        info: ModelInfo,
        table: str,
        *,
        key_condition: ConditionBase | None,
        index: str | None,
        reverse: bool,
    ) -> Shape:
        """The shape of a listing of `info`: a query with `key_condition`, else a scan.

        Args:
            info: the listed model.
            table: the table's full name (the store's prefix included).
            key_condition: the listing's key condition; `None` for a scan.
            index: the GSI read, if any.
            reverse: descending order.

        Raises:
            ValidationError: what `read_params` refuses (an unknown index, a
                condition that is not a `boto3.dynamodb.conditions` object).
        """
        params = read_params(
            info, table, key_condition=key_condition, filter=None, index=index, reverse=reverse
        )
        model = f"{info.cls.__module__}.{info.cls.__qualname__}"
        text = json.dumps(
            {"model": model, **params},
            sort_keys=True,
            separators=(",", ":"),
            default=_json_value,
        ).encode()
        types = codec_for(info.cls).types
        names = [info.pk, *([info.sk] if info.sk else [])]
        gsi = info.indexes[index] if index is not None else None  # read_params checked the name
        if gsi is not None:
            names += [name for name in (gsi.pk, gsi.sk) if name and name not in names]
        bounds = []
        if key_condition is not None:
            key = (gsi.pk, gsi.sk) if gsi is not None else (info.pk, info.sk)
            for attribute, (op, values) in _terms(key_condition).items():
                if attribute in key:
                    encoded = tuple(ANY.encode_element(v, (attribute,)) for v in values)
                    bounds.append((attribute, op, encoded))
        return cls(
            model=info.name,
            text=text,
            attributes=tuple((name, types[name]) for name in names),
            bounds=tuple(bounds),
        )


class Cursors:
    """Makes and reads the cursors of one store (keyed by its `cursor_key`, if any).

    Args:
        key: the HMAC key that signs cursors, at least 16 bytes; `None`
            makes checked, unsigned cursors (see the module docstring).

    Raises:
        ValidationError: a key that is not bytes, or shorter than 16 bytes.
    """

    __slots__ = ("_key", "_mode")

    def __init__(self, key: bytes | None) -> None:
        if key is None:
            self._mode, self._key = CursorMode.CHECKED, _CHECKED_KEY
            return
        if not isinstance(key, bytes | bytearray):
            raise ValidationError(
                f"cursor_key must be bytes, got {type(key).__name__}; "
                "e.g. secrets.token_bytes(32), kept in your secret store"
            )
        if len(key) < _MIN_KEY_BYTES:
            raise ValidationError(
                f"cursor_key must be at least {_MIN_KEY_BYTES} bytes (got {len(key)}): "
                "a short key can be guessed; use secrets.token_bytes(32)"
            )
        self._mode, self._key = CursorMode.SIGNED, bytes(key)

    @property
    def signed(self) -> bool:
        """Whether cursors are signed with a secret `cursor_key`."""
        return self._mode is CursorMode.SIGNED

    def _tag(self, mode: int, shape: Shape, payload: bytes) -> bytes:
        message = bytes((_VERSION, mode)) + shape.digest + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TAG]

    def encode(self, shape: Shape, row: Item) -> str:
        """The cursor that resumes `shape`'s listing after `row` (a raw item the read returned)."""
        start = []
        for name, _ in shape.attributes:
            ((tag, value),) = row[name].items()
            start.append([tag, base64.b64encode(value).decode() if tag == "B" else value])
        payload = json.dumps(start, separators=(",", ":"), ensure_ascii=False).encode()
        header = bytes((_VERSION, self._mode)) + shape.digest[:_FINGERPRINT]
        raw = header + payload + self._tag(self._mode, shape, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, cursor: object, shape: Shape) -> dict[str, AttributeValue]:
        """The `ExclusiveStartKey` a cursor of `shape`'s listing stands for.

        Raises:
            ValidationError: `cursor` is not a string this store made for
                this listing: garbage, damaged or truncated, made for another
                model, table, index, direction or key condition, signed with
                another key, or (unsigned) holding a start key that does not
                fit the model or lies outside the key condition.
        """
        raw = _unwrap(cursor, shape)
        mode = raw[1]
        if raw[0] != _VERSION or mode not in (CursorMode.CHECKED, CursorMode.SIGNED):
            raise _refused(shape, "it is not a cursor of this version of uow")
        if mode != self._mode:
            if self.signed:
                raise _refused(shape, "it is not signed, and this Store takes signed cursors only")
            raise _refused(shape, "it is signed with a cursor_key, and this Store has none")
        if not hmac.compare_digest(raw[2:_HEADER], shape.digest[:_FINGERPRINT]):
            raise _refused(
                shape,
                "it was made for another listing "
                "(the model, table, index, direction or key condition differ)",
            )
        payload, tag = raw[_HEADER:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, self._tag(mode, shape, payload)):
            reason = "signed with another cursor_key, " if self.signed else ""
            raise _refused(shape, f"it fails its integrity check ({reason}damaged or forged)")
        return _start_key(payload, shape)


def _unwrap(cursor: object, shape: Shape) -> bytes:
    """The bytes of a cursor string, refusing anything that is not canonical base64url."""
    if not isinstance(cursor, str):
        raise ValidationError(
            f"page({shape.model}): after= takes a cursor string from Page.cursor, "
            f"got {type(cursor).__name__}"
        )
    if len(cursor) > _MAX_LENGTH or not _ALPHABET.fullmatch(cursor):
        raise _refused(shape, "it is not a cursor (wrong length or characters)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _refused(shape, "it is not a cursor (not base64)") from None
    # Several strings decode to the same bytes (unused low bits of the last character):
    # only the one `encode` writes is accepted, so that every changed character is refused.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
        raise _refused(shape, "it is not a cursor (damaged)")
    if len(raw) < _HEADER + _TAG + 2:  # the shortest start key is "[]"
        raise _refused(shape, "it is not a cursor (truncated)")
    return raw


def _start_key(payload: bytes, shape: Shape) -> dict[str, AttributeValue]:
    """The start key in a cursor's payload, each value checked against the model's key types."""
    try:
        values = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _refused(shape, "its start key is not JSON") from None
    if not isinstance(values, list) or len(values) != len(shape.attributes):
        raise _refused(shape, "its start key does not have the listing's key attributes")
    start: dict[str, AttributeValue] = {}
    for (name, kind), entry in zip(shape.attributes, values, strict=True):
        av = _attribute_value(entry)
        try:
            value = kind.decode(av)
        except (KeyError, TypeError, ValueError, ArithmeticError, ValidationError):
            value = None
        if value is None or value in ("", b"") or isinstance(value, bool):
            raise _refused(shape, f"its start key's {name} is not a {kind.name} key value")
        start[name] = av
    # DynamoDB refuses a start key outside the key condition (DynamoDB Local, and AWS:
    # "The provided starting key does not match the range key predicate"); say it first.
    for attribute, op, bounds in shape.bounds:
        if not _satisfies(start[attribute], op, bounds):
            raise _refused(shape, f"its start key's {attribute} lies outside the key condition")
    return start


def _attribute_value(entry: Any) -> AttributeValue:
    if not (
        isinstance(entry, list)
        and len(entry) == 2
        and entry[0] in _TAGS
        and isinstance(entry[1], str)
    ):
        return {}
    tag, text = entry
    if tag == "B":
        try:
            return {"B": base64.b64decode(text, validate=True)}
        except (binascii.Error, ValueError):
            return {}
    return {tag: text}


def _comparable(av: AttributeValue) -> tuple[str, Any]:
    """A key value's type tag, and its value ordered as DynamoDB orders it.

    Strings compare by code point, which is the order of their UTF-8 bytes;
    numbers by value; binary by unsigned bytes. `None` for a number that is not one.
    """
    ((tag, value),) = av.items()
    if tag == "N":
        try:
            return tag, Decimal(value)
        except InvalidOperation:
            return tag, None
    return tag, value


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _satisfies(av: AttributeValue, op: str, bounds: tuple[AttributeValue, ...]) -> bool:
    """Whether a start key value satisfies one term of a key condition."""
    tag, value = _comparable(av)
    others = [_comparable(bound) for bound in bounds]
    if value is None or any(t != tag or v is None for t, v in others):
        return False
    limits = [v for _, v in others]
    if op in _COMPARISONS:
        return _COMPARISONS[op](value, limits[0])
    if op == "BETWEEN":
        return bool(limits[0] <= value <= limits[1])
    if op == "begins_with":
        return tag != "N" and bool(value.startswith(limits[0]))
    return True  # no other operator makes a valid key condition: DynamoDB refuses it


def _refused(shape: Shape, reason: str) -> ValidationError:
    return ValidationError(
        f"page({shape.model}): after= is not a cursor of this listing: {reason}; "
        "start again from the first page (after=None)"
    )


def _terms(condition: ConditionBase) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The terms of a key condition (joined with `&`) by key name: `(operator, values)`."""
    expression = condition.get_expression()
    op, values = expression["operator"], expression["values"]
    if op == "AND":
        return {name: term for part in values for name, term in _terms(part).items()}
    if values and isinstance(values[0], KeyAttribute):
        return {values[0].name: (op, tuple(values[1:]))}
    return {}


def _json_value(value: Any) -> Any:
    """JSON for the values `read_params` puts in a request: bytes as base64."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in a key condition")  # pragma: no cover
