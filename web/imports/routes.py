"""Thin routes over `scheduler.imports` and `scheduler.templates`."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from scheduler import imports, templates
from scheduler.models import Roster
from web.auth import actor_name, login_required
from web.database import db_session

from . import bp

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _page(status: int = 200, **context: object) -> ResponseReturnValue:
    rosters = db_session().scalars(select(Roster).order_by(Roster.start.desc())).all()
    return render_template("imports/index.html", kinds=imports.KINDS,
                           labels=imports.KIND_LABELS, rosters=rosters, **context), status


@bp.get("/imports")
@login_required(roles=("coordinator",))
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/imports")
@login_required(roles=("coordinator",))
def upload() -> ResponseReturnValue:
    kind = request.form.get("kind", "")
    upload = request.files.get("file")
    if kind not in imports.KINDS or upload is None or not upload.filename:
        return _page(400, failure_message="请选择导入类型和文件。", kind=kind)
    roster_id = request.form.get("roster", type=int)
    session = db_session()
    try:
        result = imports.import_file(session, kind, upload.filename, upload.read(), actor_name(),
                                     roster_id=roster_id,
                                     dry_run=request.form.get("dry_run") == "1")
    except imports.ImportFailed as exc:
        session.rollback()
        return _page(exc.status, failure=exc, kind=kind)
    except (LookupError, ValueError) as exc:
        session.rollback()
        return _page(422, failure_message=str(exc), kind=kind)
    session.commit()
    return _page(result=result, kind=kind)


@bp.get("/imports/templates/<kind>.xlsx")
@login_required(roles=("coordinator",))
def template(kind: str) -> ResponseReturnValue:
    if kind not in imports.KINDS:
        abort(404)
    response = Response(templates.template_xlsx(kind), mimetype=XLSX)
    response.headers.set("Content-Disposition", "attachment",
                         filename=templates.FILENAMES[kind])
    return response
