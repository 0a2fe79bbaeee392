"""Dispatch services: create tasks, suggest and offer volunteers, and move tasks along.

Lifecycle: ``open → offered → accepted → in_progress → done / failed``, and ``cancelled``
from any state before the work starts. A task for several people (a hospital escort) is
``offered`` while offers are out, and ``accepted`` once every place is taken; a decline
or an expired offer frees the place and the next ranked candidate is asked at once.

How the services behave:

- They take the acting user (`actor`, a name for the audit trail) as an argument and
  never look at request state; a volunteer answering on the phone acts as
  ``volunteer:<code>``; timers and automatic offers act as ``system``.
- Every transition happens in a savepoint of the caller's transaction with its audit row
  (entity ``task``); any error leaves nothing changed. The caller commits.
- Concurrency: each transition locks the task row (``SELECT … FOR UPDATE`` on
  PostgreSQL) and the row's `version` is compared and set on every UPDATE
  (SQLAlchemy's ``version_id_col``). A secretary passes the `expected_version` she saw;
  if the task changed since, `TaskConflict` is raised carrying the current state (the
  web layer answers 409 with it). Of two secretaries offering the same task at once,
  exactly one wins.
- Bad input raises `TaskInputError` naming each field; an illegal transition
  `TransitionError`; an ineligible volunteer `NotEligible` with the rules' reasons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from scheduler import audit
from scheduler.db import utcnow
from scheduler.dispatch import rules
from scheduler.dispatch.models import (
    FINAL_STATUSES,
    QUEUED_STATUSES,
    URGENCIES,
    Task,
    TaskOffer,
    TaskType,
)
from scheduler.localtime import TZ, overlaps
from scheduler.models import PhoneError, Site, Volunteer, normalize_phone
from scheduler.notifications import services as notifications
from solver.i18n import Text

SYSTEM = "system"

#: How long a volunteer has to answer an offer, by urgency.
OFFER_TIMEOUT: dict[str, dt.timedelta] = {
    "urgent": dt.timedelta(minutes=5),
    "today": dt.timedelta(minutes=30),
    "normal": dt.timedelta(hours=2),
}

STATUS_NAMES: dict[str, Text] = {
    "open": Text("待派单", "open"),
    "offered": Text("已派单", "offered"),
    "accepted": Text("已接单", "accepted"),
    "in_progress": Text("进行中", "in progress"),
    "done": Text("已完成", "done"),
    "failed": Text("未完成", "failed"),
    "cancelled": Text("已取消", "cancelled"),
}


@dataclass(frozen=True)
class TaskTypeDefault:
    code: str
    zh: str
    en: str
    people: int
    requires: dict[str, int]
    minutes: int
    urgency: str


#: The task types every district starts with (skill tags as in `solver.scenario`).
DEFAULT_TASK_TYPES: tuple[TaskTypeDefault, ...] = (
    TaskTypeDefault("medicine_delivery", "送药上门", "medicine delivery", 1, {}, 45, "today"),
    TaskTypeDefault("hospital_escort", "就医陪护", "hospital escort", 2, {"driver": 1}, 180,
                    "urgent"),
    TaskTypeDefault("home_sampling", "上门核酸采样", "home nucleic-acid sampling", 1,
                    {"medical": 1}, 30, "today"),
    TaskTypeDefault("grocery_run", "代购生活物资", "grocery run", 1, {}, 60, "normal"),
    TaskTypeDefault("parcel_distribution", "快递分发", "parcel distribution", 1, {}, 60,
                    "normal"),
    TaskTypeDefault("psychological_support", "心理疏导", "psychological support", 1,
                    {"counselor": 1}, 60, "normal"),
    TaskTypeDefault("disinfection", "消杀", "disinfection", 1, {}, 45, "normal"),
)


# -- errors -------------------------------------------------------------------------------

class DispatchError(ValueError):
    """A refusal, said in Chinese and English (``str()`` gives both)."""

    def __init__(self, message: Text) -> None:
        super().__init__(f"{message.zh}（{message.en}）")
        self.message = message


class TaskInputError(DispatchError):
    """Bad fields for a task; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, Text]) -> None:
        self.errors = errors
        super().__init__(Text("；".join(f"{k}：{v.zh}" for k, v in errors.items()),
                              "; ".join(f"{k}: {v.en}" for k, v in errors.items())))


