"""Document paths, and the coalescing and validation of field operations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.models import Everything, Order, User
from uow import ValidationError
from uow.changes import Op, merge_op, parse_path, resolve_op
from uow.codec import Path, codec_for
from uow.model import info_of


def merged(*ops: Op) -> list[Op]:
    """The operations left after folding `ops` in order."""
    out: list[Op] = []
    for op in ops:
        merge_op(out, op)
    return out


def SET(path: Path, value: Any) -> Op:  # noqa: N802 - reads like the DynamoDB action it builds
    """A SET operation."""
    return Op("SET", path, value)


def REMOVE(path: Path) -> Op:  # noqa: N802 - reads like the DynamoDB action it builds
    """A REMOVE operation."""
    return Op("REMOVE", path)


def ADD(path: Path, value: Any) -> Op:  # noqa: N802 - reads like the DynamoDB action it builds
    """An ADD operation."""
    return Op("ADD", path, value)


def overlaps(a: Path, b: Path) -> bool:
    """True when one path is a prefix of (or equal to) the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


class TestParsePath:
    """`parse_path` turns `profile.address.city` or `tags[2]` into segments."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("name", ("name",), id="field"),
            pytest.param("profile.city", ("profile", "city"), id="map-key"),
            pytest.param("profile.address.city", ("profile", "address", "city"), id="deep"),
            pytest.param("tags[2]", ("tags", 2), id="index"),
            pytest.param("tags[10]", ("tags", 10), id="two-digit-index"),
            pytest.param("grid[0][1]", ("grid", 0, 1), id="two-indexes"),
            pytest.param("lines[0].sku", ("lines", 0, "sku"), id="key-after-index"),
            pytest.param("a.b[3].c", ("a", "b", 3, "c"), id="mixed"),
            pytest.param("profile.first name", ("profile", "first name"), id="space-in-key"),
            pytest.param("profile.café", ("profile", "café"), id="unicode"),
            pytest.param("profile.#x:y", ("profile", "#x:y"), id="placeholder-characters"),
        ],
    )
    def test_valid(self, text: str, expected: Path) -> None:
        """A well-formed path parses into its name and index segments."""
        assert parse_path(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param(".", id="dot"),
            pytest.param("a.", id="trailing-dot"),
            pytest.param(".a", id="leading-dot"),
            pytest.param("a..b", id="double-dot"),
            pytest.param("[0]", id="index-first"),
            pytest.param("a[", id="open-bracket"),
            pytest.param("a[]", id="empty-index"),
            pytest.param("a[x]", id="name-as-index"),
            pytest.param("a[-1]", id="negative-index"),
            pytest.param("a]", id="stray-bracket"),
            pytest.param("a[0]b", id="name-after-index-without-dot"),
            pytest.param("a.[0]", id="dot-before-index"),
            pytest.param("a[0].", id="trailing-dot-after-index"),
            pytest.param("a[1.5]", id="fractional-index"),
        ],
    )
    def test_malformed(self, text: str) -> None:
        """A malformed path raises `ValidationError` showing the path and the accepted forms."""
        with pytest.raises(ValidationError, match="malformed document path"):
            parse_path(text)


class TestMergeOp:
    """`merge_op` coalesces one record's operations in call order into non-overlapping paths."""

    @pytest.mark.parametrize(
        ("ops", "expected"),
        [
            pytest.param(
                [REMOVE(("name",)), SET(("name",), "a")],
                [SET(("name",), "a")],
                id="remove-then-set-is-set",
            ),
            pytest.param(
                [SET(("name",), "a"), REMOVE(("name",))],
                [REMOVE(("name",))],
                id="set-then-remove-is-remove",
            ),
            pytest.param(
                [SET(("name",), "a"), SET(("name",), "b")],
                [SET(("name",), "b")],
                id="last-set-wins",
            ),
            pytest.param(
                [SET(("profile",), {"a": 1}), SET(("profile", "x"), 2)],
                [SET(("profile",), {"a": 1, "x": 2})],
                id="set-below-set-is-folded",
            ),
            pytest.param(
                [SET(("profile",), {"a": {"b": 1}}), SET(("profile", "a", "b"), 2)],
                [SET(("profile",), {"a": {"b": 2}})],
                id="deep-set-below-set-is-folded",
            ),
            pytest.param(
                [SET(("profile",), {"a": 1, "x": 2}), REMOVE(("profile", "x"))],
                [SET(("profile",), {"a": 1})],
                id="remove-below-set-is-folded",
            ),
            pytest.param(
                [SET(("profile", "x"), 1), SET(("profile",), {"y": 2})],
                [SET(("profile",), {"y": 2})],
                id="set-above-set-keeps-only-the-outer",
            ),
            pytest.param(
                [SET(("profile", "x"), 1), SET(("profile", "y"), 2), REMOVE(("profile",))],
                [REMOVE(("profile",))],
                id="remove-above-sets-keeps-only-the-remove",
            ),
            pytest.param(
                [REMOVE(("profile",)), SET(("profile", "x"), 1)],
                [SET(("profile",), {"x": 1})],
                id="set-below-remove-is-a-new-map",
            ),
            pytest.param(
                [REMOVE(("profile",)), SET(("profile", "a", "b"), 1)],
                [SET(("profile",), {"a": {"b": 1}})],
                id="deep-set-below-remove-is-nested-new-maps",
            ),
            pytest.param(
                [REMOVE(("profile",)), REMOVE(("profile", "x"))],
                [REMOVE(("profile",))],
                id="remove-below-remove-is-dropped",
            ),
            pytest.param(
                [SET(("lines",), ["a"]), SET(("lines", 0), "b")],
                [SET(("lines",), ["b"])],
                id="set-index-below-set-list",
            ),
            pytest.param(
                [SET(("lines",), ["a"]), SET(("lines", 5), "b")],
                [SET(("lines",), ["a", "b"])],
                id="set-past-the-end-appends",
            ),
            pytest.param(
                [ADD(("score",), 2), ADD(("score",), 3)],
                [ADD(("score",), 5)],
                id="add-add-sums",
            ),
            pytest.param(
                [ADD(("tags",), {"a"}), ADD(("tags",), {"b"})],
                [ADD(("tags",), {"a", "b"})],
                id="add-add-unions-sets",
            ),
            pytest.param(
                [SET(("score",), 10), ADD(("score",), 3)],
                [SET(("score",), 13)],
                id="set-then-add-folds",
            ),
            pytest.param(
                [SET(("tags",), {"a"}), ADD(("tags",), {"b"})],
                [SET(("tags",), {"a", "b"})],
                id="set-then-add-folds-sets",
            ),
            pytest.param(
                [REMOVE(("score",)), ADD(("score",), 3)],
                [SET(("score",), 3)],
                id="remove-then-add-starts-from-nothing",
            ),
            pytest.param(
                [ADD(("score",), 3), SET(("score",), 1)],
                [SET(("score",), 1)],
                id="add-then-set-is-set",
            ),
            pytest.param(
                [ADD(("score",), 3), REMOVE(("score",))],
                [REMOVE(("score",))],
                id="add-then-remove-is-remove",
            ),
            pytest.param(
                [SET(("name",), "a"), SET(("email",), "e"), REMOVE(("name",))],
                [REMOVE(("name",)), SET(("email",), "e")],
                id="unrelated-paths-stay",
            ),
            pytest.param(
                [SET(("profile", "a"), 1), SET(("profile", "b"), 2)],
                [SET(("profile", "a"), 1), SET(("profile", "b"), 2)],
                id="sibling-paths-stay-apart",
            ),
        ],
    )
    def test_coalesces(self, ops: list[Op], expected: list[Op]) -> None:
        """A sequence of operations folds into the documented net operations."""
        assert merged(*ops) == expected

    @pytest.mark.parametrize(
        "ops",
        [
            pytest.param(
                [REMOVE(("lines",)), SET(("lines", 0), "a")], id="index-below-removed-list"
            ),
            pytest.param(
                [SET(("profile",), {}), SET(("profile", "a", "b"), 1)],
                id="missing-map-below-a-set",
            ),
            pytest.param(
                [SET(("profile",), {"a": 1}), SET(("profile", "a", "b"), 1)],
                id="key-below-a-number",
            ),
            pytest.param([ADD(("tags",), {"a"}), SET(("tags", 0), "b")], id="below-an-add"),
        ],
    )
    def test_refused(self, ops: list[Op]) -> None:
        """A path that cannot exist once the earlier operations apply raises `ValidationError`."""
        *before, last = ops
        out = merged(*before)
        kept = copy.deepcopy(out)
        with pytest.raises(ValidationError):
            merge_op(out, last)
        assert out == kept

    def test_folding_does_not_change_the_callers_value(self) -> None:
        """Folding into a pending SET copies its value instead of mutating the caller's dict."""
        profile: dict[str, Any] = {"a": {"b": 1}}
        merged(SET(("profile",), profile), SET(("profile", "a", "b"), 2))
        assert profile == {"a": {"b": 1}}


