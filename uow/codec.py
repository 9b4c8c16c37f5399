"""attrs instances ⇄ DynamoDB attribute values, driven by each field's type.

Each field type compiles once into a small `FieldType` object that knows how
to encode, decode, copy and diff values of that type. Supported types: `str`,
`int`, `float` (finite, sent as a DynamoDB number, read back as `float`),
`Decimal`, `bool`, `bytes`, `T | None`, `list[T]`, `dict[str, T]`,
`set[str]`/`set[int]`/`set[bytes]` (and `frozenset`), nested attrs classes,
timezone-aware `datetime` (ISO 8601 strings), `Enum`, and `Any` (encoded from
the runtime type).

Two contexts decide what "nothing" means:

* a *field* (a model's attribute, or a nested attrs class's attribute): `None`
  and an empty set are stored as an absent attribute;
* an *element* (inside a `list` or `dict`): `None` is stored as `NULL`, and an
  empty set cannot be stored at all (DynamoDB has no empty sets), so it raises
  `ValidationError`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import types
import typing
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Union

import attrs

from uow.errors import SchemaError, ValidationError

__all__ = [
    "NESTING_LIMIT",
    "STR",
    "Absent",
    "AttributeValue",
    "FieldType",
    "Item",
    "ModelCodec",
    "Path",
    "codec_for",
    "forget_codec",
    "format_path",
    "optional_inner",
    "unwrap",
]

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Segment = str | int
Path = tuple[Segment, ...]
# What a diff emits: ("SET", path, value) or ("REMOVE", path, None); values are
# Python values, encoded by the planner with `FieldType.encode_at`.
DiffOp = tuple[str, Path, Any, "FieldType"]

_NULL: AttributeValue = {"NULL": True}
_MISSING: Any = object()
# Immutable types: a copy of a value of one of them is the value itself.
_SHARED = frozenset({str, int, float, bool, bytes, Decimal, type(None), dt.datetime})
_MAX_DIGITS = 38
# DynamoDB nests at most 32 levels, the item itself being the first: a map or list
# may sit at a path of at most 31 segments (a scalar or a set, at 32).
NESTING_LIMIT = 32
_MAX_CONTAINER_PATH = NESTING_LIMIT - 1
_MAX_MAGNITUDE = Decimal("1E126")
_MIN_MAGNITUDE = Decimal("1E-130")


def format_path(path: Path) -> str:
    """Render a path the way users write it: `profile.address.city`, `tags[2]`."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out


def _where(path: Path) -> str:
    return format_path(path) or "<value>"


def _check_number_text(text: str, path: Path) -> str:
    """Check DynamoDB's number limits (38 significant digits, magnitude) on a numeral."""
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - callers only pass numerals
        raise ValidationError(f"{_where(path)}: {text!r} is not a number") from None
    if not number.is_finite():
        raise ValidationError(f"{_where(path)}: DynamoDB cannot store {text} (not finite)")
    if number:
        # Significant digits without leading or trailing zeros (normalize() would round to 28).
        digits = "".join(map(str, number.as_tuple().digits)).strip("0")
        if len(digits) > _MAX_DIGITS:
            raise ValidationError(
                f"{_where(path)}: {text} has {len(digits)} significant digits; "
                f"DynamoDB numbers hold at most {_MAX_DIGITS}"
            )
        magnitude = number.copy_abs()  # exact: abs() rounds to the context's 28 digits
        if magnitude >= _MAX_MAGNITUDE or magnitude < _MIN_MAGNITUDE:
            raise ValidationError(
                f"{_where(path)}: {text} is outside DynamoDB's number range (1E-130 to 1E+126)"
            )
    return text


_INT_LIMIT = 10**126


def _int_text(value: int, path: Path) -> str:
    text = str(int(value))
    if len(text.lstrip("-").rstrip("0")) > _MAX_DIGITS or abs(value) >= _INT_LIMIT:
        _check_number_text(text, path)
    return text


def _float_text(value: float, path: Path) -> str:
    if not math.isfinite(value):
        raise ValidationError(f"{_where(path)}: DynamoDB cannot store {value!r} (not finite)")
    text = repr(float(value))
    magnitude = abs(value)
    if magnitude and (magnitude >= 1e125 or magnitude < 1e-129):
        _check_number_text(text, path)
    return text