class TransitionError(DispatchError):
    """The task (or offer) is not in a state that allows this step."""


class NotEligible(DispatchError):
    """The volunteer may not take the task; `reasons` are every rule that blocks them."""

    def __init__(self, volunteer_id: int, reasons: list[rules.Blocked]) -> None:
        self.volunteer_id, self.reasons = volunteer_id, reasons
        super().__init__(Text(
            f"志愿者 {volunteer_id} 不能接此任务：" + "；".join(r.reason.zh for r in reasons),
            f"volunteer {volunteer_id} may not take this task: "
            + "; ".join(r.reason.en for r in reasons)))


class TaskConflict(RuntimeError):
    """The task changed since the caller saw it; `current` is its state now (for a 409)."""

    def __init__(self, task_id: int, expected: int | None, current: dict[str, Any]) -> None:
        super().__init__(
            f"任务 {task_id} 已被他人修改（您看到的是第 {expected} 版，当前第 "
            f"{current['version']} 版，状态 {STATUS_NAMES[current['status']].zh}），请刷新后重试"
            f" (task {task_id} changed: expected version {expected}, now version "
            f"{current['version']}, {current['status']})")
        self.task_id, self.expected, self.current = task_id, expected, current


# -- task types ---------------------------------------------------------------------------

def ensure_task_types(session: Session, actor: str = SYSTEM) -> list[TaskType]:
    """Add the default task types that are missing (by code); return the ones added.

    Idempotent, and it never overwrites a type a coordinator has edited: defaults are a
    starting point, the table is the truth. Call it after migrating (demo, first start).
    """
    existing = set(session.scalars(select(TaskType.code)))
    added = []
    for position, d in enumerate(DEFAULT_TASK_TYPES):
        if d.code in existing:
            continue
        row = TaskType(code=d.code, name_zh=d.zh, name_en=d.en, people=d.people,
                       requires=dict(d.requires), default_minutes=d.minutes,
                       default_urgency=d.urgency, position=position)
        session.add(row)
        added.append(row)
    session.flush()
    for row in added:
        audit.record(session, actor, "task_type.create", "task_type", row.id,
                     after={"code": row.code, "people": row.people, "requires": row.requires,
                            "minutes": row.default_minutes, "urgency": row.default_urgency})
    return added


# -- state and locking --------------------------------------------------------------------

def task_state(task: Task) -> dict[str, Any]:
    """What a secretary's screen shows of a task's dispatch state (and a 409 carries)."""
    return {
        "id": task.id, "status": task.status, "version": task.version,
        "urgency": task.urgency, "due_at": task.due_at.isoformat(),
        "assignees": task.assignee_ids, "pending": task.pending_ids, "people": task.people,
    }


def _lock(session: Session, task_id: int) -> Task:
    """The task, re-read and locked for the rest of the transaction."""
    task = session.scalars(
        select(Task).where(Task.id == task_id).with_for_update(of=Task)
        .options(selectinload(Task.offers).selectinload(TaskOffer.volunteer))
        .execution_options(populate_existing=True)).one_or_none()
    if task is None:
        raise LookupError(f"no task {task_id}")
    return task


def _check_version(task: Task, expected: int | None) -> None:
    if expected is not None and task.version != expected:
        raise TaskConflict(task.id, expected, task_state(task))


def _refuse(task: Task, verb: Text) -> TransitionError:
    name = STATUS_NAMES[task.status]
    return TransitionError(Text(f"任务 {task.id} 状态为“{name.zh}”，不能{verb.zh}",
                                f"task {task.id} is {name.en}; cannot {verb.en}"))


