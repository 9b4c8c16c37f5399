"""How data-plane requests reach DynamoDB: the lean transport, or the aioboto3 client.

`uow` sends nine data-plane APIs (`DATA_PLANE`). Both transports take the
request parameters in DynamoDB's wire shape (`B` values as `bytes`) and give
back exactly what botocore would: the answer as a plain dict in the wire
shape with `ResponseMetadata`, `B` values as `bytes`; an error answer as a
`botocore.exceptions.ClientError` subclass with botocore's `response`; a
connection failure as botocore's connection and timeout errors. So
`uow._execute.translate`/`retryable` stay the one error boundary for both.

* `LeanTransport` (`Store(transport="lean")`, the default): DynamoDB's JSON
  protocol POSTed over a keep-alive pool of `max_concurrency` connections
  (`uow._http`, a minimal HTTP/1.1 client on asyncio), signed with SigV4
  (`uow._sigv4`) from the credentials, endpoint and region the store's
  aioboto3 session resolved. It skips botocore's per-request machinery
  (serialising against the service model, the event hooks, the user agent,
  parsing against the model) and a general HTTP client's (cookies,
  redirects, tracing, header multidicts): 0.15-0.3x the client CPU per
  request of hand-written aioboto3 (`make bench`).
* `BotocoreTransport` (`Store(transport="aioboto3")`): the aioboto3 client's
  methods, for users who need botocore's event hooks or `Stubber`.

Both check the `x-amz-crc32` checksum of every answer before decoding it: a
corrupted answer raises `botocore.exceptions.ChecksumError`, which is retried.
"""

from __future__ import annotations

import base64
import http.client
import inspect
import json
import os
import platform
import ssl
import zlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, cast

from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from uow._http import (
    ConnectError,
    ConnectTimeout,
    HttpError,
    Pool,
    ReadTimeout,
)
from uow._sigv4 import Signer

__all__ = [
    "DATA_PLANE",
    "TRANSPORTS",
    "BotocoreTransport",
    "LeanTransport",
    "Transport",
    "TransportObserver",
    "check_crc32",
    "decode_answer",
]


TRANSPORTS = ("lean", "aioboto3")
"""The names `Store(transport=...)` and the environment variable `UOW_TRANSPORT` accept."""

DATA_PLANE: Mapping[str, str] = {
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "BatchWriteItem": "batch_write_item",
    "TransactWriteItems": "transact_write_items",
    "GetItem": "get_item",
    "BatchGetItem": "batch_get_item",
    "Query": "query",
    "Scan": "scan",
}
"""The APIs a transport sends, and the aioboto3 client method of each."""

_TARGET_PREFIX = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"


class TransportObserver(Protocol):
    """Sees every request a transport sends (every attempt), and its end.

    Register one with `Transport.observe`. Both methods run in the sending
    task, inside `max_concurrency`, and must not block; they see the
    parameters and answers as sent and received (item values included: do
    not log them above DEBUG).
    """

    def request(self, api: str, params: Mapping[str, Any]) -> None:
        """An attempt of `api` with `params` is about to be sent."""

    def response(
        self,
        api: str,
        params: Mapping[str, Any],
        answer: Mapping[str, Any] | None,
        error: BaseException | None,
    ) -> None:
        """That attempt ended: with `answer`, or with `error` (`answer` is then None)."""


