"""Both transports, request for request, against a scripted DynamoDB answerer on loopback.

`Scripted` is a tiny HTTP server that records each request and plays back
canned answers, so the lean transport and the aioboto3 one can be given the
very same bytes and must return (or raise) the very same thing.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aioboto3
import attrs
import pytest
import pytest_asyncio
from aiobotocore.credentials import AioRefreshableCredentials
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)

import uow
from uow._transport import LeanTransport

pytestmark = pytest.mark.asyncio

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "AKIDSTATIC", "aws_secret_access_key": "static-secret"}


def keyed(endpoint: str, **options: Any) -> uow.Store:
    """A store on `endpoint` with the static test keys (`KEYS`) and `REGION`."""
    return uow.Store(
        endpoint,
        REGION,
        aws_access_key_id=KEYS["aws_access_key_id"],
        aws_secret_access_key=KEYS["aws_secret_access_key"],
        **options,
    )


FIXED_DATE = "Thu, 03 Dec 2026 13:45:07 GMT"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@attrs.define
class Answer:
    """One canned HTTP answer."""

    status: int = 200
    body: bytes = b"{}"
    crc32: str | None = None  # None: the right one
    delay: float = 0.0
    hang_up: bool = False
    content_type: str = "application/x-amz-json-1.0"


@attrs.define
class Seen:
    """One request as the server received it."""

    headers: dict[str, str]
    body: bytes
    path: str


class Scripted:
    """An HTTP server on 127.0.0.1 answering every request with `answer`, recording each."""

    def __init__(self) -> None:
        self.answer: Answer | Callable[[Seen], Answer] = Answer()
        self.seen: list[Seen] = []
        self.endpoint = ""
        self._runner: web.AppRunner | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.endpoint = f"{'https' if tls else 'http'}://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(dict(request.headers), await request.read(), request.path)
        self.seen.append(seen)
        answer = self.answer(seen) if callable(self.answer) else self.answer
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.hang_up:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        crc = answer.crc32 if answer.crc32 is not None else str(zlib.crc32(answer.body))
        return web.Response(
            status=answer.status,
            body=answer.body,
            headers={
                "Content-Type": answer.content_type,
                "x-amz-crc32": crc,
                "x-amzn-RequestId": "REQ123",
                "Date": FIXED_DATE,
                "Server": "scripted",
            },
        )


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[Scripted]:
    """A scripted answerer, answering `{}` until told otherwise."""
    server = Scripted()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def stores(scripted: Scripted) -> AsyncIterator[dict[str, uow.Store]]:
    """An open store per transport, both on the scripted answerer."""
    async with (
        keyed(scripted.endpoint, transport="lean", read_timeout=2) as lean,
        keyed(scripted.endpoint, transport="aioboto3", read_timeout=2) as boto,
    ):
        yield {"lean": lean, "aioboto3": boto}


def _item_with_binaries() -> dict[str, Any]:
    return {
        "id": {"B": b64(b"\x00key")},
        "blob": {"B": b64(b"\xff\xfe")},
        "blobs": {"BS": [b64(b"a"), b64(b"b")]},
        "doc": {"M": {"inner": {"B": b64(b"deep")}, "list": {"L": [{"B": b64(b"x")}, {"N": "1"}]}}},
        "n": {"N": "12.50"},
        "s": {"S": "B is not binary"},
        "B": {"S": "an attribute named B"},
        "ok": {"BOOL": True},
        "nothing": {"NULL": True},
        "ss": {"SS": ["a"]},
        "ns": {"NS": ["1", "2"]},
    }


def _key() -> dict[str, Any]:
    return {"id": {"B": b64(b"\x00key")}}


SUCCESSES = [
    pytest.param("GetItem", {"Item": _item_with_binaries()}, id="get-binaries"),
    pytest.param("GetItem", {}, id="get-absent"),
    pytest.param(
        "Query",
        {
            "Items": [_item_with_binaries(), {"id": {"S": "plain"}}],
            "Count": 2,
            "ScannedCount": 5,
            "LastEvaluatedKey": _key(),
            "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.5},
        },
        id="query-page",
    ),
    pytest.param("Scan", {"Items": [], "Count": 0, "ScannedCount": 0}, id="scan-empty"),
    pytest.param(
        "BatchGetItem",
        {
            "Responses": {"t": [_item_with_binaries()], "u": []},
            "UnprocessedKeys": {"t": {"Keys": [_key()], "ConsistentRead": True}},
            "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 2.0}],
        },
        id="batch-get",
    ),
    pytest.param(
        "BatchWriteItem",
        {
            "UnprocessedItems": {
                "t": [
                    {"PutRequest": {"Item": _item_with_binaries()}},
                    {"DeleteRequest": {"Key": _key()}},
                ]
            },
            "ItemCollectionMetrics": {
                "t": [{"ItemCollectionKey": _key(), "SizeEstimateRangeGB": [0.0, 1.0]}]
            },
        },
        id="batch-write-unprocessed",
    ),
    pytest.param(
        "UpdateItem",
        {
            "Attributes": _item_with_binaries(),
            "ItemCollectionMetrics": {"ItemCollectionKey": _key(), "SizeEstimateRangeGB": [1.0]},
        },
        id="update-attributes",
    ),
    pytest.param("PutItem", {}, id="put"),
    pytest.param("DeleteItem", {"Attributes": {"id": {"S": "x"}}}, id="delete"),
    pytest.param("TransactWriteItems", {}, id="transact"),
]

PARAMS: dict[str, dict[str, Any]] = {
    "BatchGetItem": {"RequestItems": {"t": {"Keys": [{"id": {"S": "x"}}]}}},
    "BatchWriteItem": {"RequestItems": {"t": [{"DeleteRequest": {"Key": {"id": {"S": "x"}}}}]}},
    "TransactWriteItems": {
        "TransactItems": [{"Delete": {"TableName": "t", "Key": {"id": {"S": "x"}}}}]
    },
}

FAILURES = [
    pytest.param(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": _item_with_binaries(),
        },
        id="condition-failed-with-item",
    ),
    pytest.param(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Message": "no", "Item": _key()},
                {"Code": "TransactionConflict", "Message": "busy"},
            ],
        },
        id="transaction-cancelled",
    ),
    pytest.param(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "slow down",
        },
        id="throttled",
    ),
    pytest.param(
        400,
        {"__type": "com.amazon.coral.validate#ValidationException", "Message": "bad"},
        id="validation",
    ),
    pytest.param(
        400, {"__type": "com.amazonaws.dynamodb.v20120810#SomethingNew"}, id="unknown-code"
    ),
    pytest.param(
        500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}, id="internal"
    ),
    pytest.param(503, b"", id="empty-503"),
    pytest.param(502, b"<html><body>Bad Gateway</body></html>", id="html-502"),
    pytest.param(400, b"not json", id="garbage-400"),
]


async def both(
    stores: dict[str, uow.Store], api: str, params: dict[str, Any]
) -> dict[str, tuple[str, Any]]:
    """Each transport's outcome: ("answer", dict) or ("error", (class name, response, str))."""
    out: dict[str, tuple[str, Any]] = {}
    for name, store in stores.items():
        try:
            out[name] = ("answer", await store.transport.send(api, params))
        except ClientError as exc:
            out[name] = ("error", (type(exc).__name__, exc.response, str(exc)))
        except BotoCoreError as exc:
            out[name] = ("error", (type(exc).__name__, None, str(exc)))
    return out


