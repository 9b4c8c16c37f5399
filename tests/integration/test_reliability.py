"""Optimistic versions, unique fields, atomic commits and the conflict-retry helper."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest
import pytest_asyncio

import uow
from tests.models import User
from uow.plan import GUARD_TABLE
from uow.testing import FaultProxy, Faults, LocalDatabase, local_store

pytestmark = pytest.mark.asyncio


@uow.model(table="accounts", pk="account_id", version="version")
@attrs.define
class Account:
    """A versioned record without unique fields."""

    account_id: str
    balance: int = 0
    note: str = ""
    version: int = 0


@uow.model(table="plain", pk="id")
@attrs.define
class Plain:
    """A record with neither version nor unique fields: the fast paths."""

    id: str
    doc: dict[str, Any] = attrs.Factory(dict)


@pytest_asyncio.fixture
async def rstore(uow_store: uow.Store) -> AsyncIterator[uow.Store]:
    """The test store with the tables of this module."""
    await uow_store.create_tables(User, Account, Plain)
    yield uow_store


async def raw(store: uow.Store, table: str, **key: str) -> dict[str, Any] | None:
    """An item read straight from DynamoDB (strongly consistent)."""
    response = await store.client.get_item(
        TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


async def guards(store: uow.Store) -> set[str]:
    """The keys of every unique-field guard item."""
    page = await store.client.scan(TableName=GUARD_TABLE, ConsistentRead=True)
    return {item["guard"]["S"] for item in page["Items"]}


class TestVersions:
    """Every write of a versioned record is conditioned on the version it was read at."""

    async def test_writes_increment_the_version_after_confirmation(self, rstore: uow.Store) -> None:
        """Create writes version 1, each update increments it, and the object follows."""
        session = rstore.session()
        account = Account("a1", balance=10)
        session.add(account)
        await session.commit()
        assert account.version == 1
        account.balance = 20
        await session.commit()
        assert account.version == 2
        stored = await raw(rstore, "accounts", account_id="a1")
        assert stored is not None
        assert stored["version"] == {"N": "2"}
        assert stored["balance"] == {"N": "20"}

    async def test_a_stale_write_is_a_conflict_that_stays_pending(self, rstore: uow.Store) -> None:
        """A write based on an old version fails with ConflictError; refresh, re-apply and commit succeeds."""
        async with rstore.session() as setup:
            setup.add(Account("a1", balance=10))
        mine, theirs = rstore.session(), rstore.session()
        my_account = await mine.get(Account, "a1")
        their_account = await theirs.get(Account, "a1")
        assert my_account is not None
        assert their_account is not None
        their_account.balance = 50
        await theirs.commit()

        my_account.balance = 11
        with pytest.raises(uow.CommitError) as caught:
            await mine.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.ConflictError)
        assert "Account" in str(cause)
        assert "'a1'" in str(cause)
        assert my_account.version == 1
        assert [c.key.pk for c in mine.pending] == ["a1"]
        await mine.refresh(my_account)
        assert my_account.balance == 50
        my_account.balance += 1
        await mine.commit()
        assert my_account.version == 3
        stored = await raw(rstore, "accounts", account_id="a1")
        assert stored is not None
        assert stored["balance"] == {"N": "51"}

    async def test_a_stale_delete_is_a_conflict(self, rstore: uow.Store) -> None:
        """Deleting a versioned record that changed since it was read fails and keeps the item."""
        async with rstore.session() as setup:
            setup.add(Account("a1"))
        mine, theirs = rstore.session(), rstore.session()
        my_account = await mine.get(Account, "a1")
        their_account = await theirs.get(Account, "a1")
        assert their_account is not None
        their_account.note = "changed"
        await theirs.commit()
        mine.delete(my_account)

        with pytest.raises(uow.CommitError) as caught:
            await mine.commit()

        assert isinstance(caught.value.failed[0][1], uow.ConflictError)
        assert await raw(rstore, "accounts", account_id="a1") is not None

    async def test_the_version_field_is_managed(self, rstore: uow.Store) -> None:
        """Assigning or updating the version field is refused before any request."""
        session = rstore.session()
        with pytest.raises(uow.ValidationError, match="managed"):
            session.update(Account, "a1", set={"version": 7})
        session.add(Account("a1"))
        await session.commit()
        account = await session.get(Account, "a1")
        assert account is not None
        account.version = 9
        with pytest.raises(uow.ValidationError, match="managed"):
            await session.commit()

    async def test_versioned_writes_never_go_in_unconditional_batches(
        self, rstore: uow.Store
    ) -> None:
        """A versioned delete is a conditional DeleteItem, not a BatchWriteItem entry."""
        async with rstore.session() as setup:
            setup.add(Account("a1"))
        session = rstore.session()
        session.delete(await session.get(Account, "a1"))

        result = await session.commit()

        assert result.requests == {"DeleteItem": 1}


class TestUniqueFields:
    """A unique field's value is reserved by a guard item written in the same transaction."""

    async def test_a_taken_value_is_a_unique_violation(self, rstore: uow.Store) -> None:
        """The second record with a taken email fails with UniqueViolation naming field and value."""
        async with rstore.session() as setup:
            setup.add(User("u1", email="ada@example.com"))
        session = rstore.session()
        session.add(User("u2", email="ada@example.com"))

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        ((_, cause),) = caught.value.failed
        assert isinstance(cause, uow.UniqueViolation)
        assert "email" in str(cause)
        assert "ada@example.com" in str(cause)
        assert await raw(rstore, "users", user_id="u2") is None

    async def test_changing_the_value_moves_the_guard(self, rstore: uow.Store) -> None:
        """A new value claims a new guard and releases the old one, so another record can take it."""
        async with rstore.session() as setup:
            setup.add(User("u1", email="old@example.com"))
        async with rstore.session() as session:
            user = await session.get(User, "u1")
            assert user is not None
            user.email = "new@example.com"
        assert await guards(rstore) == {"users#email#s:new@example.com"}
        async with rstore.session() as session:
            session.add(User("u2", email="old@example.com"))
        assert await guards(rstore) == {
            "users#email#s:new@example.com",
            "users#email#s:old@example.com",
        }

    async def test_deleting_releases_the_guard(self, rstore: uow.Store) -> None:
        """Deleting a record, loaded or by key only, releases its guards."""
        async with rstore.session() as setup:
            setup.add_all([User("u1", email="a@x"), User("u2", email="b@x")])
        async with rstore.session() as session:
            session.delete(await session.get(User, "u1"))
            session.delete_key(User, "u2")
        assert await guards(rstore) == set()
        assert await raw(rstore, "users", user_id="u2") is None

    async def test_a_blind_update_of_a_unique_field_is_refused(self, rstore: uow.Store) -> None:
        """Changing a unique field needs its current value, so a blind update of it is refused."""
        session = rstore.session()
        with pytest.raises(uow.ValidationError, match="unique"):
            session.update(User, "u1", set={"email": "x@y"})

    async def test_records_without_unique_fields_keep_the_fast_paths(
        self, rstore: uow.Store
    ) -> None:
        """Plain records use BatchWriteItem and UpdateItem; only unique-field changes use transactions."""
        async with rstore.session() as setup:
            setup.add_all([Plain(f"p{i}") for i in range(3)], overwrite=True)
            setup.add(User("u1", email="a@x"))
        session = rstore.session()
        plain = await session.get(Plain, "p0")
        user = await session.get(User, "u1")
        assert plain is not None
        assert user is not None
        plain.doc["k"] = 1
        user.name = "Ada"
        session.delete_key(Plain, "p1")

        result = await session.commit()

        assert result.requests == {"UpdateItem": 2, "BatchWriteItem": 1}


