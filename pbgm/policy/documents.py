"""Reading untrusted input documents (JSON or YAML) and writing canonical JSON.

Everything a user, a REST client or a bundle file hands to pbgm goes through
`load_document` first. It refuses, each with an `InvalidInputError` and a stable
`code`, what should never reach validation:

| code                 | when                                                              |
|----------------------|-------------------------------------------------------------------|
| `document_too_large` | more than `max_bytes` bytes, or more values than such a text can  |
|                      | hold (`max_bytes // 2`): a YAML alias "billion laughs" document   |
| `invalid_encoding`   | bytes that are not UTF-8                                          |
| `malformed_document` | JSON/YAML syntax errors (with line and column), `NaN`/`Infinity`, |
|                      | non-string keys, YAML values with no JSON equivalent              |
| `duplicate_key`      | the same key twice in one object (JSON and YAML alike)            |
| `document_too_deep`  | containers nested deeper than `MAX_DEPTH` levels                  |
| `number_out_of_range`| an integer beyond the IEEE-754 double range (about 1.8e308): no   |
|                      | JSON peer reads it, and no check or column of pbgm holds it       |
| `unknown_format`     | `fmt` other than `json` or `yaml`                                 |
| `unreadable_file`    | `load_file` cannot open or read the path                          |

YAML is read with a safe loader that additionally keeps date-times as strings
(JSON has no date type; `valid_from` must read the same in both formats).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import yaml

from pbgm.errors import InvalidInputError
from pbgm.policy.syntax import format_datetime, thaw

MAX_BYTES = 1_048_576
MAX_DEPTH = 64
MAX_INTEGER = int(sys.float_info.max)
"""The largest integer magnitude read: what an IEEE-754 double can still hold."""
FORMATS = ("json", "yaml")
_YAML_SUFFIXES = (".yaml", ".yml")


def load_document(
    data: bytes | str,
    *,
    source: str = "<input>",
    fmt: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """Parse one JSON (default) or YAML document from untrusted input.

    `fmt` is `json` or `yaml`; when omitted, a `source` ending in `.yaml`/`.yml`
    means YAML. Returns plain dicts, lists and scalars.
    """
    kind = _format_of(source, fmt)
    text = _decode(data, source, max_bytes)
    if kind == "json":
        value = _parse_json(text, source)
        if text.count("{") + text.count("[") >= MAX_DEPTH:
            _check_tree(value, source, max_values=max_bytes // 2 + 16)
        return value
    value = _parse_yaml(text, source)
    _check_tree(value, source, max_values=max_bytes // 2 + 16)
    return value


def load_file(
    path: str | PathLike[str], *, fmt: str | None = None, max_bytes: int = MAX_BYTES
) -> Any:
    """`load_document` on the contents of a file; the file name picks the format."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or "cannot be read"
        raise InvalidInputError(
            f"cannot read `{source}`: {reason.lower()}", code="unreadable_file"
        ) from None
    return load_document(data, source=source, fmt=fmt, max_bytes=max_bytes)


def config_data(value: Any, *, keep_none: bool = False) -> Any:
    """A configuration object as the plain data of its file, so that its reader can check
    one made in code by the rules of one read from a file: a dataclass as a dict of its
    fields (those that are None left out, as a file leaves them out, unless `keep_none`),
    tuples and lists as lists, mappings as dicts, paths as text, each item the same way;
    anything else as it is, for the reader to judge. New containers are made, the values
    in them are not copied."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: config_data(getattr(value, f.name), keep_none=keep_none)
            for f in fields(value)
            if keep_none or getattr(value, f.name) is not None
        }
    if isinstance(value, Mapping):
        return {key: config_data(item, keep_none=keep_none) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [config_data(item, keep_none=keep_none) for item in value]
    if isinstance(value, PurePath):
        return str(value)
    return value


def canonical_json(obj: Any) -> str:
    """Sorted keys, 2-space indent, UTF-8 text, trailing newline: two exports of
    the same data are byte-identical and diff line by line."""
    return (
        json.dumps(
            thaw(obj),
            sort_keys=True,
            indent=2,
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
        + "\n"
    )


compact_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
"""Compact UTF-8 JSON text, keys in their order, NaN and infinities refused (`ValueError`):
what pbgm writes to the bus and to the audit log. One encoder made once (`json.dumps`
with options makes one per call)."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"cannot write a {type(value).__name__} value as JSON")


# --- reading -----------------------------------------------------------------


def _format_of(source: str, fmt: str | None) -> str:
    if fmt is None:
        return "yaml" if source.lower().endswith(_YAML_SUFFIXES) else "json"
    kind = fmt.lower()
    if kind == "yml":
        kind = "yaml"
    if kind not in FORMATS:
        raise InvalidInputError(
            f"unknown document format `{fmt}`; use one of {', '.join(FORMATS)}",
            code="unknown_format",
        )
    return kind


def _too_large(source: str, max_bytes: int) -> InvalidInputError:
    return InvalidInputError(
        f"`{source}` is larger than the limit of {max_bytes} bytes",
        code="document_too_large",
        limit=max_bytes,
    )


def _decode(data: bytes | str, source: str, max_bytes: int) -> str:
    if isinstance(data, str):
        if len(data) > max_bytes or len(data.encode("utf-8", "surrogatepass")) > max_bytes:
            raise _too_large(source, max_bytes)
        return data
    if len(data) > max_bytes:
        raise _too_large(source, max_bytes)
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"`{source}` is not valid UTF-8 (byte {exc.start})", code="invalid_encoding"
        ) from None
    return text.removeprefix("\ufeff")