def _decimal_text(value: Decimal, path: Path) -> str:
    """A Decimal as DynamoDB's number text, checked against its limits."""
    if value.is_finite():
        digits, exponent = value.as_tuple()[1:]
        # ≤ 38 digits at a modest exponent: no limit can be reached (the magnitude
        # stays between 1E-90 and 1E+125), so the full check is not needed.
        if len(digits) <= _MAX_DIGITS and -90 <= int(exponent) <= 87:
            return str(value)
    return _check_number_text(str(value), path)


def _number_from_text(text: str) -> int | float:
    """An untyped DynamoDB number: int when written as an integer, else float."""
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def _too_deep(path: Path) -> ValidationError:
    return ValidationError(
        f"{_where(path)}: a map or list nested {len(path) + 1} levels deep (the item counts "
        f"as one); DynamoDB allows {NESTING_LIMIT}: flatten the data or store it as a string"
    )


def _type_error(expected: str, value: object, path: Path) -> ValidationError:
    return ValidationError(f"{_where(path)}: expected {expected}, got {type(value).__name__}")


class FieldType:
    """How one Python type is stored. Subclasses implement the type-specific parts.

    `encode` returns `None` for "absent" (a `None` or an empty set in field
    context); `encode_element` is the element-context form and never returns
    `None`.
    """

    name = "value"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        raise NotImplementedError

    def encode_element(self, value: Any, path: Path) -> AttributeValue:
        if value is None:
            return _NULL
        av = self.encode(value, path)
        if av is None:
            raise ValidationError(
                f"{_where(path)}: an empty set cannot be stored inside a list or map "
                "(DynamoDB has no empty sets); remove the entry or make it a field"
            )
        return av

    def decode(self, av: AttributeValue) -> Any:
        raise NotImplementedError

    def decode_element(self, av: AttributeValue) -> Any:
        if "NULL" in av:
            return None
        return self.decode(av)

    def absent(self) -> Any:
        """The value of a field whose attribute is absent."""
        return None

    def clone(self, value: Any) -> Any:
        """A copy that shares nothing mutable with `value` (for snapshots)."""
        return value

    def same(self, old: Any, new: Any) -> bool:
        return old is new or (type(old) is type(new) and old == new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        """The type at `segment` below this one (for document paths)."""
        raise ValidationError(f"{_where(path)}: a {self.name} has no element {segment!r}")

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        """Append the minimal SET/REMOVE operations turning `old` into `new`."""
        if self.same(old, new):
            return
        if field and (new is None or self.is_empty(new)):
            out.append(("REMOVE", path, None, self))
        else:
            out.append(("SET", path, new, self))

    def is_empty(self, value: Any) -> bool:
        return False


class _Str(FieldType):
    name = "str"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if type(value) is str:
            return {"S": value}
        if value is None:
            return None
        if not isinstance(value, str):
            raise _type_error("str", value, path)
        return {"S": value}

    def decode(self, av: AttributeValue) -> Any:
        return av["S"]


class _Int(FieldType):
    name = "int"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if type(value) is int:
            text = str(value)
            if len(text) <= _MAX_DIGITS:  # the common case: no limit can be near
                return {"N": text}
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error("int", value, path)
        return {"N": _int_text(value, path)}

    def decode(self, av: AttributeValue) -> Any:
        text = av["N"]
        try:
            return int(text)
        except ValueError:
            number = Decimal(text)
            if number != number.to_integral_value():
                raise ValueError(f"{text} is not a whole number") from None
            return int(number)


class _Float(FieldType):
    name = "float"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if isinstance(value, float):
            return {"N": _float_text(value, path)}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"N": _int_text(value, path)}
        raise _type_error("float", value, path)

    def decode(self, av: AttributeValue) -> Any:
        return float(av["N"])

    def same(self, old: Any, new: Any) -> bool:
        # An int assigned to a float field is stored as the same number.
        return old is new or (old is not None and new is not None and old == new)


class _Decimal(FieldType):
    name = "Decimal"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return {"N": _decimal_text(value, path)}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"N": _int_text(value, path)}
        raise _type_error("Decimal", value, path)

    def decode(self, av: AttributeValue) -> Any:
        return Decimal(av["N"])


class _Bool(FieldType):
    name = "bool"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise _type_error("bool", value, path)
        return {"BOOL": value}

    def decode(self, av: AttributeValue) -> Any:
        return av["BOOL"]


