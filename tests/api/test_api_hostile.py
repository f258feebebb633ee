"""Hostile input in every parameter and body gives the documented status and code,
changes nothing (revision and export compared), and leaks no trace; bugs are a 500
with a correlation id. The repository is a real SQLite file here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pbgm.errors import InvalidInputError
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW, Server, World, b64, example_store, make_world

MAX_BODY = 8192


@pytest.fixture
def world(server: Server, key_dir: Path, tmp_path: Path) -> World:
    clock = FrozenClock(NOW)
    store = example_store(clock, sqlite_path=tmp_path / "pbgm.db")
    return make_world(server, key_dir, store=store, clock=clock, max_content_length=MAX_BODY)


JSON = {"Content-Type": "application/json"}
SQL = "x' OR '1'='1'; DROP TABLE policies;--"
RTL = "bess\u202e10-"
POLICY = "/api/v1/policy"
ADMIN = "/api/v1/admin"

# (what, method, path, query, body, headers, status, code)
HOSTILE: list[tuple[str, str, str, dict[str, str] | None, Any, dict[str, str], int, str]] = [
    (
        "bad base64 id",
        "GET",
        POLICY,
        {"policy_id": "!!", "policy_group": "g"},
        None,
        {},
        400,
        "malformed_id",
    ),
    (
        "base64 of a NUL",
        "GET",
        POLICY,
        {"policy_id": b64("a\x00b"), "policy_group": "g"},
        None,
        {},
        400,
        "malformed_id",
    ),
    (
        "an id of 2 kB",
        "GET",
        POLICY,
        {"policy_id": "QUFB" * 500, "policy_group": "g"},
        None,
        {},
        400,
        "malformed_id",
    ),
    (
        "SQL in the policy group",
        "GET",
        POLICY,
        {"policy_id": b64("ghost"), "policy_group": SQL},
        None,
        {},
        404,
        "not_found",
    ),
    (
        "SQL in the policy id",
        "GET",
        POLICY,
        {"policy_id": b64(SQL), "policy_group": "g"},
        None,
        {},
        404,
        "not_found",
    ),
    (
        "a right-to-left override",
        "GET",
        POLICY,
        {"asset_id": b64(RTL), "policy_type": "flexoffer"},
        None,
        {},
        404,
        "not_found",
    ),
    (
        "a NUL in the group",
        "GET",
        POLICY,
        {"policy_id": b64("ghost"), "policy_group": "a\x00"},
        None,
        {},
        400,
        "invalid_parameter",
    ),
    (
        "a parameter of 3000 characters",
        "GET",
        "/api/v1/policies",
        {"policy_group": "g" * 3000},
        None,
        {},
        400,
        "invalid_parameter",
    ),
    (
        "a revision beyond 64 bits",
        "GET",
        "/api/v1/policies",
        {"since_revision": "9" * 30},
        None,
        {},
        400,
        "invalid_parameter",
    ),
    (
        "a negative revision",
        "GET",
        "/api/v1/policies",
        {"since_revision": "-1"},
        None,
        {},
        400,
        "invalid_parameter",
    ),
    (
        "a body over the limit",
        "POST",
        "/api/v1/decisions",
        None,
        b"{" + b" " * MAX_BODY + b"}",
        JSON,
        413,
        "request_too_large",
    ),
    (
        "JSON nested 200 deep",
        "POST",
        "/api/v1/decisions",
        None,
        "[" * 200 + "]" * 200,
        JSON,
        400,
        "document_too_deep",
    ),
    (
        "a duplicate key",
        "POST",
        "/api/v1/decisions",
        None,
        '{"subject": {}, "subject": {}}',
        JSON,
        400,
        "duplicate_key",
    ),
    (
        "bytes that are not UTF-8",
        "POST",
        "/api/v1/decisions",
        None,
        b'{"subject": "\xff"}',
        JSON,
        400,
        "invalid_encoding",
    ),
    (
        "NaN",
        "POST",
        "/api/v1/decisions",
        None,
        '{"subject": {"x": NaN}}',
        JSON,
        400,
        "malformed_document",
    ),
    (
        "truncated JSON",
        "POST",
        "/api/v1/decisions",
        None,
        '{"subject": ',
        JSON,
        400,
        "malformed_document",
    ),
    (
        "a text body",
        "POST",
        "/api/v1/decisions",
        None,
        "subject=x",
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    (
        "no content type",
        "POST",
        f"{ADMIN}/users",
        None,
        '{"name": "m"}',
        {},
        415,
        "unsupported_media_type",
    ),
    (
        "a lone surrogate in a name",
        "POST",
        f"{ADMIN}/users",
        None,
        '{"name": "\\ud800"}',
        JSON,
        400,
        "invalid_encoding",
    ),
    (
        "a NUL in a name",
        "POST",
        f"{ADMIN}/users",
        None,
        '{"name": "a\\u0000"}',
        JSON,
        400,
        "invalid_input",
    ),
    (
        "a name of 10 kB",
        "POST",
        f"{ADMIN}/users",
        None,
        '{"name": "' + "n" * 7000 + '"}',
        JSON,
        400,
        "invalid_input",
    ),
    (
        "SQL as a grant permission",
        "POST",
        f"{ADMIN}/grants",
        None,
        {
            "principal_kind": "service",
            "principal": "svc-market",
            "target_kind": "policy",
            "target": "p",
            "permission": SQL,
        },
        JSON,
        422,
        "validation_failed",
    ),
    (
        "a grant id beyond 64 bits",
        "DELETE",
        f"{ADMIN}/grants/{'9' * 30}",
        None,
        None,
        {},
        404,
        "not_found",
    ),
    (
        "a policy id that is not base64",
        "GET",
        f"{ADMIN}/policies/a+b",
        None,
        None,
        {},
        400,
        "malformed_id",
    ),
    (
        "an incomplete document, stale If-Match",
        "PUT",
        f"{ADMIN}/policies/{b64('limits-bess-01')}",
        None,
        {"id": "limits-bess-01"},
        {**JSON, "If-Match": '"v9"'},
        422,
        "validation_failed",
    ),
    (
        "a rollback to version 0",
        "POST",
        f"{ADMIN}/policies/{b64('limits-bess-01')}/rollback",
        None,
        {"version": 0},
        JSON,
        422,
        "validation_failed",
    ),
    (
        "a boolean as a version",
        "POST",
        f"{ADMIN}/policies/{b64('limits-bess-01')}/publish",
        None,
        {"version": True},
        JSON,
        422,
        "validation_failed",
    ),
    (
        "an unknown member",
        "PATCH",
        f"{ADMIN}/users/op-anna",
        None,
        {"enabled": False, "admin": True},
        JSON,
        422,
        "validation_failed",
    ),
    ("a wrong method", "DELETE", "/api/v1/policies", None, None, {}, 405, "method_not_allowed"),
    ("an unknown route", "GET", "/api/v1/../../etc/passwd", None, None, {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "params", "body", "headers", "status", "code"),
    HOSTILE,
    ids=[row[0] for row in HOSTILE],
)
def test_hostile_input_is_refused_and_changes_nothing(
    world: World, what, method, path, params, body, headers, status, code
):
    before = world.export()
    if isinstance(body, dict):
        import json

        body = json.dumps(body)
    reply = world.call(method, path, caller="svc-admin", params=params, body=body, headers=headers)
    assert (reply.status, reply.code) == (status, code)
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert b"Traceback" not in reply.body and b"sqlalchemy" not in reply.body.lower()
    assert world.export() == before


def test_sql_looking_names_are_stored_verbatim(world: World):
    reply = world.call("POST", f"{ADMIN}/users", caller="svc-admin", json_body={"name": SQL})
    assert reply.status == 201 and reply.json["name"] == SQL
    assert [u.name for u in world.store.list_users() if u.name == SQL] == [SQL]
    assert world.call("GET", "/api/v1/policies", caller="svc-voltage").status == 200


def test_a_bug_is_a_500_with_a_correlation_id_and_no_trace(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SELECT secret FROM users -- password=hunter2")

    monkeypatch.setattr(world.services.access, "readable_policies", explode)
    with caplog.at_level(logging.ERROR, logger="pbgm.api.errors"):
        reply = world.call("GET", "/api/v1/policies", caller="svc-voltage")
    assert (reply.status, reply.code) == (500, "internal_error")
    correlation = reply.json["correlation_id"]
    assert b"hunter2" not in reply.body and b"SELECT" not in reply.body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert correlation in logged and "RuntimeError" in logged
    assert "hunter2" not in logged and "Traceback" not in logged
    assert all(r.exc_info is None for r in caplog.records)


def test_a_store_error_message_never_reaches_the_client(world: World, monkeypatch):
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        from pbgm.errors import StoreUnavailableError

        raise StoreUnavailableError("cannot use the policy repository at `db.internal:5432`")

    monkeypatch.setattr(world.store, "revision", unreachable)
    reply = world.call("GET", "/readyz")
    assert (reply.status, reply.code) == (503, "store_unavailable")
    assert b"db.internal" not in reply.body


def test_client_errors_keep_their_own_message(world: World, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidInputError("`x` is odd", code="odd_input")

    monkeypatch.setattr(world.services.access, "readable_policies", refuse)
    reply = world.call("GET", "/api/v1/policies", caller="svc-voltage")
    assert (reply.status, reply.code, reply.json["detail"]) == (400, "odd_input", "`x` is odd")
