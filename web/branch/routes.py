"""``GET /branch``: the secretary's sites only (`site_scope`)."""

from __future__ import annotations

import datetime as dt

from flask import render_template
from flask.typing import ResponseReturnValue

from scheduler import reports
from web.auth import current_user, login_required, site_scope
from web.database import db_session
from web.i18n import local_now

from . import bp


@bp.get("/branch")
@login_required(roles=("secretary",))
def index() -> ResponseReturnValue:
    today = local_now().date()
    dates = [today, today + dt.timedelta(days=1)]
    sites, shifts = reports.branch_days(db_session(), site_scope(), dates)
    return render_template("branch/index.html", user=current_user(), sites=sites,
                           shifts=shifts, dates=dates)
