"""Target matching and the candidate index of the decision point.

Matching: a `Match` holds when any request value of its attribute (a scalar or
a bag) is among its values; a missing (or null) attribute does not match.
A value that cannot equal a literal (a mapping, a list inside a bag) simply does
not match, so targets never fail. Booleans are not numbers: `true` does not
match `1`.

The index maps the values of each child's most selective match (its *key*) to
the children that match may select. When every keyed child uses the same
attribute and few children have no key, the index is *single*: one map from a
value straight to the ready tuple of candidates, in their original order. A
string request value found there has matched the key of every keyed candidate
(a string equals only strings), so those candidates need to check only the rest
of their target (`rest_target`): the skip the specialised paths of the
evaluator take.

The tables are persistent maps (`immutables.Map`, a hash array mapped trie): a change
makes a new table that shares all but the path to each changed entry with the old one,
which stays whole for the decisions still using it. A change among 100,000 policies
therefore costs microseconds, where a copy of a dict of 100,000 entries held the
interpreter for milliseconds (every decision of the process waited for it); a lookup
costs about 40 ns more than a dict's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from immutables import Map

from pbgm.decision.shared import shared
from pbgm.functions import BAG_TYPES
from pbgm.model import CATEGORIES, Match, Request, Target, other_bag

PREFERRED_KEYS = ("resource.id", "resource.policy_id", "resource.asset_id")
"""Index keys tried first: they usually select one policy among many."""
_PREFERRED = tuple(tuple(path.split(".", 1)) for path in PREFERRED_KEYS)

MAX_MERGED = 4
"""A single index merges at most this many unkeyed children into every entry."""

Predicate = Callable[[Request], bool]

_GETTERS = {category: attrgetter(category) for category in CATEGORIES}


def bag_getter(category: str) -> Callable[[Request], Any]:
    """`attrgetter(category)`, one shared per category: `bag_getter("subject")(request)`
    is the request's subject attributes. A category beyond the four (a XACML category id)
    is read from an `ExtendedRequest`'s `others`."""
    getter = _GETTERS.get(category)
    if getter is not None:
        return getter
    return lambda request: other_bag(request, category)


# --- matching --------------------------------------------------------------------


def _needs_strict(values: frozenset[Any]) -> bool:
    """Python says `True == 1`; only sets holding booleans, 0 or 1 need the slow check."""
    return any(type(v) is bool or (type(v) in (int, float) and v in (0, 1)) for v in values)


def _holds_one(values: frozenset[Any], item: Any, strict: bool) -> bool:
    try:
        if item not in values:
            return False
    except TypeError:  # unhashable: equals no literal
        return False
    return not strict or any(
        v == item and (type(v) is bool) is (type(item) is bool) for v in values
    )


def _any_holds(values: frozenset[Any], bag: Any, strict: bool) -> bool:
    return any(_holds_one(values, item, strict) for item in bag)


def compile_match(match: Match) -> Predicate:
    """A predicate for one match (see the module docstring)."""
    get_bag, name, values = bag_getter(match.category), match.name, match.values
    strict = _needs_strict(values)

    def holds(request: Request) -> bool:
        value = get_bag(request).get(name)
        if value.__class__ is str:  # the common case: a string equals only strings
            return value in values
        if value is None:
            return False
        if isinstance(value, BAG_TYPES):
            return _any_holds(values, value, strict)
        if strict:
            return _holds_one(values, value, strict)
        try:
            return value in values
        except TypeError:  # unhashable: equals no literal
            return False

    return holds


def compile_target(target: Target) -> Predicate | None:
    """A predicate for the target, or None for the empty target (always matches)."""
    return _conjunction([shared_match(m) for m in target.matches])


def _conjunction(matchers: Sequence[Predicate]) -> Predicate | None:
    if not matchers:
        return None
    if len(matchers) == 1:
        return matchers[0]
    every = tuple(matchers)

    def holds(request: Request) -> bool:
        for matcher in every:  # noqa: SIM110 - a loop beats all() on the hot path
            if not matcher(request):
                return False
        return True

    return holds


_matches: dict[tuple[str, str, frozenset[Any]], Predicate] = {}


def shared_match(match: Match) -> Predicate:
    """`compile_match`, one closure for equal matches on strings (rules repeat
    `action.id` matches many times); other values never share (`true` equals `1`)."""
    values = match.values
    if values.__class__ is not frozenset or not all(v.__class__ is str for v in values):
        return compile_match(match)
    return shared(_matches, (match.category, match.name, values), lambda: compile_match(match))