class Transport:
    """Sends one data-plane request and returns botocore's answer for it.

    A store owns one (`Store.transport`), chosen by `Store(transport=...)`.
    Implementations override `_send`; `send` adds the observers.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self._observers: tuple[TransportObserver, ...] = ()

    def observe(self, observer: TransportObserver) -> None:
        """Call `observer` around every request sent from now on."""
        self._observers = (*self._observers, observer)

    def unobserve(self, observer: TransportObserver) -> None:
        """Stop calling `observer` (no error if it was not registered)."""
        self._observers = tuple(o for o in self._observers if o is not observer)

    async def send(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send `api` once (no retries: `uow.Retry` decides those) and return the answer.

        Args:
            api: one of `DATA_PLANE`, e.g. `"PutItem"`.
            params: the request in DynamoDB's wire shape (`B` values as bytes).

        Returns:
            The answer as botocore returns it (wire shape, `ResponseMetadata`).

        Raises:
            botocore.exceptions.ClientError: DynamoDB answered with an error.
            botocore.exceptions.BotoCoreError: no valid answer: connection
                failure, timeout, checksum mismatch, no credentials.
        """
        observers = self._observers
        if not observers:
            return await self._send(api, params)
        for observer in observers:
            observer.request(api, params)
        try:
            answer = await self._send(api, params)
        except BaseException as exc:
            for observer in observers:
                observer.response(api, params, None, exc)
            raise
        for observer in observers:
            observer.response(api, params, answer, None)
        return answer

    async def _send(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (idempotent)."""


class BotocoreTransport(Transport):
    """The aioboto3 client's methods: botocore's whole request path, hooks included."""

    name = "aioboto3"

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self._methods = {api: getattr(client, method) for api, method in DATA_PLANE.items()}

    def __repr__(self) -> str:
        return f"<uow BotocoreTransport {self.client.meta.endpoint_url}>"

    async def _send(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self._methods[api](**params)
        return answer


def check_crc32(body: bytes, expected: str | None) -> None:
    """Raise `ChecksumError` when `expected` (the `x-amz-crc32` header) does not match `body`.

    A missing header is not checked, as in botocore.
    """
    if expected is None:
        return
    actual = zlib.crc32(body)
    try:
        matches = int(expected) == actual
    except ValueError:
        matches = False
    if not matches:
        raise ChecksumError(
            checksum_type="crc32", expected_checksum=expected, actual_checksum=str(actual)
        )


def crc32_hook(response_dict: Mapping[str, Any], **_: Any) -> None:
    """botocore `before-parse` handler: the `x-amz-crc32` check, before the answer is parsed.

    botocore checks it only in its legacy retry mode; `Store` uses standard
    mode with one attempt, so this puts the check back on the aioboto3 path.
    """
    check_crc32(response_dict.get("body") or b"", response_dict["headers"].get("x-amz-crc32"))


# ---- answers: botocore's parse of DynamoDB's JSON, without the service model -----------------


def _blob_value(value: dict[str, Any]) -> None:
    """Decode the base64 `B`/`BS` members of one AttributeValue, in place, at any depth."""
    if "B" in value:
        value["B"] = base64.b64decode(value["B"])
    elif "BS" in value:
        value["BS"] = [base64.b64decode(v) for v in value["BS"]]
    elif "M" in value:
        _blob_item(value["M"])
    elif "L" in value:
        for member in value["L"]:
            _blob_value(member)


def _blob_item(item: Mapping[str, Any] | None) -> None:
    if item:
        for value in item.values():
            if "S" not in value and "N" not in value:  # the common tags first: one lookup each
                _blob_value(value)


def _blob_items(items: Any) -> None:
    for item in items or ():
        _blob_item(item)


def _blob_responses(responses: Any) -> None:
    for items in (responses or {}).values():
        _blob_items(items)


def _blob_unprocessed_keys(requests: Any) -> None:
    for request in (requests or {}).values():
        _blob_items(request.get("Keys"))


def _blob_unprocessed_items(tables: Any) -> None:
    for writes in (tables or {}).values():
        for write in writes:
            if "PutRequest" in write:
                _blob_item(write["PutRequest"].get("Item"))
            if "DeleteRequest" in write:
                _blob_item(write["DeleteRequest"].get("Key"))


def _blob_collection_metrics(metrics: Any) -> None:
    if not isinstance(metrics, dict):
        return
    if "ItemCollectionKey" in metrics:  # PutItem, UpdateItem, DeleteItem: one entry
        _blob_item(metrics["ItemCollectionKey"])
        return
    for entries in metrics.values():  # BatchWriteItem, TransactWriteItems: per table
        for entry in entries or ():
            if isinstance(entry, dict):
                _blob_item(entry.get("ItemCollectionKey"))


def _blob_reasons(reasons: Any) -> None:
    for reason in reasons or ():
        _blob_item(reason.get("Item"))


# Where DynamoDB's answers and errors carry items or keys, by top-level member.
_BLOB_WALKERS: Mapping[str, Callable[[Any], None]] = {
    "Item": _blob_item,
    "Attributes": _blob_item,
    "LastEvaluatedKey": _blob_item,
    "Items": _blob_items,
    "Responses": _blob_responses,
    "UnprocessedKeys": _blob_unprocessed_keys,
    "UnprocessedItems": _blob_unprocessed_items,
    "ItemCollectionMetrics": _blob_collection_metrics,
    "CancellationReasons": _blob_reasons,
}


def _blob_answer(answer: dict[str, Any]) -> None:
    """Decode every binary value of a data-plane answer or error, wherever DynamoDB puts items."""
    for member, value in answer.items():
        walker = _BLOB_WALKERS.get(member)
        if walker is not None:
            walker(value)


def _json_body(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        # botocore keeps an unparseable body as the message
        return {"message": raw.decode("utf-8", "replace")}


def decode_answer(
    api: str,
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    error_members: Mapping[str, frozenset[str]],
    error_class: Callable[[str], type[ClientError]] | None = None,
) -> dict[str, Any]:
    """The answer botocore's JSON parser makes of a DynamoDB HTTP answer; raises its errors.

    The `x-amz-crc32` checksum must have been checked already.

    Args:
        api: the operation name.
        status: the HTTP status.
        headers: the answer's headers, names in lowercase.
        raw: the answer's body.
        error_members: the members each modeled error code carries (e.g.
            `Item` for `ConditionalCheckFailedException`), from the service model.
        error_class: the exception class for an error code (the client's
            modeled exceptions); default `ClientError`.

    Raises:
        ClientError: `status` is 300 or more (botocore's `response` shape).
    """
    generic = status >= 500 and (not raw.strip() or raw.strip().startswith(b"<html>"))
    body = {} if generic else _json_body(raw)
    if not isinstance(body, dict):
        body = {}
    metadata: dict[str, Any] = {}
    request_id = headers.get("x-amzn-requestid")
    if request_id is not None and not generic:
        metadata["RequestId"] = request_id
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = dict(headers)
    # As botocore in standard retry mode with one attempt (`Store`): no attempt of its own is left.
    metadata["MaxAttemptsReached"] = True
    metadata["RetryAttempts"] = 0
    if status < 300:
        # A structural walk: ~0.1 µs per attribute value, where scanning the body for `"B`
        # costs ~1 µs per KB (measured), and an attribute may be named "B".
        _blob_answer(body)
        body["ResponseMetadata"] = metadata
        return body
    if generic:  # a proxy's or load balancer's page, not DynamoDB's JSON
        code, message = str(status), http.client.responses.get(status, "")
    else:
        code = str(body.get("__type") or status)
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        message = body.get("message", body.get("Message", ""))
    answer: dict[str, Any] = {
        "Error": {"Message": message, "Code": code},
        "ResponseMetadata": metadata,
    }
    members = error_members.get(code)
    if members:
        answer.update({name: body[name] for name in members if name in body})
        _blob_answer(answer)
    cls = error_class(code) if error_class is not None else ClientError
    raise cls(cast(Any, answer), api)  # botocore's response shape, built above


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not a DynamoDB wire value")


_encode = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode


def encode_request(params: Mapping[str, Any]) -> bytes:
    """The JSON body of a request: `B` values base64-encoded, as botocore serialises them."""
    return _encode(params).encode()


def _user_agent() -> str:
    from uow import __version__

    return f"uow/{__version__} Python/{platform.python_version()} lean-transport"


class LeanTransport(Transport):
    """DynamoDB's JSON protocol on uow's HTTP/1.1 pool, SigV4-signed: lean on client CPU.

    Built by `Store` from its aioboto3 client (`from_client`), so that the
    endpoint, region and credentials are the ones the AWS configuration chain
    resolved for it. Open it with `await transport.open()` (the store does);
    `close()` releases the pool.

    Args:
        endpoint_url: where requests go (`https://dynamodb.REGION.amazonaws.com`,
            or a local server).
        region: the signing region.
        credentials: a botocore credentials object (static, refreshable,
            aiobotocore's async ones); `get_frozen_credentials()` is called
            per request, so refreshable credentials refresh as in botocore.
            `None` makes every request raise `NoCredentialsError`.
        max_connections: size of the keep-alive pool (the store's `max_concurrency`).
        connect_timeout, read_timeout: seconds, as botocore's `connect_timeout`
            and `read_timeout`.
        ca_bundle: certificates to verify TLS with; default botocore's bundle.
            TLS is always verified.
        error_members: per modeled error code, the members botocore copies
            from the body (from the service model).
        error_class: the client's modeled exception class for a code.
        signing_name: the SigV4 service name.
    """

    name = "lean"

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: Any,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None = None,
        error_members: Mapping[str, frozenset[str]] | None = None,
        error_class: Callable[[str], type[ClientError]] | None = None,
        signing_name: str = "dynamodb",
    ) -> None:
        super().__init__()
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._credentials = credentials
        self._frozen_is_async = credentials is not None and inspect.iscoroutinefunction(
            credentials.get_frozen_credentials
        )
        self._ca_bundle = ca_bundle
        self._error_members = error_members or {}
        self._error_class = error_class
        self._signer = Signer(endpoint_url, region, signing_name)
        self._pool: Pool | None = None
        # The part of every request's head that never changes; the host exactly as signed.
        self._head = (
            f"POST {self._signer.path} HTTP/1.1\r\nHost: {self._signer.host}\r\n"
            f"Content-Type: {_CONTENT_TYPE}\r\n"
            "Accept-Encoding: identity\r\n"  # the checksum covers the body as sent
            f"User-Agent: {_user_agent()}\r\n"
        )

    def __repr__(self) -> str:
        return f"<uow LeanTransport {self.endpoint_url} region={self.region}>"

    @classmethod
    def from_client(
        cls,
        client: Any,
        credentials: Any,
        *,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None = None,
    ) -> LeanTransport:
        """A transport to the endpoint and region `client` resolved, with its service's errors."""
        meta = client.meta
        service = meta.service_model
        members = {}
        for shape in service.error_shapes:
            code = shape.error_code or shape.name
            members[code] = frozenset(shape.members)
        return cls(
            endpoint_url=meta.endpoint_url,
            region=meta.region_name,
            credentials=credentials,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            ca_bundle=ca_bundle,
            error_members=members,
            error_class=client.exceptions.from_code,
            signing_name=service.signing_name,
        )

    async def open(self) -> None:
        """Create the connection pool (idempotent); no connection is made yet."""
        if self._pool is not None:
            return
        from uow._http import Pool

        context = None
        if self.endpoint_url.startswith("https:"):
            cafile = self._ca_bundle
            if cafile is None:
                from botocore.httpsession import where

                cafile = where()
            context = ssl.create_default_context(cafile=cafile)  # verifies certificates
        self._pool = Pool(
            self.endpoint_url,
            size=self.max_connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            ssl_context=context,
        )

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _frozen(self) -> Any:
        credentials = self._credentials
        if credentials is None:
            raise NoCredentialsError()
        if self._frozen_is_async:
            return await credentials.get_frozen_credentials()
        return credentials.get_frozen_credentials()

    async def _send(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        pool = self._pool
        if pool is None:
            raise HTTPClientError(error="the lean transport is closed (its Store exited)")
        body = encode_request(params)
        target = _TARGET_PREFIX + api
        frozen = await self._frozen()
        signed = self._signer.headers(
            target,
            body,
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
        )
        token = signed.get("X-Amz-Security-Token")
        if "\n" in signed["Authorization"] or (token and ("\n" in token or "\r" in token)):
            raise HTTPClientError(error="the credentials hold a line break")
        head = (
            f"{self._head}X-Amz-Target: {target}\r\nX-Amz-Date: {signed['X-Amz-Date']}\r\n"
            + (f"X-Amz-Security-Token: {token}\r\n" if token else "")
            + f"Authorization: {signed['Authorization']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            response = await pool.post(head, body)
        except HttpError as exc:
            raise _connection_error(exc, self.endpoint_url) from exc
        except ssl.SSLError as exc:
            raise SSLError(endpoint_url=self.endpoint_url, error=exc) from exc
        raw = response.body
        headers = response.headers
        check_crc32(raw, headers.get("x-amz-crc32"))
        return decode_answer(
            api,
            response.status,
            headers,
            raw,
            error_members=self._error_members,
            error_class=self._error_class,
        )


def _connection_error(exc: HttpError, url: str) -> Exception:
    """The botocore error aiobotocore raises for the same failure (`AIOHTTPSession.send`)."""
    if isinstance(exc, ConnectTimeout):
        return ConnectTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, ReadTimeout):
        return ReadTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, ConnectError):
        return EndpointConnectionError(endpoint_url=url, error=exc)
    # Disconnected, BadResponse: aiobotocore's ServerDisconnectedError and BadStatusLine.
    return ConnectionClosedError(error=exc, endpoint_url=url)


def ca_bundle_of(session: Any) -> str | None:
    """The CA bundle the botocore session configures (`AWS_CA_BUNDLE`, profile `ca_bundle`)."""
    value = session.get_config_variable("ca_bundle")
    return str(value) if value else os.environ.get("AWS_CA_BUNDLE") or None