# -- property: no two resulting paths overlap, and the result means the same ---------------

# Paths of a small document: `profile` is a map of maps, `score` a counter, `tags` a set.
_MAP_PATHS: dict[Path, st.SearchStrategy[Any]] = {}
_leaf = st.integers(min_value=-5, max_value=5)
_MAP_PATHS[("profile", "a", "b")] = _leaf
_MAP_PATHS[("profile", "c")] = _leaf
_MAP_PATHS[("profile", "a")] = st.fixed_dictionaries({"b": _leaf})
_MAP_PATHS[("profile",)] = st.fixed_dictionaries(
    {"a": st.fixed_dictionaries({"b": _leaf}), "c": _leaf}
)
_MAP_PATHS[("name",)] = _leaf
_tag_sets = st.sets(st.sampled_from("xyz"), min_size=1)
_TOP_SETTABLE: dict[Path, st.SearchStrategy[Any]] = {("score",): _leaf, ("tags",): _tag_sets}
_SETTABLE = {**_MAP_PATHS, **_TOP_SETTABLE}

ops_strategy = st.one_of(
    st.sampled_from(sorted(_SETTABLE, key=str)).flatmap(
        lambda path: _SETTABLE[path].map(lambda value: SET(path, value))
    ),
    st.sampled_from(sorted(_SETTABLE, key=str)).map(REMOVE),
    _leaf.map(lambda n: ADD(("score",), n)),
    _tag_sets.map(lambda tags: ADD(("tags",), tags)),
)


