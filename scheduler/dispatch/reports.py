"""Read models of the dispatch pages: the board, a volunteer's tasks. Fixed query counts.

Each function takes the reader's scope (`SiteScope`) or the volunteer id they may read,
never request state, and loads the rows a page shows with their type, site and offers
(with the offered volunteers) in a fixed number of queries whatever the number of tasks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.base import ExecutableOption

from scheduler.absences.reports import in_scope
from scheduler.accounts.services import SiteScope
from scheduler.dispatch.models import QUEUED_STATUSES, URGENCIES, Task, TaskOffer
from scheduler.localtime import TZ
from scheduler.models import Volunteer
from scheduler.repairs.models import RepairProposal

#: The statuses on the board: everything not finished.
BOARD_STATUSES = (*QUEUED_STATUSES, "accepted", "in_progress")


def _loaded() -> tuple[ExecutableOption, ...]:
    return (joinedload(Task.type), joinedload(Task.site),
            selectinload(Task.offers).selectinload(TaskOffer.volunteer))


def board(session: Session, scope: SiteScope, today: dt.date) -> list[Task]:
    """Unfinished tasks of the scope's sites: due today or earlier first, then by urgency.

    Within "today or overdue" and "later", urgent before today before normal, then by the
    due time. Three queries (tasks with type and site, offers, their volunteers).
    """
    tasks = session.scalars(
        select(Task).where(Task.status.in_(BOARD_STATUSES), scope.clause(Task.site_id))
        .options(*_loaded()).order_by(Task.due_at, Task.id)).unique().all()
    rank = {u: i for i, u in enumerate(URGENCIES)}
    return sorted(tasks, key=lambda t: (t.due_at.astimezone(TZ).date() > today,
                                        rank[t.urgency], t.due_at, t.id))


def tasks_by_id(session: Session, task_ids: Iterable[int]) -> list[Task]:
    """The tasks `task_ids`, with type, site and offers, by due time."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    return list(session.scalars(select(Task).where(Task.id.in_(ids)).options(*_loaded())
                                .order_by(Task.due_at, Task.id)).unique())


def task(session: Session, task_id: int) -> Task | None:
    """One task with type, site and offers (None if there is no such task)."""
    found = tasks_by_id(session, [task_id])
    return found[0] if found else None


#: Repair proposals a secretary still has to look at.
PENDING_REPAIRS = ("queued", "running", "ready")


def pending_repairs(session: Session, scope: SiteScope, today: dt.date, limit: int = 20
                    ) -> list[RepairProposal]:
    """Queued, running and ready repair proposals about the scope's volunteers, newest
    first, with the volunteer. One query."""
    return list(session.scalars(
        select(RepairProposal).join(Volunteer, RepairProposal.volunteer_id == Volunteer.id)
        .where(RepairProposal.status.in_(PENDING_REPAIRS), in_scope(scope, today))
        .options(joinedload(RepairProposal.volunteer))
        .order_by(RepairProposal.created_at.desc(), RepairProposal.id.desc()).limit(limit)))


@dataclass(frozen=True)
class MyTask:
    """A task on a volunteer's phone: their offer (pending or accepted) and the task."""

    offer: TaskOffer
    task: Task

    @property
    def pending(self) -> bool:
        return self.offer.state == "pending"


def volunteer_tasks(session: Session, volunteer_id: int, now: dt.datetime) -> list[MyTask]:
    """The volunteer's open offers (not yet expired) and the tasks they accepted and have
    not finished: offers first (they are waiting for an answer), then by due time."""
    rows = session.execute(
        select(TaskOffer, Task).join(Task, TaskOffer.task_id == Task.id)
        .where(TaskOffer.volunteer_id == volunteer_id,
               ((TaskOffer.state == "pending") & (TaskOffer.expires_at > now)
                & Task.status.in_(QUEUED_STATUSES))
               | ((TaskOffer.state == "accepted")
                  & Task.status.in_(("accepted", "in_progress", *QUEUED_STATUSES))))
        .options(joinedload(Task.type), joinedload(Task.site),
                 selectinload(Task.offers))
        .order_by(Task.due_at, Task.id)).unique().all()
    out = [MyTask(offer, task) for offer, task in rows]
    return sorted(out, key=lambda m: (not m.pending, m.task.due_at, m.task.id))


__all__ = ["BOARD_STATUSES", "PENDING_REPAIRS", "MyTask", "board", "pending_repairs", "task", "tasks_by_id", "volunteer_tasks"]
