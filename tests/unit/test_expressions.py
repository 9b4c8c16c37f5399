"""Update and condition expressions: always `#name`/`:value` placeholders, never raw names."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.models import Address, Everything, Order
from tests.unit import records
from uow.changes import Op
from uow.expressions import ExpressionBuilder
from uow.identity import Record
from uow.plan import make_plan

# Attribute names DynamoDB would misread if spliced into an expression.
AWKWARD_NAMES = [
    "first.name",
    "my key",
    "status",
    "COUNT",
    "#hash",
    ":colon",
    "a[0]",
    "x = y",
    "ünïcødé",
    "AND",
]
_TOKEN = re.compile(r"[#:][^\s.,=()\[\]]+")
_GRAMMAR = re.compile(
    r"(?:#\w+|:\w+|\[\d+\]|[.,=()\s]|SET|REMOVE|ADD|AND|OR|attribute_exists|attribute_not_exists)*"
)


def expressions(params: dict[str, Any]) -> list[str]:
    """The expression texts of a request."""
    return [params[k] for k in ("UpdateExpression", "ConditionExpression") if k in params]


def assert_placeholders_only(params: dict[str, Any]) -> None:
    """Every name and value in the request's expressions is a declared placeholder."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for text in expressions(params):
        assert _GRAMMAR.fullmatch(text), text
        for token in _TOKEN.findall(text):
            assert token in (names if token.startswith("#") else values), (token, text)


class TestExpressionBuilder:
    """`ExpressionBuilder` collects the placeholders of one request."""

    def test_one_placeholder_per_name(self) -> None:
        """A name used twice gets one placeholder; distinct names get distinct ones."""
        builder = ExpressionBuilder()
        first = builder.name("status")
        assert builder.name("status") == first
        second = builder.name("total")
        assert second != first
        assert builder.names == {first: "status", second: "total"}

    def test_one_placeholder_per_value(self) -> None:
        """Each value occurrence gets its own placeholder, even when equal."""
        builder = ExpressionBuilder()
        first = builder.value({"N": "1"})
        second = builder.value({"N": "1"})
        assert first != second
        assert builder.values == {first: {"N": "1"}, second: {"N": "1"}}

    @pytest.mark.parametrize("raw", AWKWARD_NAMES)
    def test_names_are_never_in_the_text(self, raw: str) -> None:
        """A placeholder never contains the name it stands for."""
        builder = ExpressionBuilder()
        placeholder = builder.name(raw)
        assert re.fullmatch(r"#\w+", placeholder)
        assert raw not in placeholder
        assert builder.names[placeholder] == raw

    def test_path(self) -> None:
        """A document path is written as placeholders joined by dots, indexes kept literal."""
        builder = ExpressionBuilder()
        text = builder.path(("profile", "first.name", 2, "city"))
        profile, first, city = (builder.name(n) for n in ("profile", "first.name", "city"))
        assert text == f"{profile}.{first}[2].{city}"

    @pytest.mark.parametrize(
        ("sets", "removes", "adds", "shape"),
        [
            pytest.param([(("a",), {"S": "x"})], [], [], r"SET #\w+ = :\w+", id="set"),
            pytest.param([], [("a",), ("b", 1)], [], r"REMOVE #\w+, #\w+\[1\]", id="remove"),
            pytest.param([], [], [(("n",), {"N": "1"})], r"ADD #\w+ :\w+", id="add"),
            pytest.param(
                [(("a",), {"S": "x"}), (("b", "c"), {"N": "1"})],
                [("d",)],
                [(("n",), {"N": "1"})],
                r"SET #\w+ = :\w+, #\w+\.#\w+ = :\w+ REMOVE #\w+ ADD #\w+ :\w+",
                id="all-clauses-in-order",
            ),
        ],
    )
    def test_update(
        self,
        sets: list[tuple[Any, Any]],
        removes: list[Any],
        adds: list[tuple[Any, Any]],
        shape: str,
    ) -> None:
        """An update expression has SET, REMOVE and ADD clauses in that order, empty ones left out."""
        builder = ExpressionBuilder()
        text = builder.update(sets, removes, adds)
        assert re.fullmatch(shape, text), text
        assert_placeholders_only({"UpdateExpression": text, **builder.params()})

    def test_conditions(self) -> None:
        """Existence conditions name the attribute through a placeholder."""
        builder = ExpressionBuilder()
        exists = builder.exists("id")
        not_exists = builder.not_exists("id")
        placeholder = builder.name("id")
        assert exists == f"attribute_exists({placeholder})"
        assert not_exists == f"attribute_not_exists({placeholder})"

    def test_params(self) -> None:
        """`params()` holds only the placeholder maps that are non-empty."""
        builder = ExpressionBuilder()
        assert builder.params() == {}
        name = builder.name("a")
        assert builder.params() == {"ExpressionAttributeNames": {name: "a"}}
        value = builder.value({"BOOL": True})
        assert builder.params() == {
            "ExpressionAttributeNames": {name: "a"},
            "ExpressionAttributeValues": {value: {"BOOL": True}},
        }


