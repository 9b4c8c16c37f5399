"""User conditions: rendered with their own placeholders and ANDed with uow's own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Attr, ConditionBase

from tests.models import Order, User
from tests.unit import records
from uow import ValidationError
from uow.changes import Op
from uow.conditions import Check, add_to, checked, render
from uow.identity import Key as ItemKey
from uow.model import info_of
from uow.plan import make_plan


class TestRender:
    """boto3's conditions, renamed to `#u`/`:u` placeholders so they never clash with uow's."""

    @pytest.mark.parametrize(
        ("conditions", "expression"),
        [
            pytest.param([Attr("qty").gte(2)], "#u0 >= :u0", id="one"),
            pytest.param(
                [Attr("qty").gte(2), Attr("status").eq("open")],
                "(#u0 >= :u0) AND (#u1 = :u1)",
                id="two-anded",
            ),
            pytest.param([Attr("gone").not_exists()], "attribute_not_exists(#u0)", id="no-value"),
        ],
    )
    def test_placeholders(self, conditions: list[ConditionBase], expression: str) -> None:
        """Each condition is rendered by boto3 and its placeholders renamed."""
        text, names, values = render(conditions)
        assert text == expression
        assert set(names) <= {"#u0", "#u1"}
        assert set(values) <= {":u0", ":u1"}

    def test_values_are_encoded_by_the_codec(self) -> None:
        """Numbers become DynamoDB numbers, strings strings."""
        _, names, values = render([Attr("qty").gte(2) & Attr("sku").eq("A")])
        assert sorted(names.values()) == ["qty", "sku"]
        assert sorted(values.values(), key=str) == [{"N": "2"}, {"S": "A"}]

    def test_anded_with_uows_own(self) -> None:
        """`add_to` keeps the body's own condition and placeholders, and ANDs the user's."""
        body = {
            "ConditionExpression": "attribute_exists(#n0)",
            "ExpressionAttributeNames": {"#n0": "sku"},
        }
        add_to(body, [Attr("qty").gte(2)])
        assert body["ConditionExpression"] == "(attribute_exists(#n0)) AND (#u0 >= :u0)"
        assert body["ExpressionAttributeNames"] == {"#n0": "sku", "#u0": "qty"}
        assert body["ExpressionAttributeValues"] == {":u0": {"N": "2"}}

    @pytest.mark.parametrize(
        "condition",
        [
            pytest.param("qty >= 2", id="a-string"),
            pytest.param(Attr("x").eq(object()), id="a-value-of-no-type"),
        ],
    )
    def test_refused(self, condition: object) -> None:
        """What DynamoDB cannot evaluate is a ValidationError at the call."""
        with pytest.raises(ValidationError):
            checked(condition, "Session.update()")


class TestPlanned:
    """A conditioned write is never batched, and goes with a token when it has no marker."""

    def test_a_conditioned_delete_is_a_single_delete(self) -> None:
        """An unconditional delete is a batch entry; with a condition, a DeleteItem."""
        record = records.deleted(Order, "c1", "o1")
        record.conditions = [Attr("status").eq("cancelled")]
        plan = make_plan([record], "")
        assert [r.api for r in plan.requests] == ["DeleteItem"]
        (entry,) = plan.entries
        assert entry.user_condition
        assert entry.actions[0].body["ConditionExpression"] == "#u0 = :u0"

    def test_a_conditioned_blind_set_goes_with_a_token(self) -> None:
        """A SET re-sent after landing could fail the user's condition: it needs the token."""
        record = records.blind(Order, "c1", "o1", Op("SET", ("status",), "paid"))
        record.conditions = [Attr("status").eq("open")]
        plan = make_plan([record], "")
        assert [r.api for r in plan.requests] == ["TransactWriteItems"]
        body = plan.entries[0].actions[0].body
        assert body["ConditionExpression"] == "(attribute_exists(#n0)) AND (#u0 = :u0)"

    def test_a_conditioned_versioned_update_keeps_its_marker(self) -> None:
        """A versioned write is settled by its marker: it stays a plain UpdateItem."""
        record = records.mutated(User(user_id="u1", email="a@x", version=3), _rename)
        record.conditions = [Attr("plan").eq("pro")]
        plan = make_plan([record], "")
        assert [r.api for r in plan.requests] == ["UpdateItem"]
        condition = plan.entries[0].actions[0].body["ConditionExpression"]
        assert condition.endswith("AND (#u0 = :u0)")

    def test_checks_only_in_an_atomic_plan(self) -> None:
        """A ConditionCheck joins an atomic transaction; a plain plan with one is refused."""
        check = Check(info_of(Order), ItemKey("orders", "c1", "o9"), Attr("total").gt(Decimal(0)))
        record = records.new(Order(customer_id="c1", order_id="o1", created_at="2024"))
        with pytest.raises(ValidationError, match="atomic=True"):
            make_plan([record], "", checks=[check])
        plan = make_plan([record], "", atomic=True, checks=[check])
        (request,) = plan.requests
        assert [a.kind for p in request.entries for a in p.actions] == ["Put", "ConditionCheck"]


def _rename(user: User) -> None:
    user.name = "Bob"


class TestChecksInOnePlan:
    """Checks are keyed by their item, like records, not like unique guards."""

    def test_two_checks_on_one_table(self) -> None:
        """Two checks of different items of one table fit one transaction."""
        info = info_of(Order)
        checks = [
            Check(info, ItemKey("orders", "c1", f"o{n}"), Attr("total").gt(Decimal(0)))
            for n in range(2)
        ]
        plan = make_plan([], "", atomic=True, checks=checks)
        assert len(plan.entries) == 2

    def test_a_check_and_a_write_of_one_item_are_refused(self) -> None:
        """DynamoDB refuses two operations on one item in a transaction: caught before sending."""
        check = Check(info_of(Order), ItemKey("orders", "c1", "o1"), Attr("total").gt(0))
        record = records.new(Order(customer_id="c1", order_id="o1", created_at="2024"))
        with pytest.raises(ValidationError, match="cannot write one item twice"):
            make_plan([record], "", atomic=True, checks=[check])