class TestSameAnswers:
    """The lean transport returns and raises exactly what the aioboto3 client does."""

    @pytest.mark.parametrize(("api", "answer"), SUCCESSES)
    async def test_answers_are_botocores(
        self, scripted: Scripted, stores: dict[str, uow.Store], api: str, answer: dict[str, Any]
    ) -> None:
        """A successful answer decodes to the same dict: binaries as bytes, numbers as strings, metadata."""
        scripted.answer = Answer(body=json.dumps(answer).encode())
        outcomes = await both(stores, api, PARAMS.get(api, {"TableName": "t"}))
        assert outcomes["lean"] == outcomes["aioboto3"]
        kind, decoded = outcomes["lean"]
        assert kind == "answer"
        assert decoded["ResponseMetadata"]["RequestId"] == "REQ123"
        if api == "GetItem" and "Item" in answer:
            assert decoded["Item"]["doc"]["M"]["list"]["L"][0] == {"B": b"x"}
            assert decoded["Item"]["B"] == {"S": "an attribute named B"}

    @pytest.mark.parametrize(("status", "body"), FAILURES)
    async def test_errors_are_botocores(
        self,
        scripted: Scripted,
        stores: dict[str, uow.Store],
        status: int,
        body: dict[str, Any] | bytes,
    ) -> None:
        """An error answer raises the same ClientError class with the same response and message."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        scripted.answer = Answer(status=status, body=raw)
        outcomes = await both(stores, "PutItem", {"TableName": "t", "Item": {"id": {"S": "x"}}})
        assert outcomes["lean"] == outcomes["aioboto3"]
        assert outcomes["lean"][0] == "error"

    async def test_requests_carry_botocores_body_and_target(
        self, scripted: Scripted, stores: dict[str, uow.Store]
    ) -> None:
        """The JSON sent, binaries base64-encoded, and X-Amz-Target are the ones botocore sends."""
        params = {
            "TableName": "t",
            "Item": {"id": {"B": b"\x00\x01"}, "bs": {"BS": [b"a", b"b"]}, "s": {"S": "é"}},
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": "id"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        await both(stores, "PutItem", params)
        lean, boto = scripted.seen
        assert json.loads(lean.body) == json.loads(boto.body)
        for name in ("X-Amz-Target", "Content-Type"):
            assert lean.headers[name] == boto.headers[name]

    async def test_the_signature_is_botocores_for_the_request_as_sent(
        self, scripted: Scripted, stores: dict[str, uow.Store]
    ) -> None:
        """botocore, signing the received request's signed headers at its X-Amz-Date, computes our Authorization."""
        await stores["lean"].transport.send("GetItem", {"TableName": "t", "Key": _key()})
        (seen,) = scripted.seen
        signed = seen.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert signed == ["content-type", "host", "x-amz-date", "x-amz-target"]
        request = AWSRequest(
            method="POST",
            url=scripted.endpoint + seen.path,
            data=seen.body,
            headers={
                name: value
                for name, value in seen.headers.items()
                if name.lower() in {"content-type", "x-amz-target"}
            },
        )
        when = dt.datetime.strptime(seen.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("botocore.auth.get_current_datetime", lambda: when)
            SigV4Auth(
                Credentials(KEYS["aws_access_key_id"], KEYS["aws_secret_access_key"]),
                "dynamodb",
                REGION,
            ).add_auth(request)
        assert seen.headers["Authorization"] == request.headers["Authorization"]
        assert seen.headers["Host"] == scripted.endpoint.removeprefix("http://")


class TestFailuresWithoutAnAnswer:
    """No valid answer: both transports raise the same botocore error, which uow retries."""

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_a_corrupted_answer_is_a_checksum_error_never_decoded(
        self, scripted: Scripted, stores: dict[str, uow.Store], transport: str
    ) -> None:
        """A body whose x-amz-crc32 does not match raises ChecksumError."""
        scripted.answer = Answer(body=b'{"Item":{"id":{"S":"x"}}}', crc32="12345")
        with pytest.raises(ChecksumError):
            await stores[transport].transport.send("GetItem", {"TableName": "t", "Key": _key()})

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_a_hang_up_is_connection_closed(
        self, scripted: Scripted, stores: dict[str, uow.Store], transport: str
    ) -> None:
        """A connection closed without an answer raises ConnectionClosedError."""
        scripted.answer = Answer(hang_up=True)
        with pytest.raises(ConnectionClosedError):
            await stores[transport].transport.send("PutItem", {"TableName": "t"})

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_a_slow_answer_is_a_read_timeout(
        self, scripted: Scripted, transport: str
    ) -> None:
        """An answer slower than read_timeout raises ReadTimeoutError."""
        scripted.answer = Answer(delay=1.0)
        async with keyed(scripted.endpoint, transport=transport, read_timeout=0.2) as store:
            with pytest.raises(ReadTimeoutError):
                await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_nobody_listening_is_endpoint_connection_error(self, transport: str) -> None:
        """A refused connection raises EndpointConnectionError naming the endpoint."""
        async with keyed("http://127.0.0.1:9", transport=transport, connect_timeout=1) as store:
            with pytest.raises(EndpointConnectionError, match=r"127\.0\.0\.1:9"):
                await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})

    async def test_a_commit_retries_a_corrupted_answer(
        self, scripted: Scripted, stores: dict[str, uow.Store]
    ) -> None:
        """Through a session, the first (corrupted) answer is re-sent and the write succeeds."""
        answers = iter([Answer(body=b"{}", crc32="1"), Answer(body=b"{}")])
        scripted.answer = lambda seen: next(answers)
        store = stores["lean"]
        async with store.session() as session:
            session.update(Probe, "p1", set={"text": "x"})
            result = await session.commit()
        assert result.retries == 1
        assert len(scripted.seen) == 2


