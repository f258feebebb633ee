"""Reading untrusted documents: what is refused, with which code, and what comes back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.errors import InvalidInputError
from pbgm.policy.documents import (
    MAX_DEPTH,
    canonical_json,
    config_data,
    load_document,
    load_file,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("what_is_refused", "data", "kwargs", "code", "in_message"),
    [
        (
            "input over the byte limit",
            b"[" + b"1," * 60 + b"1]",
            {"max_bytes": 100},
            "document_too_large",
            "100 bytes",
        ),
        (
            "a str over the byte limit counted in UTF-8",
            '"' + "é" * 60 + '"',
            {"max_bytes": 100},
            "document_too_large",
            "100 bytes",
        ),
        ("bytes that are not UTF-8", b'{"a": "\xff"}', {}, "invalid_encoding", "byte 7"),
        ("a JSON syntax error", '{"a": 1,\n "b": }', {}, "malformed_document", "line 2, column 7"),
        ("trailing garbage after JSON", '{"a": 1} x', {}, "malformed_document", "line 1"),
        ("NaN, which JSON does not have", '{"a": NaN}', {}, "malformed_document", "`NaN`"),
        ("Infinity", "[Infinity]", {}, "malformed_document", "`Infinity`"),
        ("a duplicate key in JSON", '{"a": 1, "b": {"c": 1, "c": 2}}', {}, "duplicate_key", "`c`"),
        ("JSON nested one level too deep", nested(MAX_DEPTH + 1), {}, "document_too_deep", "64"),
        ("JSON nested far too deep for the parser", nested(100_000), {}, "document_too_deep", "64"),
        (
            "a YAML syntax error",
            "a: [1, 2\nb: 3\n",
            {"fmt": "yaml"},
            "malformed_document",
            "line 2",
        ),
        (
            "a duplicate key in YAML",
            "a: 1\nb: 2\na: 3\n",
            {"fmt": "yaml"},
            "duplicate_key",
            "line 3, column 1",
        ),
        (
            "a non-string YAML key",
            "1: one\n",
            {"fmt": "yaml"},
            "malformed_document",
            "not a string",
        ),
        (
            "YAML nested too deep",
            "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 70)) + "  " * 70 + "x: 1\n",
            {"fmt": "yaml"},
            "document_too_deep",
            "64",
        ),
        ("a YAML .nan", "a: .nan\n", {"fmt": "yaml"}, "malformed_document", "non-finite"),
        (
            "YAML binary data",
            "a: !!binary aGVsbG8=\n",
            {"fmt": "yaml"},
            "malformed_document",
            "binary",
        ),
        (
            "a YAML python tag (safe loader only)",
            "a: !!python/object:os.system x\n",
            {"fmt": "yaml"},
            "malformed_document",
            "line 1",
        ),
        (
            "several YAML documents",
            "a: 1\n---\nb: 2\n",
            {"fmt": "yaml"},
            "malformed_document",
            "line",
        ),
        ("an unknown format", "{}", {"fmt": "toml"}, "unknown_format", "`toml`"),
        (
            "a JSON integer of 4000 digits",
            '{"upper": ' + "9" * 4000 + "}",
            {},
            "number_out_of_range",
            "double",
        ),
        (
            "a negative one of 400 digits",
            "[-" + "1" * 400 + "]",
            {},
            "number_out_of_range",
            "double",
        ),
        (
            "a YAML integer of 400 digits",
            "a: " + "7" * 400 + "\n",
            {"fmt": "yaml"},
            "number_out_of_range",
            "double",
        ),
    ],
)
def test_refuses_bad_input(what_is_refused, data, kwargs, code, in_message):
    with pytest.raises(InvalidInputError) as caught:
        load_document(data, **kwargs)
    assert caught.value.code == code
    assert in_message in caught.value.message
    assert caught.value.message == caught.value.message.rstrip(".")


def test_a_yaml_alias_bomb_is_refused_without_expanding_it():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(lines)
    with pytest.raises(InvalidInputError) as caught:
        load_document(text, fmt="yaml", max_bytes=10_000)
    assert caught.value.code == "document_too_large"
    assert "values" in caught.value.message


@pytest.mark.parametrize(
    ("what_is_accepted", "fmt", "item", "joiner", "prefix", "suffix"),
    [
        ("the densest JSON array within the byte limit", "json", "0", ",", "[", "]"),
        ("the densest YAML flow list", "yaml", "0", ",", "[", "]"),
        ("the densest YAML block list", "yaml", "- 0", "\n", "", ""),
    ],
)
def test_dense_documents_within_the_byte_limit_are_not_mistaken_for_bombs(
    what_is_accepted, fmt, item, joiner, prefix, suffix
):
    limit = 10_000
    count = (limit - len(prefix) - len(suffix) + len(joiner)) // (len(item) + len(joiner))
    text = prefix + joiner.join([item] * count) + suffix
    assert len(text) <= limit
    assert load_document(text, fmt=fmt, max_bytes=limit) == [0] * count


def test_the_largest_integer_a_double_holds_is_read():
    from pbgm.policy.documents import MAX_INTEGER

    assert load_document(f"[{MAX_INTEGER}, -{MAX_INTEGER}]") == [MAX_INTEGER, -MAX_INTEGER]


def test_the_depth_limit_itself_is_accepted():
    value = load_document(nested(MAX_DEPTH))
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == MAX_DEPTH - 1  # the innermost list is empty


@pytest.mark.parametrize(
    ("what_is_read", "data", "kwargs", "expected"),
    [
        ("JSON by default", '{"a": [1, 2.5, true, null]}', {}, {"a": [1, 2.5, True, None]}),
        ("bytes with a UTF-8 BOM", b'\xef\xbb\xbf{"a": "\xc3\xa9"}', {}, {"a": "é"}),
        ("YAML chosen by the source name", "a: 1\n", {"source": "p.yml"}, {"a": 1}),
        (
            "YAML keeps date-times as strings",
            "t: 2026-01-01T00:00:00Z\n",
            {"fmt": "yaml"},
            {"t": "2026-01-01T00:00:00Z"},
        ),
        (
            "YAML merge keys still work",
            "b: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",
            {"fmt": "YAML"},
            {"b": {"x": 1}, "c": {"x": 1, "y": 2}},
        ),
        ("the same key in different objects", '[{"a": 1}, {"a": 2}]', {}, [{"a": 1}, {"a": 2}]),
        ("an empty YAML document is null", "", {"fmt": "yaml"}, None),
    ],
)
def test_reads_good_input(what_is_read, data, kwargs, expected):
    assert load_document(data, **kwargs) == expected


def test_malformed_message_names_the_source():
    with pytest.raises(InvalidInputError) as caught:
        load_document("{", source="policies/x.json")
    assert "`policies/x.json`" in caught.value.message
    assert caught.value.details["line"] == 1


def test_load_file_picks_the_format_from_the_name(tmp_path: Path):
    (tmp_path / "p.yaml").write_text("id: x\nrules: []\n", encoding="utf-8")
    (tmp_path / "p.json").write_text('{"id": "x", "rules": []}', encoding="utf-8")
    assert load_file(tmp_path / "p.yaml") == load_file(tmp_path / "p.json")


def test_load_file_refuses_a_large_file_without_reading_it_all(tmp_path: Path):
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b"0," * 600_000 + b"0]")
    with pytest.raises(InvalidInputError) as caught:
        load_file(big)
    assert caught.value.code == "document_too_large"


def test_load_file_of_a_missing_path(tmp_path: Path):
    with pytest.raises(InvalidInputError) as caught:
        load_file(tmp_path / "nope.json")
    assert caught.value.code == "unreadable_file"
    assert "nope.json" in caught.value.message


def test_canonical_json_is_sorted_indented_and_ends_with_a_newline():
    text = canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
    assert (
        text
        == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'
    )


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_canonical_json_reads_back_to_the_same_value(value):
    text = canonical_json(value)
    assert load_document(text) == value
    assert canonical_json(json.loads(text)) == text


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_a_value_or_an_invalid_input_error(data):
    for fmt in ("json", "yaml"):
        try:
            load_document(data, fmt=fmt)
        except InvalidInputError as exc:
            assert exc.code in {
                "invalid_encoding",
                "malformed_document",
                "duplicate_key",
                "document_too_deep",
            }


@dataclass(frozen=True)
class _Inner:
    name: str
    file: Path | None = None


@dataclass(frozen=True)
class _Outer:
    items: tuple[_Inner, ...]
    options: Any = field(default_factory=lambda: MappingProxyType({"a": (1, 2)}))
    optional: str | None = None


def test_config_data_is_what_the_file_of_a_configuration_would_hold():
    made = _Outer((_Inner("x", Path("rel/f.pem")), _Inner("y")))
    assert config_data(made) == {
        "items": [{"name": "x", "file": "rel/f.pem"}, {"name": "y"}],
        "options": {"a": [1, 2]},
    }
    kept = config_data(made, keep_none=True)
    assert kept["optional"] is None and kept["items"][1] == {"name": "y", "file": None}
