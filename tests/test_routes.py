"""Every route against every role, CSRF on every state-changing route, scope, query counts.

`ROUTES` lists every endpoint of the app with the status each role gets; a test fails
when the app has an endpoint the table does not list, so a new route cannot skip its
access check.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler import rosters
from scheduler.accounts.models import User
from scheduler.models import (
    Assignment,
    Demand,
    Preference,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    SolveRun,
    Unavailability,
    Volunteer,
)
from tests.fixtures.webhelp import login, statements
from web.i18n import local_now

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

ROLES = ("anonymous", "volunteer_a", "volunteer_b", "secretary_x", "secretary_y",
         "coordinator")


@dataclass
class World:
    site_x: Site
    site_y: Site
    shift: ShiftTemplate
    roster: Roster
    version: RosterVersion
    run: SolveRun
    users: dict[str, User]
    a_unavailable: Unavailability
    a_preference: Preference
    volunteers: list[Volunteer]
    db: Session


def build_world(db: Session, create_site: Callable[..., Site],
                create_shift: Callable[..., ShiftTemplate],
                create_roster: Callable[..., Roster], create_user: Callable[..., User]
                ) -> World:
    today = local_now().date()
    site_x = create_site("x-gate", name="甲卡口", posts=["x-gate-check"])
    site_y = create_site("y-gate", name="乙卡口", posts=["y-gate-check"])
    shift = create_shift("M", "08:00", "16:00", name="早班")
    roster = create_roster(start=today, days=3)
    for i, site in enumerate((site_x, site_y)):
        db.add(Demand(roster_id=roster.id, position=i, post_id=site.posts[0].id,
                      shift_id=shift.id, min=2, max=3, requires={"medical": 1}))
    version = RosterVersion(roster_id=roster.id, number=1, state="published",
                            created_by="test", unmet=[{
                                "post": "y-gate-check", "date": today.isoformat(),
                                "shift": "M", "missing": 1, "skill": "medical",
                                "reason": "缺 1 名医护：无人可排"}])
    run = SolveRun(roster_id=roster.id, status="finished", requested_by="test",
                   time_limit=10.0, objective=12.0, bound=10.0, coverage=0.9, elapsed=3.2)
    db.add_all([version, run])
    db.flush()
    users = {
        "volunteer_a": create_user("volunteer", phone="13800000001"),
        "volunteer_b": create_user("volunteer", phone="13800000002"),
        "secretary_x": create_user("secretary", sites=[site_x], branch="甲支部"),
        "secretary_y": create_user("secretary", sites=[site_y], branch="乙支部"),
        "coordinator": create_user("coordinator"),
    }
    people = [db.get(Volunteer, users[k].volunteer_id) for k in ("volunteer_a", "volunteer_b")]
    volunteers = [v for v in people if v is not None]
    for i, v in enumerate(volunteers):
        site = site_x if i % 2 == 0 else site_y
        for day in range(3):
            db.add(Assignment(version_id=version.id, volunteer_id=v.id, post_id=site.posts[0].id,
                              shift_id=shift.id, date=today + dt.timedelta(days=day)))
    a_id = users["volunteer_a"].volunteer_id
    assert a_id is not None
    unavailable = Unavailability(volunteer_id=a_id, date=today + dt.timedelta(days=5))
    preference = Preference(volunteer_id=a_id, date=today + dt.timedelta(days=6), want=True)
    db.add_all([unavailable, preference])
    db.flush()
    return World(site_x, site_y, shift, roster, version, run, users, unavailable, preference,
                 volunteers, db)


@pytest.fixture
def world(db: Session, create_site: Callable[..., Site],
          create_shift: Callable[..., ShiftTemplate], create_roster: Callable[..., Roster],
          create_user: Callable[..., User]) -> World:
    return build_world(db, create_site, create_shift, create_roster, create_user)


def _task(w: World) -> int:
    """A task at site X with a pending offer to volunteer A (made once per world)."""
    from scheduler.dispatch import services as dispatch
    from scheduler.dispatch.models import TaskOffer

    found: int | None = getattr(w, "task_id", None)
    if found is None:
        dispatch.ensure_task_types(w.db)
        due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
        task = dispatch.create_task(w.db, "test", type_code="grocery_run", site_id=w.site_x.id,
                                    requester_name="张三", requester_phone="13800138000",
                                    due_at=due)
        task.offers.append(TaskOffer(volunteer_id=w.volunteers[0].id, state="pending",
                                     offered_by="test", expires_at=due))
        task.status = "offered"
        w.db.flush()
        found = w.task_id = task.id  # type: ignore[attr-defined]
    return found


def _notice(w: World) -> int:
    """A failed notice to volunteer A (site X), made once per world."""
    from scheduler.notifications.models import Notification

    found: int | None = getattr(w, "notice_id", None)
    if found is None:
        row = Notification(volunteer_id=w.volunteers[0].id, kind="task_offer",
                           dedup_key="offer:routes", text_zh="测试", text_en="test",
                           status="failed", attempts=5, last_error="gateway 503")
        w.db.add(row)
        w.db.flush()
        found = w.notice_id = row.id  # type: ignore[attr-defined]
    return found


def _all(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def _only(roles: tuple[str, ...], ok: int = 200, anonymous: int = 302) -> dict[str, int]:
    out = {r: (ok if r in roles else 403) for r in ROLES}
    out["anonymous"] = anonymous
    return out


COORD = ("coordinator",)
VOLUNTEERS = ("volunteer_a", "volunteer_b")
SECRETARIES = ("secretary_x", "secretary_y")
STAFF = COORD + SECRETARIES
EVERYONE = COORD + SECRETARIES + VOLUNTEERS


def _api(roles: tuple[str, ...], ok: int = 200) -> dict[str, int]:
    """The JSON API: anonymous calls are 401, never a redirect to the login page."""
    return _only(roles, ok, anonymous=401)


def _vol(w: World, key: str) -> int:
    volunteer_id = w.users[key].volunteer_id
    assert volunteer_id is not None
    return volunteer_id

LOGGED_IN_HOME = {r: 302 for r in ROLES} | {"anonymous": 200}

# endpoint: (method, path for the world, status per role)
ROUTES: dict[str, tuple[str, Callable[[World], str], dict[str, int]]] = {
    "static": ("GET", lambda w: "/static/bastion.css", _all(200)),
    "health.healthz": ("GET", lambda w: "/healthz", _all(200)),
    "health.index": ("GET", lambda w: "/", LOGGED_IN_HOME),
    "auth.login": ("GET", lambda w: "/login", _all(200)),
    "auth.login_code": ("POST", lambda w: "/login/code", _all(422)),
    "auth.staff_login": ("GET", lambda w: "/login/staff", _all(200)),
    "auth.logout": ("POST", lambda w: "/logout", _all(302)),
    "auth.set_language": ("POST", lambda w: "/lang", _all(302)),
    # The token is the credential: an unknown one is 404 whoever asks (tests/test_calendars.py).
    "calendar.volunteer_feed": ("GET", lambda w: "/ical/" + "x" * 43 + ".ics", _all(404)),
    "calendar.site_feed": ("GET", lambda w: "/ical/site/" + "x" * 43 + ".ics", _all(404)),
    "dashboard.index": ("GET", lambda w: "/dashboard", _only(COORD)),
    "rosters.index": ("GET", lambda w: "/rosters", _only(COORD)),
    "rosters.new": ("GET", lambda w: "/rosters/new", _only(COORD)),
    "rosters.create": ("POST", lambda w: "/rosters/new", _only(COORD, 422)),  # empty form
    "rosters.show": ("GET", lambda w: f"/rosters/{w.roster.id}", _only(COORD)),
    "rosters.generate": ("POST", lambda w: f"/rosters/{w.roster.id}/generate",
                         _only(COORD, 302)),
    "rosters.run": ("GET", lambda w: f"/runs/{w.run.id}", _only(COORD)),
    "rosters.run_status": ("GET", lambda w: f"/runs/{w.run.id}.json", _only(COORD)),
    "rosters.version": ("GET", lambda w: f"/rosters/{w.roster.id}/versions/1", _only(COORD)),
    "rosters.publish": ("POST", lambda w: f"/rosters/{w.roster.id}/versions/1/publish",
                        _only(COORD, 303)),  # version 1 is published already: refused
    "rosters.diff": ("GET", lambda w: f"/rosters/{w.roster.id}/diff?a=1&b=1", _only(COORD)),
    "rosters.rules": ("GET", lambda w: f"/rosters/{w.roster.id}/rules", _only(COORD)),
    "rosters.export": ("GET", lambda w: f"/rosters/{w.roster.id}/export/roster.xlsx",
                       _only(COORD)),
    "imports.index": ("GET", lambda w: "/imports", _only(COORD)),
    "imports.upload": ("POST", lambda w: "/imports", _only(COORD, 400)),
    "imports.template": ("GET", lambda w: "/imports/templates/volunteers.xlsx", _only(COORD)),
    "me.index": ("GET", lambda w: "/me", _only(VOLUNTEERS)),
    "me.add_unavailability": ("POST", lambda w: "/me/unavailability",
                              _only(VOLUNTEERS, 303)),  # no date: refused, nothing added
    "me.delete_unavailability": (
        "POST", lambda w: f"/me/unavailability/{w.a_unavailable.id}/delete",
        _only(VOLUNTEERS, 302) | {"volunteer_b": 404}),
    "me.add_preference": ("POST", lambda w: "/me/preferences", _only(VOLUNTEERS, 303)),
    "me.reset_calendar": ("POST", lambda w: "/me/calendar/reset", _only(VOLUNTEERS, 302)),
    "me.delete_preference": (
        "POST", lambda w: f"/me/preferences/{w.a_preference.id}/delete",
        _only(VOLUNTEERS, 302) | {"volunteer_b": 404}),
    "branch.index": ("GET", lambda w: "/branch", _only(SECRETARIES)),
    "api.openapi": ("GET", lambda w: "/api/v1/openapi.json", _all(200)),
    "api.me": ("GET", lambda w: "/api/v1/me", _api(EVERYONE)),
    "api.my_assignments": ("GET", lambda w: "/api/v1/me/assignments", _api(VOLUNTEERS)),
    "api.roster_list": ("GET", lambda w: "/api/v1/rosters", _api(STAFF)),
    "api.roster_get": ("GET", lambda w: f"/api/v1/rosters/{w.roster.id}", _api(STAFF)),
    "api.version_list": ("GET", lambda w: f"/api/v1/rosters/{w.roster.id}/versions",
                         _api(STAFF)),
    "api.version_get": ("GET", lambda w: f"/api/v1/rosters/{w.roster.id}/versions/1",
                        _api(STAFF)),
    "api.assignment_list": (
        "GET", lambda w: f"/api/v1/rosters/{w.roster.id}/versions/1/assignments",
        _api(EVERYONE)),  # each sees their own part (tests/test_api.py)
    "api.publish": ("POST", lambda w: f"/api/v1/rosters/{w.roster.id}/versions/1/publish",
                    _api(COORD, 422)),  # no body: refused, nothing published
    "api.diff": ("GET", lambda w: f"/api/v1/rosters/{w.roster.id}/diff?from=1&to=1",
                 _api(COORD)),
    "api.run_list": ("GET", lambda w: f"/api/v1/rosters/{w.roster.id}/solve-runs", _api(COORD)),
    # After rosters.generate above: the run it queued is returned (200), nothing enqueued.
    "api.run_create": ("POST", lambda w: f"/api/v1/rosters/{w.roster.id}/solve-runs",
                       _api(COORD)),
    "api.run_get": ("GET", lambda w: f"/api/v1/solve-runs/{w.run.id}", _api(COORD)),
    "api.volunteer_list": ("GET", lambda w: "/api/v1/volunteers", _api(STAFF)),
    "api.volunteer_get": ("GET", lambda w: f"/api/v1/volunteers/{_vol(w, 'volunteer_a')}",
                          _api(STAFF) | {"secretary_y": 404}),  # A works at X only
    "dispatch.board": ("GET", lambda w: "/dispatch", _only(STAFF)),
    "dispatch.new": ("GET", lambda w: "/dispatch/tasks/new", _only(STAFF)),
    "dispatch.create": ("POST", lambda w: "/dispatch/tasks", _only(STAFF, 422)),  # empty form
    "dispatch.task": ("GET", lambda w: f"/dispatch/tasks/{_task(w)}",
                      _only(STAFF) | {"secretary_y": 404}),
    "dispatch.task_json": ("GET", lambda w: f"/dispatch/tasks/{_task(w)}.json",
                           _only(STAFF) | {"secretary_y": 404}),
    # No reason given: refused, nothing changes.
    "dispatch.act": ("POST", lambda w: f"/dispatch/tasks/{_task(w)}/cancel",
                     _only(STAFF, 422) | {"secretary_y": 404}),
    "dispatch.act_json": ("POST", lambda w: f"/dispatch/tasks/{_task(w)}/cancel.json",
                          _only(STAFF, 400) | {"secretary_y": 404}),  # no JSON body
    "dispatch.site_now": ("GET", lambda w: f"/sites/{w.site_x.id}/now",
                          _only(STAFF) | {"secretary_y": 404}),
    "absences.index": ("GET", lambda w: "/absences", _only(STAFF)),
    "notifications.index": ("GET", lambda w: "/notifications", _only(STAFF)),
    "notifications.retry": ("POST", lambda w: f"/notifications/{_notice(w)}/retry",
                            _only(STAFF, 303) | {"secretary_y": 404}),
    "absences.create": ("POST", lambda w: "/absences", _only(STAFF, 422)),  # empty form
    "me.tasks": ("GET", lambda w: "/me/tasks", _only(VOLUNTEERS)),
    # A has the offer and accepts it; B has none: 404, nothing changes.
    "me.task_action": ("POST", lambda w: f"/me/tasks/{_task(w)}/accept",
                       _only(VOLUNTEERS, 302) | {"volunteer_b": 404}),
    # Repairs: the proposal is about volunteer A's shifts at X (failed, so accept refuses
    # with 303); the absence of /repairs/new touches no published shift (coordinator 303).
    "repairs.new": ("POST", lambda w: f"/repairs/new?absence_id={repair_fixture(w)[1]}",
                    _only(COORD, 303) | {"secretary_x": 404, "secretary_y": 404}),
    "repairs.show": ("GET", lambda w: f"/repairs/{repair_fixture(w)[0]}",
                     _only(COORD + ("secretary_x",)) | {"secretary_y": 404}),
    "repairs.status": ("GET", lambda w: f"/repairs/{repair_fixture(w)[0]}.json",
                       _only(COORD + ("secretary_x",)) | {"secretary_y": 404}),
    "repairs.accept": ("POST", lambda w: f"/repairs/{repair_fixture(w)[0]}/accept",
                       _only(COORD + ("secretary_x",), 303) | {"secretary_y": 404}),
    "repairs.reject": ("POST", lambda w: f"/repairs/{repair_fixture(w)[0]}/reject",
                       _only(COORD + ("secretary_x",), 302) | {"secretary_y": 404}),
    "repairs.change": ("GET", lambda w: f"/rosters/{w.roster.id}/change",
                       _only(COORD + SECRETARIES)),
    "repairs.apply_change": ("POST", lambda w: f"/rosters/{w.roster.id}/change",
                             _only(COORD, 409) | {"secretary_x": 404, "secretary_y": 404}),
}


def repair_fixture(w: World) -> tuple[int, int]:
    """(a failed repair proposal about A's shifts at X, an absence touching no shift)."""
    from tests.fixtures.repairs import world_repair

    return world_repair(w.db, w.roster, w.users["volunteer_a"].volunteer_id,
                        w.users["volunteer_b"].volunteer_id)


def _client(app: Flask, world: World, role: str) -> FlaskClient:
    client = app.test_client()
    if role != "anonymous":
        world.db.refresh(world.users[role])  # a logout in an earlier request moved it on
        login(client, world.users[role])
    return client


def test_every_endpoint_is_in_the_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(ROUTES), (
        f"missing from ROUTES: {sorted(endpoints - set(ROUTES))}; "
        f"gone from the app: {sorted(set(ROUTES) - endpoints)}")


def test_every_view_declares_its_access(app: Flask) -> None:
    for endpoint, view in app.view_functions.items():
        if endpoint != "static":
            assert hasattr(view, "bastion_roles"), f"{endpoint}: no @login_required/@public"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_for_every_role(app: Flask, world: World, role: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF has its own test below
    enqueued: list[int] = []
    monkeypatch.setattr(rosters, "enqueue_run",
                        lambda session, run, queue="solve": enqueued.append(run.id))
    failures = []
    for endpoint, (method, path, expected) in ROUTES.items():
        client = _client(app, world, role)
        url = path(world)
        response = client.open(url, method=method)
        response.close()
        if response.status_code != expected[role]:
            failures.append(f"{method} {url} ({endpoint}): {response.status_code}, "
                            f"expected {expected[role]}")
        elif response.status_code == 302 and expected[role] == 302 and role == "anonymous" \
                and endpoint not in ("auth.logout", "auth.set_language"):
            assert response.headers["Location"].startswith("/login"), endpoint
    assert not failures, "\n".join(failures)
    assert len(enqueued) == (1 if role == "coordinator" else 0)


def test_state_changing_routes_refuse_a_missing_csrf_token(app: Flask, world: World) -> None:
    for endpoint, (method, path, _expected) in ROUTES.items():
        if method != "POST":
            continue
        for role in ("coordinator", "volunteer_a", "anonymous"):
            response = _client(app, world, role).post(path(world), data={"date": "2030-01-01"})
            assert response.status_code == 400, f"{endpoint} as {role}"


def test_json_requests_need_the_csrf_header(app: Flask, world: World, db: Session) -> None:
    client = _client(app, world, "volunteer_a")
    url = f"/me/unavailability/{world.a_unavailable.id}/delete"
    assert client.post(url, json={}).status_code == 400
    html = client.get("/me").get_data(as_text=True)
    token = html.split('name="csrf-token" content="')[1].split('"')[0]
    assert client.post(url, headers={"X-CSRFToken": token}).status_code == 302
    assert db.scalar(select(Unavailability.id).where(
        Unavailability.id == world.a_unavailable.id)) is None


def test_volunteer_cannot_touch_another_volunteers_availability(
        app: Flask, world: World, db: Session) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    b = _client(app, world, "volunteer_b")
    assert b.post(f"/me/unavailability/{world.a_unavailable.id}/delete").status_code == 404
    assert b.post(f"/me/preferences/{world.a_preference.id}/delete").status_code == 404
    assert db.get(Unavailability, world.a_unavailable.id) is not None
    assert db.get(Preference, world.a_preference.id) is not None
    # What B adds is B's, whatever the form says.
    day = (local_now().date() + dt.timedelta(days=3)).isoformat()
    response = b.post("/me/unavailability", data={"date": day, "volunteer_id":
                                                   world.users["volunteer_a"].volunteer_id})
    assert response.status_code == 302
    added = db.scalars(select(Unavailability).where(
        Unavailability.date == dt.date.fromisoformat(day))).one()
    assert added.volunteer_id == world.users["volunteer_b"].volunteer_id
    page_b = b.get("/me").get_data(as_text=True)
    a_name = db.get(Volunteer, world.users["volunteer_a"].volunteer_id).name  # type: ignore[union-attr]
    assert a_name not in page_b


def test_volunteer_sees_only_published_own_shifts(app: Flask, world: World,
                                                  db: Session) -> None:
    world.version.state = "draft"
    db.flush()
    page = _client(app, world, "volunteer_a").get("/me").get_data(as_text=True)
    assert "甲卡口" not in page
    world.version.state = "published"
    db.flush()
    page = _client(app, world, "volunteer_a").get("/me").get_data(as_text=True)
    assert "甲卡口" in page and "乙卡口" not in page  # A works at X only


def test_secretary_sees_only_their_branch(app: Flask, world: World) -> None:
    page = _client(app, world, "secretary_x").get("/branch").get_data(as_text=True)
    assert "甲卡口" in page and "乙卡口" not in page
    names = [v.name for v in world.volunteers]
    assert names[0] in page and names[1] not in page  # B works at Y
    other = _client(app, world, "secretary_y").get("/branch").get_data(as_text=True)
    assert "乙卡口" in other and "甲卡口" not in other


def test_grid_shows_unmet_reasons_and_filters(app: Flask, world: World) -> None:
    client = _client(app, world, "coordinator")
    html = client.get(f"/rosters/{world.roster.id}/versions/1").get_data(as_text=True)
    assert 'class="unmet"' in html and "缺 1 名医护：无人可排" in html
    only_x = client.get(f"/rosters/{world.roster.id}/versions/1?site=x-gate").get_data(
        as_text=True)
    assert "缺 1 名医护" not in only_x and world.volunteers[0].name in only_x


def test_coordinator_downloads_the_exports(app: Flask, world: World) -> None:
    from openpyxl import load_workbook

    client = _client(app, world, "coordinator")
    book = client.get(f"/rosters/{world.roster.id}/export/roster.xlsx")
    assert book.status_code == 200 and book.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in book.headers["Content-Disposition"]
    sheets = load_workbook(io.BytesIO(book.data)).sheetnames
    assert sheets[0] == "说明" and "甲卡口" in sheets and "乙卡口" in sheets
    hours = client.get(f"/rosters/{world.roster.id}/export/hours.csv?version=1")
    assert hours.status_code == 200 and hours.data.startswith("\ufeff".encode())
    assert world.volunteers[0].name in hours.data.decode("utf-8-sig")
    assert client.get(f"/rosters/{world.roster.id}/export/hours.csv?version=9").status_code == 404
    assert client.get(f"/rosters/{world.roster.id}/export/roster.pdf").status_code == 404


def test_publish_conflict_is_shown(app: Flask, world: World, db: Session) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    db.add(RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t"))
    db.flush()
    client = _client(app, world, "coordinator")
    stale = client.post(f"/rosters/{world.roster.id}/versions/2/publish",
                        data={"expected": ""}, follow_redirects=True)
    assert "发布冲突" in stale.get_data(as_text=True)
    ok = client.post(f"/rosters/{world.roster.id}/versions/2/publish", data={"expected": "1"})
    assert ok.status_code == 302
    assert rosters.published_version(db, world.roster.id).number == 2  # type: ignore[union-attr]


def test_run_progress_json_is_from_the_database(app: Flask, world: World) -> None:
    data = _client(app, world, "coordinator").get(f"/runs/{world.run.id}.json").get_json()
    assert data["objective"] == 12.0 and data["bound"] == 10.0
    assert data["coverage_percent"] == 90.0 and data["elapsed"] == 3.2
    assert data["active"] is False and data["percent"] == 100.0


def test_rule_settings_refuse_bad_values(app: Flask, world: World, db: Session) -> None:
    from scheduler.models import Rule

    app.config["WTF_CSRF_ENABLED"] = False
    db.add(Rule(rule_set_id=world.roster.rule_set_id, position=0, type="min_rest_hours",
                params={"hours": 12}, weight=None))
    db.flush()
    client = _client(app, world, "coordinator")
    url = f"/rosters/{world.roster.id}/rules"
    bad = client.post(url, data={"r0-hours": "twelve", "r0-weight": ""})
    assert bad.status_code == 422 and "rules[0].hours" in bad.get_data(as_text=True)
    negative = client.post(url, data={"r0-hours": "12", "r0-weight": "-3"})
    assert negative.status_code == 422
    assert client.post(url, data={"r0-hours": "10", "r0-weight": "5"}).status_code == 302
    rule = db.scalars(select(Rule).where(Rule.rule_set_id == world.roster.rule_set_id)).one()
    db.refresh(rule)
    assert (rule.params, rule.weight) == ({"hours": 10}, 5)


def _add_volunteers(db: Session, world: World, n: int) -> None:
    today = world.roster.start
    for k in range(n):
        v = Volunteer(code=f"more{k:04d}", name=f"增{k}", phone=f"+86136{k:08d}")
        db.add(v)
        db.flush()
        site = world.site_x if k % 2 == 0 else world.site_y
        for day in range(3):
            db.add(Assignment(version_id=world.version.id, volunteer_id=v.id,
                              post_id=site.posts[0].id, shift_id=world.shift.id,
                              date=today + dt.timedelta(days=day)))
    a_id = world.users["volunteer_a"].volunteer_id
    for k in range(n):
        db.add(Unavailability(volunteer_id=a_id, date=today + dt.timedelta(days=10 + k)))
    db.flush()


def test_pages_run_a_fixed_number_of_queries(app: Flask, db: Session, db_engine: Engine,
                                             world: World) -> None:
    pages = {
        "coordinator": [f"/rosters/{world.roster.id}/versions/1", "/dashboard",
                        f"/rosters/{world.roster.id}", "/rosters"],
        "volunteer_a": ["/me"],
        "secretary_x": ["/branch"],
    }

    def measure() -> dict[str, int]:
        counts = {}
        for role, urls in pages.items():
            client = _client(app, world, role)
            for url in urls:
                counts[url] = statements(db_engine, client, url)
        return counts

    measure()  # once first: the first visit of /me issues the volunteer's calendar link
    small = measure()
    _add_volunteers(db, world, 60)
    large = measure()
    assert large == small, f"queries grow with the data: {small} -> {large}"
    grid = _client(app, world, "coordinator").get(
        f"/rosters/{world.roster.id}/versions/1").get_data(as_text=True)
    assert "增59" in grid  # the new people are on the page


def test_coordinator_creates_a_roster_period(app: Flask, world: World, db: Session) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    client = _client(app, world, "coordinator")
    assert 'href="/rosters/new"' in client.get("/rosters").get_data(as_text=True)
    form = client.get("/rosters/new").get_data(as_text=True)
    assert 'name="days"' in form and f'value="{world.roster.id}"' in form  # copy its rules
    bad = client.post("/rosters/new", data={"name": "第二期", "start": "2022-13-01",
                                            "days": "63", "rules": "standard"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "无法识别的日期 &#39;2022-13-01&#39;" in html and "1 到 62 之间" in html
    assert 'value="第二期"' in html  # what was typed stays
    assert db.scalar(select(Roster.id).where(Roster.name == "第二期")) is None
    ok = client.post("/rosters/new", data={"name": "第二期", "start": "2022-04-11",
                                           "days": "7", "rules": str(world.roster.id)})
    assert ok.status_code == 302
    created = db.scalars(select(Roster).where(Roster.name == "第二期")).one()
    assert ok.headers["Location"] == f"/rosters/{created.id}"
    assert (created.start, created.days) == (dt.date(2022, 4, 11), 7)


def test_grid_cells_are_escaped_and_in_the_reader_s_language(app: Flask, world: World,
                                                             db: Session) -> None:
    world.volunteers[0].name = "<b>甲</b>"
    world.version.unmet = [{**world.version.unmet[0], "reason_en": "1 medic missing: <none>"}]
    db.flush()
    client = _client(app, world, "coordinator")
    url = f"/rosters/{world.roster.id}/versions/1"
    html = client.get(url).get_data(as_text=True)
    assert "&lt;b&gt;甲&lt;/b&gt;" in html and "<b>甲</b>" not in html
    assert 'class="unmet" title="缺 1 名医护：无人可排"' in html
    assert '<span class="muted">1/2</span>' in html  # one of the two needed at X
    client.set_cookie("lang", "en")
    english = client.get(url).get_data(as_text=True)
    assert "1 medic missing: &lt;none&gt;" in english and "缺 1 名医护" not in english
