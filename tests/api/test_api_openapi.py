"""The OpenAPI document matches the app: the same paths and methods as `app.url_map`,
and live answers to generated requests (schemathesis, a bounded number of examples
per operation) are documented statuses, content types and bodies, never a 5xx."""

from __future__ import annotations

import re
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from pbgm.api.openapi import openapi_document
from tests.api.conftest import Server, World, make_world

EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def documented(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }


def routed(world: World) -> set[tuple[str, str]]:
    found = set()
    mounted = world.services.mounted  # the admin GUI is not part of the API's document
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] in mounted:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        found |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_the_document_has_exactly_the_routes_of_the_app(world: World):
    assert documented(openapi_document()) == routed(world)


def test_the_served_document_is_openapi_3_1(world: World):
    reply = world.call("GET", "/api/v1/openapi.json")
    assert reply.status == 200 and reply.json == openapi_document()
    assert reply.json["openapi"].startswith("3.1")


def test_every_operation_documents_its_errors_as_problems(world: World):
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path != "/api/v1/token":
                    assert "application/problem+json" in response["content"], (path, method, status)


def test_live_answers_conform_to_the_document(server: Server, key_dir: Path):
    world = make_world(server, key_dir)
    world.services.decisions.start()  # as a worker does; /readyz is 503 until it settles
    assert world.services.decisions.settle(10)
    base_url = f"http://127.0.0.1:{server.port}"
    auth = {"Authorization": f"Bearer {world.token('svc-admin')}"}
    schema = schemathesis.openapi.from_dict(openapi_document())
    checked, statuses = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def conforms(case: schemathesis.Case) -> None:
            public = case.operation.path == "/api/v1/token"
            response = case.call(base_url=base_url, headers={} if public else auth)
            statuses.append(response.status_code)
            case.validate_response(response, checks=CHECKS)

        conforms()
        checked += 1
    assert checked == len(documented(openapi_document()))
    assert len(statuses) >= 2 * checked  # examples really went over the wire
    assert {200, 201, 400, 404, 422} <= set(statuses)
