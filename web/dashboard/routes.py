"""``GET /dashboard``: `scheduler.reports.dashboard` for the coordinator."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from scheduler import reports
from web.auth import login_required
from web.database import db_session

from . import bp


@bp.get("/dashboard")
@login_required(roles=("coordinator",))
def index() -> ResponseReturnValue:
    return render_template("dashboard/index.html", board=reports.dashboard(db_session()))
