"""The `jsonschema_rs` twin of each policy schema (`pbgm.policy.schema`): it only says
"valid" where `jsonschema` finds no problem, so validation reports exactly what it
reported with `jsonschema` alone, and a valid document is not checked twice."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pbgm.policy import schema
from pbgm.policy.documents import load_file
from pbgm.policy.validate import problems_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies" / "policies"
DOCUMENTS = [load_file(path) for path in sorted(EXAMPLES.iterdir())]


@contextmanager
def jsonschema_alone() -> Iterator[None]:
    """Validation as it was before the twins: every schema checked by `jsonschema`."""
    saved = dict(schema._FAST)
    schema._FAST.clear()
    try:
        yield
    finally:
        schema._FAST.update(saved)


def slow_problems(doc: Any) -> list[Any]:
    with jsonschema_alone():
        return problems_of(doc)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[d["id"] for d in DOCUMENTS])
def test_a_valid_example_is_not_checked_again_by_jsonschema(doc, monkeypatch):
    assert problems_of(doc) == []
    assert schema._FAST, "the twins are built with the validators"

    def refuse(self, instance):
        raise AssertionError("jsonschema ran on a document its twin accepted")

    monkeypatch.setattr(Draft202012Validator, "iter_errors", refuse)
    assert problems_of(copy.deepcopy(doc)) == []


EDGE_VALUES = [
    None, True, False, 0, 1, -1, 1.0, 2.5, 10**20, -(10**30), "", "x", "abc\n", "a b",
    "https://example.com/x", "ftp://x", "not a uri", "2026-01-01T00:00:00Z",
    "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "10.0.0.1", "::1", "/data/#", "a/+/b",
    "#/x", "Permit", "Deny", "deny-overrides", "read", "team-1", [], [1, 1.0], ["a", "a"],
    ["a", "b"], {}, {"attr": "subject.groups"}, {"apply": "not", "args": [True]},
]  # fmt: skip


def paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a document: keys of objects and indexes of lists."""
    yield here
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*here, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*here, i))


def mutated(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value if how == "set" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "set":
        parent[last] = value
    elif how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "delete":
        parent.pop(last)
    elif how == "add" and isinstance(parent, dict):
        parent[f"extra_{last}"] = value
    elif how == "add":
        parent.append(value)
    return doc


@st.composite
def mutations(draw: st.DrawFn) -> Any:
    doc = draw(st.sampled_from(DOCUMENTS))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(doc))))
        how = draw(st.sampled_from(["set", "set", "delete", "add"]))
        value = draw(st.sampled_from(EDGE_VALUES) | st.text(max_size=6) | st.integers())
        doc = mutated(doc, path, how, value)
    return doc


@settings(max_examples=400, deadline=None)
@given(mutations())
def test_a_mutated_document_has_the_problems_jsonschema_alone_finds(doc):
    assert problems_of(doc) == slow_problems(doc)


@pytest.mark.parametrize("policy_id", ["limits\n", "limits-01\n", "bad id", "ok-id"])
def test_ids_with_a_final_newline_are_judged_as_jsonschema_judges_them(policy_id):
    """Python's `$` matches before a final newline and Rust's does not: where the twin
    refuses, `jsonschema` has the last word, so nothing changes either way."""
    doc = {**DOCUMENTS[0], "id": policy_id}
    assert problems_of(doc) == slow_problems(doc)


def test_a_value_the_twin_cannot_read_falls_back_to_jsonschema():
    doc = {**DOCUMENTS[0], "description": object()}
    assert problems_of(doc) == slow_problems(doc) != []
