"""A volunteer's own page: every route acts on ``own_volunteer_id()`` and nothing else."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from scheduler import availability, reports
from web.auth import actor_name, current_user, login_required, own_volunteer_id
from web.calendar import links
from web.database import db_session
from web.i18n import gettext, local_now

from . import bp

VOLUNTEER = ("volunteer",)


@bp.get("/me")
@login_required(roles=VOLUNTEER)
def index() -> ResponseReturnValue:
    volunteer_id = own_volunteer_id()
    today = local_now().date()
    session = db_session()
    user = current_user()
    assert user is not None
    # The card issues the volunteer's first calendar link if they have none yet.
    card = links.subscribe_card(session, volunteer_id, user.name,
                                reset_url=url_for("me.reset_calendar"))
    session.commit()
    return render_template("me/index.html", volunteer=user.volunteer, today=today,
                           shifts=reports.upcoming_shifts(session, volunteer_id, today),
                           mine=availability.coming(session, volunteer_id, today), card=card)


@bp.post("/me/calendar/reset")
@login_required(roles=VOLUNTEER)
def reset_calendar() -> ResponseReturnValue:
    """"Reset my calendar link": the old link is revoked at once (404 from now on)."""
    links.reset_card(db_session(), own_volunteer_id(), actor_name())
    return _done("日历链接已重置：旧链接已失效，请用新链接重新订阅。")


def _form_date() -> dt.date:
    try:
        return dt.date.fromisoformat(request.form.get("date", ""))
    except ValueError:
        raise availability.AvailabilityError("date", "请填写日期 (enter a date)") from None


def _form_shift() -> int | None:
    raw = request.form.get("shift", "")
    if raw == "":
        return None
    if not raw.isdigit():
        raise availability.AvailabilityError("shift", "没有这个班次 (no such shift)")
    return int(raw)


def _done(message: str) -> ResponseReturnValue:
    db_session().commit()
    flash(gettext(message), "info")
    return redirect(url_for("me.index"))


def _refused(exc: availability.AvailabilityError) -> ResponseReturnValue:
    db_session().rollback()
    flash(str(exc), "error")
    return redirect(url_for("me.index")), 303


@bp.post("/me/unavailability")
@login_required(roles=VOLUNTEER)
def add_unavailability() -> ResponseReturnValue:
    try:
        availability.add_unavailability(
            db_session(), own_volunteer_id(), _form_date(), _form_shift(),
            request.form.get("reason", ""), actor_name(), today=local_now().date())
    except availability.AvailabilityError as exc:
        return _refused(exc)
    return _done("已登记不可用时间。")


@bp.post("/me/unavailability/<int:row_id>/delete")
@login_required(roles=VOLUNTEER)
def delete_unavailability(row_id: int) -> ResponseReturnValue:
    try:
        availability.delete_unavailability(db_session(), own_volunteer_id(), row_id, actor_name())
    except LookupError:
        abort(404)
    return _done("已删除。")


@bp.post("/me/preferences")
@login_required(roles=VOLUNTEER)
def add_preference() -> ResponseReturnValue:
    try:
        availability.add_preference(
            db_session(), own_volunteer_id(), _form_date(), _form_shift(),
            request.form.get("want") == "1", actor_name(), today=local_now().date())
    except availability.AvailabilityError as exc:
        return _refused(exc)
    return _done("已登记意愿。")


@bp.post("/me/preferences/<int:row_id>/delete")
@login_required(roles=VOLUNTEER)
def delete_preference(row_id: int) -> ResponseReturnValue:
    try:
        availability.delete_preference(db_session(), own_volunteer_id(), row_id, actor_name())
    except LookupError:
        abort(404)
    return _done("已删除。")