def _awkward_doc() -> dict[str, Any]:
    """A map holding every awkward name as a key."""
    return dict.fromkeys(AWKWARD_NAMES, 0)


def _change_awkward(obj: Everything) -> None:
    """Change every awkward map key, a reserved-word field and a nested field."""
    for name in AWKWARD_NAMES:
        obj.doc[name] = {"v": name}
    obj.count += 1  # COUNT, STATUS and TEXT are DynamoDB reserved words
    obj.text = "changed"
    obj.addresses[0].street = "Main St."


def _order() -> Order:
    """Order `('c1', 'o1')` with its index keys set."""
    return Order("c1", "o1", created_at="2024-05-01T12:00:00Z")


class TestPlannedExpressions:
    """Every request the planner builds uses placeholders and the documented conditions."""

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(
                lambda: records.mutated(
                    Everything(id="e1", doc=_awkward_doc(), addresses=[Address(city="c")]),
                    _change_awkward,
                ),
                id="loaded-update",
            ),
            pytest.param(
                lambda: records.blind(
                    Everything,
                    "e1",
                    None,
                    *(Op("SET", ("doc", name), name) for name in AWKWARD_NAMES),
                    Op("REMOVE", ("doc", "first.name", "x")),
                    Op("ADD", ("count",), 1),
                    Op("SET", ("words", 3), "w"),
                ),
                id="blind-update",
            ),
            pytest.param(
                lambda: records.mutated(
                    Everything(id="e1", doc=_awkward_doc()),
                    lambda o: [o.doc.pop(name) for name in AWKWARD_NAMES],
                ),
                id="loaded-removes",
            ),
        ],
    )
    def test_update_uses_placeholders(self, make: Callable[[], Record]) -> None:
        """Names with dots, spaces, brackets or reserved words never appear in the expression."""
        (entry,) = make_plan([make()], "t_").entries
        params = entry.actions[0].body
        assert_placeholders_only(params)
        text = params["UpdateExpression"]
        for raw in AWKWARD_NAMES:
            assert raw not in text
        paths = {path for _, path, _ in records.read_update(params)}
        assert paths & {f"doc.{name}" for name in AWKWARD_NAMES}

    def test_update_round_trips_awkward_paths(self) -> None:
        """Resolving the placeholders gives back exactly the changed paths."""
        obj = Everything(id="e1", doc=_awkward_doc(), addresses=[Address(city="c")])
        (entry,) = make_plan([records.mutated(obj, _change_awkward)], "").entries
        assert {path for _, path, _ in records.read_update(entry.actions[0].body)} == {
            *(f"doc.{name}" for name in AWKWARD_NAMES),
            "count",
            "text",
            "addresses[0].street",
        }

    @pytest.mark.parametrize(
        ("make", "condition"),
        [
            pytest.param(lambda: records.new(_order()), "attribute_not_exists", id="new"),
            pytest.param(
                lambda: records.mutated(_order(), lambda o: setattr(o, "status", "paid")),
                "attribute_exists",
                id="loaded-update",
            ),
            pytest.param(
                lambda: records.blind(Order, "c1", "o1", Op("SET", ("status",), "paid")),
                "attribute_exists",
                id="blind-update",
            ),
        ],
    )
    def test_condition(self, make: Callable[[], Record], condition: str) -> None:
        """Creates require the key to be absent; updates require the item to exist."""
        (entry,) = make_plan([make()], "t_").entries
        params = entry.actions[0].body
        placeholder = next(
            k for k, v in params["ExpressionAttributeNames"].items() if v == "customer_id"
        )
        assert params["ConditionExpression"] == f"{condition}({placeholder})"
        assert_placeholders_only(params)

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: records.replace(_order()), id="replace"),
            pytest.param(lambda: records.deleted(Order, "c1", "o1"), id="delete"),
        ],
    )
    def test_plain_writes_are_unconditional(self, make: Callable[[], Record]) -> None:
        """Puts and deletes of unversioned models without unique fields carry no condition."""
        (entry,) = make_plan([make()], "t_").entries
        assert "ConditionExpression" not in entry.actions[0].body
        assert entry.batchable
