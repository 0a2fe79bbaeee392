"""The dispatch actions as JSON, for scripts and the board's future live updates.

``GET /dispatch/tasks/<id>.json``: the task's state and ranked suggestions.
``POST /dispatch/tasks/<id>/<action>.json`` (offer, auto, cancel, start, complete, fail)
with a JSON body ``{"expected_version": N, "volunteer_id": V, "reason": "…"}`` and the
``X-CSRFToken`` header: 200 with the new state; refusals are RFC 9457
``application/problem+json``: 409 for a stale version (with ``current``, the task's
state now) or a step the task's status does not allow, 422 for bad fields (``errors``
by field) or an ineligible volunteer (``reasons``). Same access as the pages.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import QUEUED_STATUSES, Task
from web.auth import actor_name, login_required
from web.database import db_session

from . import bp
from .actions import ACTION_CONVERTER, load_task, perform
from .routes import STAFF, SUGGESTIONS, viewer


def problem(status: int, title: str, detail: str, **extra: Any) -> ResponseReturnValue:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _state(task: Task) -> dict[str, Any]:
    requester = dispatch.masked_requester(task, viewer())
    return {
        **dispatch.task_state(task), "type": task.type.code, "site": task.site.code,
        "building": task.building, "room": task.room, "notes": task.notes,
        "duration_minutes": task.duration_minutes,
        "requester": {"name": requester.name, "phone": requester.phone,
                      "masked": requester.masked},
        "offers": [{"volunteer": o.volunteer_id, "state": o.state,
                    "expires_at": o.expires_at.isoformat()} for o in task.offers],
    }


@bp.get("/dispatch/tasks/<int:task_id>.json")
@login_required(roles=STAFF)
def task_json(task_id: int) -> ResponseReturnValue:
    task = load_task(task_id)
    body = _state(task)
    if task.status in QUEUED_STATUSES:
        found = dispatch.suggest(db_session(), task.id, limit=SUGGESTIONS)
        body["suggestions"] = [
            {"rank": s.rank, "volunteer": s.volunteer_id, "code": s.code, "name": s.name,
             "points": s.points, "reasons": [{"zh": r.zh, "en": r.en} for r in s.reasons]}
            for s in found.candidates]
        body["excluded"] = found.excluded
    return jsonify(body)


@bp.post(f"/dispatch/tasks/<int:task_id>/<{ACTION_CONVERTER}:action>.json")
@login_required(roles=STAFF)
def act_json(task_id: int, action: str) -> ResponseReturnValue:
    found = load_task(task_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return problem(400, "Bad request", "the body must be a JSON object")
    session = db_session()
    try:
        perform(action, found, data, actor_name())
    except dispatch.TaskConflict as exc:
        session.rollback()
        return problem(409, "Conflict", str(exc), current=exc.current)
    except dispatch.TransitionError as exc:
        session.rollback()
        return problem(409, "Conflict", str(exc), current=dispatch.task_state(load_task(task_id)))
    except dispatch.TaskInputError as exc:
        session.rollback()
        return problem(422, "Invalid input", str(exc), errors={
            k: {"zh": v.zh, "en": v.en} for k, v in exc.errors.items()})
    except dispatch.NotEligible as exc:
        session.rollback()
        return problem(422, "Not eligible", str(exc), reasons=[
            {"rule": r.rule, "zh": r.reason.zh, "en": r.reason.en} for r in exc.reasons])
    session.commit()
    return jsonify(_state(load_task(task_id)))