def _initial_document() -> dict[Any, Any]:
    """The document every operation sequence starts from."""
    return {"profile": {"a": {"b": 0}, "c": 0}, "name": 0, "score": 0, "tags": {"x"}}


def apply_op(doc: dict[Any, Any], op: Op) -> None:
    """Apply one operation to a plain document, creating missing parent maps on SET."""
    *parents, last = op.path
    node = doc
    for segment in parents:
        child = node.get(segment) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            if op.action != "SET":
                return
            child = node[segment] = {}
        node = child
    if op.action == "SET":
        node[last] = copy.deepcopy(op.value)
    elif op.action == "REMOVE":
        node.pop(last, None)
    elif isinstance(op.value, set):
        node[last] = set(node.get(last) or ()) | op.value
    else:
        node[last] = (node.get(last) or 0) + op.value


class TestMergeOpProperties:
    """Properties of `merge_op` over arbitrary operation sequences."""

    @settings(max_examples=500, deadline=None)
    @given(st.lists(ops_strategy, max_size=12))
    def test_no_two_paths_overlap(self, ops: list[Op]) -> None:
        """However operations arrive, no resulting path is a prefix of another."""
        out: list[Op] = []
        for op in ops:
            try:
                merge_op(out, op)
            except ValidationError:
                continue
            paths = [o.path for o in out]
            for i, a in enumerate(paths):
                for b in paths[i + 1 :]:
                    assert not overlaps(a, b), (a, b)

    @settings(max_examples=500, deadline=None)
    @given(st.lists(ops_strategy, max_size=12))
    def test_same_effect_as_the_sequence(self, ops: list[Op]) -> None:
        """Applying the coalesced operations has the effect of applying each accepted one."""
        out: list[Op] = []
        sequential = _initial_document()
        for op in ops:
            before = copy.deepcopy(out)
            try:
                merge_op(out, op)
            except ValidationError:
                assert out == before  # a refused operation changes nothing
                continue
            apply_op(sequential, op)
        coalesced = _initial_document()
        for op in out:
            apply_op(coalesced, op)
        assert coalesced == sequential