class TestAtomicCommit:
    """`commit(atomic=True)` writes the whole log in one transaction, or nothing."""

    async def test_everything_in_one_transaction(self, rstore: uow.Store) -> None:
        """Creates, updates and deletes go in one TransactWriteItems."""
        async with rstore.session() as setup:
            setup.add_all([Plain("keep"), Plain("drop")])
        session = rstore.session()
        keep = await session.get(Plain, "keep")
        assert keep is not None
        keep.doc["x"] = 1
        session.delete_key(Plain, "drop")
        session.add(Plain("new"))
        session.add(User("u1", email="a@x"))

        result = await session.commit(atomic=True)

        assert result.requests == {"TransactWriteItems": 1}
        assert (result.created, result.updated, result.deleted) == (2, 1, 1)
        assert await raw(rstore, "plain", id="drop") is None
        assert await guards(rstore) == {"users#email#s:a@x"}

    async def test_one_failure_writes_nothing_and_names_its_cause(self, rstore: uow.Store) -> None:
        """A duplicate key cancels the transaction; its change gets the real cause, the others AbortedError."""
        async with rstore.session() as setup:
            setup.add(Plain("taken"))
        session = rstore.session()
        session.add_all([Plain("a"), Plain("taken"), Plain("b")])

        with pytest.raises(uow.CommitError) as caught:
            await session.commit(atomic=True)

        causes = {change.key.pk: type(cause) for change, cause in caught.value.failed}
        assert causes == {
            "a": uow.AbortedError,
            "taken": uow.DuplicateKeyError,
            "b": uow.AbortedError,
        }
        assert caught.value.succeeded == ()
        assert caught.value.result is not None
        assert caught.value.result.requests == {"TransactWriteItems": 1}
        assert await raw(rstore, "plain", id="a") is None
        assert len(session.pending) == 3

    @pytest.mark.parametrize(
        ("count", "message"),
        [
            pytest.param(101, "at most 100 actions", id="over-100-actions"),
        ],
    )
    async def test_limits_are_checked_before_sending(
        self, rstore: uow.Store, count: int, message: str
    ) -> None:
        """More than 100 actions raise ValidationError and send nothing."""
        session = rstore.session()
        session.add_all([Plain(f"p{i}") for i in range(count)])

        with pytest.raises(uow.ValidationError, match=message):
            await session.commit(atomic=True)

        assert len(session.pending) == count
        page = await rstore.client.scan(TableName="plain")
        assert page["Items"] == []

    async def test_guards_count_towards_the_100_actions(self, rstore: uow.Store) -> None:
        """Fifty users with a unique email are 100 actions; fifty-one are too many."""
        session = rstore.session()
        session.add_all([User(f"u{i}", email=f"{i}@x") for i in range(51)])
        with pytest.raises(uow.ValidationError, match="102"):
            await session.commit(atomic=True)

    async def test_over_4_mb_is_refused(self, rstore: uow.Store) -> None:
        """Eleven items of about 390 KB exceed the 4 MB transaction limit before any request."""
        session = rstore.session()
        session.add_all([Plain(f"p{i}", doc={"blob": "x" * 390_000}) for i in range(11)])
        with pytest.raises(uow.ValidationError, match="4 MB"):
            await session.commit(atomic=True)

    async def test_one_item_written_twice_is_refused(self, rstore: uow.Store) -> None:
        """Two records swapping a unique value would write one guard twice: refused before sending."""
        async with rstore.session() as setup:
            setup.add(User("u1", email="a@x"))
        session = rstore.session()
        user = await session.get(User, "u1")
        assert user is not None
        user.email = "b@x"
        session.add(User("u2", email="a@x"))
        with pytest.raises(uow.ValidationError, match="one item twice"):
            await session.commit(atomic=True)

    async def test_transaction_conflicts_are_retried(
        self, uow_endpoint: str, uow_database: LocalDatabase, rstore: uow.Store
    ) -> None:
        """A TransactionConflict cancellation is retried with backoff until the transaction lands."""
        with FaultProxy(uow_endpoint, Faults(conflict=0.6), seed=3) as proxy:
            retry = uow.Retry(max_attempts=30, base_delay=0.001, max_delay=0.01)
            async with uow_database.store(proxy.endpoint, retry=retry) as store:
                session = store.session()
                session.add_all([Plain("a"), Plain("b")])
                result = await session.commit(atomic=True)
        assert proxy.stats["conflicts"] > 0
        assert result.retries == proxy.stats["conflicts"]
        assert result.created == 2

    async def test_condition_failures_are_never_retried(self, rstore: uow.Store) -> None:
        """A ConditionalCheckFailed cancellation is final: one request, no retry."""
        async with rstore.session() as setup:
            setup.add(Plain("taken"))
        session = rstore.session()
        session.add(Plain("taken"))
        with pytest.raises(uow.CommitError) as caught:
            await session.commit(atomic=True)
        assert caught.value.result is not None
        assert caught.value.result.retries == 0


