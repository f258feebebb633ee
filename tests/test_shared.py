"""`pbgm.decision.shared.shared`: one compiled part per key, in a bounded cache."""

from __future__ import annotations

from pbgm.decision.shared import CACHE_SIZE, shared


def test_a_part_is_built_once_per_key_and_handed_out_again():
    cache: dict[str, object] = {}
    built: list[str] = []

    def build(key: str) -> object:
        built.append(key)
        return object()

    first = shared(cache, "a", lambda: build("a"))
    assert shared(cache, "a", lambda: build("a")) is first
    assert shared(cache, "b", lambda: build("b")) is not first
    assert built == ["a", "b"]


def test_a_full_cache_is_emptied_so_it_stays_bounded():
    cache: dict[int, int] = {}
    for key in range(CACHE_SIZE + 10):
        assert shared(cache, key, lambda k=key: k * 2) == key * 2
    assert len(cache) == 10
