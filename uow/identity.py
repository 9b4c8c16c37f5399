"""Keys, per-record state, and the identity map (one object per item, per session)."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from uow.codec import STR, AttributeValue, Item, ModelCodec, codec_for
from uow.errors import ValidationError
from uow.model import ModelInfo

if TYPE_CHECKING:
    from uow._execute import InDoubt

__all__ = [
    "PARTITION_KEY_LIMIT",
    "SORT_KEY_LIMIT",
    "IdentityMap",
    "Key",
    "Record",
    "RecordState",
    "key_of",
    "key_size_error",
]

KeyValue = str | int | bytes


class Key(NamedTuple):
    """The identity of one item: table (without prefix), partition and sort key values.

    A named tuple, so that hashing it (every map lookup) runs in C. Build keys
    with `key_of`, which checks the values: a plain tuple would let `True`
    stand for `1`.
    """

    table: str
    pk: KeyValue
    sk: KeyValue | None = None

    def __str__(self) -> str:
        return f"{self.pk!r}" if self.sk is None else f"({self.pk!r}, {self.sk!r})"


class RecordState(enum.Enum):
    """Where a record stands against DynamoDB; transitions live in `uow.session`.

    * `NEW`: added in this session; written create-only at commit.
    * `REPLACE`: deleted then added again (or added with `overwrite=True`);
      written as an unconditional put.
    * `LOADED`: read from (or committed to) DynamoDB; written as the diff from
      its snapshot, if any.
    * `BLIND`: only blind `update()` calls on a key whose item was not loaded.
    * `DELETED`: a pending delete.
    """

    NEW = "new"
    REPLACE = "replace"
    LOADED = "loaded"
    BLIND = "blind"
    DELETED = "deleted"


@attrs.define(slots=True, eq=False)
class Record:
    """One identity-map entry: the live object, its committed state, its pending work.

    `snapshot` is the committed field values of `base` (the object as
    DynamoDB holds it) or `None` when the item is not known to exist.
    `obj` is what the session shows; it differs from `base` only after a
    delete followed by an add of the same key (rollback brings `base` back).
    """

    key: Key
    info: ModelInfo
    codec: ModelCodec
    state: RecordState
    obj: Any = None
    base: Any = None
    snapshot: tuple[Any, ...] | None = None
    # Blind operations on an unloaded item, in call order (BLIND state only).
    blind: list[Any] = attrs.Factory(list)
    # ADD deltas applied to `obj` since the snapshot: top-level field -> delta.
    adds: dict[str, Any] = attrs.Factory(dict)
    # The token of this record's pending change: made when the change is first
    # planned, kept for every re-send, dropped once DynamoDB confirms it or the change
    # is dropped. It seeds a transaction's `ClientRequestToken`
    # (`_execute.request_token`) and is the marker a create or versioned write stores
    # in the item (`plan.MARKER_PREFIX`).
    attempt: str | None = None
    # User conditions on this record's next write (`condition=`, `Session.expect`), ANDed
    # with uow's own; kept until that write is confirmed or the change is dropped.
    conditions: list[Any] = attrs.Factory(list)
    # A write of this record whose outcome is unknown (sent, no answer): the next
    # commit settles it before anything else is sent for the record (`uow._execute.InDoubt`).
    doubt: InDoubt | None = None
    # Field values of the stored item, read at commit for a blind delete or
    # overwrite of a model with unique fields (so its guards can be released).
    stored: tuple[Any, ...] | None = None

    @property
    def visible(self) -> Any:
        """The object a read returns: `None` for a pending delete or a blind record."""
        if self.state is RecordState.DELETED:
            return None
        return self.obj


# DynamoDB's limits on a key value's size, in bytes (UTF-8 for strings); the same for
# an index's keys.
PARTITION_KEY_LIMIT = 2048
SORT_KEY_LIMIT = 1024


def key_size_error(value: Any, *, sort: bool) -> str | None:
    """Why a string or binary key value is over DynamoDB's size limit, or `None`."""
    limit = SORT_KEY_LIMIT if sort else PARTITION_KEY_LIMIT
    if type(value) is str:
        if len(value) * 4 <= limit:  # at most 4 bytes a character: no need to encode
            return None
        size = len(value.encode("utf-8"))
    elif isinstance(value, bytes | bytearray):
        size = len(value)
    else:
        return None
    if size <= limit:
        return None
    which = "sort" if sort else "partition"
    return f"a {which} key value is at most {limit} bytes, and this one is {size}"