class _Bytes(FieldType):
    name = "bytes"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, bytes | bytearray):
            raise _type_error("bytes", value, path)
        return {"B": bytes(value)}

    def decode(self, av: AttributeValue) -> Any:
        return bytes(av["B"])

    def clone(self, value: Any) -> Any:
        # A bytearray can change in place: the snapshot keeps its own bytes.
        return bytes(value) if type(value) is bytearray else value

    def same(self, old: Any, new: Any) -> bool:
        # Stored alike: bytes and a bytearray with the same contents.
        if old is None or new is None:
            return old is new
        return old is new or (
            isinstance(old, bytes | bytearray) and isinstance(new, bytes | bytearray) and old == new
        )


class _Datetime(FieldType):
    name = "datetime"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise _type_error("datetime", value, path)
        if value.utcoffset() is None:
            raise ValidationError(
                f"{_where(path)}: naive datetime {value!r}; use a timezone-aware datetime "
                "(e.g. datetime.now(timezone.utc)) so the stored instant is unambiguous"
            )
        return {"S": value.isoformat()}

    def decode(self, av: AttributeValue) -> Any:
        return dt.datetime.fromisoformat(av["S"])


class _EpochSeconds(FieldType):
    """A TTL field's `datetime`: a Number of whole epoch seconds, as DynamoDB's TTL reads it.

    Sub-second precision is dropped when stored; read back, the value is a UTC
    `datetime`.
    """

    name = "datetime"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        av = _DATETIME.encode(value, path)  # the type and awareness checks
        assert av is not None
        return {"N": str(math.floor(value.timestamp()))}

    def decode(self, av: AttributeValue) -> Any:
        return dt.datetime.fromtimestamp(int(Decimal(av["N"])), dt.UTC)


class _Enum(FieldType):
    def __init__(self, cls: type[enum.Enum]) -> None:
        self.cls = cls
        self.name = cls.__name__

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, self.cls):
            raise _type_error(self.cls.__name__, value, path)
        return ANY.encode(value.value, path)

    def decode(self, av: AttributeValue) -> Any:
        return self.cls(ANY.decode(av))


class _Optional(FieldType):
    def __init__(self, inner: FieldType) -> None:
        self.inner = inner
        self.name = f"{inner.name} | None"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        return None if value is None else self.inner.encode(value, path)

    def decode(self, av: AttributeValue) -> Any:
        if "NULL" in av:  # written as NULL by another program: no value
            return None
        return self.inner.decode(av)

    def clone(self, value: Any) -> Any:
        return None if value is None else self.inner.clone(value)

    def same(self, old: Any, new: Any) -> bool:
        if old is None or new is None:
            return old is new
        return self.inner.same(old, new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        return self.inner.child(segment, path)

    def is_empty(self, value: Any) -> bool:
        return value is not None and self.inner.is_empty(value)

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        if old is None or new is None:
            FieldType.diff(self, old, new, path, out, field=field)
        else:
            self.inner.diff(old, new, path, out, field=field)


class _Set(FieldType):
    def __init__(self, element: type) -> None:
        self.element = element
        self.tag = {str: "SS", int: "NS", bytes: "BS"}[element]
        self.name = f"set[{element.__name__}]"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, set | frozenset):
            raise _type_error(self.name, value, path)
        if not value:
            return None
        element = self.element
        for item in value:
            if not isinstance(item, element) or isinstance(item, bool):
                raise _type_error(f"{element.__name__} in {self.name}", item, path)
        if element is int:
            return {"NS": sorted(_int_text(i, path) for i in value)}
        if element is str:
            return {"SS": sorted(value)}
        return {"BS": sorted(bytes(b) for b in value)}

    def decode(self, av: AttributeValue) -> Any:
        if self.element is int:
            return {int(n) for n in av["NS"]}
        if self.element is str:
            return set(av["SS"])
        return {bytes(b) for b in av["BS"]}

    def absent(self) -> Any:
        return set()

    def clone(self, value: Any) -> Any:
        return None if value is None else set(value)

    def same(self, old: Any, new: Any) -> bool:
        if old is None or new is None:
            return old is new or not (old or new)
        return bool(old == new)

    def is_empty(self, value: Any) -> bool:
        return not value


