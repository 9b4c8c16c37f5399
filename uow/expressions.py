"""Update and condition expressions, always written with `#name`/`:value` placeholders.

No attribute name or value is ever spliced into expression text, so any
character a name holds (dots, spaces, reserved words) reaches DynamoDB intact.
"""

from __future__ import annotations

from typing import Any

from uow.codec import AttributeValue, Path

__all__ = ["ExpressionBuilder"]


class ExpressionBuilder:
    """Collects placeholders for one request's expressions."""

    __slots__ = ("_by_name", "values")

    def __init__(self) -> None:
        self.values: dict[str, AttributeValue] = {}
        self._by_name: dict[str, str] = {}

    @property
    def names(self) -> dict[str, str]:
        """Placeholder → attribute name."""
        return {placeholder: name for name, placeholder in self._by_name.items()}

    def name(self, name: str) -> str:
        """The placeholder of an attribute name (one per distinct name)."""
        by_name = self._by_name
        placeholder = by_name.get(name)
        if placeholder is None:
            placeholder = by_name[name] = f"#n{len(by_name)}"
        return placeholder

    def path(self, path: Path) -> str:
        """`#n0.#n1[2]` for `("profile", "tags", 2)`."""
        if len(path) == 1:
            return self.name(str(path[0]))
        out = []
        for segment in path:
            if isinstance(segment, int):
                out.append(f"[{segment}]")
            else:
                out.append(("." if out else "") + self.name(segment))
        return "".join(out)

    def value(self, av: AttributeValue) -> str:
        """The placeholder of a value (one per occurrence)."""
        values = self.values
        placeholder = f":v{len(values)}"
        values[placeholder] = av
        return placeholder

    def update(
        self,
        sets: list[tuple[Path, AttributeValue]],
        removes: list[Path],
        adds: list[tuple[Path, AttributeValue]],
    ) -> str:
        """An UpdateExpression: `SET a = :v0, b.c = :v1 REMOVE d ADD e :v2`."""
        path = self.path
        value = self.value
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join([f"{path(p)} = {value(v)}" for p, v in sets]))
        if removes:
            clauses.append("REMOVE " + ", ".join([path(p) for p in removes]))
        if adds:
            clauses.append("ADD " + ", ".join([f"{path(p)} {value(v)}" for p, v in adds]))
        return " ".join(clauses)

    def exists(self, attribute: str) -> str:
        return f"attribute_exists({self.name(attribute)})"

    def not_exists(self, attribute: str) -> str:
        return f"attribute_not_exists({self.name(attribute)})"

    def params(self) -> dict[str, Any]:
        """The `ExpressionAttributeNames`/`Values` request parameters."""
        out: dict[str, Any] = {}
        if self._by_name:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out