def _key_value(info: ModelInfo, name: str, value: Any) -> KeyValue:
    if isinstance(value, bool) or not isinstance(value, str | int | bytes):
        raise ValidationError(
            f"{info.name}.{name}: key values must be str, int or bytes, "
            f"got {type(value).__name__} {value!r}"
        )
    key: KeyValue = value
    if isinstance(key, str | bytes):
        if not key:
            raise ValidationError(f"{info.name}.{name}: key values cannot be empty")
        if len(key) * 4 > SORT_KEY_LIMIT:  # short values cannot be near either limit
            problem = key_size_error(key, sort=name != info.pk)
            if problem is not None:
                raise ValidationError(f"{info.name}.{name}: {problem}")
    return key


def key_of(info: ModelInfo, pk: Any, sk: Any = None) -> Key:
    """Build and check the `Key` of a record of `info` from key values.

    Raises:
        ValidationError: a key value is missing, empty, or of a type DynamoDB
            keys cannot hold.
    """
    if info.sk is None:
        if sk is not None:
            raise ValidationError(f"{info.name} has no sort key, but sk={sk!r} was given")
        return Key(info.table, _key_value(info, info.pk, pk))
    if sk is None:
        raise ValidationError(f"{info.name} needs a sort key ({info.sk})")
    return Key(info.table, _key_value(info, info.pk, pk), _key_value(info, info.sk, sk))


def key_of_object(info: ModelInfo, obj: Any) -> Key:
    """The `Key` of an instance."""
    return key_of(info, getattr(obj, info.pk), getattr(obj, info.sk) if info.sk else None)


def key_item(info: ModelInfo, key: Key) -> dict[str, AttributeValue]:
    """The DynamoDB `Key` parameter for a key."""
    codec = codec_for(info.cls)
    pk = key.pk
    if info.sk is None and type(pk) is str and codec.types[info.pk] is STR:
        return {info.pk: {"S": pk}}  # the common case, checked by `key_of`
    out = {info.pk: _encode_key(codec, info.pk, pk)}
    if info.sk is not None:
        out[info.sk] = _encode_key(codec, info.sk, key.sk)
    return out


def _encode_key(codec: ModelCodec, name: str, value: Any) -> AttributeValue:
    av = codec.types[name].encode(value, (name,))
    if av is None:  # pragma: no cover - key_of rejects None
        raise ValidationError(f"{codec.cls.__name__}.{name}: key value missing")
    return av


def key_from_item(info: ModelInfo, item: Item) -> Key:
    """The `Key` of a raw DynamoDB item of this model."""
    codec = codec_for(info.cls)
    pk = codec.types[info.pk].decode(item[info.pk])
    sk = codec.types[info.sk].decode(item[info.sk]) if info.sk else None
    return key_of(info, pk, sk)


class IdentityMap(Mapping[Key, Any]):
    """A read-only view of a session's map: key → the object the session shows.

    Records pending deletion and blind updates of unloaded items have no
    object and are not listed.
    """

    __slots__ = ("_records",)

    def __init__(self, records: dict[Key, Record]) -> None:
        self._records = records

    def __getitem__(self, key: Key) -> Any:
        record = self._records[key]
        if record.visible is None:
            raise KeyError(key)
        return record.visible

    def __iter__(self) -> Iterator[Key]:
        return (k for k, r in self._records.items() if r.visible is not None)

    def __len__(self) -> int:
        return sum(1 for r in self._records.values() if r.visible is not None)

    def __repr__(self) -> str:
        return f"IdentityMap({len(self)} objects)"