def _settle(task: Task, now: dt.datetime) -> None:
    """Derive a queued task's status from its offers, and mark the row changed.

    Touching `updated_at` makes every transition an UPDATE of the task row, so its
    version grows even when only an offer changed: the version covers the offers too.
    """
    if task.status in QUEUED_STATUSES or task.status == "accepted":
        accepted = sum(1 for o in task.offers if o.state == "accepted")
        pending = sum(1 for o in task.offers if o.state == "pending")
        task.status = ("accepted" if accepted >= task.people
                       else "offered" if pending else "open")
    task.updated_at = now
    # Two steps at the same instant (two places offered in one call) are still two
    # UPDATEs: the unchanged timestamp is flagged, so each step has its own version.
    flag_modified(task, "updated_at")


def _flush(session: Session, task: Task) -> None:
    """Flush; an UPDATE that finds another version means someone else won the race."""
    try:
        session.flush()
    except StaleDataError:
        raise TaskConflict(task.id, task.version, {"id": task.id, "status": task.status,
                                                   "version": task.version}) from None


def _audit(session: Session, actor: str, action: str, task: Task, before: dict[str, Any],
           reason: str | None = None, **extra: Any) -> None:
    audit.record(session, actor, action, "task", task.id, before=before,
                 after={"status": task.status, "version": task.version, **extra},
                 reason=reason)


def _snap(task: Task) -> dict[str, Any]:
    return {"status": task.status, "version": task.version}


# -- create -------------------------------------------------------------------------------

def create_task(session: Session, actor: str, *, type_code: str, site_id: int,
                requester_name: str, requester_phone: str, due_at: dt.datetime,
                building: str = "", room: str = "", urgency: str | None = None,
                duration_minutes: int | None = None, notes: str = "") -> Task:
    """Create an open task; urgency and duration default to the type's.

    Every field is checked before anything is written; all problems are reported at
    once in a `TaskInputError` (field → reason). The requester's phone is stored in
    E.164. `due_at` must be an aware datetime (it is shown in Asia/Shanghai).
    """
    errors: dict[str, Text] = {}
    task_type = session.scalars(select(TaskType).where(TaskType.code == type_code,
                                                       TaskType.active)).one_or_none()
    if task_type is None:
        errors["type"] = Text(f"未知任务类型 {type_code!r}", f"unknown task type {type_code!r}")
    site = session.get(Site, site_id)
    if site is None or not site.active:
        errors["site"] = Text(f"未知站点 {site_id}", f"unknown site {site_id}")
    name = (requester_name or "").strip()
    if not name:
        errors["requester_name"] = Text("请填写求助居民姓名", "the requester's name is empty")
    try:
        phone = normalize_phone(requester_phone)
    except PhoneError:
        errors["requester_phone"] = Text(f"无法识别的电话号码 {requester_phone!r}",
                                         f"not a phone number: {requester_phone!r}")
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        errors["due_at"] = Text("截止时间须带时区", "due_at must carry a time zone")
    if urgency is not None and urgency not in URGENCIES:
        errors["urgency"] = Text(f"紧急程度须为 {'/'.join(URGENCIES)}",
                                 f"urgency must be one of {', '.join(URGENCIES)}")
    if duration_minutes is not None and not (isinstance(duration_minutes, int)
                                             and 1 <= duration_minutes <= 24 * 60):
        errors["duration_minutes"] = Text("预计用时须为 1 到 1440 分钟",
                                          "duration must be 1 to 1440 minutes")
    if errors:
        raise TaskInputError(errors)
    assert task_type is not None and site is not None
    with session.begin_nested():
        task = Task(type=task_type, site=site, building=building.strip(), room=room.strip(),
                    requester_name=name, requester_phone=phone, due_at=due_at.astimezone(dt.UTC),
                    urgency=urgency or task_type.default_urgency,
                    duration_minutes=duration_minutes or task_type.default_minutes,
                    notes=notes, people=task_type.people, requires=dict(task_type.requires),
                    status="open", created_by=actor)
        session.add(task)
        session.flush()
        audit.record(session, actor, "task.create", "task", task.id, after={
            "type": task_type.code, "site": site.code, "building": task.building,
            "room": task.room, "urgency": task.urgency, "due_at": task.due_at,
            "duration_minutes": task.duration_minutes, "status": "open", "version": 1,
            "requester": mask_name(name) + " " + mask_phone(phone)})
    return task


