"""Roster services (scheduler/rosters.py): generate, publish, diff; SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler import audit, queues, rosters
from scheduler.db import make_engine, session_scope, sessionmaker_for, upgrade, utcnow
from scheduler.models import Assignment, AuditEvent, Roster, RosterVersion, SolveRun
from scheduler.problems import load_problem, store_solution
from tests.fixtures.problems import assign, demand, make_problem, site

pytest_plugins = ["tests.fixtures.db"]

ACTOR = "协调员"


def _problem() -> dict[str, Any]:
    return make_problem(days=2, sites=[site("s1", posts=["p1", "p2"])],
                        demand=[demand("p1", "M", 1), demand("p2", "M", 1)],
                        volunteers=["v1", "v2", "v3"])


def _draft(db: Session, roster_id: int, *rows: tuple[str, int, str, str]) -> RosterVersion:
    return store_solution(db, roster_id, {**assign(_problem(), rows), "status": "FEASIBLE"},
                          actor=ACTOR, allow_hard_violations=True)


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def roster(db: Session) -> Roster:
    return load_problem(db, _problem(), actor=ACTOR)


# -- generate -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(backend: str, new_database: Callable[[str], str]) -> Iterator[Engine]:
    """A committed database of this module's own, for requests in separate sessions."""
    url = new_database(backend)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Enqueues are recorded, not run: these tests are about the runs."""
    calls: list[tuple[Any, ...]] = []

    def fake(func: str, *args: Any, job_id: str, **_kwargs: Any) -> queues.Enqueued:
        calls.append((func, *args, job_id))
        return queues.Enqueued(job_id, local=False)

    monkeypatch.setattr(queues, "enqueue", fake)
    return calls


def test_two_concurrent_generate_requests_get_the_same_run(
        engine: Engine, enqueued: list[tuple[Any, ...]]) -> None:
    with session_scope(engine) as session:
        roster_id = load_problem(session, _problem(), actor=ACTOR).id
    make_session = sessionmaker_for(engine)
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def request(actor: str) -> None:
        with make_session() as session:
            try:
                barrier.wait(10)
                results.append(rosters.generate(session, roster_id, actor, time_limit=5).id)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

    threads = [threading.Thread(target=request, args=(f"user{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 4 and len(set(results)) == 1
    assert [c[:2] for c in enqueued] == [("scheduler.jobs.solve_roster", results[0])]
    with sessionmaker_for(engine)() as session:
        run = session.get(SolveRun, results[0])
        assert run is not None and run.status == "queued" and run.job_id == enqueued[0][2]
        assert session.scalar(select(func.count()).select_from(SolveRun).where(
            SolveRun.roster_id == roster_id)) == 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "solve_run.create",
            AuditEvent.entity_id == str(run.id))) == 1
        # Later requests get it too, while it is active; a finished run frees the roster.
        assert rosters.generate(session, roster_id, ACTOR).id == run.id
        run.status = "finished"
        session.commit()
        assert rosters.generate(session, roster_id, ACTOR).id != run.id
    assert len(enqueued) == 2


def test_generate_lost_race_returns_the_winners_run(
        engine: Engine, enqueued: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """The other request inserts between our look and our insert: the index decides."""
    with session_scope(engine) as session:
        roster_id = load_problem(session, _problem(), actor=ACTOR).id
    with session_scope(engine) as session:
        winner = SolveRun(roster_id=roster_id, requested_by="other", status="running",
                          heartbeat_at=utcnow())
        session.add(winner)
    looks: list[int] = []
    real = rosters.active_run

    def late(session: Session, rid: int) -> SolveRun | None:
        looks.append(rid)
        return None if len(looks) == 1 else real(session, rid)  # the first look misses it

    monkeypatch.setattr(rosters, "active_run", late)
    with sessionmaker_for(engine)() as session:
        assert rosters.generate(session, roster_id, ACTOR, time_limit=2).id == winner.id
    assert len(looks) == 2 and enqueued == []


def test_generate_replaces_a_run_whose_worker_is_gone(
        engine: Engine, enqueued: list[tuple[Any, ...]]) -> None:
    with session_scope(engine) as session:
        roster_id = load_problem(session, _problem(), actor=ACTOR).id
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        dead = SolveRun(roster_id=roster_id, requested_by="other", status="running",
                        created_at=long_ago, heartbeat_at=long_ago)
        session.add(dead)
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=2)
        assert run.id != dead.id and len(enqueued) == 1
        failed = session.get(SolveRun, dead.id, populate_existing=True)
        assert failed is not None and failed.status == "failed"


def test_generate_fails_the_run_when_the_queue_is_down(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    with session_scope(engine) as session:
        roster_id = load_problem(session, _problem(), actor=ACTOR).id
    with sessionmaker_for(engine)() as session:
        with pytest.raises(queues.QueueError):
            rosters.generate(session, roster_id, ACTOR, time_limit=2)
    with session_scope(engine) as session:
        (run,) = session.scalars(select(SolveRun).where(SolveRun.roster_id == roster_id))
        assert run.status == "failed" and run.error and rosters.active_run(
            session, roster_id) is None


def test_generate_unknown_roster(db: Session) -> None:
    with pytest.raises(LookupError):
        rosters.generate(db, 999_999, ACTOR, time_limit=2)


# -- publish ------------------------------------------------------------------------------

def test_publish_is_a_compare_and_set(db: Session, roster: Roster) -> None:
    one = _draft(db, roster.id, ("v1", 0, "M", "p1"), ("v2", 0, "M", "p2"))
    two = _draft(db, roster.id, ("v1", 0, "M", "p2"), ("v3", 0, "M", "p1"))
    before = {a.id: (a.uid, a.revision, a.post_id) for a in one.assignments}

    assert rosters.publish(db, roster.id, 1, None, ACTOR) is one
    assert one.state == "published" and one.published_by == ACTOR and one.published_at
    assert roster.status == "published"

    # Someone saw "nothing published" and publishes 2: stale, refused, nothing changes.
    with pytest.raises(rosters.PublishConflict) as conflict:
        rosters.publish(db, roster.id, 2, None, "其他人")
    assert conflict.value.current == 1 and conflict.value.expected is None
    assert "version 1" in str(conflict.value)
    db.expire_all()
    assert (one.state, two.state) == ("published", "draft")

    assert rosters.publish(db, roster.id, 2, 1, ACTOR, reason="调整") is two
    db.expire_all()
    assert (one.state, two.state) == ("superseded", "published")
    assert rosters.published_version(db, roster.id) is two
    # The superseded version's assignments are exactly as they were.
    assert {a.id: (a.uid, a.revision, a.post_id) for a in one.assignments} == before

    with pytest.raises(rosters.VersionStateError):  # only drafts are published
        rosters.publish(db, roster.id, 1, 2, ACTOR)
    with pytest.raises(LookupError):
        rosters.publish(db, roster.id, 9, 2, ACTOR)

    assert _actions(db) == [
        "roster.load_problem", "roster_version.create", "roster_version.create",
        "roster_version.publish", "roster.update",
        "roster_version.supersede", "roster_version.publish"]
    supersede = db.scalars(select(AuditEvent).where(
        AuditEvent.action == "roster_version.supersede")).one()
    assert supersede.actor == ACTOR and supersede.entity_id == str(one.id)
    assert supersede.before["state"] == "published" and supersede.after == {
        "state": "superseded", "by": 2}
    assert supersede.reason == "调整"


def test_publish_interrupted_leaves_the_previous_state(
        db: Session, roster: Roster, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _draft(db, roster.id, ("v1", 0, "M", "p1"))
    two = _draft(db, roster.id, ("v2", 0, "M", "p1"))
    rosters.publish(db, roster.id, 1, None, ACTOR)
    db.commit()
    audit_count = len(_actions(db))
    record = audit.record

    def failing(session: Session, actor: str, action: str, *args: Any, **kwargs: Any) -> Any:
        if action == "roster_version.publish":  # after the old one was superseded
            raise RuntimeError("disk full")
        return record(session, actor, action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        rosters.publish(db, roster.id, 2, 1, ACTOR)
    monkeypatch.setattr(audit, "record", record)

    db.expire_all()
    assert (one.state, two.state) == ("published", "draft")
    assert two.published_at is None and len(_actions(db)) == audit_count
    # The session is still usable, and publishing works once the fault is gone.
    rosters.publish(db, roster.id, 2, 1, ACTOR)
    db.commit()
    db.expire_all()
    assert (one.state, two.state) == ("superseded", "published")


def test_published_assignments_cannot_be_changed(db: Session, roster: Roster) -> None:
    one = _draft(db, roster.id, ("v1", 0, "M", "p1"))
    draft_row = one.assignments[0]
    draft_row.revision += 1  # a draft may still be edited
    db.flush()
    rosters.publish(db, roster.id, 1, None, ACTOR)
    row = db.scalars(select(Assignment).where(Assignment.version_id == one.id)).one()
    row.revision += 1
    with pytest.raises(rosters.VersionStateError), db.begin_nested():
        db.flush()


# -- diff ---------------------------------------------------------------------------------

def test_diff_added_removed_moved(db: Session, roster: Roster) -> None:
    one = _draft(db, roster.id, ("v1", 0, "M", "p1"), ("v2", 0, "M", "p2"),
                 ("v3", 1, "M", "p1"))
    rosters.publish(db, roster.id, 1, None, ACTOR)
    # v1 moves to p2, v2 is dropped, v3 stays, v2 comes in on day 1.
    two = _draft(db, roster.id, ("v1", 0, "M", "p2"), ("v3", 1, "M", "p1"),
                 ("v2", 1, "M", "p2"))
    uid = {(a.volunteer.code, a.date.day): a.uid for a in one.assignments}

    d = rosters.diff(db, one.id, two.id)
    assert [(a["volunteer"], a["date"], a["post"]) for a in d.added] == [
        ("v2", "2022-04-05", "p2")]
    assert [(a["uid"], a["volunteer"], a["post"]) for a in d.removed] == [
        (uid["v2", 4], "v2", "p2")]
    assert [(m["uid"], m["from_post"], m["to_post"], m["from_revision"], m["to_revision"])
            for m in d.moved] == [(uid["v1", 4], "p1", "p2", 1, 2)]
    assert not d.empty

    back = rosters.diff(db, two.id, one.id)
    assert [a["uid"] for a in back.added] == [uid["v2", 4]]
    assert [(m["from_post"], m["to_post"]) for m in back.moved] == [("p2", "p1")]
    assert rosters.diff(db, one.id, one.id).empty
    with pytest.raises(LookupError):
        rosters.diff(db, one.id, 999_999)


# -- create -------------------------------------------------------------------------------

def _rule_docs(roster: Roster) -> list[dict[str, Any]]:
    assert roster.rule_set is not None
    return [{"type": r.type, **r.params, **({} if r.weight is None else {"weight": r.weight}),
             **({} if r.applies_to is None else {"applies_to": r.applies_to})}
            for r in roster.rule_set.rules]


def test_create_roster_with_the_standard_rules_on_an_empty_database(db: Session) -> None:
    from scheduler.models import ShiftTemplate
    from scheduler.problems import roster_problem
    from solver import scenario

    created = rosters.create_roster(db, ACTOR, name=" 雨花区 第15周 ", start=dt.date(2022, 4, 11),
                                    days=7)
    assert (created.name, created.start, created.days, created.end) == (
        "雨花区 第15周", dt.date(2022, 4, 11), 7, dt.date(2022, 4, 17))
    assert _rule_docs(created) == scenario.RULES
    shifts = db.scalars(select(ShiftTemplate).order_by(ShiftTemplate.position)).all()
    assert [(s.code, s.name, s.start.isoformat("minutes"), s.end.isoformat("minutes"))
            for s in shifts] == [(s["id"], s["name"], s["start"], s["end"])
                                 for s in scenario.SHIFTS]
    doc = roster_problem(db, created.id)  # a valid problem from the start
    assert doc["rules"] == scenario.RULES and doc["days"] == 7
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.create")).one()
    assert event.entity_id == str(created.id) and event.actor == ACTOR
    assert event.after["shifts_created"] == ["M", "A", "N"]
    # The copy is the roster's own: changing it leaves the standard rules alone.
    assert created.rule_set is not None
    created.rule_set.rules[1].params = {"hours": 8}
    assert scenario.RULES[1] == {"type": "min_rest_hours", "hours": 12}


def test_create_roster_adds_only_the_shifts_its_rules_name(
        db: Session, create_shift: Callable[..., Any]) -> None:
    from scheduler.models import ShiftTemplate

    create_shift("D", "08:00", "20:00", name="白班")  # a district with its own shifts
    create_shift("E", "20:00", "08:00", name="晚班")
    before = {"D", "E"}
    rosters.create_roster(db, ACTOR, name="下一周", start=dt.date(2022, 4, 18), days=7)
    assert set(db.scalars(select(ShiftTemplate.code))) == before | {"N"}
    rosters.create_roster(db, ACTOR, name="再下一周", start=dt.date(2022, 4, 25), days=7)
    assert db.scalar(select(func.count()).select_from(ShiftTemplate)) == len(before) + 1


def test_create_roster_copies_the_rules_of_another_roster(db: Session) -> None:
    from scheduler import rulesets

    first = rosters.create_roster(db, ACTOR, name="第一周", start=dt.date(2022, 4, 4), days=7)
    rulesets.update_rules(db, first.id, {1: {"hours": 10, "weight": 3}}, ACTOR)
    second = rosters.create_roster(db, ACTOR, name="第二周", start=dt.date(2022, 4, 11),
                                   days=7, rules=first.id)
    assert _rule_docs(second) == _rule_docs(first)
    assert _rule_docs(second)[1] == {"type": "min_rest_hours", "hours": 10, "weight": 3}
    assert second.rule_set_id != first.rule_set_id


@pytest.mark.parametrize(("fields", "bad"), [
    ({"name": "  ", "start": None, "days": 0}, {"name", "start", "days"}),
    ({"name": "x" * 201, "start": dt.date(2022, 4, 4), "days": 63}, {"name", "days"}),
    ({"name": "周", "start": dt.date(2022, 4, 4), "days": None}, {"days"}),
    ({"name": "周", "start": dt.date(2022, 4, 4), "days": 7, "rules": 999999}, {"rules"}),
    ({"name": "周", "start": dt.date(2022, 4, 4), "days": 7, "rules": "lenient"}, {"rules"}),
])
def test_create_roster_refuses_bad_fields_and_writes_nothing(
        db: Session, fields: dict[str, Any], bad: set[str]) -> None:
    from scheduler.models import ShiftTemplate

    with pytest.raises(rosters.RosterInputError) as caught:
        rosters.create_roster(db, ACTOR, **fields)
    assert set(caught.value.errors) == bad
    assert all(e.zh and e.en for e in caught.value.errors.values())
    assert db.scalar(select(func.count()).select_from(Roster)) == 0
    assert db.scalar(select(func.count()).select_from(ShiftTemplate)) == 0
    assert "roster.create" not in _actions(db)


def test_create_roster_takes_one_to_62_days(db: Session) -> None:
    assert rosters.create_roster(db, ACTOR, name="一天", start=dt.date(2022, 4, 4), days=1).days == 1
    assert rosters.create_roster(db, ACTOR, name="两个月", start=dt.date(2022, 4, 4),
                                 days=rosters.MAX_DAYS).days == 62
