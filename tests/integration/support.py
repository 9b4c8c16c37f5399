"""Helpers for integration tests: raw DynamoDB access behind the session's back, request records.

Everything here talks to the server through `store.client` (the aioboto3
client) and boto3's own (de)serializer, so the tests check the database
independently of `uow`'s codec and of its transport. `Calls` records what the
store's transport sends, whichever it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

import uow
from tests.models import Everything

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


@attrs.define
class Calls:
    """The data-plane requests a store sent (every attempt), with their parameters, in order."""

    log: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)
    in_flight: int = 0
    max_in_flight: int = 0

    def attach(self, store: uow.Store) -> None:
        """Record every request `store.transport` sends from now on (lean or aioboto3)."""
        store.transport.observe(self)

    def request(self, api: str, params: Mapping[str, Any]) -> None:
        """`uow.TransportObserver`: a request is sent."""
        self.log.append((api, dict(params)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def response(
        self,
        api: str,
        params: Mapping[str, Any],
        answer: Mapping[str, Any] | None,
        error: BaseException | None,
    ) -> None:
        """`uow.TransportObserver`: its answer came, or it failed."""
        self.in_flight -= 1

    @property
    def apis(self) -> dict[str, int]:
        """Calls per API name."""
        return dict(Counter(api for api, _ in self.log))

    def params(self, api: str) -> list[dict[str, Any]]:
        """The parameters of every call of `api`."""
        return [params for name, params in self.log if name == api]

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.log.clear()
        self.max_in_flight = self.in_flight


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(av) for name, av in item.items()}


def without_markers(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """An item without the `_uow_w*` write markers that creates and versioned writes store."""
    if item is None:
        return None
    return {name: value for name, value in item.items() if not name.startswith("_uow_w")}


async def raw_get(store: uow.Store, model: type, **key: Any) -> dict[str, Any] | None:
    """The stored item (plain Python values, numbers as Decimal), or None; strongly consistent."""
    response = await store.client.get_item(
        TableName=store.table_name(model), Key=_encode(key), ConsistentRead=True
    )
    item = response.get("Item")
    return None if item is None else _decode(item)


async def raw_put(store: uow.Store, model: type, **values: Any) -> None:
    """Write an item directly, replacing any stored one."""
    await store.client.put_item(TableName=store.table_name(model), Item=_encode(values))


async def raw_put_many(store: uow.Store, model: type, items: list[dict[str, Any]]) -> None:
    """Write many items directly with BatchWriteItem (moto processes every item)."""
    table = store.table_name(model)
    for start in range(0, len(items), 25):
        writes = [{"PutRequest": {"Item": _encode(item)}} for item in items[start : start + 25]]
        await store.client.batch_write_item(RequestItems={table: writes})


async def raw_delete(store: uow.Store, model: type, **key: Any) -> None:
    """Delete an item directly."""
    await store.client.delete_item(TableName=store.table_name(model), Key=_encode(key))


async def raw_update(
    store: uow.Store,
    model: type,
    key: dict[str, Any],
    expression: str,
    *,
    values: dict[str, Any],
    names: dict[str, str] | None = None,
) -> None:
    """Run an UpdateItem directly: `raw_update(store, M, {"id": "a"}, "ADD n :v", values=...)`."""
    params: dict[str, Any] = {
        "TableName": store.table_name(model),
        "Key": _encode(key),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": _encode(values),
    }
    if names:
        params["ExpressionAttributeNames"] = names
    await store.client.update_item(**params)


async def raw_count(store: uow.Store, model: type) -> int:
    """The number of items in a model's table."""
    response = await store.client.scan(TableName=store.table_name(model), Select="COUNT")
    return int(response["Count"])


def update_names(params: dict[str, Any]) -> set[str]:
    """The attribute names an UpdateItem's expressions mention (key attribute included)."""
    return set(params.get("ExpressionAttributeNames", {}).values())


SEED: dict[str, Any] = {
    "text": "hello",
    "count": 1,
    "maybe": "here",
    "words": ["a", "b", "c", "d"],
    "names": {"x"},
    "doc": {"address": {"city": "Lyon", "zip": "69001"}, "lang": "fr"},
}
"""The stored attributes of a seeded `Everything` item, besides its `id`."""


async def seed(store: uow.Store, pk: str = "e1", **values: Any) -> None:
    """Store an `Everything` item with the `SEED` attributes (overridden by `values`)."""
    await raw_put(store, Everything, id=pk, **{**SEED, **values})
