"""Repairs (scheduler/repairs/): absence → proposal job → accept; stale; failures; manual edits.

The job runs in a thread (`queues.wait_local`), so these tests use a committed database
of their own per test (not the rolled-back `db` session): `roster_problem` lists every
active volunteer of the district, and other tests' people must not become replacements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from scheduler import queues, rosters
from scheduler.absences.services import record_absence
from scheduler.db import make_engine, session_scope, sessionmaker_for, upgrade, utcnow
from scheduler.localtime import local_date
from scheduler.models import Assignment, AuditEvent, RosterVersion, Volunteer
from scheduler.problems import load_problem, store_solution
from scheduler.repairs import services
from scheduler.repairs.models import RepairProposal

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

ACTOR = "书记甲"


@pytest.fixture
def engine(backend: str, new_database: Callable[[str], str],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = new_database(backend)
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)  # the job's session_scope() finds it here
    monkeypatch.delenv("REDIS_URL", raising=False)  # jobs run in-process
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _days() -> list[str]:
    # Tomorrow on: nothing is in the frozen past.
    first = local_date(utcnow()) + dt.timedelta(days=1)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(3)]


def _problem() -> dict[str, Any]:
    d = _days()
    return {
        "format": "roster-problem/1", "name": "修复测试", "timezone": "Asia/Shanghai",
        "start": d[0], "days": 3,
        "shifts": [{"id": "M", "name": "早班", "start": "08:00", "end": "16:00"},
                   {"id": "E", "name": "晚班", "start": "16:00", "end": "23:00"}],
        "sites": [{"id": "gate", "name": "东卡口", "kind": "checkpoint",
                   "posts": [{"id": "gate-check", "name": "查验"}]}],
        "demand": [{"post": "gate-check", "shift": "M", "min": 1, "max": 2}],
        "volunteers": [
            {"id": "va", "name": "王芳"},
            {"id": "vb", "name": "李强", "max_shifts": 1},
            {"id": "vc", "name": "张敏",
             "preferences": [{"date": d[2], "want": False, "weight": 7}]},
        ],
        "rules": [],
    }


def _published(engine: Engine) -> tuple[int, dict[str, int]]:
    """The roster with version 1 published: va on days 1-2, vb on day 3; vc free."""
    d = _days()
    with session_scope(engine) as s:
        roster = load_problem(s, _problem(), actor=ACTOR)
        solution = {"format": "roster-solution/1", "status": "FEASIBLE", "assignments": [
            {"volunteer": "va", "date": d[0], "shift": "M", "post": "gate-check"},
            {"volunteer": "va", "date": d[1], "shift": "M", "post": "gate-check"},
            {"volunteer": "vb", "date": d[2], "shift": "M", "post": "gate-check"}]}
        version = store_solution(s, roster.id, solution, actor=ACTOR)
        rosters.publish(s, roster.id, version.number, None, ACTOR)
        ids = {v.code: v.id for v in s.scalars(select(Volunteer))}
        return roster.id, ids


def _absence(engine: Engine, volunteer_id: int, first: int = 0, last: int = 1,
             from_shift: str | None = None) -> int:
    d = [dt.date.fromisoformat(x) for x in _days()]
    with session_scope(engine) as s:
        return record_absence(s, volunteer_id, d[first], from_shift, d[last], None, "sick",
                              ACTOR).absence.id


def _request(engine: Engine, roster_id: int, absence_id: int) -> RepairProposal:
    with make_session(engine) as s:
        proposal = services.request_repair(s, roster_id, absence_id, ACTOR, time_limit=5)
    assert queues.wait_local(timeout=60)
    with make_session(engine) as s:
        found = s.get(RepairProposal, proposal.id)
        assert found is not None
        return found


def make_session(engine: Engine) -> Any:
    return sessionmaker_for(engine)()


def _rows(engine: Engine, roster_id: int, number: int) -> dict[tuple[str, str], Assignment]:
    with session_scope(engine) as s:
        rows = s.execute(select(Volunteer.code, Assignment).join(
            Assignment, Assignment.volunteer_id == Volunteer.id).join(
            RosterVersion, Assignment.version_id == RosterVersion.id).where(
            RosterVersion.roster_id == roster_id, RosterVersion.number == number)).all()
        return {(code, a.date.isoformat()): a for code, a in rows}


def _versions(engine: Engine, roster_id: int) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(RosterVersion).where(
            RosterVersion.roster_id == roster_id)) or 0


def test_absence_to_accepted_repair(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    absence_id = _absence(engine, ids["va"])
    proposal = _request(engine, roster_id, absence_id)
    assert proposal.status == "ready", proposal.error
    assert proposal.base_number == 1
    d = _days()
    added = {(c["volunteer"], c["date"], c["replaces"]) for c in proposal.changes
             if c["action"] == "added"}
    removed = {(c["volunteer"], c["date"]) for c in proposal.changes if c["action"] == "removed"}
    # vb may work once and has their shift: only vc can step in, on both vacated days.
    assert added == {("vc", d[0], "va"), ("vc", d[1], "va")}
    assert removed == {("va", d[0]), ("va", d[1])}
    assert proposal.uncovered == []
    assert all("张敏" in c["reason"] and "顶替 王芳" in c["reason"]
               for c in proposal.changes if c["action"] == "added")

    before = _rows(engine, roster_id, 1)
    with make_session(engine) as s:
        version = services.accept(s, proposal.id, ACTOR, 1)
        s.commit()
    assert version.number == 2
    with session_scope(engine) as s:
        assert rosters.published_version(s, roster_id).number == 2  # type: ignore[union-attr]
        p = s.get(RepairProposal, proposal.id)
        assert p is not None and (p.status, p.accepted_number, p.decided_by) == (
            "accepted", 2, ACTOR)
        actions = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.actor == ACTOR, AuditEvent.action.like("assignment.repair_%")))]
        replaced = [e.after for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "assignment.repair_added"))]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "repair_proposal.accept")) == 1
    assert sorted(actions) == ["assignment.repair_added"] * 2 + ["assignment.repair_removed"] * 2
    assert {(r["volunteer"], r["replaces"]) for r in replaced} == {("vc", "va")}
    after = _rows(engine, roster_id, 2)
    assert not any(code == "va" for code, _ in after)  # no shift in the absence
    assert {k for k in after if k[0] == "vc"} == {("vc", d[0]), ("vc", d[1])}
    kept = after[("vb", d[2])]
    assert (kept.uid, kept.revision) == (before[("vb", d[2])].uid, before[("vb", d[2])].revision)


def test_partial_day_absence_keeps_the_shifts_before_it(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    # From the evening shift of day 1: va's morning shift that day stays.
    absence_id = _absence(engine, ids["va"], 0, 1, from_shift="E")
    proposal = _request(engine, roster_id, absence_id)
    assert proposal.status == "ready", proposal.error
    d = _days()
    assert {(c["volunteer"], c["date"], c["action"]) for c in proposal.changes} == {
        ("va", d[1], "removed"), ("vc", d[1], "added")}


def test_stale_proposal_is_refused_and_nothing_written(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    proposal = _request(engine, roster_id, _absence(engine, ids["va"]))
    assert proposal.status == "ready"
    with session_scope(engine) as s:  # someone publishes another version meanwhile
        solution = {"format": "roster-solution/1", "status": "FEASIBLE", "assignments": [
            {"volunteer": "vb", "date": _days()[2], "shift": "M", "post": "gate-check"}]}
        v = store_solution(s, roster_id, solution, actor="协调员")
        rosters.publish(s, roster_id, v.number, 1, "协调员")
    versions = _versions(engine, roster_id)
    with make_session(engine) as s:
        with pytest.raises(services.StaleProposal, match="version 1.*version 2"):
            services.accept(s, proposal.id, ACTOR, 2)
        s.commit()  # keeps the stale mark; the roster is untouched
    assert _versions(engine, roster_id) == versions
    with session_scope(engine) as s:
        assert rosters.published_version(s, roster_id).number == 2  # type: ignore[union-attr]
        assert s.get(RepairProposal, proposal.id).status == "stale"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.like("assignment.repair_%"))) == 0


def test_expected_number_mismatch_is_a_publish_conflict(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    proposal = _request(engine, roster_id, _absence(engine, ids["va"]))
    with make_session(engine) as s:
        with pytest.raises(rosters.PublishConflict):
            services.accept(s, proposal.id, ACTOR, None)
        s.rollback()
    assert _versions(engine, roster_id) == 1


def test_job_failure_is_recorded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    roster_id, ids = _published(engine)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(services.solver, "repair", broken)
    proposal = _request(engine, roster_id, _absence(engine, ids["va"]))
    assert proposal.status == "failed"
    assert proposal.error == "RuntimeError: solver exploded"
    assert proposal.result is None
    with make_session(engine) as s:
        with pytest.raises(services.RepairError, match="failed"):
            services.accept(s, proposal.id, ACTOR, 1)
    assert _versions(engine, roster_id) == 1


def test_request_errors_write_nothing(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    with make_session(engine) as s:
        with pytest.raises(services.RepairError, match="absence"):
            services.request_repair(s, roster_id, 999_999, ACTOR)
        far = dt.date.fromisoformat(_days()[0]) + dt.timedelta(days=30)
        absence = record_absence(s, ids["va"], far, None, far, None, "sick", ACTOR).absence
        s.flush()
        with pytest.raises(services.RepairError, match="outside the roster"):
            services.request_repair(s, roster_id, absence.id, ACTOR)
        s.rollback()
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(RepairProposal)) == 0


def _change(action: str, volunteer: str, day: int, **extra: Any) -> dict[str, Any]:
    return {"action": action, "volunteer": volunteer, "date": _days()[day], "shift": "M",
            "post": "gate-check", **extra}


def test_manual_hard_breach_is_refused_with_the_reason(engine: Engine) -> None:
    roster_id, ids = _published(engine)
    _absence(engine, ids["vc"], 2, 2)
    with make_session(engine) as s:
        preview = services.preview_change(s, roster_id, _change("added", "vc", 2))
        assert [v["rule"] for v in preview.hard] == ["availability"]
        assert "张敏" in preview.hard[0]["message"] and preview.hard[0]["message_en"]
        with pytest.raises(services.ChangeRefused) as refused:
            services.apply_change(s, roster_id, _change("added", "vc", 2), ACTOR, 1,
                                  confirm_soft=True)
        assert refused.value.preview.hard[0]["rule"] == "availability"
        s.commit()
    assert _versions(engine, roster_id) == 1
    with make_session(engine) as s:
        with pytest.raises(services.RepairError, match="change.post"):
            services.preview_change(s, roster_id, _change("added", "vc", 1, post="nowhere"))


def test_manual_soft_breach_needs_confirmation(engine: Engine) -> None:
    roster_id, _ids = _published(engine)
    change = _change("added", "vc", 2)  # vc would rather not work on day 3
    with make_session(engine) as s:
        preview = services.preview_change(s, roster_id, change)
        assert not preview.hard and [v["rule"] for v in preview.soft] == ["preferences"]
        assert preview.soft[0]["cost_change"] == 7
        with pytest.raises(services.NeedsConfirmation):
            services.apply_change(s, roster_id, change, ACTOR, 1)
        s.rollback()
    assert _versions(engine, roster_id) == 1
    before = _rows(engine, roster_id, 1)
    with make_session(engine) as s:
        version = services.apply_change(s, roster_id, change, ACTOR, 1, confirm_soft=True)
        s.commit()
    after = _rows(engine, roster_id, version.number)
    assert ("vc", _days()[2]) in after and len(after) == 4
    assert all(after[k].uid == before[k].uid for k in before)
    with session_scope(engine) as s:
        assert rosters.published_version(s, roster_id).number == 2  # type: ignore[union-attr]
        event = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "assignment.manual_added")).one()
        assert event.after["soft_breaches"][0]["rule"] == "preferences"


def test_manual_move_and_stale_expected_number(engine: Engine) -> None:
    roster_id, _ids = _published(engine)
    d = _days()
    move = _change("moved", "vb", 0, **{"from": {"date": d[2], "shift": "M",
                                                   "post": "gate-check"}})
    with make_session(engine) as s:
        with pytest.raises(rosters.PublishConflict):
            services.apply_change(s, roster_id, move, ACTOR, 7)
        s.rollback()
    assert _versions(engine, roster_id) == 1
    with make_session(engine) as s:
        services.apply_change(s, roster_id, move, ACTOR, 1, confirm_soft=True)
        s.commit()
    after = _rows(engine, roster_id, 2)
    assert ("vb", d[0]) in after and ("vb", d[2]) not in after


# -- the web pages (rolled-back `db`, the route tests' world) ----------------------------

def test_proposal_page_shows_the_diff_in_scope_and_a_stale_accept_is_409(
        app: Any, world: Any, db: Any) -> None:
    from tests.test_routes import _client, repair_fixture

    app.config["WTF_CSRF_ENABLED"] = False
    proposal = db.get(RepairProposal, repair_fixture(world)[0])
    day = (world.roster.start + dt.timedelta(days=1)).isoformat()
    a, b = world.volunteers
    proposal.status, proposal.base_number = "ready", 1
    proposal.result = {"changes": [
        {"action": "removed", "volunteer": a.code, "name": a.name, "date": day, "shift": "M",
         "post": "x-gate-check", "replaces": None, "covers_for": None,
         "reason": f"{a.name} 缺勤", "reason_en": "absent"},
        {"action": "added", "volunteer": b.code, "name": b.name, "date": day, "shift": "M",
         "post": "x-gate-check", "replaces": a.code, "covers_for": a.code,
         "reason": f"{b.name} 补排，顶替 {a.name}", "reason_en": "replacing"}],
        "repair": {"uncovered": [{"date": day, "shift": "M", "post": "x-gate-check",
                                  "missing": 1, "reason": "无人可排：技能不符"}]}}
    db.flush()
    page = _client(app, world, "secretary_x").get(f"/repairs/{proposal.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"{a.name} → {b.name}" in html and "无人可排：技能不符" in html
    assert _client(app, world, "secretary_y").get(f"/repairs/{proposal.id}").status_code == 404
    proposal.base_number = 0  # made for a version that is no longer published
    db.flush()
    stale = _client(app, world, "secretary_x").post(f"/repairs/{proposal.id}/accept",
                                                    data={"expected": "0"})
    assert stale.status_code == 409 and "已过期" in stale.get_data(as_text=True)
    db.refresh(proposal)
    assert proposal.status == "stale"
    assert rosters.published_version(db, world.roster.id).number == 1


def test_manual_change_page_previews_and_scopes(app: Any, world: Any, db: Any) -> None:
    from tests.test_routes import _client

    a = world.volunteers[0]
    url = (f"/rosters/{world.roster.id}/change?action=added&volunteer={a.code}"
           f"&date={world.roster.start.isoformat()}&shift=M&post=y-gate-check")
    # A already works the morning shift that day (at X): one shift per day is hard.
    page = _client(app, world, "coordinator").get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "违反硬性规则" in html and "调整并发布" not in html
    assert _client(app, world, "secretary_x").get(url).status_code == 404  # Y is not theirs
    bad = _client(app, world, "coordinator").get(url.replace("shift=M", "shift=ZZ"))
    assert bad.status_code == 422 and "change.shift" in bad.get_data(as_text=True)


@pytest.fixture
def world(db: Any, create_site: Any, create_shift: Any, create_roster: Any,
          create_user: Any) -> Any:
    from tests.test_routes import build_world

    return build_world(db, create_site, create_shift, create_roster, create_user)