class TestResolveOp:
    """`resolve_op` checks one operation against the model and normalises it."""

    USER = codec_for(User)
    USER_KEY = info_of(User).key_fields

    @pytest.mark.parametrize(
        ("op", "expected"),
        [
            pytest.param(SET(("name",), "Ann"), SET(("name",), "Ann"), id="set"),
            pytest.param(SET(("name",), None), REMOVE(("name",)), id="set-none-is-remove"),
            pytest.param(SET(("tags",), set()), REMOVE(("tags",)), id="set-empty-set-is-remove"),
            pytest.param(
                SET(("profile", "x"), None), SET(("profile", "x"), None), id="null-in-map-stays-set"
            ),
            pytest.param(SET(("profile", "a", "b"), 1), SET(("profile", "a", "b"), 1), id="deep"),
            pytest.param(REMOVE(("profile", "x")), REMOVE(("profile", "x")), id="remove"),
            pytest.param(ADD(("score",), 5), ADD(("score",), 5), id="add-number"),
            pytest.param(ADD(("tags",), frozenset({"a"})), ADD(("tags",), {"a"}), id="add-set"),
        ],
    )
    def test_accepted(self, op: Op, expected: Op) -> None:
        """A valid operation comes back normalised."""
        assert resolve_op(self.USER, self.USER_KEY, op) == expected

    @pytest.mark.parametrize(
        ("op", "match"),
        [
            pytest.param(SET(("user_id",), "u2"), r"User\.user_id is part of the key", id="pk"),
            pytest.param(REMOVE(("user_id",)), "part of the key", id="remove-pk"),
            pytest.param(SET(("nickname",), "x"), "User has no field 'nickname'", id="unknown"),
            pytest.param(REMOVE(("nickname",)), "has no field", id="remove-unknown"),
            pytest.param(SET(("name", "x"), "a"), "a str has no element", id="below-a-str"),
            pytest.param(SET(("tags", 0), "a"), "has no element", id="index-into-set"),
            pytest.param(ADD(("profile", "n"), 1), "ADD works on top-level fields", id="nested"),
            pytest.param(ADD(("score",), True), "ADD takes a number or a set", id="add-bool"),
            pytest.param(ADD(("score",), "1"), "ADD takes a number or a set", id="add-str"),
            pytest.param(ADD(("tags",), set()), "ADD of an empty set", id="add-empty-set"),
            pytest.param(ADD(("tags",), {1}), r"expected str in set\[str\]", id="add-wrong-set"),
            pytest.param(ADD(("name",), 1), "expected str", id="add-to-a-str"),
            pytest.param(SET(("score",), "1"), "expected int", id="wrong-type"),
            pytest.param(SET(("profile", "x"), set()), "an empty set", id="empty-set-in-map"),
            pytest.param(SET(("score",), float("nan")), "expected int", id="nan-in-int"),
        ],
    )
    def test_refused(self, op: Op, match: str) -> None:
        """An operation the model or DynamoDB cannot take raises `ValidationError`."""
        with pytest.raises(ValidationError, match=match):
            resolve_op(self.USER, self.USER_KEY, op)

    def test_sort_key_is_refused(self) -> None:
        """The sort key is part of the key too."""
        with pytest.raises(ValidationError, match=r"Order\.order_id is part of the key"):
            resolve_op(codec_for(Order), info_of(Order).key_fields, SET(("order_id",), "o2"))

    @pytest.mark.parametrize(
        ("op", "expected"),
        [
            pytest.param(
                SET(("address", "zip"), None),
                REMOVE(("address", "zip")),
                id="nested-attrs-field-none-is-remove",
            ),
            pytest.param(
                SET(("address", "codes"), set()),
                REMOVE(("address", "codes")),
                id="nested-attrs-empty-set-is-remove",
            ),
            pytest.param(
                SET(("addresses", 0, "city"), "Oslo"),
                SET(("addresses", 0, "city"), "Oslo"),
                id="attrs-in-list",
            ),
            pytest.param(SET(("words", 3), "w"), SET(("words", 3), "w"), id="list-index"),
        ],
    )
    def test_nested_paths(self, op: Op, expected: Op) -> None:
        """Paths into nested attrs classes and lists follow the declared types."""
        assert resolve_op(codec_for(Everything), ("id",), op) == expected

    @pytest.mark.parametrize(
        ("op", "match"),
        [
            pytest.param(SET(("ratio",), float("inf")), "not finite", id="non-finite"),
            pytest.param(SET(("address", "nowhere"), 1), "no element 'nowhere'", id="no-field"),
            pytest.param(SET(("words", "x"), "w"), "no element 'x'", id="key-into-list"),
            pytest.param(SET(("scores", 0), 1.0), "no element 0", id="index-into-map"),
            pytest.param(SET(("id",), "e2"), r"Everything\.id is part of the key", id="key"),
        ],
    )
    def test_nested_paths_refused(self, op: Op, match: str) -> None:
        """A path or value that does not fit the declared types raises `ValidationError`."""
        with pytest.raises(ValidationError, match=match):
            resolve_op(codec_for(Everything), ("id",), op)
