"""The dispatch pages: ``/dispatch`` (board), new task, a task with its suggestions, and a
site's "now / next" wall board (``/sites/<id>/now``)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from scheduler import wallboard
from scheduler.absences import reports as absence_reports
from scheduler.absences.models import REASON_NAMES
from scheduler.dispatch import reports
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import QUEUED_STATUSES, URGENCIES, TaskType
from scheduler.dispatch.rules import ELIGIBILITY
from scheduler.models import Site
from solver.i18n import Text, skill_label
from web.auth import actor_name, login_required, require_site, site_scope
from web.database import db_session
from web.i18n import current_lang, gettext, local_now, zone

from . import bp, forms
from .actions import ACTION_CONVERTER, load_task, perform

STAFF = ("secretary", "coordinator")
#: Candidates shown on a task page.
SUGGESTIONS = 10
RULE_TITLES: dict[str, Text] = {r.code: r.title for r in ELIGIBILITY}
URGENCY_NAMES = {"urgent": Text("紧急", "urgent"), "today": Text("今日", "today"),
                 "normal": Text("普通", "normal")}


def viewer() -> dispatch.Viewer:
    return dispatch.Viewer(actor=actor_name())


@bp.get("/dispatch")
@login_required(roles=STAFF)
def board() -> ResponseReturnValue:
    session, scope = db_session(), site_scope()
    today = local_now().date()
    tasks = reports.board(session, scope, today)
    queued = [t for t in tasks if t.status in QUEUED_STATUSES and t.people > len(
        [o for o in t.offers if o.state in ("pending", "accepted")])]
    top = dispatch.top_suggestions(session, queued)
    return render_template("dispatch/board.html", tasks=tasks, today=today, viewer=viewer(),
                           zone=zone(), masked=dispatch.masked_requester, top=top,
                           absences=absence_reports.recent(session, scope, today),
                           repairs=reports.pending_repairs(session, scope, today),
                           status_names=dispatch.STATUS_NAMES, urgency_names=URGENCY_NAMES,
                           reason_names=REASON_NAMES)


def _form_choices() -> dict[str, Any]:
    session = db_session()
    return {
        "types": session.scalars(select(TaskType).where(TaskType.active)
                                 .order_by(TaskType.position, TaskType.id)).all(),
        "sites": session.scalars(select(Site).where(Site.active,
                                                    site_scope().clause(Site.id))
                                 .order_by(Site.code)).all(),
        "urgencies": URGENCIES,
    }


@bp.get("/dispatch/tasks/new")
@login_required(roles=STAFF)
def new() -> ResponseReturnValue:
    return render_template("dispatch/new.html", form={}, errors={}, **_form_choices(),
                           urgency_names=URGENCY_NAMES)


@bp.post("/dispatch/tasks")
@login_required(roles=STAFF)
def create() -> ResponseReturnValue:
    session = db_session()
    kwargs, errors = forms.parse_task(request.form, site_scope(), zone())
    failure: dispatch.TaskInputError | None = None
    task = None
    try:
        task = dispatch.create_task(session, actor_name(), **kwargs)
    except dispatch.TaskInputError as exc:
        failure = exc
    if failure is not None or errors:
        session.rollback()  # a task made from placeholders is never kept
        return render_template("dispatch/new.html", form=request.form,
                               errors=forms.merge(failure, errors), **_form_choices(),
                               urgency_names=URGENCY_NAMES), 422
    assert task is not None
    session.commit()
    flash(gettext("任务已创建。"), "info")
    return redirect(url_for("dispatch.task", task_id=task.id))


def render_task(task_id: int, status: int = 200, *,
                conflict: dispatch.TaskConflict | None = None,
                error: str | None = None) -> ResponseReturnValue:
    task = load_task(task_id)
    suggestions = None
    if task.status in QUEUED_STATUSES:
        suggestions = dispatch.suggest(db_session(), task.id, limit=SUGGESTIONS)
    return render_template(
        "dispatch/task.html", task=task, suggestions=suggestions, conflict=conflict,
        error=error, requester=dispatch.masked_requester(task, viewer()),
        status_names=dispatch.STATUS_NAMES, urgency_names=URGENCY_NAMES,
        rule_titles=RULE_TITLES, queued=QUEUED_STATUSES), status


@bp.get("/dispatch/tasks/<int:task_id>")
@login_required(roles=STAFF)
def task(task_id: int) -> ResponseReturnValue:
    return render_task(task_id)


@bp.post(f"/dispatch/tasks/<int:task_id>/<{ACTION_CONVERTER}:action>")
@login_required(roles=STAFF)
def act(task_id: int, action: str) -> ResponseReturnValue:
    found = load_task(task_id)
    session = db_session()
    try:
        message = perform(action, found, request.form, actor_name())
    except dispatch.TaskConflict as exc:
        session.rollback()
        return render_task(task_id, 409, conflict=exc)
    except dispatch.TransitionError as exc:
        session.rollback()
        return render_task(task_id, 409, error=exc.message.get(current_lang()))
    except (dispatch.NotEligible, dispatch.TaskInputError) as exc:
        session.rollback()
        return render_task(task_id, 422, error=exc.message.get(current_lang()))
    session.commit()
    flash(gettext(message), "info")
    return redirect(url_for("dispatch.task", task_id=task_id))


#: Seconds between reloads of the wall board (a meta refresh: the CSP allows no script).
WALL_REFRESH = 60


@bp.get("/sites/<int:site_id>/now")
@login_required(roles=STAFF)
def site_now(site_id: int) -> ResponseReturnValue:
    """The site's "now / next" wall board, for a TV at the site: big type, reloads itself."""
    require_site(site_id)
    found = wallboard.wall_board(db_session(), site_id, local_now())
    if found is None:
        abort(404)
    lang = current_lang()
    return render_template("dispatch/site_now.html", board=found, zone=zone(),
                           refresh=WALL_REFRESH,
                           skill_name=lambda code: skill_label(code).get(lang))