# -- suggestions --------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    """One eligible volunteer, their rank and why (scoring rules in priority order)."""

    rank: int
    volunteer_id: int
    code: str
    name: str
    points: dict[str, int]
    reasons: list[Text]


@dataclass
class Suggestions:
    """Ranked candidates for a task, and how many volunteers each hard rule excluded."""

    task_id: int
    version: int
    candidates: list[Suggestion] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


def _ranked(session: Session, task: Task, now: dt.datetime,
            params: rules.DispatchParams | None, limit: int
            ) -> tuple[list[rules.Ranked], dict[str, int]]:
    ctx = rules.load_context(session, task, now, params)
    return rules.ranked_candidates(session, task, ctx, limit)


def suggest(session: Session, task_id: int, limit: int = 10, *, now: dt.datetime | None = None,
            params: rules.DispatchParams | None = None) -> Suggestions:
    """The best `limit` volunteers for the task, ranked, each with their reasons.

    Reads only; a fixed number of queries whatever the size of the district (one more
    per `rules.PAGE` eligible volunteers read, when `limit` is larger).
    """
    now = now or utcnow()
    task = session.get(Task, task_id)
    if task is None:
        raise LookupError(f"no task {task_id}")
    ranked, excluded = _ranked(session, task, now, params, limit)
    out = Suggestions(task.id, task.version, excluded=excluded)
    for i, r in enumerate(ranked[:limit], start=1):
        out.candidates.append(Suggestion(
            i, r.candidate.id, r.candidate.code, r.candidate.name,
            {rule.code: p for rule, p in zip(rules.SCORING, r.points, strict=True)},
            [why for _, why in r.reasons]))
    return out


def top_suggestions(session: Session, tasks: Sequence[Task], *,
                    now: dt.datetime | None = None,
                    params: rules.DispatchParams | None = None) -> dict[int, Suggestion | None]:
    """The best candidate of each task (None: nobody eligible), for a board's one-click
    offers. The tasks' offers must be loaded; the queries are those of one `suggest`,
    whatever the number of tasks."""
    now = now or utcnow()
    ctxs = rules.load_contexts(session, tasks, now, params)
    ranked = rules.ranked_for_tasks(session, [(t, ctxs[t.id]) for t in tasks], 1)
    out: dict[int, Suggestion | None] = {}
    for t in tasks:
        best = ranked[t.id][0]
        out[t.id] = None if not best else Suggestion(
            1, best[0].candidate.id, best[0].candidate.code, best[0].candidate.name,
            {rule.code: p for rule, p in zip(rules.SCORING, best[0].points, strict=True)},
            [why for _, why in best[0].reasons])
    return out


def explain(session: Session, task_id: int, volunteer_id: int, *,
            now: dt.datetime | None = None,
            params: rules.DispatchParams | None = None) -> list[rules.Blocked]:
    """Every rule that keeps this volunteer off the task (empty: they may take it)."""
    task = session.get(Task, task_id)
    if task is None:
        raise LookupError(f"no task {task_id}")
    found = rules.load_candidates(session, [volunteer_id])
    if not found:
        raise LookupError(f"no volunteer {volunteer_id}")
    ctx = rules.load_context(session, task, now or utcnow(), params, volunteers=[volunteer_id])
    return rules.all_blocking(found[0], task, ctx)


# -- offers -------------------------------------------------------------------------------

