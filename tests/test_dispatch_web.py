"""The secretaries' dispatch pages and JSON, the volunteer's tasks on the phone, absences.

Tasks are due a few hours from the real now (the pages use the clock); the sites are the
dispatch world's (`east`, `west`, `hotel`); secretary X has `east`, secretary Y `west`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler.absences.models import Absence
from scheduler.accounts.models import User
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task, TaskOffer
from scheduler.models import Assignment, AuditEvent, Roster, RosterVersion, Volunteer
from scheduler.repairs.models import RepairProposal
from tests.fixtures.webhelp import login, statements
from tests.fixtures.world import World
from web.i18n import local_now

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web", "tests.fixtures.dispatch"]


@dataclass
class Town:
    users: dict[str, User]
    volunteers: dict[str, Volunteer]
    world: World


@pytest.fixture
def town(app: Flask, world: World, create_user: Callable[..., User]) -> Town:
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF on these routes: tests/test_routes.py
    users = {
        "a": create_user("volunteer", phone="13700000001"),
        "b": create_user("volunteer", phone="13700000002"),
        "x": create_user("secretary", sites=[world.sites["east"]]),
        "x2": create_user("secretary", sites=[world.sites["east"]]),
        "y": create_user("secretary", sites=[world.sites["west"]]),
        "coordinator": create_user("coordinator"),
    }
    volunteers = {k: world.db.get(Volunteer, users[k].volunteer_id) for k in ("a", "b")}
    return Town(users, volunteers, world)  # type: ignore[arg-type]


def _as(app: Flask, town: Town, who: str) -> FlaskClient:
    client = app.test_client()
    login(client, town.users[who])
    return client


def _due(hours: float = 3) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def _task(town: Town, site: str = "east", *, urgency: str | None = None, hours: float = 3,
          type_code: str = "grocery_run", by: str | None = None) -> Task:
    return dispatch.create_task(
        town.world.db, by or town.users["x"].name, type_code=type_code,
        site_id=town.world.sites[site].id, requester_name="张三丰",
        requester_phone="13800138000", due_at=_due(hours), urgency=urgency,
        building="3栋", room="402")


def _offer_form(task: Task, volunteer: Volunteer, version: int | None = None) -> dict[str, Any]:
    return {"volunteer_id": volunteer.id,
            "expected_version": task.version if version is None else version}


def _html(response: Any) -> str:
    return str(response.get_data(as_text=True))


def test_board_shows_only_the_secretarys_sites_today_and_urgent_first(
        app: Flask, town: Town) -> None:
    normal = _task(town, "east", urgency="normal", hours=1)
    urgent = _task(town, "east", urgency="urgent", hours=2, type_code="medicine_delivery")
    later = _task(town, "east", urgency="urgent", hours=48, type_code="disinfection")
    west = _task(town, "west", type_code="parcel_distribution", by=town.users["y"].name)
    page = _html(_as(app, town, "x").get("/dispatch"))
    assert f"/dispatch/tasks/{west.id}" not in page and "西湖卡口" not in page
    positions = [page.index(f"/dispatch/tasks/{t.id}\"") for t in (urgent, normal, later)]
    if local_now().date() == (local_now() + dt.timedelta(hours=2)).date():
        assert positions == sorted(positions)  # today's urgent, today's normal, then later
    assert '<li class="urgent">' in page
    assert "张三丰" in page  # X took the call: she sees the requester
    other = _html(_as(app, town, "y").get("/dispatch"))
    assert f"/dispatch/tasks/{west.id}" in other and f"/dispatch/tasks/{urgent.id}" not in other
    everything = _html(_as(app, town, "coordinator").get("/dispatch"))
    assert all(f"/dispatch/tasks/{t.id}\"" in everything for t in (normal, urgent, west))
    assert "张*" in everything and "138****8000" in everything  # masked for the coordinator
    assert _as(app, town, "y").get(f"/dispatch/tasks/{urgent.id}").status_code == 404


def test_create_task_with_bad_fields_shows_every_error_and_saves_nothing(
        app: Flask, town: Town, db: Session) -> None:
    client = _as(app, town, "x")
    before = db.scalars(select(Task.id)).all()
    bad = client.post("/dispatch/tasks", data={
        "type": "grocery_run", "site": town.world.sites["west"].id,  # not X's site
        "requester_name": " ", "requester_phone": "12ab", "due_at": "tomorrow",
        "duration_minutes": "ninety", "urgency": "asap"})
    page = _html(bad)
    assert bad.status_code == 422
    for field in ("site", "requester_name", "requester_phone", "due_at", "duration_minutes",
                  "urgency"):
        assert f'id="{field}-error"' in page, field
    assert "tomorrow" in page and "ninety" in page and "12ab" in page
    assert db.scalars(select(Task.id)).all() == before
    due = (local_now() + dt.timedelta(hours=5)).replace(second=0, microsecond=0)
    ok = client.post("/dispatch/tasks", data={
        "type": "medicine_delivery", "site": town.world.sites["east"].id, "building": "5栋",
        "room": "101", "requester_name": "李四", "requester_phone": "139 0013 9000",
        "due_at": due.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "", "urgency": "",
        "notes": "胰岛素"})
    assert ok.status_code == 302
    task = db.scalars(select(Task).where(Task.id.not_in(before))).one()
    assert task.due_at == due.astimezone(dt.UTC)  # the form's time is Asia/Shanghai
    assert (task.duration_minutes, task.urgency) == (45, "today")  # the type's defaults
    assert task.requester_phone == "+8613900139000"


def test_offer_accept_start_done_on_the_phone(app: Flask, town: Town, db: Session) -> None:
    task = _task(town)
    a = town.volunteers["a"]
    page = _html(_as(app, town, "x").get(f"/dispatch/tasks/{task.id}"))
    assert "推荐志愿者" in page and a.name in page
    assert f'name="expected_version" value="{task.version}"' in page
    sent = _as(app, town, "x").post(f"/dispatch/tasks/{task.id}/offer",
                                    data=_offer_form(task, a))
    assert sent.status_code == 302
    phone = _as(app, town, "a")
    offered = _html(phone.get("/me/tasks"))
    assert "3栋" in offered and "张**" in offered and "138****8000" in offered
    assert "13800138000" not in offered  # masked until accepted
    assert phone.post(f"/me/tasks/{task.id}/accept").status_code == 302
    accepted = _html(phone.get("/me/tasks"))
    assert "张三丰" in accepted and 'href="tel:+8613800138000"' in accepted
    assert phone.post(f"/me/tasks/{task.id}/start").status_code == 302
    db.refresh(task)
    assert task.status == "in_progress"
    assert phone.post(f"/me/tasks/{task.id}/done").status_code == 302
    db.refresh(task)
    assert task.status == "done" and task.finished_at is not None
    actions = db.scalars(select(AuditEvent.action).where(
        AuditEvent.entity == "task", AuditEvent.entity_id == str(task.id))
        .order_by(AuditEvent.id)).all()
    assert actions == ["task.create", "task.offer", "task.accept", "task.start",
                       "task.complete"]
    assert "暂无任务" in _html(phone.get("/me/tasks"))


def test_secretary_starts_and_fails_a_task(app: Flask, town: Town, db: Session) -> None:
    task = _task(town)
    x = _as(app, town, "x")
    x.post(f"/dispatch/tasks/{task.id}/offer", data=_offer_form(task, town.volunteers["a"]))
    _as(app, town, "a").post(f"/me/tasks/{task.id}/accept")
    db.refresh(task)
    assert x.post(f"/dispatch/tasks/{task.id}/start",
                  data={"expected_version": task.version}).status_code == 302
    db.refresh(task)
    no_reason = x.post(f"/dispatch/tasks/{task.id}/fail",
                       data={"expected_version": task.version})
    assert no_reason.status_code == 422 and task.status == "in_progress"
    assert x.post(f"/dispatch/tasks/{task.id}/fail", data={
        "expected_version": task.version, "reason": "居民不在家"}).status_code == 302
    db.refresh(task)
    assert (task.status, task.outcome) == ("failed", "居民不在家")


def test_a_decline_offers_the_task_to_the_next_candidate(app: Flask, town: Town,
                                                        db: Session) -> None:
    task = _task(town)
    a, b = town.volunteers["a"], town.volunteers["b"]
    _as(app, town, "x").post(f"/dispatch/tasks/{task.id}/offer", data=_offer_form(task, a))
    assert _as(app, town, "a").post(f"/me/tasks/{task.id}/decline",
                                    data={"reason": "在隔离"}).status_code == 302
    offers = db.scalars(select(TaskOffer).where(TaskOffer.task_id == task.id)
                        .order_by(TaskOffer.id)).all()
    assert [(o.volunteer_id, o.state) for o in offers] == [(a.id, "declined"),
                                                          (b.id, "pending")]
    assert "3栋" in _html(_as(app, town, "b").get("/me/tasks"))
    assert "3栋" not in _html(_as(app, town, "a").get("/me/tasks"))


def test_two_secretaries_offering_the_same_version_one_wins(app: Flask, town: Town,
                                                            db: Session) -> None:
    task = _task(town)
    seen = task.version
    a, b = town.volunteers["a"], town.volunteers["b"]
    first = _as(app, town, "x").post(f"/dispatch/tasks/{task.id}/offer",
                                     data=_offer_form(task, a, seen))
    second = _as(app, town, "x2").post(f"/dispatch/tasks/{task.id}/offer",
                                       data=_offer_form(task, b, seen))
    assert first.status_code == 302 and second.status_code == 409
    page = _html(second)
    assert "冲突" in page and f"{seen}" in page and "已派单" in page and a.name in page
    pending = db.scalars(select(TaskOffer.volunteer_id).where(
        TaskOffer.task_id == task.id, TaskOffer.state == "pending")).all()
    assert pending == [a.id]
    # The JSON answer: 409 application/problem+json with the current state.
    stale = _as(app, town, "coordinator").post(
        f"/dispatch/tasks/{task.id}/cancel.json",
        json={"expected_version": seen, "reason": "重复"})
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    body = stale.get_json()
    assert body["status"] == 409 and body["current"]["version"] > seen
    assert body["current"]["status"] == "offered" and body["current"]["pending"] == [a.id]
    state = _as(app, town, "coordinator").get(f"/dispatch/tasks/{task.id}.json").get_json()
    ok = _as(app, town, "coordinator").post(
        f"/dispatch/tasks/{task.id}/cancel.json",
        json={"expected_version": state["version"], "reason": "重复"})
    assert ok.status_code == 200 and ok.get_json()["status"] == "cancelled"


def test_json_offer_refusals_say_why(app: Flask, town: Town) -> None:
    task = _task(town)
    client = _as(app, town, "x")
    missing = client.post(f"/dispatch/tasks/{task.id}/offer.json", json={"volunteer_id": 1})
    assert missing.status_code == 422 and "expected_version" in missing.get_json()["errors"]
    unknown = client.post(f"/dispatch/tasks/{task.id}/offer.json",
                          json={"volunteer_id": 999999, "expected_version": task.version})
    assert unknown.status_code == 422 and "volunteer_id" in unknown.get_json()["errors"]
    data = client.get(f"/dispatch/tasks/{task.id}.json").get_json()
    assert [s["volunteer"] for s in data["suggestions"]] == [
        town.volunteers["a"].id, town.volunteers["b"].id]
    assert data["requester"] == {"name": "张三丰", "phone": "+8613800138000", "masked": False}


def test_urgent_task_is_auto_dispatched(app: Flask, town: Town, db: Session) -> None:
    task = _task(town, urgency="urgent")
    page = _html(_as(app, town, "x").get(f"/dispatch/tasks/{task.id}"))
    assert "自动派单" in page
    assert _as(app, town, "x").post(f"/dispatch/tasks/{task.id}/auto",
                                    data={"expected_version": task.version}).status_code == 302
    db.refresh(task)
    assert task.status == "offered" and task.pending_ids == [town.volunteers["a"].id]
    normal = _task(town, urgency="normal")
    refused = _as(app, town, "x").post(f"/dispatch/tasks/{normal.id}/auto",
                                       data={"expected_version": normal.version})
    assert refused.status_code == 409 and "不是紧急任务" in _html(refused)


def test_a_volunteer_can_never_act_on_another_volunteers_offer(app: Flask, town: Town,
                                                               db: Session) -> None:
    task = _task(town)
    a = town.volunteers["a"]
    _as(app, town, "x").post(f"/dispatch/tasks/{task.id}/offer", data=_offer_form(task, a))
    b = _as(app, town, "b")
    for action in ("accept", "decline", "start", "done"):
        assert b.post(f"/me/tasks/{task.id}/{action}").status_code == 404, action
    assert "3栋" not in _html(b.get("/me/tasks"))
    _as(app, town, "a").post(f"/me/tasks/{task.id}/accept")
    for action in ("start", "done"):
        assert b.post(f"/me/tasks/{task.id}/{action}").status_code == 404, action
    db.refresh(task)
    assert task.status == "accepted" and task.assignee_ids == [a.id]


def test_board_and_my_tasks_run_a_fixed_number_of_queries(
        app: Flask, town: Town, db: Session, db_engine: Engine) -> None:
    def grow(n: int) -> None:
        for k in range(n):
            task = _task(town, hours=1 + k, urgency=("urgent", "today", "normal")[k % 3])
            for v in town.volunteers.values():
                db.add(TaskOffer(task=task, volunteer_id=v.id, state="pending",
                                 offered_by="t", expires_at=_due(10)))
            task.status = "offered"
        db.flush()

    grow(1)
    x, a = _as(app, town, "x"), _as(app, town, "a")
    small = (statements(db_engine, x, "/dispatch"), statements(db_engine, a, "/me/tasks"))
    grow(25)
    large = (statements(db_engine, x, "/dispatch"), statements(db_engine, a, "/me/tasks"))
    assert large == small
    assert _html(x.get("/dispatch")).count('<li class="') >= 26


def _absent(town: Town, volunteer: Volunteer, days: int = 2) -> Absence:
    now = dt.datetime.now(dt.UTC)
    today = local_now().date()
    row = Absence(volunteer_id=volunteer.id, from_date=today,
                  to_date=today + dt.timedelta(days=days), starts_at=now,
                  ends_at=now + dt.timedelta(days=days), reason="sick", created_by="t")
    town.world.db.add(row)
    town.world.db.flush()
    return row


def _proposal(town: Town, volunteer: Volunteer, status: str = "ready") -> RepairProposal:
    now = dt.datetime.now(dt.UTC)
    row = RepairProposal(roster_id=town.world.roster.id, base_number=1,
                         volunteer_id=volunteer.id, starts_at=now,
                         ends_at=now + dt.timedelta(days=1), status=status, created_by="t")
    town.world.db.add(row)
    town.world.db.flush()
    return row


def test_board_with_one_click_offers_absences_and_repairs_runs_a_fixed_number_of_queries(
        app: Flask, town: Town, db: Session, db_engine: Engine,
        create_volunteer: Callable[..., Volunteer]) -> None:
    world = town.world
    allowed = world.sites["east"]

    def grow(n: int) -> None:
        for k in range(n):
            _task(town, hours=1 + k, urgency=("urgent", "today", "normal")[k % 3])
            v = create_volunteer(f"丁{k}", allowed_sites=[allowed], sites_restricted=True)
            _absent(town, v)
            _proposal(town, v, ("queued", "running", "ready")[k % 3])

    grow(1)
    x = _as(app, town, "x")
    small = statements(db_engine, x, "/dispatch")
    grow(12)
    assert statements(db_engine, x, "/dispatch") == small
    page = _html(x.get("/dispatch"))
    assert page.count('name="volunteer_id"') == 13  # one button per open task
    assert page.count("/repairs/") == 13 and page.count("病假") == 13


def test_the_board_offers_each_open_task_to_its_best_candidate_in_one_click(
        app: Flask, town: Town, db: Session) -> None:
    a, b = town.volunteers["a"], town.volunteers["b"]
    first, second = _task(town, hours=2), _task(town, hours=5)
    # A is busy at the first task's hours, B at the second's: each has one best candidate.
    for who, hours in ((a, 2), (b, 5)):
        busy = _task(town, hours=hours)
        busy.status = "accepted"
        db.add(TaskOffer(task=busy, volunteer_id=who.id, state="accepted",
                         offered_by="t", expires_at=_due(1), accepted_at=_due(0)))
    db.flush()
    x = _as(app, town, "x")
    best = {t.id: dispatch.suggest(db, t.id, 1).candidates[0] for t in (first, second)}
    assert (best[first.id].volunteer_id, best[second.id].volunteer_id) == (b.id, a.id)
    page = _html(x.get("/dispatch"))
    for t in (first, second):
        form = page.split(f'/dispatch/tasks/{t.id}/offer"')[1].split("</form>")[0]
        assert f'name="expected_version" value="{t.version}"' in form
        assert f'name="volunteer_id" value="{best[t.id].volunteer_id}"' in form
        assert best[t.id].name in form
    reasons = "；".join(r.zh for r in best[first.id].reasons)
    assert reasons in page
    # The click offers the task; a second click with the old version is a 409.
    response = x.post(f"/dispatch/tasks/{first.id}/offer",
                      data=_offer_form(first, b, version=1))
    assert response.status_code == 302
    db.refresh(first)
    assert (first.status, first.pending_ids) == ("offered", [b.id])
    assert x.post(f"/dispatch/tasks/{first.id}/offer",
                  data=_offer_form(first, a, version=1)).status_code == 409
    # An offered task with no free place has no button any more.
    assert f'/dispatch/tasks/{first.id}/offer"' not in _html(x.get("/dispatch"))


# -- absences ---------------------------------------------------------------------------


def _published_today(town: Town, volunteer: Volunteer, post: str, day: int) -> Assignment:
    db = town.world.db
    today = local_now().date()
    roster = Roster(name="本周", start=today, days=3, status="published")
    version = RosterVersion(roster=roster, number=1, state="published", created_by="t")
    db.add_all([roster, version])
    db.flush()
    row = Assignment(version_id=version.id, volunteer_id=volunteer.id,
                     post_id=town.world.posts[post].id, shift_id=town.world.shifts["M"].id,
                     date=today + dt.timedelta(days=day))
    db.add(row)
    db.flush()
    return row


def test_recording_an_absence_lists_affected_shifts_and_returns_tasks(
        app: Flask, town: Town, db: Session) -> None:
    a = town.volunteers["a"]
    _published_today(town, a, "east-gate", 1)
    task = _task(town, hours=30)
    task.offers.append(TaskOffer(volunteer_id=a.id, state="accepted", offered_by="t",
                                 expires_at=_due(1), accepted_at=_due(0)))
    task.status = "accepted"
    db.flush()
    x = _as(app, town, "x")
    found = _html(x.get("/absences?q=0000001"))  # by phone digits
    assert f'value="{a.id}"' in found and town.volunteers["b"].name not in found
    tomorrow = (local_now().date() + dt.timedelta(days=1)).isoformat()
    after = (local_now().date() + dt.timedelta(days=2)).isoformat()
    page = x.post("/absences", data={"volunteer_id": a.id, "from": tomorrow,
                                     "from_shift": "", "to": after, "to_shift": "",
                                     "reason": "sick"})
    html = _html(page)
    assert page.status_code == 200
    assert "东塘小区" in html and "east-gate" in html  # the affected shift
    assert f"/dispatch/tasks/{task.id}" in html  # back in the queue
    absence_id = db.scalars(select(Absence.id).where(Absence.volunteer_id == a.id)).one()
    assert "生成调整方案 (repair)" in html  # a form that asks for the repair proposal
    assert f'action="/repairs/new?absence_id={absence_id}"' in html
    db.refresh(task)
    assert task.status == "open" and task.assignee_ids == []


def test_absence_form_refusals(app: Flask, town: Town, db: Session) -> None:
    a = town.volunteers["a"]
    _published_today(town, a, "east-gate", 1)
    today = local_now().date().isoformat()
    y = _as(app, town, "y")  # A works at east, Y has west: not one of hers
    refused = y.post("/absences", data={"volunteer_id": a.id, "from": today, "to": today,
                                        "reason": "sick"})
    assert refused.status_code == 422 and f"没有志愿者 {a.id}" in _html(refused)
    assert f'name="volunteer_id" value="{a.id}"' not in _html(y.get(f"/absences?q={a.name}"))
    assert f'name="volunteer_id" value="{a.id}"' in _html(
        _as(app, town, "x").get(f"/absences?q={a.name}"))
    x = _as(app, town, "x")
    bad = x.post("/absences", data={"volunteer_id": a.id, "from": "soon", "to": today,
                                    "reason": "bored"})
    assert bad.status_code == 422 and "soon" in _html(bad) and "sick/quarantined" in _html(bad)
    backwards = x.post("/absences", data={
        "volunteer_id": a.id, "from": today, "to": "2000-01-01", "reason": "personal"})
    assert backwards.status_code == 422 and "结束时间早于开始时间" in _html(backwards)
    from scheduler.absences.models import Absence
    assert db.scalars(select(Absence)).all() == []
    # The coordinator may record anyone's absence.
    assert _as(app, town, "coordinator").post("/absences", data={
        "volunteer_id": town.volunteers["b"].id, "from": today, "to": today,
        "reason": "quarantined"}).status_code == 200


def test_the_in_process_clock_starts_with_the_first_request_unless_told_not_to(
        db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler import jobs
    from web import create_app

    started: list[str] = []
    monkeypatch.setattr(jobs, "start_local_clock", lambda: started.append("clock"))
    base = {"SECRET_KEY": "t", "REDIS_URL": None, "TESTING": False, "CLOCK": True}
    app = create_app(base)
    assert started == []  # not at create_app: CLI commands build the app too
    app.test_client().get("/healthz")
    app.test_client().get("/healthz")
    assert started == ["clock"]
    # Nor for an app whose database is not the one the periodic jobs use.
    for off in ({"TESTING": True}, {"CLOCK": False}, {"REDIS_URL": "redis://127.0.0.1:6379/0"},
                {"DB_BIND": db.bind}, {"DATABASE_URL": "sqlite://"}):
        create_app({**base, **off}).test_client().get("/healthz")
    assert started == ["clock"]
