"""The secretary's actions on a task, shared by the HTML routes and the JSON API.

`perform` calls the one service of the action in the request's session and returns
what to tell the secretary; the caller commits, or rolls back on any refusal the
services raise (`TaskConflict`, `TransitionError`, `NotEligible`, `TaskInputError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort

from scheduler.dispatch import reports
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task
from solver.i18n import Text
from web.auth import require_site
from web.database import db_session

from . import forms

#: What a secretary (or coordinator) may do to a task from her screen.
ACTIONS = ("offer", "auto", "cancel", "start", "complete", "fail")
#: The URL converter of an action (so ``offer.json`` never matches the HTML route).
ACTION_CONVERTER = "any(" + ", ".join(ACTIONS) + ")"


def load_task(task_id: int) -> Task:
    """The task with its type, site and offers; 404 if missing or outside the scope."""
    task = reports.task(db_session(), task_id)
    if task is None:
        abort(404)
    require_site(task.site_id)
    return task


def perform(action: str, task: Task, data: Mapping[str, Any], actor: str) -> str:
    """Do `action` on `task` as `actor`; the Chinese message for the secretary."""
    session = db_session()
    version = forms.expected_version(data)
    if action == "offer":
        volunteer_id = forms.volunteer_id(data)
        try:
            dispatch.offer(session, task.id, volunteer_id, actor, version)
        except LookupError:
            raise dispatch.TaskInputError({"volunteer_id": Text(
                f"没有志愿者 {volunteer_id}", f"no volunteer {volunteer_id}")}) from None
        return "已派单，等待志愿者答复。"
    if action == "auto":
        if task.version != version:
            raise dispatch.TaskConflict(task.id, version, dispatch.task_state(task))
        made = dispatch.auto_dispatch(session, task.id, actor=actor)
        return "已自动派单，等待志愿者答复。" if made else "没有符合条件的志愿者，任务留在待派单队列。"
    reason = str(data.get("reason") or "").strip()
    if action == "cancel":
        dispatch.cancel(session, task.id, actor, reason, version)
        return "任务已取消。"
    if action == "start":
        dispatch.start(session, task.id, actor, version)
        return "任务已开始。"
    if action == "complete":
        dispatch.complete(session, task.id, actor, version, reason or None)
        return "任务已完成。"
    if action == "fail":
        dispatch.fail(session, task.id, actor, reason, version)
        return "已标记为未完成。"
    abort(404)