@uow.model(table="t", pk="id")
@attrs.define
class Probe:
    """A record for the commit-through-the-transport test."""

    id: str
    text: str = ""


class TestCredentials:
    """The lean transport signs with what the aioboto3 session resolves, refreshed as botocore does."""

    async def test_refreshable_credentials_expiring_mid_run_are_refreshed(
        self, scripted: Scripted
    ) -> None:
        """After the clock passes the expiry, the next request is signed with the refreshed keys."""
        now = [dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)]
        issued: list[str] = []

        async def refresh() -> dict[str, str]:
            generation = len(issued) + 1
            issued.append(f"AKIDGEN{generation}")
            return {
                "access_key": f"AKIDGEN{generation}",
                "secret_key": f"secret-{generation}",
                "token": f"token-{generation}",
                "expiry_time": (now[0] + dt.timedelta(hours=1)).isoformat(),
            }

        first = await refresh()
        credentials = AioRefreshableCredentials(
            first["access_key"],
            first["secret_key"],
            first["token"],
            dt.datetime.fromisoformat(first["expiry_time"]),
            refresh,
            "test-assume-role",
            time_fetcher=lambda: now[0],
        )
        session = aioboto3.Session(region_name=REGION)
        # As the credential chain resolves them (private: botocore has no setter for these).
        session._session._credentials = credentials  # type: ignore[attr-defined]
        async with uow.Store(scripted.endpoint, session=session, transport="lean") as store:
            await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
            now[0] += dt.timedelta(minutes=30)  # still valid
            await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
            now[0] += dt.timedelta(hours=2)  # expired mid-run
            await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
        keys = [
            s.headers["Authorization"].split("Credential=")[1].split("/")[0] for s in scripted.seen
        ]
        tokens = [s.headers["X-Amz-Security-Token"] for s in scripted.seen]
        assert keys == ["AKIDGEN1", "AKIDGEN1", "AKIDGEN2"]
        assert tokens == ["token-1", "token-1", "token-2"]

    async def test_environment_credentials_and_endpoint(
        self, scripted: Scripted, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and the key variables reach the lean transport."""
        monkeypatch.setenv("AWS_ENDPOINT_URL", scripted.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
        async with uow.Store(transport="lean") as store:
            assert isinstance(store.transport, LeanTransport)
            assert store.transport.endpoint_url == scripted.endpoint
            await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
        (seen,) = scripted.seen
        assert "Credential=AKIDFROMENV/" in seen.headers["Authorization"]
        assert "/eu-west-3/dynamodb/aws4_request" in seen.headers["Authorization"]
        assert seen.headers["X-Amz-Security-Token"] == "env-token"

    async def test_no_credentials_is_botocores_error(
        self, scripted: Scripted, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without any credentials the request fails with NoCredentialsError, as on aioboto3."""
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        outcomes = {}
        for transport in ("lean", "aioboto3"):
            async with uow.Store(scripted.endpoint, REGION, transport=transport) as store:
                try:
                    await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
                except BotoCoreError as exc:
                    outcomes[transport] = type(exc).__name__
        assert outcomes == {"lean": "NoCredentialsError", "aioboto3": "NoCredentialsError"}
        assert scripted.seen == []


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key, as PEM files."""
    pytest.importorskip("cryptography", reason="moto[server] brings it; it makes the certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uow test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class TestTls:
    """TLS is always verified, against botocore's bundle or the one the configuration names."""

    @pytest_asyncio.fixture
    async def tls_server(self, tmp_path: Path) -> AsyncIterator[tuple[Scripted, Path]]:
        """A scripted answerer on https://127.0.0.1 with a self-signed certificate."""
        cert, key = self_signed(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = Scripted()
        await server.start(tls=context)
        yield server, cert
        await server.stop()

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_an_untrusted_certificate_is_refused(
        self, tls_server: tuple[Scripted, Path], transport: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A certificate no trusted authority signed fails the request with SSLError."""
        server, _ = tls_server
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
        async with keyed(server.endpoint, transport=transport, connect_timeout=5) as store:
            with pytest.raises(SSLError):
                await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
        assert server.seen == []

    @pytest.mark.parametrize("transport", ["lean", "aioboto3"])
    async def test_aws_ca_bundle_is_trusted(
        self, tls_server: tuple[Scripted, Path], transport: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With AWS_CA_BUNDLE naming the certificate, the same request succeeds."""
        server, cert = tls_server
        monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
        async with keyed(server.endpoint, transport=transport) as store:
            answer = await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert len(server.seen) == 1


class TestStoreTransport:
    """`Store(transport=...)` chooses the data path; the environment sets the default."""

    @pytest.mark.parametrize(
        ("argument", "environ", "chosen"),
        [
            pytest.param(None, None, "lean", id="default-lean"),
            pytest.param(None, "aioboto3", "aioboto3", id="env"),
            pytest.param("lean", "aioboto3", "lean", id="argument-wins"),
        ],
    )
    async def test_choice(
        self,
        scripted: Scripted,
        monkeypatch: pytest.MonkeyPatch,
        argument: str | None,
        environ: str | None,
        chosen: str,
    ) -> None:
        """The argument wins over UOW_TRANSPORT, which wins over the default."""
        if environ is None:
            monkeypatch.delenv("UOW_TRANSPORT", raising=False)
        else:
            monkeypatch.setenv("UOW_TRANSPORT", environ)
        async with keyed(scripted.endpoint, transport=argument) as store:
            assert store.transport.name == chosen
            assert store.transport_name == chosen

    async def test_an_unknown_transport_is_a_validation_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A misspelt name fails at construction, naming the choices."""
        with pytest.raises(uow.ValidationError, match="lean, aioboto3"):
            uow.Store(transport="fast")
        monkeypatch.setenv("UOW_TRANSPORT", "botocore")
        with pytest.raises(uow.ValidationError, match="UOW_TRANSPORT"):
            uow.Store()

    async def test_session_and_explicit_keys_conflict(self) -> None:
        """A session resolves its own credentials: explicit keys beside it are refused."""
        with pytest.raises(uow.ValidationError, match="not both"):
            uow.Store(session=aioboto3.Session(), aws_access_key_id="x")

    async def test_botocore_hooks_fire_only_on_the_aioboto3_path(
        self, scripted: Scripted, stores: dict[str, uow.Store]
    ) -> None:
        """Event hooks on `store.client` see the aioboto3 transport's requests, not the lean one's."""
        seen: dict[str, list[str]] = {}
        for name, store in stores.items():
            calls: list[str] = []
            seen[name] = calls
            store.client.meta.events.register(
                "before-call.dynamodb", lambda model, calls=calls, **_: calls.append(model.name)
            )
            await store.transport.send("GetItem", {"TableName": "t", "Key": _key()})
        assert seen == {"lean": [], "aioboto3": ["GetItem"]}

    async def test_a_closed_store_refuses_its_transport(self, scripted: Scripted) -> None:
        """After the store exits, `store.transport` raises UsageError and the lean pool is closed."""
        store = keyed(scripted.endpoint, transport="lean")
        async with store:
            transport = store.transport
        with pytest.raises(uow.UsageError, match="closed"):
            _ = store.transport
        with pytest.raises(BotoCoreError, match="closed"):
            await transport.send("GetItem", {"TableName": "t", "Key": _key()})