def _new_offer(session: Session, task: Task, volunteer_id: int, actor: str,
               now: dt.datetime) -> TaskOffer:
    before = _snap(task)
    offer = TaskOffer(task=task, volunteer_id=volunteer_id, state="pending", offered_by=actor,
                      offered_at=now, expires_at=now + OFFER_TIMEOUT[task.urgency])
    session.add(offer)
    session.flush()  # loads offer.volunteer for the skills of the places left
    _settle(task, now)
    _flush(session, task)
    _audit(session, actor, "task.offer", task, before, volunteer=volunteer_id,
           expires_at=offer.expires_at)
    notifications.notify_offer(session, offer, actor)
    return offer


def offer(session: Session, task_id: int, volunteer_id: int, actor: str,
          expected_version: int | None, *, now: dt.datetime | None = None,
          params: rules.DispatchParams | None = None) -> TaskOffer:
    """Offer the task to a volunteer (a secretary's choice); return the pending offer.

    Compare-and-set on `expected_version` (the version the secretary saw; None only for
    system callers that hold the lock anyway): a stale one raises `TaskConflict` with the
    current state. The volunteer must pass every eligibility rule (`NotEligible`
    otherwise), and the task must have a free place (`TransitionError`).
    """
    now = now or utcnow()
    with session.begin_nested():
        task = _lock(session, task_id)
        _check_version(task, expected_version)
        if task.status not in QUEUED_STATUSES:
            raise _refuse(task, Text("再派单", "offer it"))
        found = rules.load_candidates(session, [volunteer_id])
        if not found:
            raise LookupError(f"no volunteer {volunteer_id}")
        ctx = rules.load_context(session, task, now, params, volunteers=[volunteer_id])
        if ctx.places <= 0:
            raise TransitionError(Text(f"任务 {task.id} 的名额已派满，等待答复",
                                       f"task {task.id} has offers out for every place"))
        blocked = rules.all_blocking(found[0], task, ctx)
        if blocked:
            raise NotEligible(volunteer_id, blocked)
        return _new_offer(session, task, volunteer_id, actor, now)


def _offer_next(session: Session, task: Task, now: dt.datetime,
                params: rules.DispatchParams | None, actor: str = SYSTEM) -> list[TaskOffer]:
    """Fill the task's free places with the best eligible candidates (task locked)."""
    made: list[TaskOffer] = []
    while task.status in QUEUED_STATUSES:
        ranked, _ = _ranked(session, task, now, params, 1)
        places = task.people - sum(1 for o in task.offers if o.state in ("pending", "accepted"))
        if places <= 0 or not ranked:
            break
        made.append(_new_offer(session, task, ranked[0].candidate.id, actor, now))
    return made


def auto_dispatch(session: Session, task_id: int, *, actor: str = SYSTEM,
                  now: dt.datetime | None = None,
                  params: rules.DispatchParams | None = None) -> list[TaskOffer]:
    """Offer an urgent task to the best candidates, one per free place; return the offers.

    Only urgent tasks are dispatched without a secretary (`TransitionError` otherwise).
    No eligible candidate: the task stays open in the queue and the result is empty.
    """
    now = now or utcnow()
    with session.begin_nested():
        task = _lock(session, task_id)
        if task.urgency != "urgent":
            raise TransitionError(Text(f"任务 {task.id} 不是紧急任务，不自动派单",
                                       f"task {task.id} is not urgent; no automatic dispatch"))
        if task.status not in QUEUED_STATUSES:
            raise _refuse(task, Text("自动派单", "dispatch it"))
        return _offer_next(session, task, now, params, actor)


def _pending_offer(task: Task, volunteer_id: int) -> TaskOffer:
    for o in task.offers:
        if o.volunteer_id == volunteer_id and o.state == "pending":
            return o
    raise TransitionError(Text(f"任务 {task.id} 没有给志愿者 {volunteer_id} 的待答复派单",
                               f"task {task.id} has no pending offer to volunteer "
                               f"{volunteer_id}"))


def _volunteer_actor(session: Session, volunteer_id: int) -> str:
    code = session.scalar(select(Volunteer.code).where(Volunteer.id == volunteer_id))
    return f"volunteer:{code or volunteer_id}"


