"""Request ids the API makes: 32 hex digits, never the same twice, even across the
forked workers of `pbgm serve` (the prefix is drawn again in a forked child)."""

from __future__ import annotations

import os

from pbgm.api._observe import _new_id


def test_made_ids_are_hex_and_distinct() -> None:
    made = [_new_id() for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    parent = _new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without pytest's teardown
        os.write(write, _new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child[:16] != parent[:16]  # a counter alone would repeat the parent's next id
    assert _new_id()[:16] == parent[:16]
