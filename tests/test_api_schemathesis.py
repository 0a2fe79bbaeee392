"""Schemathesis against the API's own OpenAPI document, as each role, on the WSGI app.

For every operation and generated request (valid and invalid): no 5xx, the status is
documented, the content type and body match the document; no 2xx outside the role
(from the view's ``login_required`` roles, so the check cannot drift from the code);
and nothing outside the role's scope in a 2xx body (volunteer A never sees another
volunteer, secretary X never sees site Y). Examples per operation are bounded
(``API_FUZZ_EXAMPLES``, default 6, per generation mode) so the file runs in well under a minute; it runs on
PostgreSQL, the production database, whose integer ranges SQLite would not catch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from scheduler import rosters
from scheduler.accounts.models import User
from scheduler.models import Roster, ShiftTemplate, Site
from tests.fixtures.webhelp import login
from tests.test_routes import World, build_world

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
ROLES = ("anonymous", "volunteer_a", "secretary_x", "coordinator")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

#: Cases run per role, for the report at the end of the module.
RAN: dict[str, int] = {}


@pytest.fixture
def world(db: Session, create_site: Callable[..., Site],
          create_shift: Callable[..., ShiftTemplate], create_roster: Callable[..., Roster],
          create_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch) -> World:
    # A coordinator's generated POST may start a solve: record it instead of solving.
    monkeypatch.setattr(rosters, "enqueue_run", lambda *_a, **_k: None)
    return build_world(db, create_site, create_shift, create_roster, create_user)


def _roles_by_operation(app: Flask) -> dict[tuple[str, str], tuple[str, ...] | str]:
    """(METHOD, path template) → the roles the view allows, from its `login_required`."""
    out: dict[tuple[str, str], tuple[str, ...] | str] = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = rule.rule.replace("<id:", "{").replace(">", "}")
        roles = app.view_functions[rule.endpoint].bastion_roles  # type: ignore[attr-defined]
        for method in rule.methods or ():
            out[(method, path)] = roles
    return out


def _headers(app: Flask, world: World, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    client = app.test_client()
    login(client, world.users[role])
    token = client.get("/api/v1/me").get_json()["csrf_token"]  # also puts it in the session
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    return {"Cookie": f"{cookie.key}={cookie.value}", "X-CSRFToken": token}


def _objects(node: Any, key: str) -> Iterator[dict[str, Any]]:
    """Every value under `key` in a JSON document (at any depth) that is an object."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key and isinstance(value, dict):
                yield value
            yield from _objects(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item, key)


def _check_scope(world: World, role: str, body: Any) -> None:
    if role == "volunteer_a":
        own = world.users["volunteer_a"].volunteer_id
        assert {v["id"] for v in _objects(body, "volunteer")} <= {own}
    if role == "secretary_x":
        assert {s["id"] for s in _objects(body, "site")} <= {world.site_x.id}


def _fuzz(case: Any, role: str, app: Flask, world: World) -> None:
    if not hasattr(app, "_fuzz_headers"):
        app._fuzz_headers = _headers(app, world, role)  # type: ignore[attr-defined]
        app._fuzz_roles = _roles_by_operation(app)  # type: ignore[attr-defined]
    response = case.call(headers=app._fuzz_headers)  # type: ignore[attr-defined]
    RAN[role] = RAN.get(role, 0) + 1
    case.validate_response(response, checks=CHECKS)
    allowed = app._fuzz_roles[(case.method.upper(), case.operation.path)]  # type: ignore[attr-defined]
    if allowed != "public" and role.split("_")[0] not in allowed:
        assert not 200 <= response.status_code < 300, (
            f"{role} got {response.status_code} from {case.method} {case.formatted_path}")
    if 200 <= response.status_code < 300 and not case.operation.path.endswith("openapi.json"):
        _check_scope(world, role, response.json())


@pytest.mark.parametrize("role", ROLES)
def test_api_as_each_role(role: str, backend: str, app: Flask, world: World) -> None:
    # schemathesis' pytest integration (``from_fixture``) needs pytest < 9.2 (it sets
    # ``Node._nodeid``), so each operation's strategy is driven by hypothesis here.
    if backend != "postgresql":
        pytest.skip("fuzzed on PostgreSQL only, to keep the run short")
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    served = {key for key in _roles_by_operation(app) if key[0] not in ("HEAD", "OPTIONS")}
    served.discard(("GET", "/api/v1/openapi.json"))  # schemathesis skips the document itself
    assert {(op.method.upper(), op.path) for op in operations} == served
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                _fuzz(case, role, app, world)

            try:
                run()
            except Unsatisfiable:
                pass  # e.g. no invalid value exists for an operation without parameters


def test_report_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """Say how many cases ran (``pytest -s``); runs after the fuzz tests of this module."""
    with capsys.disabled():
        print(f"\nschemathesis cases per role: {RAN}")