def index_key(matches: Sequence[Match]) -> Match | None:
    """The match to index a target by: a preferred id, else the fewest values."""
    if len(matches) <= 1:
        return matches[0] if matches else None
    for category, name in _PREFERRED:
        for match in matches:
            if match.name == name and match.category == category:
                return match
    return min(matches, key=lambda m: len(m.values))


def rest_target(matches: Sequence[Match]) -> Predicate | None:
    """The target without its index key: what a candidate found by its key still checks."""
    key = index_key(matches)
    return _conjunction([shared_match(m) for m in matches if m is not key])


def target_and_rest(matches: Sequence[Match]) -> tuple[Predicate | None, Predicate | None]:
    """The predicates of the whole target and of its `rest_target`, sharing matchers."""
    key = index_key(matches)
    compiled = [(m is key, shared_match(m)) for m in matches]
    return _conjunction([f for _, f in compiled]), _conjunction([f for k, f in compiled if not k])


# --- the index ---------------------------------------------------------------------


class CandidateIndex:
    """Maps attribute values to the children whose target may match them.

    `candidates` returns a superset of the matching children (distinct objects)
    in their original order (first-applicable and only-one-applicable depend on
    it); each candidate still checks its whole target. `single` is set when the index is
    single (see the module docstring): `(bag, name, table, unkeyed)`, where
    `table.get(value, unkeyed)` are the candidates of a string `value`.

    `ordered` says that the children's ids increase strictly (a store's policies, in id
    order): the order of candidates is then their id order, and `updated` keeps it
    without knowing positions.
    """

    __slots__ = ("_always", "_children", "_order", "_paths", "_tables", "ordered", "single")

    def __init__(
        self,
        children: Sequence[Any],
        targets: Sequence[Sequence[Match]],
        *,
        ordered: bool = False,
    ) -> None:
        self._children: Sequence[Any] = tuple(children)
        self._order: dict[int, int] | None = None
        self.ordered = ordered
        always: list[int] = []
        tables: dict[tuple[str, str], dict[Any, list[int]]] = {}
        for position, matches in enumerate(targets):
            key = matches[0] if len(matches) == 1 else index_key(matches)
            if key is None:
                always.append(position)
                continue
            table = tables.get((key.category, key.name))
            if table is None:
                table = tables[key.category, key.name] = {}
            for value in key.values:
                found = table.get(value)
                if found is None:
                    table[value] = [position]
                else:
                    found.append(position)
        self._always = self._pick(always)
        self._paths = tuple(tables)
        self.single: tuple[Callable[[Request], Any], str, Table, tuple[Any, ...]] | None
        self.single = None
        if len(tables) == 1 and len(always) <= MAX_MERGED:
            ((category, name), table), *_ = tables.items()
            if always:
                table = {value: sorted({*p, *always}) for value, p in table.items()}
            self.single = (bag_getter(category), name, self._entries(table), self._always)
            tables = {}
        self._tables = tuple(
            (bag_getter(category), name, self._entries(table))
            for (category, name), table in tables.items()
        )

    def _pick(self, positions: Sequence[int]) -> tuple[Any, ...]:
        return tuple(self._children[p] for p in positions)

    def _entries(self, table: dict[Any, list[int]]) -> Table:
        """The table with positions turned into children (most entries hold one)."""
        children = self._children
        return Map(
            (value, (children[p[0]],) if len(p) == 1 else self._pick(p))
            for value, p in table.items()
        )

    def candidates(self, request: Request) -> Sequence[Any]:
        single = self.single
        if single is not None:
            get_bag, name, table, unkeyed = single
            value = get_bag(request).get(name)
            if value is None:
                return unkeyed
            if not isinstance(value, BAG_TYPES):
                try:
                    return table.get(value, unkeyed)
                except TypeError:  # unhashable: equals no literal
                    return unkeyed
            return self._merge(_hits(table, value), unkeyed)
        found: list[tuple[Any, ...]] = []
        for get_bag, name, table in self._tables:
            value = get_bag(request).get(name)
            if value is not None:
                found += _hits(table, value)
        return self._merge(found, self._always)

    def _merge(self, found: list[tuple[Any, ...]], always: tuple[Any, ...]) -> Sequence[Any]:
        """The union of the hits and the unkeyed children, in the original order
        (the entries of a single index already hold the unkeyed children)."""
        if not found:
            return always
        if len(found) == 1 and (not always or self.single is not None):
            return found[0]
        chosen = {id(c): c for hit in (*found, always) for c in hit}
        if self.ordered:
            return sorted(chosen.values(), key=_ID)
        order = self._order
        if order is None:  # built on first need: bags of keys are rare
            order = self._order = {id(c): p for p, c in enumerate(self._children)}
        return [chosen[i] for i in sorted(chosen, key=order.__getitem__)]

    # --- incremental updates -----------------------------------------------------------

    def updated(
        self,
        children: Sequence[Any],
        removed: Sequence[Any],
        added: Sequence[Any],
        *,
        ordered: bool,
    ) -> CandidateIndex | None:
        """The index of `children`, which are this index's children with `removed`
        taken out and `added` put in (`ordered` as in the constructor): only the
        entries of their key values change, in copies (this index stays as it was for
        the decisions still using it). None
        when the change would alter the index's shape (a child without a key, a key on
        another attribute, an attribute left without children): build a new one then."""
        gone, new = self._changes(removed), self._changes(added)
        if gone is None or new is None:
            return None
        index = object.__new__(CandidateIndex)
        # in id order the candidates are ranked by id: the children are not read again,
        # so a chunked sequence (`pbgm.decision.changes.Children`) is kept as it is
        index._children = children if ordered else tuple(children)
        index._order, index.ordered = None, ordered
        index._always, index._paths = self._always, self._paths
        rank = index._rank()
        if self.single is not None:
            bag, name, table, always = self.single
            table = _changed(table, gone, new, rank, always)
            index.single, index._tables = (bag, name, table, always), ()
            return index if table else None
        tables = list(self._tables)
        for slot in {slot for _, slot, _ in (*gone, *new)}:
            bag, name, table = tables[slot]
            mine = [c for c in gone if c[1] == slot], [c for c in new if c[1] == slot]
            table = _changed(table, *mine, rank, ())
            if not table:
                return None
            tables[slot] = (bag, name, table)
        index.single, index._tables = None, tuple(tables)
        return index

    def _changes(self, nodes: Sequence[Any]) -> list[Change] | None:
        """(node, table slot, key values) of each node; None if one has no key or a key
        on an attribute the index has no table for."""
        changes = []
        for node in nodes:
            key = index_key(node.target_matches)
            if key is None or (key.category, key.name) not in self._paths:
                return None
            changes.append((node, self._paths.index((key.category, key.name)), key.values))
        return changes

    def _rank(self) -> Callable[[Any], Any]:
        """How candidates are ordered: by id when `ordered`, else by position."""
        if self.ordered:
            return _ID
        positions: dict[int, int] = {}

        def position(child: Any) -> int:
            if not positions:  # built only when an entry holds several candidates
                positions.update((id(c), p) for p, c in enumerate(self._children))
            return positions[id(child)]

        return position


