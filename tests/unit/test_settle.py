"""`landed`: after a re-send's condition fails, did the write's earlier attempt land?"""

from __future__ import annotations

from typing import Any

import pytest

from tests.models import Order, User
from tests.unit import records
from uow._execute import landed
from uow.codec import codec_for
from uow.identity import RecordState
from uow.plan import Planned, make_plan


def _planned(record: Any) -> Planned:
    (entry,) = make_plan([record], "").entries
    return entry


def _stored(obj: Any, **extra: Any) -> dict[str, Any]:
    return {**codec_for(type(obj)).encode_item(obj), **extra}


class TestLanded:
    """The item returned with a failed condition tells whether the first attempt is stored."""

    def test_create_finds_its_marker(self) -> None:
        """A create whose marker holds its own token landed earlier."""
        obj = Order(customer_id="c1", order_id="o1", created_at="2024-05-01")
        entry = _planned(records.new(obj))
        assert entry.marker is not None
        name, token = entry.marker
        assert landed(entry, _stored(obj, **{name: {"S": token}})) is True

    def test_create_of_another_writer(self) -> None:
        """An item holding another token (or none) is another writer's: a real duplicate."""
        obj = Order(customer_id="c1", order_id="o1", created_at="2024-05-01")
        entry = _planned(records.new(obj))
        assert landed(entry, _stored(obj, _uow_w0={"S": "someone-else"})) is False
        assert landed(entry, _stored(obj)) is False

    @pytest.mark.parametrize("later", [0, 1, 31])
    def test_versioned_write_found_while_its_slot_is_kept(self, later: int) -> None:
        """Up to 31 later versions keep the slot of the write that made version n."""
        record = records.mutated(User(user_id="u1", email="a@x", version=4), _rename)
        entry = _planned(record)
        assert entry.marker is not None
        name, token = entry.marker
        stored = _stored(User(user_id="u1", email="a@x", version=5 + later))
        assert landed(entry, {**stored, name: {"S": token}}) is True

    def test_versioned_write_of_another_writer(self) -> None:
        """Version n made by another write: ours did not land, and cannot any more."""
        record = records.mutated(User(user_id="u1", email="a@x", version=4), _rename)
        entry = _planned(record)
        stored = _stored(User(user_id="u1", email="a@x", version=6), _uow_w5={"S": "other"})
        assert landed(entry, stored) is False

    def test_versioned_write_past_the_slots_is_unknown(self) -> None:
        """32 versions later the slot may have been reused: no sound answer."""
        record = records.mutated(User(user_id="u1", email="a@x", version=4), _rename)
        entry = _planned(record)
        stored = _stored(User(user_id="u1", email="a@x", version=37), _uow_w5={"S": "other"})
        assert landed(entry, stored) is None
        younger = _stored(User(user_id="u1", email="a@x", version=36), _uow_w5={"S": "other"})
        assert landed(entry, younger) is False

    def test_update_of_a_vanished_item(self) -> None:
        """An update whose item is gone did not leave anything to find."""
        record = records.mutated(User(user_id="u1", email="a@x", version=4), _rename)
        assert landed(_planned(record), None) is False

    def test_delete_finds_the_item_gone(self) -> None:
        """A delete whose item is gone reached its goal; one still stored did not land."""
        record = records.loaded(User(user_id="u1", email="a@x", version=4))
        record.state = RecordState.DELETED
        entry = _planned(record)
        assert landed(entry, None) is True
        assert landed(entry, _stored(User(user_id="u1", email="a@x", version=5))) is False


def _rename(user: User) -> None:
    user.name = "Bob"
