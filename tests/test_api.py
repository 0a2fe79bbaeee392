"""The JSON API (`web.api`): scope per role, problem+json errors, publish CAS, pagination,
CSRF, solve runs, diff, query counts and the OpenAPI document.

Every route × role status is in `tests.test_routes.ROUTES`; here is what the statuses do
not show: what each role sees, and what the errors say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler import queues, rosters
from scheduler.accounts.models import User
from scheduler.models import (
    Assignment,
    AuditEvent,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    SolveRun,
    Volunteer,
)
from tests.fixtures.webhelp import login, statements
from tests.test_routes import World, build_world

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

API = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
def world(db: Session, create_site: Callable[..., Site],
          create_shift: Callable[..., ShiftTemplate], create_roster: Callable[..., Roster],
          create_user: Callable[..., User]) -> World:
    return build_world(db, create_site, create_shift, create_roster, create_user)


def _client(app: Flask, world: World, role: str) -> FlaskClient:
    client = app.test_client()
    if role != "anonymous":
        world.db.refresh(world.users[role])
        login(client, world.users[role])
    return client


def _token(client: FlaskClient) -> str:
    response = client.get(f"{API}/me")
    assert response.status_code == 200
    return str(response.get_json()["csrf_token"])


def _post(client: FlaskClient, url: str, body: Any = None, **kwargs: Any) -> Any:
    return client.post(url, json=body, headers={"X-CSRFToken": _token(client)}, **kwargs)


def _vid(world: World, key: str) -> int:
    volunteer_id = world.users[key].volunteer_id
    assert volunteer_id is not None
    return volunteer_id


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    assert body["instance"] == response.request.path
    return dict(body)


def _assignments(client: FlaskClient, world: World, query: str = "",
                 number: int = 1) -> list[dict[str, Any]]:
    response = client.get(f"{API}/rosters/{world.roster.id}/versions/{number}/assignments"
                          f"?per_page=500{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["items"])


# -- scope --------------------------------------------------------------------------------

def test_volunteer_sees_only_their_own_assignments(app: Flask, world: World) -> None:
    a, b = _vid(world, "volunteer_a"), _vid(world, "volunteer_b")
    client = _client(app, world, "volunteer_a")
    mine = _assignments(client, world)
    assert len(mine) == 3 and {row["volunteer"]["id"] for row in mine} == {a}
    assert _assignments(client, world, f"&volunteer_id={b}") == []  # asking for B finds nothing
    assert {r["volunteer"]["id"] for r in _assignments(_client(app, world, "volunteer_b"),
                                                        world)} == {b}
    own = client.get(f"{API}/me/assignments").get_json()
    assert own["total"] == 3 and {r["volunteer"]["id"] for r in own["items"]} == {a}


def test_volunteer_sees_published_versions_only(app: Flask, world: World, db: Session) -> None:
    world.version.state = "draft"
    db.flush()
    client = _client(app, world, "volunteer_a")
    url = f"{API}/rosters/{world.roster.id}/versions/1/assignments"
    assert_problem(client.get(url), 404)
    assert client.get(f"{API}/me/assignments").get_json()["total"] == 0
    assert_problem(_client(app, world, "secretary_x").get(url), 404)
    assert _client(app, world, "coordinator").get(url).get_json()["total"] == 6


def test_secretary_sees_only_their_sites(app: Flask, world: World) -> None:
    x = _client(app, world, "secretary_x")
    rows = _assignments(x, world)
    assert rows and {r["site"]["id"] for r in rows} == {world.site_x.id}
    assert _assignments(x, world, f"&site_id={world.site_y.id}") == []
    assert {r["site"]["id"] for r in _assignments(_client(app, world, "secretary_y"), world)
            } == {world.site_y.id}
    assert len(_assignments(_client(app, world, "coordinator"), world)) == 6
    # The version summary counts their sites only: the unmet slot is at Y.
    summary = x.get(f"{API}/rosters/{world.roster.id}/versions/1").get_json()
    assert (summary["unmet_count"], summary["assignment_count"], summary["unmet"]) == (0, 3, [])
    other = _client(app, world, "secretary_y").get(
        f"{API}/rosters/{world.roster.id}/versions/1").get_json()
    assert other["unmet_count"] == 1 and other["unmet"][0]["post"] == "y-gate-check"


def test_secretary_never_sees_drafts(app: Flask, world: World, db: Session) -> None:
    db.add(RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t"))
    db.flush()
    x = _client(app, world, "secretary_x")
    listed = x.get(f"{API}/rosters/{world.roster.id}/versions").get_json()["items"]
    assert [v["number"] for v in listed] == [1]
    assert_problem(x.get(f"{API}/rosters/{world.roster.id}/versions/2"), 404)
    coordinator = _client(app, world, "coordinator")
    listed = coordinator.get(f"{API}/rosters/{world.roster.id}/versions").get_json()["items"]
    assert [(v["number"], v["state"]) for v in listed] == [(1, "published"), (2, "draft")]


def test_volunteers_by_role(app: Flask, world: World, db: Session) -> None:
    a, b = _vid(world, "volunteer_a"), _vid(world, "volunteer_b")
    # Allowed at X but never assigned: still one of X's volunteers.
    c = Volunteer(code="c-allowed", name="丙", phone="+8613900000099", sites_restricted=True,
                  allowed_sites=[world.site_x])
    db.add(c)
    db.flush()
    x = _client(app, world, "secretary_x")
    seen = x.get(f"{API}/volunteers").get_json()
    assert {v["id"] for v in seen["items"]} == {a, c.id} and seen["total"] == 2
    assert all(v["phone"] is None for v in seen["items"])  # no phones for secretaries
    assert x.get(f"{API}/volunteers/{a}").status_code == 200
    assert_problem(x.get(f"{API}/volunteers/{b}"), 404)
    y = _client(app, world, "secretary_y")
    assert {v["id"] for v in y.get(f"{API}/volunteers").get_json()["items"]} == {b}
    everyone = _client(app, world, "coordinator").get(f"{API}/volunteers?per_page=500")
    items = everyone.get_json()["items"]
    assert {a, b, c.id} <= {v["id"] for v in items}
    assert next(v for v in items if v["id"] == c.id)["phone"] == "+8613900000099"
    assert next(v for v in items if v["id"] == c.id)["allowed_sites"] == [world.site_x.id]
    found = _client(app, world, "coordinator").get(f"{API}/volunteers?q=c-allow").get_json()
    assert [v["id"] for v in found["items"]] == [c.id]
    assert_problem(_client(app, world, "volunteer_a").get(f"{API}/volunteers"), 403)


def test_me_says_who_and_what_scope(app: Flask, world: World) -> None:
    me = _client(app, world, "secretary_x").get(f"{API}/me").get_json()
    assert me["role"] == "secretary" and me["site_ids"] == [world.site_x.id]
    assert me["volunteer"] is None and me["csrf_token"]
    own = _client(app, world, "volunteer_a").get(f"{API}/me").get_json()
    assert own["volunteer"]["id"] == _vid(world, "volunteer_a")
    assert own["volunteer"]["phone"] == "+8613800000001"


# -- errors -------------------------------------------------------------------------------

def test_anonymous_calls_are_401_problems_not_redirects(app: Flask, world: World) -> None:
    client = app.test_client()
    paths = [rule.rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"]
    assert len(paths) >= 10
    app.config["WTF_CSRF_ENABLED"] = False
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        url = rule.rule.replace("<id:", "").replace(">", "")
        for name in ("roster_id", "number", "run_id", "volunteer_id"):
            url = url.replace(name, "1")
        method = "POST" if "POST" in (rule.methods or ()) else "GET"
        body = assert_problem(client.open(url, method=method), 401)
        assert "Location" not in body


def test_forbidden_and_not_found_problems(app: Flask, world: World) -> None:
    body = assert_problem(_client(app, world, "volunteer_a").get(f"{API}/rosters"), 403)
    assert body["type"] == "about:blank"
    coordinator = _client(app, world, "coordinator")
    body = assert_problem(coordinator.get(f"{API}/rosters/999999"), 404)
    assert "999999" in body["detail"]
    assert_problem(coordinator.get(f"{API}/no-such-thing"), 404)  # routing 404
    assert_problem(coordinator.get(f"{API}/rosters/99999999999"), 404)  # beyond int32
    # Found by schemathesis: a path other methods serve was a 405 for a too-large id.
    assert_problem(_post(coordinator, f"{API}/rosters/7519033723600790528/solve-runs", {}), 404)
    assert_problem(coordinator.get(f"{API}/rosters/0"), 404)
    response = coordinator.delete(f"{API}/rosters")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_validation_problems_name_the_field_and_value(app: Flask, world: World) -> None:
    client = _client(app, world, "coordinator")
    url = f"{API}/rosters/{world.roster.id}/versions/1/assignments"
    body = assert_problem(client.get(f"{url}?per_page=501"), 422)
    assert body["type"] == "urn:bastion:problem:validation"
    assert body["errors"] == [{"location": "query", "field": "per_page", "value": "501",
                               "message": body["errors"][0]["message"]}]
    assert "per_page" in body["detail"]
    body = assert_problem(client.get(f"{url}?date=2022-13-01"), 422)
    assert body["errors"][0]["field"] == "date" and body["errors"][0]["value"] == "2022-13-01"
    body = assert_problem(client.get(f"{url}?date_from=2022-04-05&date_to=2022-04-01"), 422)
    assert body["errors"][0]["field"] == "date_to"
    body = assert_problem(client.get(f"{url}?bogus=1"), 422)
    assert body["errors"][0]["field"] == "bogus"
    body = assert_problem(_post(client, f"{API}/rosters/{world.roster.id}/solve-runs",
                                {"time_limit": -5, "colour": "red"}), 422)
    fields = {(e["location"], e["field"], e["value"]) for e in body["errors"]}
    assert fields == {("json", "time_limit", -5), ("json", "colour", "red")}


def test_unreadable_json_is_a_400_problem(app: Flask, world: World, db: Session) -> None:
    db.add(RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t"))
    db.flush()
    client = _client(app, world, "coordinator")
    response = client.post(f"{API}/rosters/{world.roster.id}/versions/2/publish",
                           data="{not json", content_type="application/json",
                           headers={"X-CSRFToken": _token(client)})
    body = assert_problem(response, 400)
    assert body["errors"][0]["location"] == "json"
    assert db.scalars(select(RosterVersion.state).where(
        RosterVersion.roster_id == world.roster.id, RosterVersion.number == 2)).one() == "draft"


def test_server_errors_are_problems_without_internals(app: Flask, world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler import listings

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(listings, "rosters", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = _client(app, world, "coordinator").get(f"{API}/rosters")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True) and "detail" not in body


def test_pages_keep_their_own_error_pages(app: Flask, world: World) -> None:
    response = _client(app, world, "volunteer_a").get("/rosters")
    assert response.status_code == 403 and response.mimetype == "text/html"


# -- writes: CSRF, publish, solve ---------------------------------------------------------

def _audit_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_writes_need_the_csrf_header(app: Flask, world: World, db: Session,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rosters, "enqueue_run", lambda *a, **k: None)
    client = _client(app, world, "coordinator")
    url = f"{API}/rosters/{world.roster.id}/solve-runs"
    runs = db.scalar(select(func.count()).select_from(SolveRun))
    body = assert_problem(client.post(url, json={}), 400)
    assert body["type"] == "urn:bastion:problem:csrf"
    assert_problem(client.post(url, json={}, headers={"X-CSRFToken": "forged"}), 400)
    assert db.scalar(select(func.count()).select_from(SolveRun)) == runs
    assert _post(client, url, {}).status_code == 202


def test_publish_compare_and_set(app: Flask, world: World, db: Session) -> None:
    db.add(RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t",
                         objective=5.0, bound=4.0))
    db.flush()
    client = _client(app, world, "coordinator")
    url = f"{API}/rosters/{world.roster.id}/versions/2/publish"
    before = _audit_count(db)
    body = assert_problem(_post(client, url, {"expected_current": None}), 409)
    assert body["type"] == "urn:bastion:problem:publish-conflict"
    assert (body["expected"], body["current"]) == (None, 1)
    assert rosters.published_version(db, world.roster.id).number == 1  # type: ignore[union-attr]
    assert _audit_count(db) == before
    ok = _post(client, url, {"expected_current": 1, "reason": "周末调整"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    data = ok.get_json()
    assert (data["number"], data["state"], data["objective"], data["bound"]) == (
        2, "published", 5.0, 4.0)
    db.expire_all()
    states = dict(db.execute(select(RosterVersion.number, RosterVersion.state).where(
        RosterVersion.roster_id == world.roster.id)).all())
    assert states == {1: "superseded", 2: "published"}
    actions = set(db.scalars(select(AuditEvent.action).where(AuditEvent.reason == "周末调整")))
    assert {"roster_version.publish", "roster_version.supersede"} <= actions
    # Publishing it again: not a draft any more.
    again = assert_problem(_post(client, url, {"expected_current": 2}), 409)
    assert again["type"] == "urn:bastion:problem:version-state"
    assert (again["state"], again["current"]) == ("published", 2)
    assert_problem(_post(client, url, {}), 422)  # expected_current is required
    assert_problem(_post(client, f"{API}/rosters/{world.roster.id}/versions/9/publish",
                         {"expected_current": 2}), 404)


def test_solve_run_created_then_returned(app: Flask, world: World, db: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    enqueued: list[int] = []
    monkeypatch.setattr(rosters, "enqueue_run",
                        lambda session, run, queue="solve": enqueued.append(run.id))
    client = _client(app, world, "coordinator")
    url = f"{API}/rosters/{world.roster.id}/solve-runs"
    first = _post(client, url, {"time_limit": 30, "seed": 7})
    assert first.status_code == 202, first.get_data(as_text=True)
    run = first.get_json()
    assert (run["status"], run["active"], run["time_limit"], run["percent"]) == (
        "queued", True, 30.0, 0.0)
    assert first.headers["Location"].endswith(f"/api/v1/solve-runs/{run['id']}")
    second = _post(client, url, {"time_limit": 60})
    assert second.status_code == 200 and second.get_json()["id"] == run["id"]
    assert enqueued == [run["id"]]
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "solve_run.create", AuditEvent.entity_id == str(run["id"]))) == 1
    listed = client.get(url).get_json()
    assert [r["id"] for r in listed["items"]] == [run["id"], world.run.id]


def test_solve_run_progress(app: Flask, world: World) -> None:
    data = _client(app, world, "coordinator").get(f"{API}/solve-runs/{world.run.id}").get_json()
    assert (data["objective"], data["bound"], data["coverage"], data["elapsed"]) == (
        12.0, 10.0, 0.9, 3.2)
    assert data["status"] == "finished" and data["active"] is False
    assert data["created_at"].endswith("+08:00")  # Asia/Shanghai


def test_solve_queue_down_is_a_503_problem(app: Flask, world: World,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise queues.QueueError("redis is down")

    monkeypatch.setattr(rosters, "enqueue_run", refuse)
    client = _client(app, world, "coordinator")
    body = assert_problem(_post(client, f"{API}/rosters/{world.roster.id}/solve-runs", {}), 503)
    assert "redis is down" in body["detail"]


def test_diff_between_versions(app: Flask, world: World, db: Session) -> None:
    v2 = RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t")
    db.add(v2)
    db.flush()
    first = db.scalars(select(Assignment).where(Assignment.version_id == world.version.id)
                       .order_by(Assignment.id)).all()
    moved = first[0]
    db.add(Assignment(version_id=v2.id, uid=moved.uid, revision=2, volunteer_id=moved.volunteer_id,
                      post_id=world.site_y.posts[0].id, shift_id=moved.shift_id, date=moved.date))
    db.flush()
    data = _client(app, world, "coordinator").get(
        f"{API}/rosters/{world.roster.id}/diff?from=1&to=2").get_json()
    assert (data["from"], data["to"]) == (1, 2)
    assert [m["uid"] for m in data["moved"]] == [moved.uid]
    assert data["moved"][0]["to_post"] == "y-gate-check" and data["added"] == []
    assert len(data["removed"]) == len(first) - 1
    assert_problem(_client(app, world, "coordinator").get(
        f"{API}/rosters/{world.roster.id}/diff?from=1"), 422)


# -- pagination and query counts ----------------------------------------------------------

def _more(db: Session, world: World, n: int) -> None:
    for k in range(n):
        v = Volunteer(code=f"p{k:04d}", name=f"页{k}", phone=f"+86137{k:08d}")
        db.add(v)
        db.flush()
        site = world.site_x if k % 2 == 0 else world.site_y
        for day in range(3):
            db.add(Assignment(version_id=world.version.id, volunteer_id=v.id,
                              post_id=site.posts[0].id, shift_id=world.shift.id,
                              date=world.roster.start + dt.timedelta(days=day)))
    db.flush()


def test_pages_cover_everything_once(app: Flask, world: World, db: Session) -> None:
    _more(db, world, 5)  # 6 + 15 assignments
    client = _client(app, world, "coordinator")
    url = f"{API}/rosters/{world.roster.id}/versions/1/assignments"
    seen: list[int] = []
    for page in range(1, 6):
        data = client.get(f"{url}?per_page=5&page={page}").get_json()
        assert data["total"] == 21 and data["per_page"] == 5
        seen += [row["id"] for row in data["items"]]
    assert len(seen) == len(set(seen)) == 21
    assert client.get(f"{url}?per_page=5&page=6").get_json()["items"] == []
    assert client.get(url).get_json()["per_page"] == 100  # the default
    day = world.roster.start.isoformat()
    by_day = client.get(f"{url}?date={day}&site_id={world.site_x.id}").get_json()
    assert by_day["total"] == 4 and {r["date"] for r in by_day["items"]} == {day}
    for path in ("/volunteers", "/rosters", f"/rosters/{world.roster.id}/solve-runs",
                 "/me/assignments"):
        role = "volunteer_a" if path.startswith("/me") else "coordinator"
        assert_problem(_client(app, world, role).get(f"{API}{path}?per_page=501"), 422)


def test_lists_run_a_fixed_number_of_queries(app: Flask, db: Session, db_engine: Engine,
                                             world: World) -> None:
    r = world.roster.id
    urls = {
        "coordinator": [f"{API}/rosters/{r}/versions/1/assignments", f"{API}/volunteers",
                        f"{API}/rosters", f"{API}/rosters/{r}/versions",
                        f"{API}/rosters/{r}/solve-runs"],
        "secretary_x": [f"{API}/rosters/{r}/versions/1/assignments", f"{API}/volunteers",
                        f"{API}/rosters/{r}/versions/1"],
        "volunteer_a": [f"{API}/me/assignments"],
    }

    def measure() -> dict[str, int]:
        return {f"{role} {url}": statements(db_engine, _client(app, world, role), url)
                for role, items in urls.items() for url in items}

    small = measure()
    _more(db, world, 40)
    for _k in range(5):
        db.add(SolveRun(roster_id=r, status="failed", requested_by="t", time_limit=1.0))
    db.flush()
    assert measure() == small


# -- the OpenAPI document -----------------------------------------------------------------

def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [
            r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_openapi_document_is_complete(app: Flask) -> None:
    response = app.test_client().get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.0") and doc["info"]["title"] == "Bastion API"
    for ref in _refs(doc):
        _resolve(doc, ref)  # every reference resolves
    schemes = doc["components"]["securitySchemes"]
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie"}
    assert schemes["csrf"]["name"] == "X-CSRFToken" and schemes["csrf"]["in"] == "header"
    documented = {(path, method.upper()) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule
            for converter in ("<id:", "<"):
                path = path.replace(converter, "{")
            path = path.replace(">", "}")
            served |= {(path, m) for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS")}
    assert documented == served
    for (path, method) in documented:
        operation = doc["paths"][path][method.lower()]
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), (path, method)
        if path.endswith("openapi.json"):
            assert operation["security"] == []
            continue
        assert "401" in responses, (path, method)
        expected_security = [{"session": [], "csrf": []}] if method == "POST" else [
            {"session": []}]
        assert operation["security"] == expected_security, (path, method)
        if method == "POST":
            assert "400" in responses and "422" in responses
        for code, item in responses.items():
            if code.startswith(("4", "5")):
                item = _resolve(doc, item["$ref"]) if "$ref" in item else item
                assert list(item["content"]) == [PROBLEM], (path, method, code)
