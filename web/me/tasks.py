"""A volunteer's tasks on the phone: offers to answer, accepted tasks to start and finish.

Every route acts on ``own_volunteer_id()``; a task without an offer to this volunteer
(pending or accepted) is a 404, so nobody can answer, start or finish another
volunteer's task. The requester is masked until the volunteer accepted
(`masked_requester`).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from scheduler.db import utcnow
from scheduler.dispatch import reports
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task
from web.auth import actor_name, login_required, own_volunteer_id
from web.database import db_session
from web.i18n import current_lang, gettext

from . import bp

VOLUNTEER = ("volunteer",)
VOLUNTEER_ACTIONS = ("accept", "decline", "start", "done")


@bp.get("/me/tasks")
@login_required(roles=VOLUNTEER)
def tasks() -> ResponseReturnValue:
    me = own_volunteer_id()
    mine = reports.volunteer_tasks(db_session(), me, utcnow())
    return render_template("me/tasks.html", mine=mine,
                           viewer=dispatch.Viewer(volunteer_id=me),
                           masked=dispatch.masked_requester,
                           status_names=dispatch.STATUS_NAMES)


def _my_task(task_id: int, me: int) -> Task:
    task = reports.task(db_session(), task_id)
    if task is None or not any(o.volunteer_id == me and o.state in ("pending", "accepted")
                               for o in task.offers):
        abort(404)
    return task


@bp.post(f"/me/tasks/<int:task_id>/<any({', '.join(VOLUNTEER_ACTIONS)}):action>")
@login_required(roles=VOLUNTEER)
def task_action(task_id: int, action: str) -> ResponseReturnValue:
    me = own_volunteer_id()
    task = _my_task(task_id, me)
    session = db_session()
    actor = actor_name()
    try:
        if action == "accept":
            dispatch.accept(session, task.id, me)
            message = "已接单。"
        elif action == "decline":
            dispatch.decline(session, task.id, me, request.form.get("reason") or None)
            message = "已谢绝，任务将派给其他志愿者。"
        else:
            if me not in task.assignee_ids:
                abort(404)
            if action == "start":
                dispatch.start(session, task.id, actor)
                message = "任务已开始。"
            else:
                dispatch.complete(session, task.id, actor, None, request.form.get("note") or None)
                message = "任务已完成。"
    except (dispatch.TransitionError, dispatch.TaskConflict) as exc:
        session.rollback()
        text = exc.message.get(current_lang()) if isinstance(exc, dispatch.DispatchError) \
            else str(exc)
        flash(text, "error")
        return redirect(url_for("me.tasks")), 303
    session.commit()
    flash(gettext(message), "info")
    return redirect(url_for("me.tasks"))
