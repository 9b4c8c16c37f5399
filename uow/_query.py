"""Query and Scan parameters from `boto3.dynamodb.conditions` objects.

Condition objects (`Key("status").eq("open") & Key("created_at").gt(t)`,
`Attr("score").gte(10)`) are rendered by boto3's own expression builder, which
uses `#name`/`:value` placeholders; their Python values are encoded with
uow's codec (as `Any` values: str, numbers, bytes, bool, lists, maps, sets,
enums, aware datetimes).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

from uow.codec import ANY
from uow.errors import ValidationError
from uow.model import ModelInfo

__all__ = ["read_params"]


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: ANY.encode_element(value, (name,)) for name, value in values.items()}


def read_params(
    info: ModelInfo,
    table: str,
    *,
    key_condition: ConditionBase | None,
    filter: ConditionBase | None,
    index: str | None,
    reverse: bool = False,
) -> dict[str, Any]:
    """The parameters of a `Query` (with `key_condition`) or a `Scan` (without).

    Base-table reads are strongly consistent, like `get`; index reads cannot be.

    Raises:
        ValidationError: an unknown index, or a condition that is not a
            `boto3.dynamodb.conditions` object.
    """
    params: dict[str, Any] = {"TableName": table}
    if index is not None:
        if index not in info.indexes:
            known = ", ".join(sorted(info.indexes)) or "none"
            raise ValidationError(f"{info.name} has no index {index!r} (indexes: {known})")
        params["IndexName"] = index
    else:
        params["ConsistentRead"] = True
    builder = ConditionExpressionBuilder()
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for parameter, condition, is_key in (
        ("KeyConditionExpression", key_condition, True),
        ("FilterExpression", filter, False),
    ):
        if condition is None:
            continue
        if not isinstance(condition, ConditionBase):
            raise ValidationError(
                f"{parameter}: expected a boto3.dynamodb.conditions object such as "
                f"Key('pk').eq(...) or Attr('x').gt(...), got {type(condition).__name__}"
            )
        built = builder.build_expression(condition, is_key_condition=is_key)
        params[parameter] = built.condition_expression
        names.update(built.attribute_name_placeholders)
        values.update(_values(built.attribute_value_placeholders))
    if names:
        params["ExpressionAttributeNames"] = names
    if values:
        params["ExpressionAttributeValues"] = values
    if reverse:
        params["ScanIndexForward"] = False
    return params