class _List(FieldType):
    def __init__(self, element: FieldType) -> None:
        self.element = element
        self.name = f"list[{element.name}]"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise _type_error(self.name, value, path)
        if len(path) > _MAX_CONTAINER_PATH:
            raise _too_deep(path)
        encode = self.element.encode_element
        return {"L": [encode(item, (*path, i)) for i, item in enumerate(value)]}

    def decode(self, av: AttributeValue) -> Any:
        decode = self.element.decode_element
        return [decode(item) for item in av["L"]]

    def clone(self, value: Any) -> Any:
        if value is None:
            return None
        clone = self.element.clone
        return [clone(item) for item in value]

    def same(self, old: Any, new: Any) -> bool:
        return old is new or (type(old) is type(new) and old == new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        if not isinstance(segment, int):
            return super().child(segment, path)
        return self.element

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        if (
            isinstance(old, list)
            and isinstance(new, list)
            and len(old) == len(new)
            and old is not new
        ):
            element = self.element
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                if a is not b:
                    element.diff(a, b, (*path, i), out, field=False)
            return
        super().diff(old, new, path, out, field=field)


class _Dict(FieldType):
    def __init__(self, element: FieldType) -> None:
        self.element = element
        self.name = f"dict[str, {element.name}]"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _type_error(self.name, value, path)
        if len(path) > _MAX_CONTAINER_PATH:
            raise _too_deep(path)
        encode = self.element.encode_element
        out: dict[str, AttributeValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{_where(path)}: map keys must be str, got {type(key).__name__} {key!r}"
                )
            out[key] = encode(item, (*path, key))
        return {"M": out}

    def decode(self, av: AttributeValue) -> Any:
        decode = self.element.decode_element
        return {key: decode(item) for key, item in av["M"].items()}

    def clone(self, value: Any) -> Any:
        if value is None:
            return None
        clone = self.element.clone
        return {key: clone(item) for key, item in value.items()}

    def same(self, old: Any, new: Any) -> bool:
        return old is new or (type(old) is type(new) and old == new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        if not isinstance(segment, str):
            return super().child(segment, path)
        return self.element

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        if isinstance(old, dict) and isinstance(new, dict) and old is not new:
            element = self.element
            for key in old:
                if key not in new:
                    out.append(("REMOVE", (*path, key), None, element))
            missing = _MISSING
            for key, value in new.items():
                before = old.get(key, missing)
                if before is missing:
                    out.append(("SET", (*path, key), value, element))
                elif before is not value:
                    element.diff(before, value, (*path, key), out, field=False)
            return
        super().diff(old, new, path, out, field=field)


class _Any(FieldType):
    """A value typed `Any`: encoded from its runtime type, decoded generically.

    Decoding is lossy where DynamoDB has no matching type: a `datetime` or an
    `Enum` reads back as its stored string or number, a `tuple` as a `list`.
    """

    name = "Any"

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        kind = type(value)
        if kind is str:
            return {"S": value}
        if kind is bool:
            return {"BOOL": value}
        if kind is int:
            return {"N": _int_text(value, path)}
        if kind is float:
            return {"N": _float_text(value, path)}
        if kind is dict:
            return _ANY_DICT.encode(value, path)
        if kind is list or kind is tuple:
            return _ANY_LIST.encode(value, path)
        if isinstance(value, set | frozenset):
            if not value:
                return None
            first = next(iter(value))
            element = bytes if isinstance(first, bytes) else type(first)
            if element not in (str, int, bytes) or isinstance(first, bool):
                raise ValidationError(
                    f"{_where(path)}: sets may hold str, int or bytes, not {element.__name__}"
                )
            return _Set(element).encode(value, path)
        if isinstance(value, enum.Enum):
            return self.encode(value.value, path)
        if isinstance(value, bool):
            return {"BOOL": bool(value)}
        if isinstance(value, int):
            return {"N": _int_text(value, path)}
        if isinstance(value, float):
            return {"N": _float_text(value, path)}
        if isinstance(value, str):
            return {"S": str(value)}
        if isinstance(value, bytes | bytearray):
            return {"B": bytes(value)}
        if isinstance(value, Decimal):
            return {"N": _check_number_text(str(value), path)}
        if isinstance(value, dt.datetime):
            return _DATETIME.encode(value, path)
        if attrs.has(kind):
            return codec_for(kind).encode_map(value, path)
        raise ValidationError(f"{_where(path)}: cannot store a {kind.__name__} in DynamoDB")

    def decode(self, av: AttributeValue) -> Any:
        if "S" in av:
            return av["S"]
        if "N" in av:
            return _number_from_text(av["N"])
        if "BOOL" in av:
            return av["BOOL"]
        if "M" in av:
            return _ANY_DICT.decode(av)
        if "L" in av:
            return _ANY_LIST.decode(av)
        if "NULL" in av:
            return None
        if "B" in av:
            return bytes(av["B"])
        if "SS" in av:
            return set(av["SS"])
        if "NS" in av:
            return {_number_from_text(n) for n in av["NS"]}
        if "BS" in av:
            return {bytes(b) for b in av["BS"]}
        raise ValidationError(f"unknown DynamoDB attribute value {sorted(av)}")

    def clone(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SHARED:
            return value
        if kind is dict:
            clone = self.clone
            return {
                key: item if type(item) in _SHARED else clone(item) for key, item in value.items()
            }
        if kind is list:
            clone = self.clone
            return [item if type(item) in _SHARED else clone(item) for item in value]
        if kind is tuple:
            return tuple(self.clone(item) for item in value)
        if kind is set:
            return set(value)
        if attrs.has(kind):
            return codec_for(kind).clone(value)
        return value

    def same(self, old: Any, new: Any) -> bool:
        return old is new or (type(old) is type(new) and old == new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        return self

    def is_empty(self, value: Any) -> bool:
        return isinstance(value, set | frozenset) and not value

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        if type(old) is dict and type(new) is dict:
            _ANY_DICT.diff(old, new, path, out, field=field)
        elif type(old) is list and type(new) is list:
            _ANY_LIST.diff(old, new, path, out, field=field)
        else:
            super().diff(old, new, path, out, field=field)


class _Nested(FieldType):
    """A nested attrs class, stored as a map of its fields."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__

    @property
    def codec(self) -> ModelCodec:
        return codec_for(self.cls)

    def encode(self, value: Any, path: Path) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, self.cls):
            raise _type_error(self.cls.__name__, value, path)
        return self.codec.encode_map(value, path)

    def decode(self, av: AttributeValue) -> Any:
        return self.codec.decode_item(av["M"])

    def clone(self, value: Any) -> Any:
        return None if value is None else self.codec.clone(value)

    def same(self, old: Any, new: Any) -> bool:
        return old is new or (type(old) is type(new) and old == new)

    def child(self, segment: Segment, path: Path) -> FieldType:
        codec = self.codec
        if isinstance(segment, str) and segment in codec.types:
            return codec.types[segment]
        return super().child(segment, path)

    def diff(self, old: Any, new: Any, path: Path, out: list[DiffOp], *, field: bool) -> None:
        if type(old) is self.cls and type(new) is self.cls and old is not new:
            for name, kind in self.codec.types.items():
                before = getattr(old, name)
                after = getattr(new, name)
                if before is not after:
                    kind.diff(before, after, (*path, name), out, field=True)
            return
        super().diff(old, new, path, out, field=field)


ANY = _Any()
_ANY_DICT = _Dict(ANY)
_ANY_LIST = _List(ANY)
_DATETIME = _Datetime()
_EPOCH = _EpochSeconds()
STR = _Str()
_SCALARS: dict[Any, FieldType] = {
    str: STR,
    int: _Int(),
    float: _Float(),
    bool: _Bool(),
    bytes: _Bytes(),
    Decimal: _Decimal(),
    dt.datetime: _DATETIME,
    Any: ANY,
    object: ANY,
}


def compile_type(hint: Any, *, owner: str = "") -> FieldType:
    """Compile a type hint into its `FieldType`.

    Raises:
        ValidationError: the type cannot be stored in DynamoDB.
    """
    scalar = _SCALARS.get(hint)
    if scalar is not None:
        return scalar
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        others = [a for a in args if a is not type(None)]
        if len(others) == 1 and len(args) == 2:
            return _Optional(compile_type(others[0], owner=owner))
        return ANY if type(None) in args else _Optional(ANY)
    if origin in (list, typing.Sequence) or hint is list:
        return _List(compile_type(args[0], owner=owner) if args else ANY)
    if origin is dict or hint is dict:
        if args and args[0] is not str:
            raise ValidationError(f"{owner}: DynamoDB map keys are strings; use dict[str, ...]")
        return _Dict(compile_type(args[1], owner=owner) if args else ANY)
    if origin in (set, frozenset):
        element = args[0] if args else None
        if element not in (str, int, bytes):
            raise ValidationError(
                f"{owner}: DynamoDB sets hold str, int or bytes; got {hint!r} "
                "(use list[...] for other elements)"
            )
        return _Set(element)
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return _Enum(hint)
        if attrs.has(hint):
            return _Nested(hint)
        if issubclass(hint, bool):
            return _SCALARS[bool]
    raise ValidationError(f"{owner}: cannot store a field of type {hint!r} in DynamoDB")


@attrs.frozen(slots=True)
class Absent:
    """A snapshot entry for an attribute the stored item lacks; the object got `value`.

    An item written by another program (or before a field existed) may lack
    an attribute that decodes to a non-empty default, such as `{}` for a
    `dict` field. The diff must then write the whole attribute, never a
    path below it: DynamoDB refuses `SET profile.a` when `profile` is absent.
    """

    value: Any


def unwrap(value: Any) -> Any:
    """A snapshot entry's value, `Absent` or not."""
    return value.value if type(value) is Absent else value


def optional_inner(kind: FieldType) -> FieldType | None:
    """The inner type of `T | None`, or `None` when `kind` is not optional."""
    return kind.inner if isinstance(kind, _Optional) else None


def _ttl_type(cls: type, name: str, kind: FieldType) -> FieldType:
    """The stored form of a model's TTL field: epoch seconds, whether `int` or `datetime`."""
    inner = kind.inner if isinstance(kind, _Optional) else kind
    if isinstance(inner, _Int):
        return kind
    if inner is _DATETIME:
        return _Optional(_EPOCH) if isinstance(kind, _Optional) else _EPOCH
    raise ValidationError(
        f"{cls.__name__}.{name} is the ttl= field, so it must be a datetime (aware) or an int "
        f"(epoch seconds), optional or not; it is {kind.name}"
    )


class ModelCodec:
    """Encoder, decoder, cloner and differ for one attrs class."""

    def __init__(self, cls: type) -> None:
        attrs.resolve_types(cls)
        self.cls = cls
        self.types: dict[str, FieldType] = {
            f.name: compile_type(f.type, owner=f"{cls.__name__}.{f.name}")
            for f in attrs.fields(cls)
        }
        # A model's TTL field (see `uow.model`, which stores its metadata on the class).
        ttl = getattr(cls.__dict__.get("__uow_model__"), "ttl", None)
        if ttl is not None:
            self.types[ttl] = _ttl_type(cls, ttl, self.types[ttl])
        self.names: tuple[str, ...] = tuple(self.types)
        self._name_set = frozenset(self.names)
        # Fields an item must hold: no `None`, no empty value, no default to fall back on.
        fields = attrs.fields_dict(cls)
        self._required = frozenset(
            name
            for name, kind in self.types.items()
            if kind.absent() is None
            and not isinstance(kind, _Optional | _Any)
            and fields[name].default is attrs.NOTHING
        )
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        # name -> (index, how to copy a value for a snapshot; None: it is immutable)
        self.copiers: dict[str, tuple[int, Callable[[Any], Any] | None]] = {
            name: (i, None if _immutable(kind) else kind.clone)
            for i, (name, kind) in enumerate(self.types.items())
        }
        self._pairs = tuple(self.types.items())
        self._fields = tuple((name, kind, (name,)) for name, kind in self._pairs)
        # Both run per record, so they are generated functions, not methods (see `_compile`):
        # `snapshot(obj)`: the field values of `obj`, copied so later mutations do not
        # reach them; `diff(snapshot, obj, out)`: append the SET/REMOVE operations from
        # `snapshot` to the current `obj` to `out`.
        self.snapshot: _SnapshotFn
        self.diff: _DiffFn
        self.snapshot, self.diff = _compile(self)

    def encode_map(self, obj: Any, path: Path = ()) -> AttributeValue:
        """Encode `obj` as a DynamoDB map (`{"M": ...}`)."""
        if len(path) > _MAX_CONTAINER_PATH:
            raise _too_deep(path)
        return {"M": self.encode_item(obj, path)}

    def encode_item(self, obj: Any, path: Path = ()) -> Item:
        """Encode `obj` as an item: absent attributes are left out."""
        item: Item = {}
        if path:
            for name, kind in self._pairs:
                av = kind.encode(getattr(obj, name), (*path, name))
                if av is not None:
                    item[name] = av
            return item
        for name, kind, where in self._fields:
            av = kind.encode(getattr(obj, name), where)
            if av is not None:
                item[name] = av
        return item

    def decode_item(self, item: Item) -> Any:
        """Build an instance from an item without running `__init__`.

        The values come from DynamoDB, so converters and validators are not
        re-run; a missing attribute becomes `None` (optional fields), an empty
        set, or the field's default. Attributes the class does not declare
        are ignored.

        Raises:
            SchemaError: the item lacks a field that has no default, or holds
                a value that does not decode as the field's type.
        """
        obj: Any = object.__new__(self.cls)
        for name, kind in self._pairs:
            av = item.get(name)
            if av is None:
                if name in self._required:
                    raise SchemaError(
                        f"{self.cls.__name__}.{name}: the stored item has no {name!r} attribute "
                        "and the field has no default; give the field a default (or make it "
                        "optional), or store a value"
                    )
                value = self._missing(name, kind)
            else:
                try:
                    value = kind.decode(av)
                except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
                    raise SchemaError(
                        f"{self.cls.__name__}.{name}: the stored value {_shown(av)} does not "
                        f"decode as {kind.name} ({type(exc).__name__}: {exc})"
                    ) from exc
                except SchemaError as exc:  # in a nested class
                    raise SchemaError(f"{self.cls.__name__}.{name}: {exc}") from exc
            object.__setattr__(obj, name, value)
        return obj

    def missing(self, name: str) -> Any:
        """What field `name` holds when the stored item lacks its attribute."""
        return self._missing(name, self.types[name])

    def _missing(self, name: str, kind: FieldType) -> Any:
        absent = kind.absent()
        if absent is not None or isinstance(kind, _Optional | _Any):
            return absent
        default: Any = attrs.fields_dict(self.cls)[name].default
        factory: Callable[..., Any] | None = getattr(default, "factory", None)
        if factory is not None:  # an attrs.Factory
            return factory(None) if default.takes_self else factory()
        if default is not attrs.NOTHING:
            return default
        return None

    def read(self, item: Item) -> tuple[Any, tuple[Any, ...]]:
        """Decode a stored item into an object and its committed snapshot.

        Fields the item lacks but that decode to a non-empty default are
        marked `Absent` in the snapshot, so a later change writes them whole.
        """
        obj = self.decode_item(item)
        snapshot = self.snapshot(obj)
        if item.keys() >= self._name_set:  # every field stored (undeclared attributes aside)
            return obj, snapshot
        values = list(snapshot)
        for index, (name, kind) in enumerate(self._pairs):
            value = values[index]
            if name not in item and value is not None and not kind.is_empty(value):
                values[index] = Absent(value)
        return obj, tuple(values)

    def carry_absent(
        self, old: tuple[Any, ...], new: tuple[Any, ...], written: set[str]
    ) -> tuple[Any, ...]:
        """`new`, with the `Absent` marks of `old` kept for the fields not written.

        (A diff removes a top-level attribute only for `None` or an empty set,
        which need no mark; a field emptied to `{}` keeps an empty map stored.)
        """
        if not any(type(value) is Absent for value in old):
            return new
        return tuple(
            before if type(before) is Absent and name not in written else after
            for name, before, after in zip(self.names, old, new, strict=True)
        )

    def restore(self, obj: Any, snapshot: tuple[Any, ...]) -> None:
        """Put `obj` back in place to `snapshot` (copying, so the snapshot stays intact)."""
        for (name, kind), value in zip(self._pairs, snapshot, strict=True):
            object.__setattr__(obj, name, kind.clone(unwrap(value)))

    def clone(self, obj: Any) -> Any:
        """A deep copy of `obj` built without running `__init__`."""
        copy: Any = object.__new__(self.cls)
        for name, kind in self._pairs:
            object.__setattr__(copy, name, kind.clone(getattr(obj, name)))
        return copy

    def iter_values(self, obj: Any) -> Iterator[tuple[str, Any]]:
        for name in self.names:
            yield name, getattr(obj, name)


def _field_diff(kind: FieldType, path: Path, old: Any, new: Any, out: list[DiffOp]) -> None:
    """One top-level field's operations (`old` is its snapshot entry, maybe `Absent`)."""
    if type(old) is Absent:
        # Not stored: write the whole attribute, and only if there is something.
        if not (kind.same(old.value, new) or new is None or kind.is_empty(new)):
            out.append(("SET", path, new, kind))
        return
    kind.diff(old, new, path, out, field=True)


def _shallow_same(old: Any, new: Any) -> bool:
    """True when `new` is a dict or list holding exactly the objects `old` holds.

    A snapshot shares immutable elements with the object, so an untouched
    container of strings and numbers passes this without a full diff. False
    means "maybe changed": the field's type then diffs it properly.
    """
    kind = type(new)
    # An `Any` field may hold a number on both sides: only dicts and lists are sized.
    if kind is not type(old) or (kind is not dict and kind is not list) or len(new) != len(old):
        return False
    if kind is dict:
        get = old.get
        missing = _MISSING
        for key, value in new.items():  # noqa: SIM110 - no generator: it runs per record
            if get(key, missing) is not value:
                return False
        return True
    if kind is list:
        for before, after in zip(old, new, strict=True):  # noqa: SIM110 - as above
            if before is not after:
                return False
        return True
    return False


def _immutable(kind: FieldType) -> bool:
    """True for a type whose values are never copied: a snapshot shares them."""
    if isinstance(kind, _Optional):
        kind = kind.inner
    return type(kind).clone is FieldType.clone


def _flat_set(kind: FieldType) -> bool:
    """True for a set type: equal sets of one type are the same stored value."""
    return isinstance(kind.inner if isinstance(kind, _Optional) else kind, _Set)


_SnapshotFn = Callable[[Any], tuple[Any, ...]]
_DiffFn = Callable[[tuple[Any, ...], Any, list[DiffOp]], None]


def _compile(codec: ModelCodec) -> tuple[_SnapshotFn, _DiffFn]:
    """Straight-line `snapshot` and `diff` functions for one class (they run per record).

    Values of immutable types (strings, numbers, ...) are taken as they are,
    and compared by identity first, then by type and equality (which is what
    their `FieldType.same` means); only a value that differs, or a container,
    goes through its `FieldType`. Generated as source, as attrs does for
    `__init__`, so that no per-field loop or call runs when nothing changed.
    """
    names = codec.names
    if not names:
        return (lambda obj: ()), (lambda snapshot, obj, out: None)
    scope: dict[str, Any] = {
        "Absent": Absent,
        "_field_diff": _field_diff,
        "_shallow_same": _shallow_same,
    }
    copies = []
    lines = [
        "def diff(snapshot, obj, out):",
        f"    ({', '.join(f's{i}' for i in range(len(names)))},) = snapshot",
    ]
    for i, (name, kind) in enumerate(codec._pairs):
        scope[f"k{i}"] = kind
        scope[f"p{i}"] = (name,)
        scope[f"c{i}"] = kind.clone
        scope[f"n{i}"] = name
        value = (
            f"obj.{name}"
            if name.isidentifier() and not name.startswith("__")
            else f"getattr(obj, n{i})"
        )
        lines.append(f"    v = {value}")
        if _immutable(kind):
            # Same type, different value: a plain SET (neither is None, nothing is
            # empty); a stored value set to None: a REMOVE; any other change of
            # type (an int in a float field, `Absent`) goes through the type's rules.
            copies.append(value)
            lines.append(f"    if v is not s{i}:")
            lines.append(f"        if type(v) is type(s{i}):")
            lines.append(f"            if v != s{i}:")
            lines.append(f"                out.append(('SET', p{i}, v, k{i}))")
            lines.append(f"        elif v is None and type(s{i}) is not Absent:")
            lines.append(f"            out.append(('REMOVE', p{i}, None, k{i}))")
            lines.append("        else:")
            lines.append(f"            _field_diff(k{i}, p{i}, s{i}, v, out)")
        else:
            copies.append(f"c{i}({value})")
            test = f"v is not s{i}"
            if _flat_set(kind):
                test += f" and (type(v) is not type(s{i}) or v != s{i})"
            elif isinstance(
                kind.inner if isinstance(kind, _Optional) else kind, _List | _Dict | _Any
            ):
                test += f" and not _shallow_same(s{i}, v)"
            lines.append(f"    if {test}:")
            lines.append(f"        _field_diff(k{i}, p{i}, s{i}, v, out)")
    lines.append("def snapshot(obj):")
    lines.append(f"    return ({', '.join(copies)},)")
    exec(compile("\n".join(lines), f"<uow codec {codec.cls.__qualname__}>", "exec"), scope)
    return scope["snapshot"], scope["diff"]


_CODECS: dict[type, ModelCodec] = {}


def _shown(av: AttributeValue) -> str:
    """A stored value for a message: its type tag and a short preview."""
    text = repr(av)
    return text if len(text) <= 80 else text[:77] + "..."


def forget_codec(cls: type) -> None:
    """Drop the cached codec of `cls` (its model metadata changed)."""
    _CODECS.pop(cls, None)


def codec_for(cls: type) -> ModelCodec:
    """The (cached) codec of an attrs class."""
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = ModelCodec(cls)
    return codec
