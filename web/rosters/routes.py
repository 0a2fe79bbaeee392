"""Thin routes over `scheduler.rosters`, `scheduler.reports` and `scheduler.rulesets`."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import (
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from scheduler import exports, queues, reports, rosters, rulesets
from scheduler.models import Roster, RosterVersion, SolveRun
from web.auth import actor_name, login_required, site_scope
from web.database import db_session
from web.i18n import current_lang, gettext, local_now

from . import bp
from .forms import GenerateForm, PublishForm, parse_new_roster
from .grid import row_cells
from .schemas import run_json

COORDINATOR = ("coordinator",)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _roster(roster_id: int) -> Roster:
    roster = db_session().get(Roster, roster_id)
    if roster is None:
        abort(404)
    return roster


def _version(roster_id: int, number: int) -> RosterVersion:
    version = db_session().scalars(select(RosterVersion).where(
        RosterVersion.roster_id == roster_id, RosterVersion.number == number)).one_or_none()
    if version is None:
        abort(404)
    return version


@bp.get("/rosters")
@login_required(roles=COORDINATOR)
def index() -> ResponseReturnValue:
    session = db_session()
    items = list(session.scalars(select(Roster).order_by(Roster.start.desc(), Roster.id.desc())))
    published = {v.roster_id: v for v in session.scalars(
        select(RosterVersion).where(RosterVersion.state == "published"))}
    return render_template("rosters/index.html", rosters=items, published=published)


def _new_page(form: Any, errors: dict[str, Any], status: int = 200) -> ResponseReturnValue:
    sources = db_session().execute(select(Roster.id, Roster.name)
                                   .order_by(Roster.start.desc(), Roster.id.desc())).all()
    return render_template("rosters/new.html", form=form, errors=errors, sources=sources,
                           max_days=rosters.MAX_DAYS), status


@bp.get("/rosters/new")
@login_required(roles=COORDINATOR)
def new() -> ResponseReturnValue:
    tomorrow = local_now().date() + dt.timedelta(days=1)
    return _new_page({"start": tomorrow.isoformat(), "days": "14",
                      "rules": rosters.STANDARD_RULES}, {})


@bp.post("/rosters/new")
@login_required(roles=COORDINATOR)
def create() -> ResponseReturnValue:
    kwargs, errors = parse_new_roster(request.form)
    session = db_session()
    try:
        roster = rosters.create_roster(session, actor_name(), **kwargs)
    except rosters.RosterInputError as exc:
        session.rollback()
        return _new_page(request.form, {**exc.errors, **errors}, 422)
    if errors:  # a field the service accepted but the form could not read
        session.rollback()
        return _new_page(request.form, errors, 422)
    session.commit()
    flash(gettext("已创建排班周期，请导入用人需求。"), "info")
    return redirect(url_for("rosters.show", roster_id=roster.id))


@bp.get("/rosters/<int:roster_id>")
@login_required(roles=COORDINATOR)
def show(roster_id: int) -> ResponseReturnValue:
    roster = _roster(roster_id)
    session = db_session()
    runs = list(session.scalars(select(SolveRun).where(SolveRun.roster_id == roster_id)
                                .order_by(SolveRun.id.desc()).limit(10)))
    current = rosters.published_version(session, roster_id)
    return render_template("rosters/show.html", roster=roster, runs=runs,
                           versions=list(reversed(roster.versions)), current=current,
                           generate_form=GenerateForm(), publish_form=PublishForm(),
                           active=rosters.active_run(session, roster_id))


@bp.post("/rosters/<int:roster_id>/generate")
@login_required(roles=COORDINATOR)
def generate(roster_id: int) -> ResponseReturnValue:
    _roster(roster_id)
    form = GenerateForm()
    if not form.validate():
        flash(gettext("求解时间须在 1 到 3600 秒之间。"), "error")
        return redirect(url_for("rosters.show", roster_id=roster_id))
    try:
        run = rosters.generate(db_session(), roster_id, actor_name(), float(form.time_limit.data))
    except queues.QueueError as exc:
        flash(f"{gettext('无法开始求解：')}{exc}", "error")
        return redirect(url_for("rosters.show", roster_id=roster_id))
    return redirect(url_for("rosters.run", run_id=run.id))


@bp.get("/runs/<int:run_id>")
@login_required(roles=COORDINATOR)
def run(run_id: int) -> ResponseReturnValue:
    found = db_session().get(SolveRun, run_id)
    if found is None:
        abort(404)
    return render_template("rosters/run.html", run=found, data=run_json(found))


@bp.get("/runs/<int:run_id>.json")
@login_required(roles=COORDINATOR)
def run_status(run_id: int) -> ResponseReturnValue:
    found = db_session().get(SolveRun, run_id)
    if found is None:
        abort(404)
    response = jsonify(run_json(found))
    response.headers["Cache-Control"] = "no-store"
    return response


def _grid_args(roster: Roster) -> dict[str, Any]:
    start = None
    if request.args.get("start"):
        try:
            start = dt.date.fromisoformat(request.args["start"])
        except ValueError:
            abort(400)
    return {"start": start or roster.start, "site_code": request.args.get("site") or None,
            "skill": request.args.get("skill") or None,
            "street": request.args.get("street") or None}


@bp.get("/rosters/<int:roster_id>/versions/<int:number>")
@login_required(roles=COORDINATOR)
def version(roster_id: int, number: int) -> ResponseReturnValue:
    roster = _roster(roster_id)
    found = _version(roster_id, number)
    args = _grid_args(roster)
    grid = reports.grid(db_session(), found, site_scope(), **args)
    current = rosters.published_version(db_session(), roster_id)
    return render_template("rosters/grid.html", roster=roster, version=found, grid=grid,
                           cells=row_cells(grid, current_lang()),
                           args=args, current=current, publish_form=PublishForm(),
                           previous_week=args["start"] - dt.timedelta(days=7),
                           next_week=args["start"] + dt.timedelta(days=7))


@bp.post("/rosters/<int:roster_id>/versions/<int:number>/publish")
@login_required(roles=COORDINATOR)
def publish(roster_id: int, number: int) -> ResponseReturnValue:
    _version(roster_id, number)
    form = PublishForm()
    form.validate()
    session = db_session()
    try:
        rosters.publish(session, roster_id, number, form.expected.data, actor_name(),
                        reason=form.reason.data or None)
    except rosters.PublishConflict as exc:
        session.rollback()
        current = "—" if exc.current is None else str(exc.current)
        flash(gettext("发布冲突：其他人已发布了版本 ") + current
              + gettext("。请查看最新情况后再发布。"), "error")
        return redirect(url_for("rosters.show", roster_id=roster_id)), 303
    except rosters.VersionStateError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("rosters.show", roster_id=roster_id)), 303
    session.commit()
    flash(gettext("已发布版本 ") + str(number), "info")
    return redirect(url_for("rosters.show", roster_id=roster_id))


@bp.get("/rosters/<int:roster_id>/diff")
@login_required(roles=COORDINATOR)
def diff(roster_id: int) -> ResponseReturnValue:
    roster = _roster(roster_id)
    a, b = request.args.get("a", type=int), request.args.get("b", type=int)
    if a is None or b is None:
        abort(400)
    va, vb = _version(roster_id, a), _version(roster_id, b)
    return render_template("rosters/diff.html", roster=roster, a=va, b=vb,
                           diff=rosters.diff(db_session(), va.id, vb.id))


@bp.route("/rosters/<int:roster_id>/rules", methods=["GET", "POST"])
@login_required(roles=COORDINATOR)
def rules(roster_id: int) -> ResponseReturnValue:
    roster = _roster(roster_id)
    session = db_session()
    items = rulesets.roster_rules(session, roster_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        changes, errors = _rule_changes(items)
        if not errors:
            try:
                rulesets.update_rules(session, roster_id, changes, actor_name())
            except rulesets.RuleSettingsError as exc:
                session.rollback()
                errors = exc.errors
            else:
                session.commit()
                flash(gettext("规则已保存。"), "info")
                return redirect(url_for("rosters.rules", roster_id=roster_id))
        items = rulesets.roster_rules(session, roster_id)
    status = 422 if errors else 200
    return render_template("rosters/rules.html", roster=roster, rules=items, errors=errors,
                           form=request.form if errors else None), status


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _rule_changes(items: list[Any]) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """The form's values per rule position, and an error per field that is not a number."""
    changes: dict[int, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for rule in items:
        change: dict[str, Any] = {}
        raw_weight = request.form.get(f"r{rule.position}-weight", "").strip()
        if raw_weight == "":
            change["weight"] = None
        elif raw_weight.isdigit():
            change["weight"] = int(raw_weight)
        else:
            errors[f"rules[{rule.position}].weight"] = gettext("须为不小于 0 的整数（留空为硬性规则）")
        for key, old in (rule.params or {}).items():
            if not isinstance(old, int | float) or isinstance(old, bool):
                continue  # only numbers are edited here; the rest stays as imported
            raw = request.form.get(f"r{rule.position}-{key}", "").strip()
            try:
                change[key] = _number(raw)
            except ValueError:
                errors[f"rules[{rule.position}].{key}"] = gettext("须为数字")
        changes[rule.position] = change
    return changes, errors


#: Downloads of a roster: what each builds, its file suffix and media type.
_EXPORTS = {
    "roster.xlsx": (exports.roster_workbook, "排班表", XLSX),
    "hours.xlsx": (exports.service_hours_xlsx, "服务时长", XLSX),
    "hours.csv": (exports.service_hours_csv, "服务时长", "text/csv; charset=utf-8"),
}


@bp.get("/rosters/<int:roster_id>/export/<any('roster.xlsx', 'hours.xlsx', 'hours.csv'):kind>")
@login_required(roles=COORDINATOR)
def export(roster_id: int, kind: str) -> ResponseReturnValue:
    """The roster workbook or the service-hours report (`?version=N`, default as the CLI).

    Phones are masked: a download leaves the system.
    """
    build, title, media_type = _EXPORTS[kind]
    number = request.args.get("version", type=int)
    session = db_session()
    try:
        version = exports.export_version(session, roster_id, number)
        data = build(session, roster_id, version.number)
    except LookupError:
        abort(404)
    roster = _roster(roster_id)
    suffix = kind.rsplit(".", 1)[1]
    filename = f"{roster.name}-{title}-v{version.number}.{suffix}"
    response = send_file(io.BytesIO(data), mimetype=media_type, as_attachment=True,
                         download_name=filename, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