def accept(session: Session, task_id: int, volunteer_id: int, *,
           now: dt.datetime | None = None) -> Task:
    """The volunteer accepts their pending offer (on the phone); return the task.

    An offer past its `expires_at` can no longer be accepted, even if the timer has not
    run yet (`TransitionError`). The task is ``accepted`` once every place is.
    """
    now = now or utcnow()
    with session.begin_nested():
        task = _lock(session, task_id)
        o = _pending_offer(task, volunteer_id)
        if o.expires_at <= now:
            raise TransitionError(Text(f"派单已于 {o.expires_at.astimezone(TZ):%H:%M} 超时",
                                       f"the offer expired at {o.expires_at.isoformat()}"))
        before = _snap(task)
        o.state, o.answered_at, o.accepted_at = "accepted", now, now
        _settle(task, now)
        _flush(session, task)
        _audit(session, _volunteer_actor(session, volunteer_id), "task.accept", task, before,
               volunteer=volunteer_id)
        return task


def decline(session: Session, task_id: int, volunteer_id: int, reason: str | None = None, *,
            now: dt.datetime | None = None,
            params: rules.DispatchParams | None = None) -> list[TaskOffer]:
    """The volunteer declines; the place is offered to the next candidate at once.

    Returns the new offers (empty when nobody else is eligible: the task waits open).
    """
    now = now or utcnow()
    with session.begin_nested():
        task = _lock(session, task_id)
        o = _pending_offer(task, volunteer_id)
        before = _snap(task)
        o.state, o.answered_at, o.note = "declined", now, reason
        _settle(task, now)
        _flush(session, task)
        _audit(session, _volunteer_actor(session, volunteer_id), "task.decline", task, before,
               reason=reason, volunteer=volunteer_id)
        return _offer_next(session, task, now, params)


def expire_offers(session: Session, now: dt.datetime | None = None, *,
                  params: rules.DispatchParams | None = None) -> list[TaskOffer]:
    """Expire every pending offer past its time and ask the next candidate; return them.

    Run it periodically (an RQ job taking no arguments, or a scheduler tick).
    """
    now = now or utcnow()
    task_ids = sorted(set(session.scalars(select(TaskOffer.task_id).where(
        TaskOffer.state == "pending", TaskOffer.expires_at <= now))))
    expired: list[TaskOffer] = []
    for task_id in task_ids:
        with session.begin_nested():
            task = _lock(session, task_id)
            late = [o for o in task.offers if o.state == "pending" and o.expires_at <= now]
            if not late:
                continue  # answered between our look and the lock
            before = _snap(task)
            for o in late:
                o.state, o.answered_at, o.note = "expired", now, "no answer in time"
            _settle(task, now)
            _flush(session, task)
            _audit(session, SYSTEM, "task.expire", task, before,
                   volunteers=[o.volunteer_id for o in late])
            expired.extend(late)
            _offer_next(session, task, now, params)
    return expired


# -- the work -----------------------------------------------------------------------------

def _step(session: Session, task_id: int, actor: str, expected_version: int | None,
          allowed: Sequence[str], verb: Text, action: str, to: str, now: dt.datetime,
          reason: str | None = None) -> Task:
    with session.begin_nested():
        task = _lock(session, task_id)
        _check_version(task, expected_version)
        if task.status not in allowed:
            raise _refuse(task, verb)
        before = _snap(task)
        withdrawn = [o for o in task.offers if o.state == "pending"]
        for o in withdrawn:
            o.state, o.answered_at, o.note = "withdrawn", now, f"task {to}"
        task.status = to
        if to == "in_progress":
            task.started_at = now
        elif to in FINAL_STATUSES:
            task.finished_at, task.outcome = now, reason
        _settle(task, now)
        _flush(session, task)
        extra: dict[str, Any] = {"withdrawn": [o.volunteer_id for o in withdrawn]} \
            if withdrawn else {}
        _audit(session, actor, action, task, before, reason=reason, **extra)
        return task


