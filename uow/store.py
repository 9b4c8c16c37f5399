"""`Store`: the aioboto3 client, the data-plane transport, configuration, `create_tables`."""

from __future__ import annotations

import asyncio
import enum
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from uow._pages import Cursors
from uow._transport import TRANSPORTS, BotocoreTransport, Transport
from uow.config import Retry
from uow.errors import ServiceError, UsageError, ValidationError
from uow.model import ModelInfo, info_of

if TYPE_CHECKING:
    from uow._tables import TableSpec
    from uow.session import Session

__all__ = ["Store", "StoreState"]


class StoreState(enum.Enum):
    """A store's lifecycle: `NEW` → `OPEN` (inside `async with`) → `CLOSED`."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _env_cache_enabled() -> bool:
    return os.environ.get("UOW_CACHE_ENABLED", "1").strip().lower() not in ("0", "false", "no")


def _transport_name(transport: str | None) -> str:
    """The argument, else the environment variable `UOW_TRANSPORT`, else `"lean"`."""
    source = "transport"
    if transport is None:
        transport = os.environ.get("UOW_TRANSPORT", "").strip() or "lean"
        source = "UOW_TRANSPORT"
    if transport not in TRANSPORTS:
        raise ValidationError(
            f"{source}={transport!r} is not a transport; choose one of {', '.join(TRANSPORTS)}"
        )
    return transport


class Store:
    """Owns one aioboto3 DynamoDB client and one data-plane transport; makes sessions.

    Use it as an async context manager, one per application (web app
    lifespan, worker process)::

        async with uow.Store(region_name="eu-west-1") as store:
            await store.create_tables(User)
            async with store.session() as session:
                ...

    Args:
        endpoint_url: DynamoDB endpoint; `None` follows the standard AWS
            configuration chain (`AWS_ENDPOINT_URL`, profiles, region).
        region_name: AWS region; `None` follows the configuration chain.
        table_prefix: prepended to every model's table name.
        max_concurrency: requests in flight at once per commit; also the
            connection pool size.
        cache: serve reads from the identity map (`False`, or the environment
            variable `UOW_CACHE_ENABLED=0`, turns read caching off; identity is
            still kept).
        retry: backoff and budgets for throttled or failed requests.
        consumed_capacity: ask DynamoDB for the capacity each request
            consumes, reported in `CommitResult.consumed_capacity` and
            `ReadStats.consumed_capacity` (`None` when not asked). Off by
            default, as in DynamoDB: the answer costs client and server time.
        cursor_key: a secret of at least 16 bytes (`secrets.token_bytes(32)`)
            that signs the cursors of `Session.page` with HMAC-SHA256, so that
            a client cannot make one that starts anywhere it likes; a cursor
            signed with another key (or not signed) is refused. Every process
            serving one API needs the same key. `None`: cursors carry a public
            checksum only (see docs/howto/pages.md for what each guarantees).
        aws_access_key_id, aws_secret_access_key, aws_session_token: explicit
            credentials; `None` follows the configuration chain.
        transport: how the data-plane requests (`GetItem`, `BatchGetItem`,
            `Query`, `Scan`, `PutItem`, `UpdateItem`, `DeleteItem`,
            `BatchWriteItem`, `TransactWriteItems`) are sent: `"lean"` (uow's
            own signed JSON over a keep-alive HTTP/1.1 pool, a fifth to a
            third of botocore's client CPU per request) or `"aioboto3"` (the aioboto3 client, with
            botocore's event hooks and `Stubber`). `None`: the environment
            variable `UOW_TRANSPORT`, else `"lean"`. Both use the endpoint,
            region and credentials the aioboto3 session resolves; the control
            plane (`create_tables`) and `Store.client` are always aioboto3.
        connect_timeout, read_timeout: seconds to connect, and to wait for
            an answer's bytes, on either transport (botocore's defaults).
        session: an `aioboto3.Session` to resolve credentials, region and
            configuration from (a profile, an assume-role set-up); default a
            new one. Not together with the `aws_*` credentials.

    Raises:
        ValidationError: `max_concurrency` below 1, a `cursor_key` that is
            not bytes or shorter than 16 bytes, an unknown transport, a
            timeout not above 0, or both `session` and explicit credentials.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        *,
        table_prefix: str = "",
        max_concurrency: int = 32,
        cache: bool = True,
        retry: Retry | None = None,
        consumed_capacity: bool = False,
        cursor_key: bytes | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        transport: str | None = None,
        connect_timeout: float = 60.0,
        read_timeout: float = 60.0,
        session: Any = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValidationError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for name, seconds in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not seconds > 0:
                raise ValidationError(f"{name} must be more than 0 seconds, got {seconds}")
        explicit = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        if session is not None and any(value is not None for value in explicit):
            raise ValidationError(
                "pass either session= or explicit aws_* credentials, not both: "
                "the session resolves its own credentials"
            )
        self.transport_name = _transport_name(transport)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._session = session
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self.table_prefix = table_prefix
        self.max_concurrency = max_concurrency
        self.cache = cache and _env_cache_enabled()
        self.retry = retry or Retry()
        self.consumed_capacity = consumed_capacity
        self._cursors = Cursors(cursor_key)
        self._credentials = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self._state = StoreState.NEW
        self._client_context: Any = None
        self._client: Any = None
        self._transport: Transport | None = None

    def __repr__(self) -> str:
        return (
            f"<uow.Store {self._state.value} endpoint={self.endpoint_url!r} "
            f"transport={self.transport_name}>"
        )

    @property
    def state(self) -> StoreState:
        return self._state

    @property
    def client(self) -> Any:
        """The aioboto3 DynamoDB client (for calls `uow` does not wrap).

        Raises:
            UsageError: the store is not open.
        """
        self._require_open("client")
        return self._client

    @property
    def transport(self) -> Transport:
        """The transport every data-plane request of this store goes through.

        `store.transport.name` is `"lean"` or `"aioboto3"`;
        `store.transport.observe(observer)` sees every request sent.

        Raises:
            UsageError: the store is not open.
        """
        self._require_open("transport")
        assert self._transport is not None
        return self._transport

    def _require_open(self, call: str) -> None:
        if self._state is not StoreState.OPEN:
            raise UsageError(
                f"Store.{call} needs an open store, but it is {self._state.value}: "
                "use it inside `async with uow.Store(...) as store:`"
            )

    async def __aenter__(self) -> Self:
        if self._state is not StoreState.NEW:
            raise UsageError(f"a Store can be entered once; this one is {self._state.value}")
        # aioboto3 is imported here so that `import uow` (and the pytest plugin) stays light.
        import aioboto3
        from aiobotocore.config import AioConfig

        config = AioConfig(
            max_pool_connections=self.max_concurrency,
            # uow validates every request itself before sending; botocore's own
            # validation costs about a third of the client CPU per batched item.
            parameter_validation=False,
            # One retry policy for everything: uow's own (`uow.Retry`), counted per commit.
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
        session = self._session
        if session is None:
            session = aioboto3.Session(
                region_name=self.region_name,
                aws_access_key_id=self._credentials["aws_access_key_id"],
                aws_secret_access_key=self._credentials["aws_secret_access_key"],
                aws_session_token=self._credentials["aws_session_token"],
            )
            # Share botocore's model loader between stores: without it every store
            # re-reads and parses the service JSON (about 0.1 s of CPU per store).
            session._session.register_component("data_loader", _shared_loader())
        self._client_context = session.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            config=config,
        )
        self._client = client = await self._client_context.__aenter__()
        try:
            self._transport = await self._open_transport(session, client)
        except BaseException as exc:
            context, self._client_context, self._client = self._client_context, None, None
            await context.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._state = StoreState.OPEN
        return self

    async def _open_transport(self, session: Any, client: Any) -> Transport:
        from uow._transport import LeanTransport, ca_bundle_of, crc32_hook

        # botocore checks x-amz-crc32 only in its legacy retry mode: put the check back.
        client.meta.events.register("before-parse.dynamodb", crc32_hook)
        if self.transport_name == "aioboto3":
            return BotocoreTransport(client)
        botocore_session = session._session
        lean = LeanTransport.from_client(
            client,
            # The very object the client signs with: refreshable ones refresh for both.
            await botocore_session.get_credentials(),
            max_connections=self.max_concurrency,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            ca_bundle=ca_bundle_of(botocore_session),
        )
        await lean.open()
        return lean

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = StoreState.CLOSED
        context, self._client_context, self._client = self._client_context, None, None
        transport, self._transport = self._transport, None
        try:
            if transport is not None:
                await transport.close()
        finally:
            if context is not None:
                await context.__aexit__(exc_type, exc, tb)

    def session(self) -> Session:
        """A new session on this store: cheap, one per request or job.

        Raises:
            UsageError: the store is not open.
        """
        self._require_open("session()")
        from uow.session import Session

        return Session(self)

    def table_name(self, model: type) -> str:
        """The full table name of a model, prefix included."""
        return self.table_prefix + info_of(model).table

    async def create_tables(self, *models: type) -> None:
        """Create the tables of `models` if they do not exist (on-demand billing, GSIs, TTL).

        Idempotent: an existing table with the same key schema is left as it
        is. Models sharing a table (single-table design) are merged: one
        table with the union of their indexes; they must agree on its keys,
        kind attribute and TTL attribute, and each needs a kind of its own.
        A model with `ttl=` gets DynamoDB's time to live enabled on that
        attribute (left alone when already enabled on it).

        Raises:
            ValidationError: models sharing a table disagree, a key field has
                a type DynamoDB keys cannot hold, or an existing table has a
                different key schema or TTL attribute.
            UsageError: the store is not open.
        """
        from uow._tables import table_spec

        self._require_open("create_tables()")
        tables: dict[str, list[ModelInfo]] = {}
        for model in models:
            info = info_of(model)
            tables.setdefault(self.table_prefix + info.table, []).append(info)
        specs = [table_spec(name, infos) for name, infos in tables.items()]  # all checked first
        creations = [self._create_table(spec) for spec in specs]
        guarded = [info for infos in tables.values() for info in infos if info.unique]
        if guarded:
            expiring = any(info.ttl is not None for info in guarded)
            creations.append(self._create_guard_table(expiring=expiring))
        await asyncio.gather(*creations)

    async def _create_guard_table(self, *, expiring: bool) -> None:
        """The table holding one guard item per unique value (`uow.plan.GUARD_TABLE`).

        With `expiring` (a model with unique fields has a TTL), its TTL is enabled on
        `uow.plan.GUARD_EXPIRES`, so that guards go with their expired records.
        """
        from uow.plan import GUARD_EXPIRES, GUARD_KEY, GUARD_TABLE

        name = self.table_prefix + GUARD_TABLE
        await self._create(
            {
                "TableName": name,
                "KeySchema": [{"AttributeName": GUARD_KEY, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": GUARD_KEY, "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
            owner="unique-field guards",
        )
        if expiring:
            await self._enable_ttl(name, GUARD_EXPIRES, owner="unique-field guards")

    async def _create_table(self, spec: TableSpec) -> None:
        await self._create(spec.params, owner=spec.owner)
        if spec.ttl is not None:
            await self._enable_ttl(spec.params["TableName"], spec.ttl, owner=spec.owner)

    async def _enable_ttl(self, name: str, attribute: str, *, owner: str) -> None:
        """Turn on DynamoDB's time to live on `attribute`, unless it already is."""
        client = self._client
        described = (await client.describe_time_to_live(TableName=name)).get(
            "TimeToLiveDescription", {}
        )
        status = described.get("TimeToLiveStatus", "DISABLED")
        current = described.get("AttributeName")
        if status in ("ENABLED", "ENABLING"):
            if current == attribute:
                return
            raise ValidationError(
                f"table {name!r} has time to live on {current!r}, but {owner} needs it on "
                f"{attribute!r}; DynamoDB allows one TTL attribute per table"
            )
        await client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )

    async def _create(self, params: dict[str, Any], *, owner: str) -> None:
        from botocore.exceptions import ClientError

        name = params["TableName"]
        client = self._client
        try:
            await client.create_table(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            if code != "ResourceInUseException":
                raise ServiceError(
                    f"creating table {name!r} for {owner} failed: {code}: {error.get('Message')}",
                    code=code,
                ) from exc
            described = (await client.describe_table(TableName=name))["Table"]
            if described["KeySchema"] != params["KeySchema"]:
                raise ValidationError(
                    f"table {name!r} exists with key schema {described['KeySchema']}, "
                    f"but {owner} needs {params['KeySchema']}"
                ) from exc
        for _ in range(600):
            status = (await client.describe_table(TableName=name))["Table"]["TableStatus"]
            if status == "ACTIVE":
                return
            await asyncio.sleep(0.1)
        raise UsageError(f"table {name!r} did not become ACTIVE within 60 s")  # pragma: no cover


_LOADER: Any = None


def _shared_loader() -> Any:
    """One botocore data loader for the process; it caches the parsed service models."""
    global _LOADER  # noqa: PLW0603 - a process-wide cache, created on first use
    if _LOADER is None:
        from botocore.loaders import create_loader

        _LOADER = create_loader()
    return _LOADER
