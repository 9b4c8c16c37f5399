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

    __slots__ = ("_by_name", "names", "values")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}
        self._by_name: dict[str, str] = {}

    def name(self, name: str) -> str:
        """The placeholder of an attribute name (one per distinct name)."""
        placeholder = self._by_name.get(name)
        if placeholder is None:
            placeholder = f"#n{len(self._by_name)}"
            self._by_name[name] = placeholder
            self.names[placeholder] = name
        return placeholder

    def path(self, path: Path) -> str:
        """`#n0.#n1[2]` for `("profile", "tags", 2)`."""
        out = []
        for segment in path:
            if isinstance(segment, int):
                out.append(f"[{segment}]")
            else:
                out.append(("." if out else "") + self.name(segment))
        return "".join(out)

    def value(self, av: AttributeValue) -> str:
        """The placeholder of a value (one per occurrence)."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = av
        return placeholder

    def update(
        self,
        sets: list[tuple[Path, AttributeValue]],
        removes: list[Path],
        adds: list[tuple[Path, AttributeValue]],
    ) -> str:
        """An UpdateExpression: `SET a = :v0, b.c = :v1 REMOVE d ADD e :v2`."""
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(f"{self.path(p)} = {self.value(v)}" for p, v in sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(self.path(p) for p in removes))
        if adds:
            clauses.append("ADD " + ", ".join(f"{self.path(p)} {self.value(v)}" for p, v in adds))
        return " ".join(clauses)

    def exists(self, attribute: str) -> str:
        return f"attribute_exists({self.name(attribute)})"

    def not_exists(self, attribute: str) -> str:
        return f"attribute_not_exists({self.name(attribute)})"

    def params(self) -> dict[str, Any]:
        """The `ExpressionAttributeNames`/`Values` request parameters."""
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out
