"""Idempotency tokens belong to a change: re-sends share one, a new identical change does not."""

from __future__ import annotations

import pytest

import uow
from tests.models import User

pytestmark = pytest.mark.asyncio


class TestTokensPerChange:
    """A new change never reuses the token of an earlier, confirmed one."""

    @pytest.mark.uow_skip_on(
        "moto",
        reason="moto ignores ClientRequestToken, so a reused token cannot be observed there",
    )
    async def test_an_identical_new_change_after_a_partial_failure_is_applied(
        self, uow_store: uow.Store
    ) -> None:
        """Create, delete, then create the same record again while another change keeps failing: all three land."""
        await uow_store.create_tables(User)
        async with uow_store.session() as setup:
            setup.add(User("taken", email="dup@x"))
        session = uow_store.session()
        session.add(User("u1", email="a@x"))
        session.add(User("u2", email="dup@x"))  # fails every time: the email is taken
        with pytest.raises(uow.CommitError):
            await session.commit()
        first = await session.get(User, "u1")
        assert first is not None
        session.delete(first)
        with pytest.raises(uow.CommitError):
            await session.commit()
        session.add(User("u1", email="a@x"))  # the same transaction content as the first create

        with pytest.raises(uow.CommitError) as caught:
            await session.commit()

        assert [change.key.pk for change in caught.value.succeeded] == ["u1"]
        stored = await uow_store.client.get_item(
            TableName="users", Key={"user_id": {"S": "u1"}}, ConsistentRead=True
        )
        assert "Item" in stored

    async def test_a_resent_change_keeps_its_token(self, uow_store: uow.Store) -> None:
        """A change that failed keeps its attempt seed until DynamoDB confirms it."""
        await uow_store.create_tables(User)
        async with uow_store.session() as setup:
            setup.add(User("taken", email="dup@x"))
        session = uow_store.session()
        session.add(User("u2", email="dup@x"))
        record = session._records[uow.Key("users", "u2")]
        with pytest.raises(uow.CommitError):
            await session.commit()
        seed = record.attempt
        assert seed is not None
        with pytest.raises(uow.CommitError):
            await session.commit()
        assert record.attempt == seed
        session.rollback()
        assert record.attempt is None