class TestRetryOnConflict:
    """`uow.retry_on_conflict` runs a unit of work again after losing a race."""

    async def test_a_lost_race_is_run_again_on_fresh_data(self, rstore: uow.Store) -> None:
        """The first attempt loses to a concurrent writer; the second sees its write and wins."""
        async with rstore.session() as setup:
            setup.add(Account("a1", balance=100))
        attempts: list[int] = []

        async def withdraw(session: uow.Session) -> int:
            account = await session.get(Account, "a1")
            assert account is not None
            if not attempts:
                async with rstore.session() as other:
                    theirs = await other.get(Account, "a1")
                    assert theirs is not None
                    theirs.balance -= 30
            attempts.append(account.balance)
            account.balance -= 10
            return account.balance

        balance = await uow.retry_on_conflict(rstore, withdraw, base_delay=0.001)

        assert attempts == [100, 70]
        assert balance == 60
        stored = await raw(rstore, "accounts", account_id="a1")
        assert stored is not None
        assert stored["balance"] == {"N": "60"}

    async def test_other_failures_are_not_retried(self, rstore: uow.Store) -> None:
        """A duplicate key is not a lost race: it is raised at once."""
        async with rstore.session() as setup:
            setup.add(Plain("taken"))
        calls = 0

        async def create(session: uow.Session) -> None:
            nonlocal calls
            calls += 1
            session.add(Plain("taken"))

        with pytest.raises(uow.CommitError):
            await uow.retry_on_conflict(rstore, create)
        assert calls == 1


