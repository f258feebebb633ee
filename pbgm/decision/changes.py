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
from typing import Any

from pbgm.decision.index import index_key


def changed_children(
    children: tuple[Any, ...],
    ids: tuple[str, ...],
    ordered: bool,
    nodes: Sequence[Any],
    removed: Iterable[str],
) -> tuple[tuple[Any, ...], tuple[str, ...], list[Any]]:
    """(new children, their ids, the old children that left or were replaced).

    A node whose id is among `ids` takes that child's place; another goes where id
    order puts it in an `ordered` set, else last (new ones in id order). Ids in
    `removed` that are not there are ignored."""
    replacing = {node.id: node for node in nodes}
    if len(replacing) != len(nodes):
        raise ValueError("a policy id appears twice among the changes")
    dropping = set(removed) - replacing.keys()
    if ordered:
        return _spliced(children, ids, replacing, dropping)
    return _rebuilt(children, ids, replacing, dropping)


def _spliced(
    children: tuple[Any, ...],
    ids: tuple[str, ...],
    replacing: dict[str, Any],
    dropping: set[str],
) -> tuple[tuple[Any, ...], tuple[str, ...], list[Any]]:
    pieces: list[tuple[Any, ...]] = []
    id_pieces: list[tuple[str, ...]] = []
    gone = []
    at = 0
    for policy_id in sorted(replacing.keys() | dropping):
        i = bisect_left(ids, policy_id, at)
        pieces.append(children[at:i])
        id_pieces.append(ids[at:i])
        exists = i < len(ids) and ids[i] == policy_id
        if exists:
            gone.append(children[i])
        if policy_id in replacing:
            pieces.append((replacing[policy_id],))
            id_pieces.append((policy_id,))
        at = i + 1 if exists else i
    pieces.append(children[at:])
    id_pieces.append(ids[at:])
    return _joined(pieces), _joined(id_pieces), gone


def _joined(pieces: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The pieces as one tuple: copied by `list.extend`, as memory, not item by item."""
    joined: list[Any] = []
    for piece in pieces:
        joined += piece
    return tuple(joined)


def _rebuilt(
    children: tuple[Any, ...],
    ids: tuple[str, ...],
    replacing: dict[str, Any],
    dropping: set[str],
) -> tuple[tuple[Any, ...], tuple[str, ...], list[Any]]:
    positions = {policy_id: i for i, policy_id in enumerate(ids)}
    if len(positions) != len(ids):
        raise ValueError("a policy set with repeated policy ids cannot be changed in place")
    new: list[Any] = list(children)
    gone = []
    for policy_id in replacing.keys() | dropping:
        i = positions.get(policy_id)
        if i is not None:
            gone.append(new[i])
            new[i] = replacing.get(policy_id)
    appended = [replacing[p] for p in sorted(replacing) if p not in positions]
    kept = tuple(child for child in new if child is not None) + tuple(appended)
    return kept, tuple(child.id for child in kept), gone


def key_values(nodes: Iterable[Any]) -> set[Any]:
    """The values under which an index files these nodes."""
    values: set[Any] = set()
    for node in nodes:
        key = index_key(node.target_matches)
        if key is not None:
            values.update(key.values)
    return values
