"""The session's reads: the identity map first, then DynamoDB, results merged back.

`Reads` is the half of `Session` that answers `get`, `get_by`, `get_many`,
`query`, `scan`, `page` and `refresh`. Every row a read returns is merged
into the map (`_merge`): one object per item, pending changes kept.

Before merging, an item must be one the model accepts (`uow._items`): of
its kind (single-table design), not expired (TTL), and whole (a row of an
index that does not project every field is completed with `BatchGetItem`).
`_merge_page` does all of that for a page of `Query`/`Scan` rows, for
`query`, `scan` and `page` alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar, overload

from boto3.dynamodb.conditions import ConditionBase
from botocore.exceptions import BotoCoreError, ClientError

from uow._execute import Outcome, batch_get, call, translate
from uow._items import check_models, expired, model_of_item, rows_are_whole, wrong_kind
from uow._lifecycle import SessionState
from uow._pages import Page, Shape
from uow._query import read_params
from uow.cache import reads_bypass_cache
from uow.changes import Change, ChangeKind, Op
from uow.codec import Item, ModelCodec, codec_for
from uow.errors import NotFoundError, SchemaError, UsageError, ValidationError
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
        record = self._held(info, key)
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

    def _held(self, info: ModelInfo, key: Key) -> Record | None:
        """The record at `key`, if it is one of `info`'s (a pending delete of any model counts).

        Raises:
            SchemaError: the session holds this item as another model (kind).
        """
        record = self._records.get(key)
        if record is None or record.info is info:
            return record
        if record.state is RecordState.DELETED:
            return record  # reads as None, whatever the model
        raise wrong_kind(info, key, None, record.info)

    def _bypass(self) -> bool:
        return not self._store.cache or reads_bypass_cache()

    async def get_by(self, model: type[T], **unique_eq: Any) -> T | None:
        """The record whose unique field has this value, e.g. `get_by(User, email=...)`.

        For a compound constraint (`unique=(("tenant", "number"),)`) give every
        field of it: `get_by(Invoice, tenant="t1", number=7)`.

        Answered from the map, without a request, when a mapped object holds
        the value. Otherwise one strongly consistent read of the guard item
        finds the key, then the record is read (or taken from the map).
        Pending changes count: after `user.email = new` (not yet committed),
        the old value no longer finds the object and the new one does.

        Raises:
            ValidationError: the fields given are not exactly one of the
                model's `unique=` constraints.
            SchemaError: the stored record does not fit the model.
        """
        self._guard("get_by()")
        info = info_of(model)
        fields = next((c for c in info.unique if set(c) == set(unique_eq)), None)
        if fields is None or len(fields) != len(unique_eq):
            declared = ", ".join(" + ".join(c) for c in info.unique) or "none"
            given = ", ".join(unique_eq) or "no field"
            raise ValidationError(
                f"get_by({info.name}, ...): {given} is not one of its unique constraints "
                f"(declared: {declared}); give exactly the fields of one"
            )
        values = tuple(unique_eq[field] for field in fields)
        if any(value is None for value in values):
            return None  # a combination holding None is not constrained, so it finds nothing
        bypass = self._bypass()
        if not bypass:
            for record in self._records.values():
                obj = record.visible
                if record.info is info and obj is not None and _holds(obj, fields, values):
                    self._hits += 1
                    return obj  # type: ignore[no-any-return]  # the record's object is a T
        self._misses += 1
        guard_params = {
            "TableName": self._store.table_prefix + GUARD_TABLE,
            "Key": {GUARD_KEY: {"S": guard_key(info, fields, values)}},
            "ConsistentRead": True,
        }
        self._begin("get_by()")
        try:
            guard = (await self._read("GetItem", guard_params, info, None)).get("Item")
            if guard is None:
                return None
            key = _guard_owner(info, guard)
            owner = self._held(info, key)
            if owner is not None and owner.state is not RecordState.BLIND and not bypass:
                found = owner.visible  # mapped: its pending changes decide below
            else:
                found = self._merge(info, key, await self._get_item(info, key), refresh=True)
        finally:
            self._end()
        if found is None or not _holds(found, fields, values):
            return None  # deleted, expired, or its value changed in this session
        return found  # type: ignore[no-any-return]  # the record's object is a T

    async def get_many(self, model: type[T], keys: Iterable[Any]) -> list[T | None]:
        """Several records by key, in input order; `None` for missing and pending deletes.

        Keys are partition-key values, or `(pk, sk)` tuples for models with a
        sort key. Keys in the map cost no request; the others are read with
        strongly consistent `BatchGetItem`s of up to 100 keys, sent
        concurrently, unprocessed keys retried with backoff. An expired item
        (TTL) reads as `None`.

        Raises:
            SchemaError: an item is of another kind, or does not fit the model;
                nothing is merged into the session then.
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
            record = self._held(info, key)
            if record is not None and record.state is not RecordState.BLIND and not bypass:
                self._hits += 1
                results[position] = record.visible
            else:
                needed.setdefault(key, []).append(position)
        if not needed:
            return results
        self._misses += len(needed)
        self._begin("get_many()")
        try:
            by_key = await self._fetch(info, list(needed))
        finally:
            self._end()
        now = time.time()
        accepted = {key: _accept(info, key, by_key.get(key), now) for key in needed}
        for key, positions in needed.items():
            obj = self._merge(info, key, accepted[key], refresh=True)
            for position in positions:
                results[position] = obj
        return results

    @overload
    def query(
        self,
        model: type[T],
        key_condition: ConditionBase,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> AsyncIterator[T]: ...

    @overload
    def query(
        self,
        model: tuple[type, ...],
        key_condition: ConditionBase,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> AsyncIterator[Any]: ...

    def query(
        self,
        model: type[T] | tuple[type, ...],
        key_condition: ConditionBase,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> AsyncIterator[Any]:
        """Records matching a key condition, as an async iterator that pages lazily.

        `key_condition` and `filter` are `boto3.dynamodb.conditions` objects
        (`Key("customer_id").eq("c1") & Key("order_id").begins_with("2024")`,
        `Attr("total").gt(10)`); `index` names a GSI from the model's
        `indexes`. `limit` caps the records yielded.

        `model` may be a tuple of models of one table with a `kind=` each
        (single-table design): each item is yielded as the model of its kind,
        an item collection in one request stream. Items of other kinds, and
        expired items (TTL), are skipped. Rows of an index that does not
        project every field are completed with `BatchGetItem` (records
        already mapped cost nothing), in index order.

        Every row merges into the map: a record already mapped comes back as
        the same object, with its unsaved changes; a record pending deletion
        is not yielded. DynamoDB evaluates the conditions on committed data:
        records added in this session and not committed are not found, and a
        local edit does not change whether a record matches. Inside
        `cache_disabled()` clean mapped objects are refreshed from the rows.

        Raises:
            ValidationError: an unknown index, a malformed condition, or
                models that cannot be read together.
            SchemaError: an item of the model's kind does not fit the model.
        """
        self._guard("query()")
        infos = _infos(model, "query()")
        source = _declaring(infos, index)
        params = read_params(
            source,
            self._store.table_prefix + source.table,
            key_condition=key_condition,
            filter=filter,
            index=index,
            reverse=reverse,
        )
        return self._rows(infos, "Query", params, limit)

    @overload
    def scan(
        self, model: type[T], *, filter: ConditionBase | None = None, index: str | None = None
    ) -> AsyncIterator[T]: ...

    @overload
    def scan(
        self,
        model: tuple[type, ...],
        *,
        filter: ConditionBase | None = None,
        index: str | None = None,
    ) -> AsyncIterator[Any]: ...

    def scan(
        self,
        model: type[T] | tuple[type, ...],
        *,
        filter: ConditionBase | None = None,
        index: str | None = None,
    ) -> AsyncIterator[Any]:
        """Every record of the model's table (or index), as an async iterator; see `query`."""
        self._guard("scan()")
        infos = _infos(model, "scan()")
        source = _declaring(infos, index)
        params = read_params(
            source,
            self._store.table_prefix + source.table,
            key_condition=None,
            filter=filter,
            index=index,
        )
        return self._rows(infos, "Scan", params, None)

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
        async with aclosing(self._rows((info,), api, params, None, rows=rows)) as read:
            async for obj in read:
                objects.append(obj)
                if len(objects) > limit:
                    break
        if len(objects) <= limit:
            return Page(tuple(objects), None)
        return Page(tuple(objects[:limit]), cursors.encode(shape, rows[limit - 1]))

    async def _rows(
        self,
        infos: tuple[ModelInfo, ...],
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
        index = params.get("IndexName")
        while limit is None or yielded < limit:
            page = dict(params)
            if start:
                page["ExclusiveStartKey"] = start
            if limit is not None:
                page["Limit"] = limit - yielded
            self._begin(f"{api.lower()}()")
            try:
                response = await self._read(api, page, infos[0], None)
                objs = await self._merge_page(
                    infos, response.get("Items", ()), index=index, refresh=refresh
                )
            finally:
                self._end()
            for obj, row in objs:
                if rows is not None:
                    rows.append(row)
                yield obj
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    async def _merge_page(
        self,
        infos: Sequence[ModelInfo],
        items: Sequence[Item],
        *,
        index: str | None,
        refresh: bool,
    ) -> list[tuple[Any, Item]]:
        """The session objects of one page of `Query`/`Scan` rows, in row order, each
        with its row as the read returned it (`page()` makes its cursor from it).

        Every row read for `infos` goes through here: items of other kinds and
        expired items are skipped, rows of an index that does not project
        every field are completed with one `BatchGetItem` per 100 rows (rows
        whose record is mapped cost nothing, unless `refresh`), and every
        item is merged into the map (`_merge`). Pending deletes are left out.

        Raises:
            SchemaError: an item of a model's kind does not fit the model.
        """
        first = infos[0]
        whole = rows_are_whole(infos, index)
        now = time.time()
        if not whole:
            # A row that shows its kind or expiry (an INCLUDE projection carries both)
            # is ruled out without reading its item.
            items = [item for item in items if not _ruled_out(infos, item, now)]
        keys = [key_from_item(first, item) for item in items]
        full: dict[Key, Item] = {}
        if not whole:
            fetch: dict[Key, None] = {}
            for key in keys:
                record = self._records.get(key)
                if record is None or record.state is RecordState.BLIND or refresh:
                    fetch[key] = None
            if fetch:
                full = await self._fetch(first, list(fetch))
        out: list[tuple[Any, Item]] = []
        for key, row in zip(keys, items, strict=True):
            record = self._records.get(key)
            item = row
            if not whole:
                if key not in full:
                    if record is None or record.state is RecordState.BLIND or refresh:
                        continue  # deleted since it was indexed
                    # Mapped: the map's object is the record, whatever the row holds.
                    self._hits += 1
                    if _among(record.info, infos) and record.visible is not None:
                        out.append((record.visible, row))
                    continue
                item = full[key]
            info = model_of_item(infos, item)
            if info is None:
                continue  # another kind
            if record is not None and record.state is not RecordState.BLIND:
                self._hits += 1
            else:
                self._misses += 1
            if record is not None and record.info is not info:
                # The session holds this item as another model (a pending add or
                # delete, or a blind update): its view wins, one object per item.
                if _among(record.info, infos) and record.visible is not None:
                    out.append((record.visible, row))
                continue
            if expired(info, item, now):
                self._merge(info, key, None, refresh=refresh)
                continue
            obj = self._merge(info, key, item, refresh=refresh)
            if obj is not None:
                out.append((obj, row))  # else pending deletion in this session
        return out

    async def _fetch(self, info: ModelInfo, keys: list[Key]) -> dict[Key, Item]:
        """The whole items at `keys` (strongly consistent `BatchGetItem`s), by key."""
        store = self._store
        try:
            items = await batch_get(
                store.transport,
                store.table_prefix + info.table,
                [key_item(info, key) for key in keys],
                retry=store.retry,
                max_concurrency=store.max_concurrency,
                outcome=self._reads,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, Change(ChangeKind.UPDATE, info.cls, keys[0])) from exc
        return {key_from_item(info, item): item for item in items}

    async def _read(
        self, api: str, params: dict[str, Any], info: ModelInfo, key: Key | None
    ) -> dict[str, Any]:
        """One read request, retried, counted in `read_stats`, errors translated."""
        retry = self._store.retry
        try:
            return await call(
                self._store.transport,
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
        """The stored item at `key` as `info` accepts it: `None` if absent or expired.

        Raises:
            SchemaError: the item is of another kind.
        """
        params = {
            "TableName": self._store.table_prefix + info.table,
            "Key": key_item(info, key),
            "ConsistentRead": True,
        }
        item: Item | None = (await self._read("GetItem", params, info, key)).get("Item")
        return _accept(info, key, item, time.time())

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
            obj, snapshot = _decode(info, codec, key, item)
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
            obj, snapshot = _decode(info, codec, key, item)
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
            _, record.snapshot = _decode(info, codec, key, item)
            codec.restore(record.obj, record.snapshot)
        return record.visible

    async def refresh(self, obj: T) -> T:
        """Re-read `obj` from DynamoDB in place, dropping its pending changes.

        Always reads DynamoDB, whatever the cache setting. Returns `obj`.

        Raises:
            UsageError: `obj` is not in this session.
            NotFoundError: DynamoDB no longer holds the item (or it expired,
                TTL); it is expunged.
            SchemaError: the stored item is now of another kind, or does not
                fit the model; `obj` and its pending changes are left as they are.
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
        _, snapshot = _decode(record.info, codec, record.key, item)
        codec.restore(obj, snapshot)
        self._records[record.key] = Record(
            record.key, record.info, codec, RecordState.LOADED, obj, obj, snapshot
        )
        return obj


def _equal(current: Any, wanted: Any) -> bool:
    return current is wanted or (type(current) is type(wanted) and current == wanted)


def _holds(obj: Any, fields: tuple[str, ...], values: tuple[Any, ...]) -> bool:
    """True when `obj`'s `fields` hold exactly `values`."""
    return all(_equal(getattr(obj, f), v) for f, v in zip(fields, values, strict=True))


def _infos(model: type | tuple[type, ...], call: str) -> tuple[ModelInfo, ...]:
    """The models a query or scan reads: one, or several of one table told apart by kind."""
    if isinstance(model, tuple):
        check_models(model, call)
        return tuple({id(info): info for info in map(info_of, model)}.values())
    return (info_of(model),)


def _among(info: ModelInfo, infos: Sequence[ModelInfo]) -> bool:
    return any(info is other for other in infos)


def _declaring(infos: tuple[ModelInfo, ...], index: str | None) -> ModelInfo:
    """The model whose declaration of `index` the request uses (the first, for the table)."""
    if index is not None:
        for info in infos:
            if index in info.indexes:
                return info
    return infos[0]


def _ruled_out(infos: Sequence[ModelInfo], row: Item, now: float) -> bool:
    """True when an index row itself shows that its item is of another kind, or expired."""
    first = infos[0]
    if first.kind is None:
        return expired(first, row, now)
    if first.kind_attribute not in row:
        return False  # a keys-only row: its item tells
    info = model_of_item(infos, row)
    return info is None or expired(info, row, now)


def _accept(info: ModelInfo, key: Key, item: Item | None, now: float) -> Item | None:
    """A stored item as a read of `info` sees it: `None` when absent or expired.

    Raises:
        SchemaError: the item is of another kind.
    """
    if item is None:
        return None
    if info.kind is not None and model_of_item((info,), item) is None:
        raise wrong_kind(info, key, item, None)
    if info.ttl is not None and expired(info, item, now):
        return None
    return item


def _decode(
    info: ModelInfo, codec: ModelCodec, key: Key, item: Item
) -> tuple[Any, tuple[Any, ...]]:
    """`codec.read(item)`, with the model and key named in a `SchemaError`."""
    try:
        return codec.read(item)
    except SchemaError as exc:
        raise SchemaError(f"{info.name} {key}: {exc}") from exc


def _guard_owner(info: ModelInfo, guard: Item) -> Key:
    """The key of the record that owns a unique guard item."""
    codec = codec_for(info.cls)
    pk = codec.types[info.pk].decode(guard[f"key_{info.pk}"])
    sk = codec.types[info.sk].decode(guard[f"key_{info.sk}"]) if info.sk else None
    return key_of(info, pk, sk)
