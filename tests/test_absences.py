"""Absences (scheduler/absences): validation, affected assignments, tasks back to the queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.absences import services as absences
from scheduler.absences.models import Absence
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task
from scheduler.models import Assignment, AuditEvent, RosterVersion, Volunteer
from tests.fixtures.world import NOW, SECRETARY, START, World, local

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.dispatch"]


def _actions(db: Session, task: Task) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).where(
        AuditEvent.entity == "task", AuditEvent.entity_id == str(task.id))
        .order_by(AuditEvent.id)))


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


@pytest.mark.parametrize(("args", "field", "text"), [
    ({"reason": "holiday"}, "reason", "sick, quarantined, personal"),
    ({"volunteer_id": 987654}, "volunteer", "no volunteer"),
    ({"from_shift": "X"}, "from_shift", "unknown shift 'X'"),
    ({"to_date": START}, "to", "ends before it starts"),
    # same date, from the night shift (00-08) to the morning shift ends (16:00): fine;
    # from the afternoon shift to the morning one of the same date: backwards
    ({"from_date": day(1), "from_shift": "A", "to_date": day(1), "to_shift": "M"}, "to",
     "ends before it starts"),
])
def test_bad_absences_are_refused_naming_the_field(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer],
        args: dict[str, object], field: str, text: str) -> None:
    v = create_volunteer("甲")
    kw: dict[str, object] = {"volunteer_id": v.id, "from_date": day(1), "from_shift": None,
                             "to_date": day(2), "to_shift": None, "reason": "sick"}
    kw.update(args)
    with pytest.raises(absences.AbsenceError) as caught:
        absences.record_absence(db, actor=SECRETARY, now=NOW, **kw)  # type: ignore[arg-type]
    assert caught.value.field == field and text in str(caught.value)
    assert db.scalar(select(func.count()).select_from(Absence)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity == "absence")) == 0


def test_a_volunteer_who_left_cannot_be_absent(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲", status="left")
    with pytest.raises(absences.AbsenceError, match="left"):
        absences.record_absence(db, v.id, day(1), None, day(2), None, "sick", SECRETARY,
                                now=NOW)


def test_the_window_runs_from_a_shift_start_to_a_shift_end(world: World) -> None:
    s = world.shifts
    assert absences.absence_window(day(1), s["N"], day(2), s["A"]) == (local(1, 0), local(3, 0))
    assert absences.absence_window(day(1), None, day(1), None) == (local(1, 0), local(2, 0))
    assert absences.absence_window(day(1), s["M"], day(1), s["M"]) == (local(1, 8),
                                                                       local(1, 16))


def test_recording_lists_the_future_published_assignments_in_the_window(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲")
    other = create_volunteer("乙")
    past = world.duty(v, "east-gate", "N", 2)          # 00-08 on day 2: over at NOW
    running = world.duty(v, "east-gate", "M", 1)      # day 1: before NOW, ended
    inside = world.duty(v, "east-gate", "A", 2)       # 16-00 day 2
    last = world.duty(v, "west-gate", "M", 3)         # the to-shift itself
    world.duty(v, "west-gate", "A", 3)                # after the window
    world.duty(other, "east-gate", "A", 2)            # someone else
    draft = RosterVersion(roster=world.roster, number=2, state="draft", created_by="t")
    db.add(draft)
    db.flush()
    db.add(Assignment(version_id=draft.id, volunteer_id=v.id, date=day(2),
                      post_id=world.posts["east-door"].id, shift_id=world.shifts["M"].id))
    db.flush()

    result = absences.record_absence(db, v.id, day(2), "N", day(3), "M", "quarantined",
                                     SECRETARY, note="密接", now=NOW)
    assert [a.uid for a in result.affected] == [inside.uid, last.uid]
    assert past.uid not in {a.uid for a in result.affected} and running.uid != inside.uid
    first = result.affected[0]
    assert (first.date, first.shift, first.post, first.version) == (day(2), "A", "east-gate", 1)
    assert (result.absence.starts_at, result.absence.ends_at) == (local(2, 0), local(3, 16))
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "absence.create")).one()
    assert event.after["affected"] == [inside.uid, last.uid] and event.reason == "密接"
    assert event.after["reason"] == "quarantined" and event.actor == SECRETARY


def test_the_status_is_absent_only_while_an_absence_covers_now(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    today, later = create_volunteer("今天"), create_volunteer("下周")
    r1 = absences.record_absence(db, today.id, day(2), None, day(3), None, "sick", SECRETARY,
                                 now=NOW)
    assert (r1.status_before, r1.status_after, today.status) == ("active", "absent", "absent")
    r2 = absences.record_absence(db, later.id, day(5), None, day(6), None, "personal",
                                 SECRETARY, now=NOW)
    assert r2.status_after == "active"
    by_hand = create_volunteer("手工", status="absent")
    # Day 5: the first absence is over, the second has begun; the hand-set one stays.
    changed = absences.refresh_statuses(db, local(5, 9))
    assert changed == {today.id: "active", later.id: "absent"}
    assert (today.status, later.status, by_hand.status) == ("active", "absent", "absent")
    assert absences.refresh_statuses(db, local(5, 10)) == {}
    updates = db.scalars(select(AuditEvent.after).where(
        AuditEvent.action == "volunteer.update").order_by(AuditEvent.id)).all()
    assert updates == [{"status": "absent"}, {"status": "active"}, {"status": "absent"}]


def test_unstarted_tasks_in_the_window_return_to_the_queue(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲")
    backup = create_volunteer("乙")
    accepted = make_task(urgency="today")                   # day 2, 10-11
    offered = make_task(due_at=local(2, 15))
    urgent = make_task(urgency="urgent", due_at=local(2, 18))
    running = make_task(due_at=local(2, 12))
    outside = make_task(due_at=local(6, 11))                # after the absence
    for t in (accepted, offered, urgent, running, outside):
        dispatch.offer(db, t.id, v.id, SECRETARY, t.version, now=NOW)
    for t in (accepted, urgent, running, outside):
        dispatch.accept(db, t.id, v.id, now=NOW)
    dispatch.start(db, running.id, SECRETARY, now=NOW)

    result = absences.record_absence(db, v.id, day(2), None, day(3), None, "sick", SECRETARY,
                                     now=NOW)
    assert sorted(t.id for t in result.returned_tasks) == sorted(
        [accepted.id, offered.id, urgent.id])
    assert (accepted.status, offered.status) == ("open", "open")
    assert accepted.assignee_ids == [] and offered.pending_ids == []
    # the urgent one is offered on at once, to someone present
    assert urgent.status == "offered" and urgent.pending_ids == [backup.id]
    assert (running.status, outside.status) == ("in_progress", "accepted")
    returned = db.scalars(select(AuditEvent).where(AuditEvent.action == "task.return")
                          .order_by(AuditEvent.id)).all()
    assert {e.entity_id for e in returned} == {str(accepted.id), str(offered.id),
                                                str(urgent.id)}
    assert {e.entity_id: (e.before["status"], e.after["status"]) for e in returned} == {
        str(accepted.id): ("accepted", "open"), str(offered.id): ("offered", "open"),
        str(urgent.id): ("accepted", "open")}
    assert _actions(db, urgent)[-2:] == ["task.return", "task.offer"]
    # absent now: not suggested for the returned task
    assert [c.volunteer_id for c in dispatch.suggest(db, accepted.id, now=NOW).candidates] == [
        backup.id]
    # the feed cancels the task the volunteer had accepted and masks the requester again
    feed = {f.task_id: f for f in dispatch.tasks_for_volunteer(db, v.id, local(0, 0))}
    assert feed[accepted.id].cancelled and feed[accepted.id].requester_phone == "138****8000"
    assert not feed[outside.id].cancelled
