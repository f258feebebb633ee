"""Compiled parts shared between policies.

Large policy sets repeat a few conditions, matches and layouts many times over (every
grant tests `action.id`, most read rules the same groups). The compilers keep one object
for each distinct such part in a module-level cache, so that 100,000 policies hold a
handful of closures rather than 100,000. `shared` is that cache's one rule: get the
part kept for a key, or build and keep it; a full cache is emptied, which bounds it
(the parts already handed out stay valid, only later ones are built again).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

CACHE_SIZE = 4096

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def shared(cache: dict[K, V], key: K, build: Callable[[], V]) -> V:
    """The part kept in `cache` for `key`, built by `build` on first use."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        value = cache[key] = build()
    return value
