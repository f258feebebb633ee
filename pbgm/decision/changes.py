"""A compiled policy set changed in place of recompiled: what `CompiledPolicySet.updated` does.

A change (policies added, replaced or removed) costs what it touches, not what the set
holds: only the new policies are compiled; the children are the old tuple with the
changed ones swapped (slices copied as memory, no Python loop over the set when the set is
in id order, as a store's is); the index changes only at the key values of the policies
that left or came (`CandidateIndex.updated`); so do the leaves. Everything else (the
other compiled policies, their shared results) is shared with the old set, which stays
whole for the decisions still running on it: a decision sees the old set or the new
one, never a mix.

When a change alters the shape of the index (a policy without a key comes or goes, a
key on a new attribute, an attribute left without policies, the set crossing the size
at which it is indexed), the index is built again from the compiled children: still no
policy is compiled again.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from pbgm.decision.index import index_key


def changed_children(
    children: tuple[Any, ...],
    ordered: bool,
    nodes: Sequence[Any],
    removed: Iterable[str],
) -> tuple[tuple[Any, ...], list[Any]]:
    """(new children, the old children that left or were replaced).

    A node whose id is among the children's takes that child's place; another goes where
    id order puts it in an `ordered` set, else last (new ones in id order). Ids in
    `removed` that are not there are ignored."""
    replacing = {node.id: node for node in nodes}
    if len(replacing) != len(nodes):
        raise ValueError("a policy id appears twice among the changes")
    dropping = set(removed) - replacing.keys()
    if not ordered:
        return _rebuilt(children, replacing, dropping)
    if len(replacing) + len(dropping) <= SPLICED_AT_MOST:
        return _spliced(children, replacing, dropping)
    return _merged(children, replacing, dropping)


SPLICED_AT_MOST = 64
"""Up to this many changes, each is put in place in a copy of the children (a search
and at most a move of memory each); more are merged with the children in one pass."""

_ID = attrgetter("id")


def _spliced(
    children: tuple[Any, ...], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    """One copy of the children, changed in place from the highest id down (a change
    moves only what comes after it, which is done): the copy and the tuple made of it are
    the whole cost at 100,000 policies, no slice or id tuple copied besides."""
    new = list(children)
    gone = []
    for policy_id in sorted(replacing.keys() | dropping, reverse=True):
        i = bisect_left(new, policy_id, key=_ID)
        if i < len(new) and new[i].id == policy_id:
            gone.append(new[i])
            if policy_id in replacing:
                new[i] = replacing[policy_id]
            else:
                del new[i]
        elif policy_id in replacing:
            new.insert(i, replacing[policy_id])
    return tuple(new), gone


def _merged(
    children: tuple[Any, ...], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    """Many changes: the children that stay and the new ones, merged (two sorted runs,
    which `sorted` merges in one pass)."""
    changing = replacing.keys() | dropping
    kept = [child for child in children if child.id not in changing]
    gone = [child for child in children if child.id in changing]
    return tuple(sorted(kept + [replacing[p] for p in sorted(replacing)], key=_ID)), gone


def _rebuilt(
    children: tuple[Any, ...], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    positions = {child.id: i for i, child in enumerate(children)}
    if len(positions) != len(children):
        raise ValueError("a policy set with repeated policy ids cannot be changed in place")
    new: list[Any] = list(children)
    gone = []
    for policy_id in replacing.keys() | dropping:
        i = positions.get(policy_id)
        if i is not None:
            gone.append(new[i])
            new[i] = replacing.get(policy_id)
    appended = [replacing[p] for p in sorted(replacing) if p not in positions]
    return tuple(child for child in new if child is not None) + tuple(appended), gone


def key_values(nodes: Iterable[Any]) -> set[Any]:
    """The values under which an index files these nodes."""
    values: set[Any] = set()
    for node in nodes:
        key = index_key(node.target_matches)
        if key is not None:
            values.update(key.values)
    return values