def start(session: Session, task_id: int, actor: str, expected_version: int | None = None, *,
          now: dt.datetime | None = None) -> Task:
    """accepted → in_progress (every place taken)."""
    return _step(session, task_id, actor, expected_version, ("accepted",),
                 Text("开始", "start it"), "task.start", "in_progress", now or utcnow())


def complete(session: Session, task_id: int, actor: str, expected_version: int | None = None,
             note: str | None = None, *, now: dt.datetime | None = None) -> Task:
    """in_progress → done."""
    return _step(session, task_id, actor, expected_version, ("in_progress",),
                 Text("完成", "complete it"), "task.complete", "done", now or utcnow(), note)


def fail(session: Session, task_id: int, actor: str, reason: str,
         expected_version: int | None = None, *, now: dt.datetime | None = None) -> Task:
    """in_progress (or accepted: the people went but could not start) → failed; why."""
    if not (reason or "").strip():
        raise TaskInputError({"reason": Text("请说明未完成的原因", "say why it failed")})
    return _step(session, task_id, actor, expected_version, ("accepted", "in_progress"),
                 Text("标记为未完成", "fail it"), "task.fail", "failed", now or utcnow(),
                 reason)


def cancel(session: Session, task_id: int, actor: str, reason: str,
           expected_version: int | None = None, *, now: dt.datetime | None = None) -> Task:
    """open / offered / accepted → cancelled; pending offers are withdrawn."""
    if not (reason or "").strip():
        raise TaskInputError({"reason": Text("请说明取消原因", "say why it is cancelled")})
    return _step(session, task_id, actor, expected_version, (*QUEUED_STATUSES, "accepted"),
                 Text("取消", "cancel it"), "task.cancel", "cancelled", now or utcnow(),
                 reason)


# -- absences -----------------------------------------------------------------------------

def return_tasks_of_absent(session: Session, volunteer_id: int, actor: str, *,
                           window: tuple[dt.datetime, dt.datetime] | None = None,
                           now: dt.datetime | None = None,
                           params: rules.DispatchParams | None = None) -> list[Task]:
    """Take the volunteer off tasks not yet started; return those tasks, back in the queue.

    Pending and accepted offers become ``withdrawn``; only tasks whose work falls in
    `window` (None: all) are returned. An urgent task is offered to the next candidate at
    once; the others wait in the queue for a secretary. A task already in progress is
    left alone: someone is on it and the secretary decides.
    """
    now = now or utcnow()
    task_ids = sorted(set(session.scalars(
        select(TaskOffer.task_id).join(Task, TaskOffer.task_id == Task.id)
        .where(TaskOffer.volunteer_id == volunteer_id,
               TaskOffer.state.in_(("pending", "accepted")),
               Task.status.in_((*QUEUED_STATUSES, "accepted"))))))
    returned = []
    for task_id in task_ids:
        with session.begin_nested():
            task = _lock(session, task_id)
            if task.status not in (*QUEUED_STATUSES, "accepted"):
                continue
            if window is not None and not overlaps(rules.task_window(task, now), window):
                continue
            mine = [o for o in task.offers if o.volunteer_id == volunteer_id
                    and o.state in ("pending", "accepted")]
            if not mine:
                continue
            before = _snap(task)
            for o in mine:
                o.state, o.answered_at, o.note = "withdrawn", now, "volunteer absent"
            task.status = "open"  # re-derived below from the offers left
            _settle(task, now)
            _flush(session, task)
            _audit(session, actor, "task.return", task, before, reason="volunteer absent",
                   volunteer=volunteer_id)
            returned.append(task)
            if task.urgency == "urgent":
                _offer_next(session, task, now, params)
    return returned


# -- what people may see ------------------------------------------------------------------