def _malformed(source: str, kind: str, line: int, column: int, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"malformed {kind} in `{source}` at line {line}, column {column}: {reason}",
        code="malformed_document",
        line=line,
        column=column,
    )


def _duplicate(source: str, key: str, where: str = "") -> InvalidInputError:
    return InvalidInputError(
        f"duplicate key `{key}` in `{source}`{where}", code="duplicate_key", key=key
    )


class _Refused(Exception):
    """A value the JSON decoder's hooks refuse: `error(source)` is the error to raise
    (`_parse_json` names the source; the hooks belong to one decoder made once)."""

    def __init__(self, error: Callable[[str], InvalidInputError]) -> None:
        super().__init__()
        self.error = error


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(partial(_duplicate, key=key))
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Refused(
        lambda source: InvalidInputError(
            f"`{name}` in `{source}` is not a JSON number", code="malformed_document"
        )
    )


def _bounded_integer(digits: str) -> int:
    value = int(digits)
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise _Refused(_out_of_range)
    return value


def _finite(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):  # `1e999`
        raise _Refused(
            lambda source: InvalidInputError(
                f"`{source}` holds a value of a kind JSON does not have (a non-finite number)",
                code="malformed_document",
            )
        )
    return value


_DECODE = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_constant=_constant,
    parse_int=_bounded_integer,
    parse_float=_finite,
).decode
"""The strict decoder, made once (`json.loads` with options makes one per call)."""


def _parse_json(text: str, source: str) -> Any:
    # The scalars are checked as they are read; the tree's depth only where it can reach
    # `MAX_DEPTH` (as many brackets as that), its size never: without YAML's aliases a
    # document holds fewer values than it has bytes (`load_document`).
    try:
        return _DECODE(text)
    except _Refused as refused:
        raise refused.error(source) from None
    except json.JSONDecodeError as exc:
        raise _malformed(source, "JSON", exc.lineno, exc.colno, exc.msg.lower()) from None
    except RecursionError:
        raise _too_deep(source) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidInputError(
            f"malformed JSON in `{source}`: {str(exc).lower()}", code="malformed_document"
        ) from None


# PyYAML ships no type hints (`yaml.*` is `ignore_missing_imports`), so its base class is Any.
class _StrictSafeLoader(yaml.SafeLoader):  # type: ignore[misc]
    """`yaml.SafeLoader` without implicit timestamps, duplicate keys or non-string keys."""


_StrictSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mark = key_node.start_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
        if not isinstance(key, str):
            raise InvalidInputError(
                f"key `{key}` in `{mark.name}`{where} is not a string; quote it",
                code="malformed_document",
            )
        if key in out:
            raise _duplicate(mark.name, key, where)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictSafeLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        loader = _StrictSafeLoader(text)
    except yaml.reader.ReaderError as exc:  # control characters are refused up front
        raise InvalidInputError(
            f"malformed YAML in `{source}`: character #x{exc.character:04x} at position "
            f"{exc.position} is not allowed",
            code="malformed_document",
        ) from None
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = exc.problem or exc.context or "invalid YAML"
        raise _malformed(source, "YAML", line, column, reason) from None
    except yaml.YAMLError:
        raise InvalidInputError(
            f"malformed YAML in `{source}`", code="malformed_document"
        ) from None
    except RecursionError:
        raise _too_deep(source) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidInputError(
            f"malformed YAML in `{source}`: {str(exc).lower()}", code="malformed_document"
        ) from None
    finally:
        loader.dispose()


# --- the shape of what was read ------------------------------------------------


def _too_deep(source: str) -> InvalidInputError:
    return InvalidInputError(
        f"`{source}` is nested deeper than {MAX_DEPTH} levels",
        code="document_too_deep",
        limit=MAX_DEPTH,
    )


def _check_tree(root: Any, source: str, *, max_values: int) -> None:
    """Depth, size and JSON-compatibility of a parsed document, without recursion.

    Every JSON or YAML value takes at least two bytes of text, so a document
    within the byte limit holds at most about `max_bytes // 2` values; more can
    only come from YAML aliases, which share nodes and expand exponentially.
    Each value is looked at once (a few type checks), so a 1 MiB body costs
    tens of milliseconds.
    """
    if not isinstance(root, Mapping | list):
        _check_scalar(root, source)
        return
    stack: list[tuple[Any, int]] = [(root, 0)]
    seen = 1
    while stack:
        container, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise _too_deep(source)
        children = container.values() if isinstance(container, Mapping) else container
        seen += len(children)
        if seen > max_values:
            raise InvalidInputError(
                f"`{source}` expands to more than {max_values} values",
                code="document_too_large",
                limit=max_values,
            )
        for child in children:
            kind = type(child)
            if kind is str or kind is bool or child is None:
                continue
            if isinstance(child, Mapping | list):
                stack.append((child, depth + 1))
            else:
                _check_scalar(child, source)


def _check_scalar(value: Any, source: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise _out_of_range(source)
    elif not _is_json_scalar(value):
        raise InvalidInputError(
            f"`{source}` holds a value of a kind JSON does not have ({_kind(value)})",
            code="malformed_document",
        )


def _out_of_range(source: str) -> InvalidInputError:
    return InvalidInputError(
        f"`{source}` holds an integer beyond the range of a double (about 1.8e308)",
        code="number_out_of_range",
        limit=sys.float_info.max,
    )


def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _kind(value: Any) -> str:
    if isinstance(value, float):
        return "a non-finite number"
    names: dict[type, str] = {bytes: "binary data", set: "a set", tuple: "ordered pairs"}
    return names.get(type(value), "an unsupported value")
