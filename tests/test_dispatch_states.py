"""The task lifecycle as a state machine (hypothesis): random sequences of create, offer,
accept, decline, reassign (offers time out and go to the next candidate), cancel, stale
offers, absences and roster publications, with invariants checked after every step:

- no task has more live (pending or accepted) offers than places, so a single-person
  task has at most one active assignee;
- a volunteer with a recorded absence holds no pending or accepted offer on an
  unfinished task whose work falls in the absence;
- a stale version is always refused and changes nothing;
- the audit trail matches the changes: a task's audit rows are exactly one per version
  (1, 2, …, its version), each row's "before" is the previous row's "after".

Repairs are not applied here (they run the solver), so absent volunteers keep their
published shifts; `tests/test_repairs.py` covers taking them off.
Runs on SQLite, each example in a transaction rolled back at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler import rosters
from scheduler.absences.models import Absence
from scheduler.absences.services import AbsenceError, record_absence
from scheduler.db import make_engine, upgrade
from scheduler.dispatch import rules
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import FINAL_STATUSES, Task, TaskOffer
from scheduler.localtime import TZ
from scheduler.models import (
    Assignment,
    AuditEvent,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)

pytest_plugins = ["tests.fixtures.db"]

START = dt.date(2022, 4, 4)
NOW = dt.datetime(2022, 4, 5, 8, 30, tzinfo=TZ).astimezone(dt.UTC)
ACTOR = "秘书王"
REFUSED = (dispatch.NotEligible, dispatch.TransitionError, dispatch.TaskInputError)


@pytest.fixture(scope="module")
def engine(new_database: Callable[[str], str]) -> Iterator[Engine]:
    url = new_database("sqlite")
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _machine(engine: Engine) -> type[RuleBasedStateMachine]:
    class Lifecycle(RuleBasedStateMachine):
        tasks = Bundle("tasks")

        def __init__(self) -> None:
            super().__init__()
            self.conn = engine.connect()
            self.outer = self.conn.begin()
            self.db = Session(self.conn, join_transaction_mode="create_savepoint")
            self.now = NOW
            db = self.db
            dispatch.ensure_task_types(db)
            site = Site(code="sm", name="东塘", kind="checkpoint",
                        posts=[Post(code="sm-gate", name="门岗")])
            shifts = [ShiftTemplate(code="smM", name="早班", start=dt.time(8), end=dt.time(16)),
                      ShiftTemplate(code="smN", name="夜班", start=dt.time(22), end=dt.time(6),
                                    position=1)]
            self.roster = Roster(name="sm", start=START, days=7, status="published")
            self.people = [Volunteer(code=f"sm{i}", name=f"志愿者{i}",
                                     skills=["driver"] if i % 2 else [])
                           for i in range(5)]
            db.add_all([site, *shifts, self.roster, *self.people])
            db.flush()
            self.site, self.shifts = site, shifts
            version = RosterVersion(roster_id=self.roster.id, number=1, state="draft",
                                    created_by="t")
            db.add(version)
            db.flush()
            for day in range(7):
                for k, shift in enumerate(shifts):
                    db.add(Assignment(version_id=version.id,
                                      volunteer_id=self.people[(day + k) % 5].id,
                                      post_id=site.posts[0].id, shift_id=shift.id,
                                      date=START + dt.timedelta(days=day)))
            db.flush()
            rosters.publish(db, self.roster.id, 1, None, ACTOR)
            self.published = 1

        def teardown(self) -> None:
            self.db.close()
            self.outer.rollback()
            self.conn.close()

        def _task(self, task_id: int) -> Task:
            task = self.db.get(Task, task_id)
            assert task is not None
            self.db.refresh(task)
            return task

        # -- rules ---------------------------------------------------------------------

        @rule(target=tasks, kind=st.sampled_from(["grocery_run", "hospital_escort"]),
              urgency=st.sampled_from(["urgent", "today", "normal"]),
              hours=st.integers(8, 60))
        def create(self, kind: str, urgency: str, hours: int) -> int:
            task = dispatch.create_task(
                self.db, ACTOR, type_code=kind, site_id=self.site.id, requester_name="张三",
                requester_phone="13800138000", urgency=urgency,
                due_at=NOW + dt.timedelta(hours=hours))
            return task.id

        @rule(task_id=tasks, who=st.integers(0, 4))
        def offer(self, task_id: int, who: int) -> None:
            before = self._task(task_id).version
            try:
                dispatch.offer(self.db, task_id, self.people[who].id, ACTOR, before,
                               now=self.now)
            except REFUSED:
                assert self._task(task_id).version == before  # a refusal changes nothing

        @rule(task_id=tasks, who=st.integers(0, 4))
        def stale_offer(self, task_id: int, who: int) -> None:
            task = self._task(task_id)
            if task.version == 1:
                return
            before = task.version
            with pytest.raises(dispatch.TaskConflict):
                dispatch.offer(self.db, task_id, self.people[who].id, ACTOR, before - 1,
                               now=self.now)
            assert self._task(task_id).version == before

        @rule(task_id=tasks, data=st.data())
        def accept(self, task_id: int, data: st.DataObject) -> None:
            pending = self._task(task_id).pending_ids
            if pending:
                who = data.draw(st.sampled_from(pending))
                dispatch.accept(self.db, task_id, who, now=self.now)

        @rule(task_id=tasks, data=st.data())
        def decline(self, task_id: int, data: st.DataObject) -> None:
            pending = self._task(task_id).pending_ids
            if pending:
                who = data.draw(st.sampled_from(pending))
                dispatch.decline(self.db, task_id, who, "不方便", now=self.now)

        @precondition(lambda self: self.now < NOW + dt.timedelta(hours=6))
        @rule()
        def reassign(self) -> None:
            """Time passes: unanswered offers expire and go to the next candidate."""
            self.now += dt.timedelta(hours=2, minutes=1)
            dispatch.expire_offers(self.db, self.now)

        @rule(task_id=tasks)
        def cancel(self, task_id: int) -> None:
            task = self._task(task_id)
            try:
                dispatch.cancel(self.db, task_id, ACTOR, "居民已自行解决", task.version,
                                now=self.now)
            except dispatch.TransitionError:
                assert task.status not in ("open", "offered", "accepted")

        @rule(who=st.integers(0, 4), first=st.integers(0, 3), days=st.integers(0, 2))
        def absence(self, who: int, first: int, days: int) -> None:
            day = START + dt.timedelta(days=first)
            try:
                record_absence(self.db, self.people[who].id, day, None,
                               day + dt.timedelta(days=days), None, "sick", ACTOR,
                               now=self.now)
            except AbsenceError:
                pass

        @rule(shift=st.integers(0, 6), who=st.integers(0, 4))
        def publish(self, shift: int, who: int) -> None:
            """A coordinator moves one shift to someone else and publishes the version."""
            db = self.db
            current = rosters.published_version(db, self.roster.id)
            assert current is not None
            rows = db.scalars(select(Assignment).where(Assignment.version_id == current.id)
                              .order_by(Assignment.id)).all()
            draft = RosterVersion(roster_id=self.roster.id, number=self.published + 1,
                                  state="draft", created_by="t")
            db.add(draft)
            db.flush()
            for i, a in enumerate(rows):
                db.add(Assignment(version_id=draft.id, uid=a.uid, revision=a.revision,
                                  volunteer_id=self.people[who].id if i == shift
                                  else a.volunteer_id,
                                  post_id=a.post_id, shift_id=a.shift_id, date=a.date))
            db.flush()
            rosters.publish(db, self.roster.id, draft.number, self.published, ACTOR)
            self.published += 1

        # -- invariants ----------------------------------------------------------------

        @invariant()
        def places_are_never_over_filled(self) -> None:
            for task in self.db.scalars(select(Task)):
                self.db.refresh(task)
                live = [o for o in task.offers if o.state in ("pending", "accepted")]
                assert len(task.assignee_ids) <= task.people
                assert len(live) <= task.people
                assert len({o.volunteer_id for o in live}) == len(live)
                if task.people == 1:
                    assert len(task.assignee_ids) <= 1

        @invariant()
        def absent_volunteers_hold_no_open_work(self) -> None:
            absences = self.db.scalars(select(Absence)).all()
            rows = self.db.execute(
                select(TaskOffer.volunteer_id, Task)
                .join(Task, TaskOffer.task_id == Task.id)
                .where(TaskOffer.state.in_(("pending", "accepted")),
                       Task.status.not_in(FINAL_STATUSES + ("in_progress",)))).all()
            for volunteer_id, task in rows:
                window = rules.task_window(task, self.now)
                for a in absences:
                    if a.volunteer_id == volunteer_id:
                        assert not (a.starts_at < window[1] and window[0] < a.ends_at), (
                            f"volunteer {volunteer_id} absent yet on task {task.id}")

        @invariant()
        def audit_rows_match_the_versions(self) -> None:
            events: dict[int, list[dict[str, Any]]] = {}
            for entity_id, before, after in self.db.execute(
                    select(AuditEvent.entity_id, AuditEvent.before, AuditEvent.after)
                    .where(AuditEvent.entity == "task").order_by(AuditEvent.id)):
                events.setdefault(int(entity_id), []).append(
                    {"before": before, "after": after})
            versions = dict(self.db.execute(select(Task.id, Task.version)).all())
            assert set(events) == set(versions)
            for task_id, rows in events.items():
                assert [r["after"]["version"] for r in rows] == \
                    list(range(1, versions[task_id] + 1))
                for previous, row in zip(rows, rows[1:], strict=False):
                    assert row["before"] == {"status": previous["after"]["status"],
                                             "version": previous["after"]["version"]}

    return Lifecycle


def test_task_lifecycle_state_machine(engine: Engine) -> None:
    run_state_machine_as_test(_machine(engine), settings=settings(
        max_examples=30, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