def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: the surname stays, so the volunteer can greet them."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def mask_phone(phone: str) -> str:
    """+8613800138000 → 138****8000; other numbers keep only their last four digits."""
    if phone.startswith("+86") and len(phone) == 14:
        national = phone[3:]
        return national[:3] + "****" + national[-4:]
    return "*" * max(0, len(phone) - 4) + phone[-4:]


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a staff user (`actor`) or a volunteer (`volunteer_id`)."""

    actor: str | None = None
    volunteer_id: int | None = None


@dataclass(frozen=True)
class Requester:
    name: str
    phone: str
    masked: bool


def may_see_requester(task: Task, viewer: Viewer) -> bool:
    """The assignees see the resident in full, and so does the secretary who took the call.

    The secretary typed the name and number in, so hiding them from her protects nobody;
    other secretaries, coordinators and volunteers merely offered the task see them masked
    (a volunteer who declines never learned who asked).
    """
    if viewer.volunteer_id is not None and viewer.volunteer_id in task.assignee_ids:
        return True
    return viewer.actor is not None and viewer.actor == task.created_by


def masked_requester(task: Task, viewer: Viewer) -> Requester:
    """The requester's name and phone as `viewer` may see them."""
    if may_see_requester(task, viewer):
        return Requester(task.requester_name, task.requester_phone, False)
    return Requester(mask_name(task.requester_name), mask_phone(task.requester_phone), True)


# -- calendar feed ------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedTask:
    """A task as a calendar event of one volunteer's feed.

    `uid` is stable for the task; `sequence` (the task's version) grows with every
    change, as iCalendar's SEQUENCE must. `cancelled` is true when the task was cancelled
    or the volunteer was taken off it: the feed should keep the event as CANCELLED.
    """

    uid: str
    sequence: int
    task_id: int
    summary: Text
    location: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    cancelled: bool
    urgency: str
    requester_name: str
    requester_phone: str
    notes: str
    #: When the task last changed (DTSTAMP and LAST-MODIFIED of its event).
    modified: dt.datetime


def tasks_for_volunteer(session: Session, volunteer_id: int, since: dt.datetime
                        ) -> list[FeedTask]:
    """Tasks the volunteer accepted (even if later cancelled) whose work ends after `since`.

    One query. The requester is shown in full while the volunteer is an assignee and
    masked once they were taken off the task.
    """
    rows = session.execute(
        select(Task, TaskOffer.state, TaskType.name_zh, TaskType.name_en, Site.name)
        .join(TaskOffer, TaskOffer.task_id == Task.id)
        .join(TaskType, Task.type_id == TaskType.id)
        .join(Site, Task.site_id == Site.id)
        .where(TaskOffer.volunteer_id == volunteer_id, TaskOffer.accepted_at.is_not(None),
               Task.due_at >= since)
        .order_by(Task.due_at, Task.id)).all()
    out = []
    for task, state, zh, en, site_name in rows:
        place = " ".join(p for p in (site_name, task.building, task.room) if p)
        still_on = state == "accepted"
        name = task.requester_name if still_on else mask_name(task.requester_name)
        phone = task.requester_phone if still_on else mask_phone(task.requester_phone)
        out.append(FeedTask(
            uid=f"task-{task.id}@bastion", sequence=task.version, task_id=task.id,
            summary=Text(f"{zh}：{place}", f"{en}: {place}"), location=place,
            starts_at=task.due_at - task.duration, ends_at=task.due_at, status=task.status,
            cancelled=task.status == "cancelled" or not still_on, urgency=task.urgency,
            requester_name=name, requester_phone=phone, notes=task.notes,
            modified=task.updated_at))
    return out


__all__ = [
    "DEFAULT_TASK_TYPES", "OFFER_TIMEOUT", "DispatchError", "FeedTask", "NotEligible",
    "Requester", "Suggestion", "Suggestions", "TaskConflict", "TaskInputError",
    "TransitionError", "Viewer", "accept", "auto_dispatch", "cancel", "complete",
    "create_task", "decline", "ensure_task_types", "expire_offers", "explain", "fail",
    "mask_name", "mask_phone", "masked_requester", "offer", "return_tasks_of_absent",
    "start", "suggest", "top_suggestions", "task_state", "tasks_for_volunteer",
]
