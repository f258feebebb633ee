"""XML read safely: no DTD, no entities, no external resources, bounded size and depth.

`parse(data, what)` reads a document with `defusedxml` (which refuses entity
declarations and external references, so the billion laughs and external entities to
local files are refused, not expanded or fetched), after refusing more than
`MAX_BYTES`, and refuses a tree deeper than `MAX_DEPTH` elements. Every refusal is an
`InvalidInputError` with a stable code: `document_too_large`, `not_utf8`,
`forbidden_xml` (a DTD, an entity, an external reference), `malformed_xml`,
`document_too_deep`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from pbgm.errors import InvalidInputError

MAX_BYTES = 10 * 1024 * 1024
"""The largest XML document read (10 MiB)."""
MAX_DEPTH = 256
"""The deepest nesting of elements read."""

Element = ET.Element


def parse(data: bytes | str, what: str = "document") -> Element:
    """The root element of `data` (see the module docstring for what is refused)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise InvalidInputError(
            f"the {what} is {len(raw):,} bytes, more than the {MAX_BYTES:,} allowed",
            code="document_too_large",
        )
    _check_encoding(raw, what)
    try:
        root = fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInputError(
            f"the {what} declares a DTD or entities, which are refused: {type(exc).__name__}",
            code="forbidden_xml",
        ) from None
    except ET.ParseError as exc:
        raise InvalidInputError(
            f"the {what} is not well-formed XML: {exc}", code="malformed_xml"
        ) from None
    _check_depth(root, what)
    element: Element = root
    return element


def parse_file(path: str | Path, what: str | None = None) -> Element:
    """`parse` of a file, read at most `MAX_BYTES` + 1 bytes."""
    path = Path(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return parse(data, what or f"file `{path.name}`")


def _check_encoding(raw: bytes, what: str) -> None:
    """XACML documents are UTF-8 (an XML declaration naming another encoding is refused
    too, so the bytes are checked once here, with a clear message)."""
    head = raw[:200].lower()
    if b"encoding=" in head and b"utf-8" not in head and b"utf8" not in head:
        raise InvalidInputError(f"the {what} must be UTF-8", code="not_utf8")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"the {what} is not valid UTF-8 (byte {exc.start})", code="not_utf8"
        ) from None


def _check_depth(root: Element, what: str) -> None:
    pending = [(root, 1)]
    while pending:
        element, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidInputError(
                f"the {what} nests elements more than {MAX_DEPTH} deep", code="document_too_deep"
            )
        pending.extend((child, depth + 1) for child in element)
