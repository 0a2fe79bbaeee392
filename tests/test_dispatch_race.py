"""Two secretaries offering the same task version at once, 1,000 times, on PostgreSQL.

Each round, two sessions in two threads (released together by a barrier) offer one task
at the version both saw, to two different volunteers. The row lock and the version
compare-and-set must let exactly one win: one pending offer per task, one ``task.offer``
audit row, and the loser told `TaskConflict`. SQLite serialises writers itself, so the
module runs for the postgresql backend only (parametrised, not skipped).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from scheduler.db import make_engine, upgrade
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task, TaskOffer, TaskType
from scheduler.models import AuditEvent, Site, Volunteer
from tests.fixtures.world import NOW, SECRETARY

pytest_plugins = ["tests.fixtures.db"]

ROUNDS = 1000


@pytest.fixture(scope="module", params=["postgresql"])
def pg(request: pytest.FixtureRequest, new_database: Callable[[str], str]
       ) -> Iterator[Engine]:
    url = new_database(request.param)
    upgrade(url)
    engine = make_engine(url, pool_size=4)
    yield engine
    engine.dispose()


def _world(engine: Engine) -> tuple[list[int], list[int]]:
    """ROUNDS open tasks (bulk insert) and two volunteers; their ids."""
    with Session(engine) as s, s.begin():
        dispatch.ensure_task_types(s)
        site = Site(code="race", name="东塘小区", kind="checkpoint")
        vols = [Volunteer(code=f"race-{i}", name=f"志愿者{i}") for i in range(2)]
        s.add_all([site, *vols])
        s.flush()
        kind = s.scalars(select(TaskType).where(TaskType.code == "grocery_run")).one()
        s.execute(insert(Task), [
            {"type_id": kind.id, "site_id": site.id, "building": "", "room": str(i),
             "requester_name": "张三", "requester_phone": "+8613800138000",
             "urgency": "normal", "due_at": NOW + dt.timedelta(hours=3),
             "duration_minutes": 30, "notes": "", "people": 1, "requires": {},
             "status": "open", "version": 1, "created_by": SECRETARY}
            for i in range(ROUNDS)])
        task_ids = list(s.scalars(select(Task.id).where(Task.site_id == site.id)
                                  .order_by(Task.id)))
        return task_ids, [v.id for v in vols]


def test_two_concurrent_offers_of_one_task_version_never_both_win(pg: Engine) -> None:
    task_ids, volunteers = _world(pg)
    assert len(task_ids) == ROUNDS
    start, done = threading.Barrier(2), threading.Barrier(2)
    outcomes: list[dict[int, str]] = [{} for _ in task_ids]
    errors: list[BaseException] = []

    def secretary(i: int) -> None:
        with Session(pg) as s:
            for n, task_id in enumerate(task_ids):
                start.wait(30)
                try:
                    dispatch.offer(s, task_id, volunteers[i], f"秘书{i}", 1, now=NOW)
                    s.commit()
                    outcomes[n][i] = "won"
                except dispatch.TaskConflict:
                    s.rollback()
                    outcomes[n][i] = "conflict"
                except BaseException as exc:  # anything else fails the test below
                    s.rollback()
                    outcomes[n][i] = repr(exc)
                    errors.append(exc)
                done.wait(30)

    threads = [threading.Thread(target=secretary, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    per_round = Counter(tuple(sorted(o.values())) for o in outcomes)
    assert per_round == {("conflict", "won"): ROUNDS}
    wins = Counter(v for o in outcomes for v, r in o.items() if r == "won")
    assert sum(wins.values()) == ROUNDS

    with Session(pg) as s:
        offers: dict[Any, int] = dict(s.execute(
            select(TaskOffer.task_id, func.count()).where(TaskOffer.task_id.in_(task_ids))
            .group_by(TaskOffer.task_id)).all())
        assert offers == {t: 1 for t in task_ids}  # 0 double assignments
        audited = dict(s.execute(
            select(AuditEvent.entity_id, func.count())
            .where(AuditEvent.entity == "task", AuditEvent.action == "task.offer")
            .group_by(AuditEvent.entity_id)).all())
        assert audited == {str(t): 1 for t in task_ids}
        states = Counter(s.execute(select(Task.status, Task.version)
                                   .where(Task.id.in_(task_ids))).all())
        assert states == {("offered", 2): ROUNDS}
        # Whoever won each round holds that task's one offer.
        holders = dict(s.execute(select(TaskOffer.task_id, TaskOffer.volunteer_id)
                                 .where(TaskOffer.task_id.in_(task_ids))).all())
        for n, task_id in enumerate(task_ids):
            winner = next(i for i, r in outcomes[n].items() if r == "won")
            assert holders[task_id] == volunteers[winner]