_ID = attrgetter("id")
Change = tuple[Any, int, frozenset[Any]]
Table = Map[Any, tuple[Any, ...]]
"""An index table: a key value to its candidates (module docstring)."""


def _changed(
    table: Table,
    removed: Sequence[Change],
    added: Sequence[Change],
    rank: Callable[[Any], Any],
    always: tuple[Any, ...],
) -> Table:
    """`table` without the `removed` children and with the `added` ones, each entry in
    `rank` order (a new map: `table` is left as it was); entries of a single index also
    hold the unkeyed `always`."""
    with table.mutate() as changing:
        for node, _, values in removed:
            for value in values:
                entry = tuple(c for c in changing.get(value, ()) if c is not node)
                if entry and entry != always:
                    changing[value] = entry
                else:
                    changing.pop(value, None)
        for node, _, values in added:
            for value in values:
                entry = changing.get(value, always)
                changing[value] = tuple(sorted((*entry, node), key=rank)) if entry else (node,)
        changed: Table = changing.finish()
    return changed


def _hits(table: Table, bag: Any) -> list[Any]:
    """The entries of `table` for every value of a bag (or a scalar)."""
    found = []
    for item in bag if isinstance(bag, BAG_TYPES) else (bag,):
        try:
            hit = table.get(item)
        except TypeError:  # unhashable: equals no literal
            continue
        if hit is not None:
            found.append(hit)
    return found