class TestPlaceholders:
    """Names and values reach DynamoDB only through placeholders, whatever they contain."""

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("a.b", id="dot"),
            pytest.param("with space", id="space"),
            pytest.param("#hash:colon", id="hash-colon"),
            pytest.param("status", id="reserved-word"),
            pytest.param("[0]", id="brackets"),
            pytest.param("ünï©ødé", id="unicode"),
        ],
    )
    async def test_map_keys_of_any_shape_round_trip(self, rstore: uow.Store, name: str) -> None:
        """A map key with dots, spaces, reserved words or brackets is stored exactly."""
        async with rstore.session() as setup:
            setup.add(Plain("p", doc={"keep": 1}))
        async with rstore.session() as session:
            plain = await session.get(Plain, "p")
            assert plain is not None
            plain.doc[name] = {"v": name}
        stored = await raw(rstore, "plain", id="p")
        assert stored is not None
        assert stored["doc"]["M"][name] == {"M": {"v": {"S": name}}}


class TestLimits:
    """DynamoDB's limits are checked before sending, naming model, key and limit."""

    async def test_an_update_expression_over_4_kb_is_refused(self, rstore: uow.Store) -> None:
        """Hundreds of changed paths in one record exceed the 4 KB expression limit."""
        async with rstore.session() as setup:
            setup.add(Plain("p", doc={f"k{i}": 0 for i in range(600)}))
        session = rstore.session()
        plain = await session.get(Plain, "p")
        assert plain is not None
        for i in range(600):
            plain.doc[f"k{i}"] = 1
        with pytest.raises(uow.ValidationError, match=r"Plain 'p'.*4 KB"):
            await session.commit()

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            pytest.param({"n": 10**38 + 1}, "38", id="39-digit-int"),
            pytest.param({"n": float("nan")}, "not finite", id="nan"),
            pytest.param({"s": [set()]}, "empty set", id="nested-empty-set"),
            pytest.param({"n": 1e130}, "range", id="out-of-range"),
        ],
    )
    async def test_bad_numbers_and_sets_are_refused(
        self, rstore: uow.Store, doc: dict[str, Any], message: str
    ) -> None:
        """Numbers DynamoDB cannot hold and empty nested sets raise ValidationError naming the key."""
        session = rstore.session()
        session.add(Plain("bad", doc=doc))
        with pytest.raises(uow.ValidationError, match=message) as caught:
            await session.commit()
        assert "Plain 'bad'" in str(caught.value)

    async def test_an_empty_string_key_is_refused_at_once(self, rstore: uow.Store) -> None:
        """An empty partition key is refused when the record is added."""
        with pytest.raises(uow.ValidationError, match="empty"):
            rstore.session().add(Plain(""))


class TestLogs:
    """One DEBUG line per request, one INFO line per commit, and no values above DEBUG."""

    @pytest.fixture
    def captured(self, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
        """Every uow log record at DEBUG and above."""
        with caplog.at_level(logging.DEBUG, logger="uow"):
            yield caplog

    async def test_levels_and_contents(
        self, uow_endpoint: str, captured: pytest.LogCaptureFixture
    ) -> None:
        """Item values and credentials never appear in uow's INFO or higher log lines."""
        secret_value = "SECRET-VALUE-4711"
        secret_key = "SECRET-ACCESS-KEY-0815"
        async with local_store(
            uow_endpoint,
            aws_access_key_id="AKIDLOGTEST",
            aws_secret_access_key=secret_key,
        ) as store:
            await store.create_tables(Plain)
            session = store.session()
            session.add_all([Plain(f"p{i}", doc={"secret": secret_value}) for i in range(3)])
            session.add_all([Plain(f"q{i}") for i in range(2)], overwrite=True)
            await session.commit()

        uow_records = [r for r in captured.records if r.name.startswith("uow")]
        infos = [r for r in uow_records if r.levelno >= logging.INFO]
        debugs = [r for r in uow_records if r.levelno == logging.DEBUG]
        assert len(infos) == 1
        assert "created=3" in infos[0].getMessage()
        assert "put=2" in infos[0].getMessage()
        assert len(debugs) >= 4
        for record in uow_records:
            assert secret_key not in record.getMessage()
        for record in infos:
            assert secret_value not in record.getMessage()
