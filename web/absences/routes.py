"""``/absences``: the record form (with the volunteer search) and the result page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from scheduler.absences import reports
from scheduler.absences import services as absences
from scheduler.absences.models import ABSENCE_REASONS, REASON_NAMES
from scheduler.dispatch import reports as dispatch_reports
from scheduler.models import ShiftTemplate, Volunteer
from solver.i18n import Text
from web.auth import actor_name, login_required, site_scope
from web.database import db_session
from web.i18n import local_now

from . import bp

STAFF = ("secretary", "coordinator")


def _page(form: Any, errors: dict[str, Text], status: int = 200) -> ResponseReturnValue:
    session = db_session()
    today = local_now().date()
    q = request.args.get("q", "") if request.method == "GET" else form.get("q", "")
    picked = None
    vid = str(form.get("volunteer_id") or "")
    if vid.isdigit() and reports.may_record(session, site_scope(), int(vid), today):
        picked = session.get(Volunteer, int(vid))
    return render_template(
        "absences/index.html", form=form, errors=errors, q=q, picked=picked,
        found=reports.search(session, site_scope(), today, q) if q else [],
        shifts=session.scalars(select(ShiftTemplate).order_by(ShiftTemplate.position,
                                                              ShiftTemplate.id)).all(),
        reasons=ABSENCE_REASONS, reason_names=REASON_NAMES, today=today,
        recent=reports.recent(session, site_scope(), today)), status


@bp.get("/absences")
@login_required(roles=STAFF)
def index() -> ResponseReturnValue:
    return _page(request.args, {})


def _date(form: Any, name: str, errors: dict[str, Text]) -> dt.date | None:
    raw = str(form.get(name) or "").strip()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors[name] = (Text("请填写日期", "enter a date") if not raw
                        else Text(f"无法识别的日期 {raw!r}", f"not a date: {raw!r}"))
        return None


@bp.post("/absences")
@login_required(roles=STAFF)
def create() -> ResponseReturnValue:
    form = request.form
    session = db_session()
    today = local_now().date()
    errors: dict[str, Text] = {}
    raw_id = str(form.get("volunteer_id") or "").strip()
    volunteer_id = int(raw_id) if raw_id.isdigit() else None
    if volunteer_id is None or not reports.may_record(session, site_scope(), volunteer_id,
                                                      today):
        errors["volunteer"] = (Text("请选择志愿者", "choose a volunteer") if not raw_id
                               else Text(f"没有志愿者 {raw_id}", f"no volunteer {raw_id}"))
    from_date, to_date = _date(form, "from", errors), _date(form, "to", errors)
    reason = str(form.get("reason") or "")
    if reason not in ABSENCE_REASONS:
        errors["reason"] = Text(f"原因须为 {'/'.join(ABSENCE_REASONS)}",
                                f"reason must be one of {', '.join(ABSENCE_REASONS)}")
    if errors:
        return _page(form, errors, 422)
    assert volunteer_id is not None and from_date is not None and to_date is not None
    try:
        result = absences.record_absence(
            session, volunteer_id, from_date, form.get("from_shift") or None, to_date,
            form.get("to_shift") or None, reason, actor_name(),
            note=(form.get("note") or "").strip() or None)
    except absences.AbsenceError as exc:
        session.rollback()
        return _page(form, {exc.field: exc.message}, 422)
    session.commit()
    returned = dispatch_reports.tasks_by_id(session, [t.id for t in result.returned_tasks])
    return render_template("absences/recorded.html", result=result, absence=result.absence,
                           returned=returned, reason_names=REASON_NAMES)
