"""The session's reads: the identity map first, then DynamoDB, results merged back.

`Reads` is the half of `Session` that answers `get`, `get_by`, `get_many`,
`query`, `scan`, `page` and `refresh`. Every row a read returns is merged
into the map (`_merge`): one object per item, pending changes kept.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.conditions import ConditionBase
from botocore.exceptions import BotoCoreError, ClientError

from uow._execute import Outcome, batch_get, call, translate
from uow._lifecycle import SessionState
from uow._pages import Page, Shape
from uow._query import read_params
from uow.cache import reads_bypass_cache
from uow.changes import Change, ChangeKind, Op
from uow.codec import Item, codec_for
from uow.errors import NotFoundError, UsageError, ValidationError
from uow.identity import Key, Record, RecordState, key_from_item, key_item, key_of
from uow.model import ModelInfo, info_of
from uow.plan import GUARD_KEY, GUARD_TABLE, guard_key

if TYPE_CHECKING:
    from uow.store import Store

__all__ = ["Reads"]

T = TypeVar("T")


class Reads:
    """The read methods of `Session` (see there for the session's rules)."""

    _state: SessionState
    _records: dict[Key, Record]
    _store: Store
    _reads: Outcome
    _hits: int
    _misses: int

    # Provided by `Session`: the lifecycle guard and per-record helpers.
    def _guard(self, call: str) -> None:
        raise NotImplementedError

    def _begin(self, call: str) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

    def _record_of(self, obj: Any, call: str) -> Record:
        raise NotImplementedError

    @staticmethod
    def _is_dirty(record: Record) -> bool:
        raise NotImplementedError

    @staticmethod
    def _apply_ops(record: Record, ops: Sequence[Op]) -> None:
        raise NotImplementedError

    async def get(self, model: type[T], pk: Any, sk: Any = None) -> T | None:
        """The record with this key: from the map, else one strongly consistent `GetItem`.

        Returns `None` when the item does not exist or is pending deletion.
        Inside `uow.cache_disabled()` (or with `Store(cache=False)`) the read
        always goes to DynamoDB; a clean mapped object is refreshed in place,
        one with pending changes keeps them.
        """
        if self._state is not SessionState.OPEN:
            self._guard("get()")
        info = info_of(model)
        # The fast path: a hit on a key whose values have the stored types needs no
        # checks (`Key` is a tuple, so a plain tuple finds it; a bool would find an
        # int key, hence the type test). Anything else takes the checked path below.
        try:
            record = self._records.get((info.table, pk, sk))  # type: ignore[call-overload]
        except TypeError:  # an unhashable value; key_of says what is wrong with it
            record = None
        if (
            record is not None
            and record.info is info
            and type(pk) is type(record.key.pk)
            and type(sk) is type(record.key.sk)
            and record.state is not RecordState.BLIND
            and self._store.cache
            and not reads_bypass_cache()
        ):
            self._hits += 1
            return record.visible  # type: ignore[no-any-return]  # the record's object is a T
        key = key_of(info, pk, sk)
        record = self._records.get(key)
        if record is not None and record.info is not info:
            raise UsageError(
                f"Session.get(): key {key} of table {info.table!r} is held by a "
                f"{record.info.name}, not a {info.name}"
            )
        bypass = self._bypass()
        if record is not None and record.state is not RecordState.BLIND and not bypass:
            self._hits += 1
            return record.visible  # type: ignore[no-any-return]  # the record's object is a T
        self._misses += 1
        self._begin("get()")
        try:
            item = await self._get_item(info, key)
        finally:
            self._end()
        return self._merge(info, key, item, refresh=True)  # type: ignore[no-any-return]  # a T

    def _bypass(self) -> bool:
        return not self._store.cache or reads_bypass_cache()

    async def get_by(self, model: type[T], **unique_eq: Any) -> T | None:
        """The record whose unique field has this value, e.g. `get_by(User, email=...)`.

        Answered from the map, without a request, when a mapped object holds
        the value. Otherwise one strongly consistent read of the field's guard
        item finds the key, then the record is read (or taken from the map).
        Pending changes count: after `user.email = new` (not yet committed),
        the old value no longer finds the object and the new one does.

        Raises:
            ValidationError: not exactly one field, or a field not declared
                in the model's `unique=`.
        """
        self._guard("get_by()")
        info = info_of(model)
        if len(unique_eq) != 1:
            raise ValidationError(f"get_by({info.name}, ...) takes exactly one field=value")
        ((field, value),) = unique_eq.items()
        if field not in info.unique:
            declared = ", ".join(info.unique) or "none"
            raise ValidationError(
                f"{info.name}.{field} is not a unique field (unique fields: {declared})"
            )
        bypass = self._bypass()
        if not bypass:
            for record in self._records.values():
                obj = record.visible
                if record.info is info and obj is not None and _equal(getattr(obj, field), value):
                    self._hits += 1
                    return obj  # type: ignore[no-any-return]  # the record's object is a T
        self._misses += 1
        guard_params = {
            "TableName": self._store.table_prefix + GUARD_TABLE,
            "Key": {GUARD_KEY: {"S": guard_key(info, field, value)}},
            "ConsistentRead": True,
        }
        self._begin("get_by()")
        try:
            guard = (await self._read("GetItem", guard_params, info, None)).get("Item")
            if guard is None:
                return None
            key = _guard_owner(info, guard)
            owner = self._records.get(key)
            if owner is not None and owner.state is not RecordState.BLIND and not bypass:
                found = owner.visible  # mapped: its pending changes decide below
            else:
                found = self._merge(info, key, await self._get_item(info, key), refresh=True)
        finally:
            self._end()
        if found is None or not _equal(getattr(found, field), value):
            return None  # deleted, or its value changed in this session
        return found  # type: ignore[no-any-return]  # the record's object is a T

    async def get_many(self, model: type[T], keys: Iterable[Any]) -> list[T | None]:
        """Several records by key, in input order; `None` for missing and pending deletes.

        Keys are partition-key values, or `(pk, sk)` tuples for models with a
        sort key. Keys in the map cost no request; the others are read with
        strongly consistent `BatchGetItem`s of up to 100 keys, sent
        concurrently, unprocessed keys retried with backoff.
        """
        self._guard("get_many()")
        info = info_of(model)
        wanted = [
            key_of(info, *(k if isinstance(k, tuple) else (k,)))
            for k in keys  # a tuple is (pk, sk)
        ]
        results: list[Any] = [None] * len(wanted)
        needed: dict[Key, list[int]] = {}
        bypass = self._bypass()
        for position, key in enumerate(wanted):
            record = self._records.get(key)
            if record is not None and record.state is not RecordState.BLIND and not bypass:
                self._hits += 1
                results[position] = record.visible
            else:
                needed.setdefault(key, []).append(position)
        if not needed:
            return results
        self._misses += len(needed)
        store = self._store
        self._begin("get_many()")
        try:
            items = await batch_get(
                store.client,
                store.table_prefix + info.table,
                [key_item(info, key) for key in needed],
                retry=store.retry,
                max_concurrency=store.max_concurrency,
                outcome=self._reads,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, Change(ChangeKind.UPDATE, info.cls, next(iter(needed)))) from exc
        finally:
            self._end()
        by_key = {key_from_item(info, item): item for item in items}
        for key, positions in needed.items():
            obj = self._merge(info, key, by_key.get(key), refresh=True)
            for position in positions:
                results[position] = obj
        return results

    def query(
        self,
        model: type[T],
        key_condition: ConditionBase,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> AsyncIterator[T]:
        """Records matching a key condition, as an async iterator that pages lazily.

        `key_condition` and `filter` are `boto3.dynamodb.conditions` objects
        (`Key("customer_id").eq("c1") & Key("order_id").begins_with("2024")`,
        `Attr("total").gt(10)`); `index` names a GSI from the model's
        `indexes`. `limit` caps the records yielded.

        Every row merges into the map: a record already mapped comes back as
        the same object, with its unsaved changes; a record pending deletion
        is not yielded. DynamoDB evaluates the conditions on committed data:
        records added in this session and not committed are not found, and a
        local edit does not change whether a record matches. Inside
        `cache_disabled()` clean mapped objects are refreshed from the rows.
        """
        self._guard("query()")
        info = info_of(model)
        params = read_params(
            info,
            self._store.table_prefix + info.table,
            key_condition=key_condition,
            filter=filter,
            index=index,
            reverse=reverse,
        )
        return self._rows(info, "Query", params, limit)

    def scan(
        self,
        model: type[T],
        *,
        filter: ConditionBase | None = None,
        index: str | None = None,
    ) -> AsyncIterator[T]:
        """Every record of the model's table (or index), as an async iterator; see `query`."""
        self._guard("scan()")
        info = info_of(model)
        params = read_params(
            info,
            self._store.table_prefix + info.table,
            key_condition=None,
            filter=filter,
            index=index,
        )
        return self._rows(info, "Scan", params, None)

    async def page(
        self,
        model: type[T],
        key_condition: ConditionBase | None = None,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        limit: int,
        after: str | None = None,
        reverse: bool = False,
    ) -> Page[T]:
        """One page of a listing and the cursor to the next: pagination for web handlers.

        The listing is `query(model, key_condition, index=, filter=, reverse=)`,
        or a scan of the table (or index) when `key_condition` is `None`. The
        page holds exactly `limit` records while that many remain, however
        many DynamoDB pages a selective `filter` takes to find them. Its
        `cursor` is `None` when no record follows, else a URL-safe string:
        give it back as `after=` to the same call for the next page. Rows
        merge into the map as `query` rows do (one object per item, pending
        changes kept, pending deletes left out).

        The next page starts right after the last record returned (not where
        DynamoDB stopped reading), so no record is skipped or repeated, even
        when records are added or deleted between the two requests (a record
        present throughout appears exactly once; one added behind the cursor
        does not appear). To know whether a record follows, `page` reads one
        record past the page; that record is merged into the map too.

        A cursor is bound to the listing's shape: the model, the table, the
        index, the direction and the key condition (with its values), but
        not the filter (changing the filter continues from the same place,
        with the new filter). Without `Store(cursor_key=...)` cursors carry
        a public checksum, which catches damage and misuse but not a
        deliberate forgery; with it they are signed (HMAC-SHA256) and a
        client cannot make one. A key condition that depends on the clock
        (`Key("due").lt(now)`) makes a new shape on every request: fix the
        bound for the listing instead.

        Args:
            model: the model listed.
            key_condition: a `boto3.dynamodb.conditions` key condition, or
                `None` to page a scan.
            index: a GSI from the model's `indexes`.
            filter: a `boto3.dynamodb.conditions` filter.
            limit: the page size, at least 1. Cap what a client may ask for:
                DynamoDB reads at least `limit + 1` items per page.
            after: the `cursor` of the previous page; `None` for the first.
            reverse: descending key order (a query only: a scan has no order).

        Returns:
            A `uow.Page` with `.items` and `.cursor`.

        Raises:
            ValidationError: before any request, for a `limit` that is not an
                int of at least 1, an unknown index, `reverse` on a scan, or an
                `after` that is not a cursor of this listing from this store:
                garbage, damaged or truncated, made for another model, table,
                index, direction or key condition, signed with another
                `cursor_key` (or not signed when the store signs), or (forged)
                with a start key outside the key condition.
        """
        self._guard("page()")
        info = info_of(model)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(
                f"page({info.name}): limit must be an int of at least 1, got {limit!r}"
            )
        if key_condition is None and reverse:
            raise ValidationError(
                f"page({info.name}): reverse=True needs a key_condition; a scan has no order"
            )
        table = self._store.table_prefix + info.table
        params = read_params(
            info, table, key_condition=key_condition, filter=filter, index=index, reverse=reverse
        )
        shape = Shape.of(info, table, key_condition=key_condition, index=index, reverse=reverse)
        cursors = self._store._cursors  # private: it holds the store's signing key
        if after is not None:
            params["ExclusiveStartKey"] = cursors.decode(after, shape)
        # One record past the page: whether it exists decides whether a cursor is due.
        params["Limit"] = limit + 1
        api = "Query" if key_condition is not None else "Scan"
        objects: list[Any] = []
        rows: list[Item] = []
        async with aclosing(self._rows(info, api, params, None, rows=rows)) as read:
            async for obj in read:
                objects.append(obj)
                if len(objects) > limit:
                    break
        if len(objects) <= limit:
            return Page(tuple(objects), None)
        return Page(tuple(objects[:limit]), cursors.encode(shape, rows[limit - 1]))

    async def _rows(
        self,
        info: ModelInfo,
        api: str,
        params: dict[str, Any],
        limit: int | None,
        *,
        rows: list[Item] | None = None,
    ) -> AsyncGenerator[Any, None]:
        # `rows`, when given, receives the raw item of each object yielded, in step
        # with them: `page()` builds its cursor from the item as the read returned it.
        yielded = 0
        start: Any = None
        refresh = self._bypass()
        while limit is None or yielded < limit:
            page = dict(params)
            if start:
                page["ExclusiveStartKey"] = start
            if limit is not None:
                page["Limit"] = limit - yielded
            self._begin(f"{api.lower()}()")
            try:
                response = await self._read(api, page, info, None)
            finally:
                self._end()
            for item in response.get("Items", ()):
                key = key_from_item(info, item)
                record = self._records.get(key)
                if record is not None and record.state is not RecordState.BLIND:
                    self._hits += 1
                else:
                    self._misses += 1
                obj = self._merge(info, key, item, refresh=refresh)
                if obj is None:
                    continue  # pending deletion in this session
                if rows is not None:
                    rows.append(item)
                yield obj
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    async def _read(
        self, api: str, params: dict[str, Any], info: ModelInfo, key: Key | None
    ) -> dict[str, Any]:
        """One read request, retried, counted in `read_stats`, errors translated."""
        retry = self._store.retry
        try:
            return await call(
                self._store.client,
                api,
                params,
                retry=retry,
                deadline=time.monotonic() + retry.budget,
                outcome=self._reads,
            )
        except (ClientError, BotoCoreError) as exc:
            change = Change(ChangeKind.UPDATE, info.cls, key or Key(info.table, "?"))
            raise translate(exc, change) from exc

    async def _get_item(self, info: ModelInfo, key: Key) -> Item | None:
        params = {
            "TableName": self._store.table_prefix + info.table,
            "Key": key_item(info, key),
            "ConsistentRead": True,
        }
        item: Item | None = (await self._read("GetItem", params, info, key)).get("Item")
        return item

    def _merge(self, info: ModelInfo, key: Key, item: Item | None, *, refresh: bool) -> Any:
        """Merge a read into the map, keeping identity and pending changes.

        With `refresh`, a clean mapped object takes the item's values in place
        (and one that vanished is evicted); otherwise it stays as the session
        last saw it.
        """
        record = self._records.get(key)
        if item is None:
            if refresh and record is not None and record.state is RecordState.LOADED:
                if not self._is_dirty(record):
                    del self._records[key]
                return None
            return None if record is None else record.visible
        codec = codec_for(info.cls)
        if record is None:
            obj, snapshot = codec.read(item)
            self._records[key] = Record(key, info, codec, RecordState.LOADED, obj, obj, snapshot)
            return obj
        if record.state is RecordState.BLIND:
            if record.doubt is not None:
                # Whether the stored item already holds the blind update is unknown:
                # applying it to the object could count it twice.
                raise UsageError(
                    f"{info.name} {key}: its blind update() was sent and its outcome is "
                    "unknown (an interrupted commit); commit() again to settle it before "
                    "reading this key, or clear_record() it"
                )
            obj, snapshot = codec.read(item)
            loaded = Record(key, info, codec, RecordState.LOADED, obj, obj, snapshot)
            loaded.attempt, loaded.conditions = record.attempt, record.conditions
            try:
                self._apply_ops(loaded, record.blind)
            except ValidationError as exc:
                raise ValidationError(
                    f"{info.name} {key}: pending update() does not fit the stored item: {exc}; "
                    "clear_record() it or change the update"
                ) from exc
            self._records[key] = loaded
            return obj
        if refresh and record.state is RecordState.LOADED and not self._is_dirty(record):
            _, record.snapshot = codec.read(item)
            codec.restore(record.obj, record.snapshot)
        return record.visible

    async def refresh(self, obj: T) -> T:
        """Re-read `obj` from DynamoDB in place, dropping its pending changes.

        Always reads DynamoDB, whatever the cache setting. Returns `obj`.

        Raises:
            UsageError: `obj` is not in this session.
            NotFoundError: DynamoDB no longer holds the item; it is expunged.
        """
        self._guard("refresh()")
        record = self._record_of(obj, "refresh()")
        self._begin("refresh()")
        try:
            item = await self._get_item(record.info, record.key)
        finally:
            self._end()
        if item is None:
            self._records.pop(record.key, None)
            raise NotFoundError(
                f"{record.info.name} {record.key} no longer exists in DynamoDB; "
                "it has been expunged from the session"
            )
        codec = record.codec
        _, snapshot = codec.read(item)
        codec.restore(obj, snapshot)
        self._records[record.key] = Record(
            record.key, record.info, codec, RecordState.LOADED, obj, obj, snapshot
        )
        return obj


def _equal(current: Any, wanted: Any) -> bool:
    return current is wanted or (type(current) is type(wanted) and current == wanted)


def _guard_owner(info: ModelInfo, guard: Item) -> Key:
    """The key of the record that owns a unique guard item."""
    codec = codec_for(info.cls)
    pk = codec.types[info.pk].decode(guard[f"key_{info.pk}"])
    sk = codec.types[info.sk].decode(guard[f"key_{info.sk}"]) if info.sk else None
    return key_of(info, pk, sk)
