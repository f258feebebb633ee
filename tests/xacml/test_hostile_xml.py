"""Hostile XML is refused with a clear error, and an import of it stores nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pbgm.cli import main
from pbgm.errors import InvalidInputError
from pbgm.xacml import parse, parse_file
from pbgm.xacml.safexml import MAX_BYTES, MAX_DEPTH
from tests.xacml.helpers import NS, policy, rule

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + f']><Policy xmlns="{NS}">&lol9;</Policy>'
)


def external_entity(secret: str) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<Policy xmlns="{NS}" PolicyId="p">&x;</Policy>'
    )


def large_document() -> bytes:
    filler = b"<Description>" + b"x" * 1024 + b"</Description>"
    return f'<Policy xmlns="{NS}">'.encode() + filler * (50 * 1024) + b"</Policy>"


def deep_document(depth: int = 10_000) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


HOSTILE = {
    "billion laughs": (lambda tmp: BILLION_LAUGHS.encode(), "forbidden_xml"),
    "external entity": (
        lambda tmp: external_entity(str(tmp / "secret.txt")).encode(),
        "forbidden_xml",
    ),
    "50 MB": (lambda tmp: large_document(), "document_too_large"),
    "10,000 deep": (lambda tmp: deep_document(), "document_too_deep"),
    "invalid UTF-8": (
        lambda tmp: policy("p", rule("r")).encode()[:-20] + b"\xff\xfe" + b"</Policy>",
        "not_utf8",
    ),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_xml_is_refused_with_its_code(kind, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the password")
    data = HOSTILE[kind][0](tmp_path)
    with pytest.raises(InvalidInputError) as refused:
        parse(data)
    assert refused.value.code == HOSTILE[kind][1]
    assert "the password" not in refused.value.message


def test_the_large_document_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "large.xml"
    path.write_bytes(large_document())
    assert path.stat().st_size > MAX_BYTES
    with pytest.raises(InvalidInputError, match="more than") as refused:
        parse_file(path)
    assert refused.value.code == "document_too_large"


def test_nesting_just_within_the_bound_is_read():
    assert parse(deep_document(MAX_DEPTH)).tag == "a"
    with pytest.raises(InvalidInputError):
        parse(deep_document(MAX_DEPTH + 1))


@pytest.mark.parametrize("kind", HOSTILE)
def test_an_import_of_hostile_xml_stores_nothing(kind, tmp_path):
    (tmp_path / "secret.txt").write_text("the password")
    good, bad = tmp_path / "good.xml", tmp_path / "bad.xml"
    good.write_text(policy("good-policy", rule("r")))
    bad.write_bytes(HOSTILE[kind][0](tmp_path))
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", url, "db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["--db", url, "xacml", "import", str(good), str(bad)])
    assert result.exit_code == 3, result.output
    assert f"error: {HOSTILE[kind][1]}:" in result.output
    assert "the password" not in result.output
    listed = runner.invoke(main, ["--db", url, "--json", "policy", "list"])
    assert listed.exit_code == 0 and '"good-policy"' not in listed.output
