"""A compiled policy set changed in place of recompiled: what `CompiledPolicySet.updated` does.

A change (policies added, replaced or removed) costs what it touches, not what the set
holds: only the new policies are compiled; the children of a large set in id order (as a
store's is) are held in chunks (`Children`), so a change copies the chunks it touches and
the short tuple of chunks, not the set; the index changes only at the key values of the
policies that left or came (`CandidateIndex.updated`); so do the leaves. Everything else (the
other compiled policies, their shared results) is shared with the old set, which stays
whole for the decisions still running on it: a decision sees the old set or the new
one, never a mix.

When a change alters the shape of the index (a policy without a key comes or goes, a
key on a new attribute, an attribute left without policies, the set crossing the size
at which it is indexed), the index is built again from the compiled children: still no
policy is compiled again.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any, overload

from pbgm.decision.index import index_key


def changed_children(
    children: Sequence[Any],
    ordered: bool,
    nodes: Sequence[Any],
    removed: Iterable[str],
) -> tuple[Sequence[Any], list[Any]]:
    """(new children, the old children that left or were replaced).

    A node whose id is among the children's takes that child's place; another goes where
    id order puts it in an `ordered` set, else last (new ones in id order). Ids in
    `removed` that are not there are ignored. An ordered set of `CHUNKED_FROM` children
    or more comes back as `Children`, which the next change copies in part only."""
    replacing = {node.id: node for node in nodes}
    if len(replacing) != len(nodes):
        raise ValueError("a policy id appears twice among the changes")
    dropping = set(removed) - replacing.keys()
    if isinstance(children, Children):
        if len(replacing) + len(dropping) <= SPLICED_AT_MOST:
            return children.changed(replacing, dropping)
        merged, gone = _merged(tuple(children), replacing, dropping)
        return Children.of(merged), gone
    if not ordered:
        return _rebuilt(children, replacing, dropping)
    if len(replacing) + len(dropping) <= SPLICED_AT_MOST:
        new, gone = _spliced(children, replacing, dropping)
    else:
        new, gone = _merged(children, replacing, dropping)
    return (Children.of(new) if len(new) >= CHUNKED_FROM else new), gone


CHUNK = 512
"""Children per chunk of a `Children` (a chunk grows to twice this before it splits)."""
CHUNKED_FROM = 4 * CHUNK
"""Ordered sets of this many children or more are held in chunks once they change."""


class Children(Sequence[Any]):
    """The children of a set in id order, held in chunks of about `CHUNK`. A change
    (`changed`) copies the chunks it touches and the tuple of chunks: at 100,000
    policies, about a thousand references instead of two copies of the 100,000 (and
    the old set's tuple freed with them) under the interpreter lock, where every
    decision of the process waits. The sequence is immutable: the old one stays whole
    for the decisions still using it. Iteration and `len` are what the set reads; a
    position or a slice is read from a flat tuple made on first need."""

    __slots__ = ("_chunks", "_firsts", "_flat", "_size")

    def __init__(self, chunks: tuple[tuple[Any, ...], ...]) -> None:
        self._chunks = chunks
        self._firsts = tuple(chunk[0].id for chunk in chunks)
        self._size = sum(map(len, chunks))
        self._flat: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, children: Sequence[Any]) -> Children:
        """`children` (in id order) in chunks."""
        flat = tuple(children)
        return cls(tuple(flat[i : i + CHUNK] for i in range(0, len(flat), CHUNK)))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(self._chunks)

    @overload
    def __getitem__(self, at: int) -> Any: ...
    @overload
    def __getitem__(self, at: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, at: int | slice) -> Any:
        flat = self._flat
        if flat is None:
            flat = self._flat = tuple(self)
        return flat[at]

    def __repr__(self) -> str:
        return f"Children({len(self)} in {len(self._chunks)} chunks)"

    def changed(self, replacing: dict[str, Any], dropping: set[str]) -> tuple[Children, list[Any]]:
        """These children with `replacing` put in (in place of the child with the same
        id, else where id order puts them) and the ids in `dropping` taken out; and the
        children that left. Each id falls in the chunk whose first id is the greatest
        not above it (the first chunk for smaller ids), so chunks stay in order."""
        if not self._chunks:
            return Children.of(sorted(replacing.values(), key=_ID)), []
        edited: dict[int, list[Any]] = {}
        gone: list[Any] = []
        for policy_id in sorted(replacing.keys() | dropping):
            k = max(bisect_right(self._firsts, policy_id) - 1, 0)
            chunk = edited.get(k)
            if chunk is None:
                chunk = edited[k] = list(self._chunks[k])
            _put(chunk, policy_id, replacing, gone)
        chunks: list[tuple[Any, ...]] = []
        for k, chunk_ in enumerate(self._chunks):
            changed = edited.get(k)
            if changed is None:
                chunks.append(chunk_)
            elif len(changed) > 2 * CHUNK:
                chunks.extend(tuple(changed[i : i + CHUNK]) for i in range(0, len(changed), CHUNK))
            elif changed:
                chunks.append(tuple(changed))
        return Children(tuple(chunks)), gone


SPLICED_AT_MOST = 64
"""Up to this many changes, each is put in place in a copy of the children (a search
and at most a move of memory each); more are merged with the children in one pass."""

_ID = attrgetter("id")


def _spliced(
    children: Sequence[Any], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    """One copy of the children, changed in place from the highest id down (a change
    moves only what comes after it, which is done): the copy and the tuple made of it are
    the whole cost at 100,000 policies, no slice or id tuple copied besides."""
    new = list(children)
    gone: list[Any] = []
    for policy_id in sorted(replacing.keys() | dropping, reverse=True):
        _put(new, policy_id, replacing, gone)
    return tuple(new), gone


def _put(children: list[Any], policy_id: str, replacing: dict[str, Any], gone: list[Any]) -> None:
    """In `children` (a list in id order): the policy `policy_id` of `replacing` in place
    of the child with that id or where id order puts it, or that child taken out when
    `replacing` has none; the child that left goes to `gone`."""
    i = bisect_left(children, policy_id, key=_ID)
    if i < len(children) and children[i].id == policy_id:
        gone.append(children[i])
        if policy_id in replacing:
            children[i] = replacing[policy_id]
        else:
            del children[i]
    elif policy_id in replacing:
        children.insert(i, replacing[policy_id])


def _merged(
    children: Sequence[Any], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    """Many changes: the children that stay and the new ones, merged (two sorted runs,
    which `sorted` merges in one pass)."""
    changing = replacing.keys() | dropping
    kept = [child for child in children if child.id not in changing]
    gone = [child for child in children if child.id in changing]
    return tuple(sorted(kept + [replacing[p] for p in sorted(replacing)], key=_ID)), gone


def _rebuilt(
    children: Sequence[Any], replacing: dict[str, Any], dropping: set[str]
) -> tuple[tuple[Any, ...], list[Any]]:
    positions = {child.id: i for i, child in enumerate(children)}
    if len(positions) != len(children):
        raise ValueError("a policy set with repeated policy ids cannot be changed in place")
    new: list[Any] = list(children)
    gone: list[Any] = []
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
