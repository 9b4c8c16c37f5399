"""User conditions on writes (`condition=`, `Session.expect`, `Session.check`), rendered
for DynamoDB and ANDed with uow's own (existence, version, create-only).

A condition is a `boto3.dynamodb.conditions` object (`Attr("qty").gte(2)`). boto3's
builder renders it with `#n0`/`:v0` placeholders, the names uow's own expressions use,
so a user condition's placeholders are renamed `#u0`/`:u0` before the two are joined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs
from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

from uow.codec import ANY
from uow.errors import ValidationError
from uow.identity import Key
from uow.model import ModelInfo

__all__ = ["Check", "add_to", "checked", "render"]

_PLACEHOLDER = re.compile(r"([#:])(n|v)(\d+)")


def checked(condition: Any, call: str) -> ConditionBase:
    """`condition` if DynamoDB can evaluate it on a stored item.

    Raises:
        ValidationError: not a `boto3.dynamodb.conditions` object, or one that
            cannot be rendered (a `Key(...)` condition, an unsupported value).
    """
    if not isinstance(condition, ConditionBase):
        raise ValidationError(
            f"{call}: condition= takes a boto3.dynamodb.conditions object such as "
            f"Attr('qty').gte(2), got {type(condition).__name__}"
        )
    try:
        render([condition])
    except ValidationError as exc:
        raise ValidationError(f"{call}: {exc}") from exc
    except Exception as exc:  # boto3's builder says what it cannot render
        raise ValidationError(f"{call}: the condition cannot be rendered: {exc}") from exc
    return condition


def render(conditions: Sequence[ConditionBase]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The conditions ANDed into one expression, with `#u`/`:u` placeholders.

    Returns:
        The expression, its attribute names and its encoded attribute values.

    Raises:
        ValidationError: a value the codec cannot encode.
    """
    builder = ConditionExpressionBuilder()
    parts = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for condition in conditions:
        built = builder.build_expression(condition, is_key_condition=False)
        parts.append(_renamed(built.condition_expression))
        for placeholder, name in built.attribute_name_placeholders.items():
            names[_renamed(placeholder)] = name
        for placeholder, value in built.attribute_value_placeholders.items():
            values[_renamed(placeholder)] = ANY.encode_element(value, (placeholder,))
    text = parts[0] if len(parts) == 1 else " AND ".join(f"({part})" for part in parts)
    return text, names, values


def _renamed(text: str) -> str:
    return _PLACEHOLDER.sub(lambda match: f"{match.group(1)}u{match.group(3)}", text)


def add_to(body: dict[str, Any], conditions: Sequence[ConditionBase]) -> None:
    """AND `conditions` into a request body's own `ConditionExpression` (in place)."""
    text, names, values = render(conditions)
    own = body.get("ConditionExpression")
    body["ConditionExpression"] = f"({own}) AND ({text})" if own else text
    if names:
        body["ExpressionAttributeNames"] = {**body.get("ExpressionAttributeNames", {}), **names}
    if values:
        body["ExpressionAttributeValues"] = {**body.get("ExpressionAttributeValues", {}), **values}


@attrs.frozen(slots=True)
class Check:
    """A `ConditionCheck` on an item that the commit does not write (`Session.check`)."""

    info: ModelInfo
    key: Key
    condition: ConditionBase = attrs.field(eq=False)
