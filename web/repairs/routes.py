"""Thin routes over `scheduler.repairs.services`.

Coordinators see every proposal; a secretary sees those whose affected shifts (the
absent volunteer's shifts in the window, and every post the proposal changes) touch
one of their sites, and edits by hand only at their sites. Elsewhere: 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from scheduler import queues, rosters
from scheduler.absences.models import Absence
from scheduler.absences.services import affected_assignments
from scheduler.models import Post, Roster
from scheduler.repairs import services
from scheduler.repairs.models import ACTIVE_PROPOSAL_STATUSES, RepairProposal
from web.auth import actor_name, login_required, site_scope
from web.database import db_session
from web.i18n import current_lang, gettext

from . import bp

STAFF = ("coordinator", "secretary")


def _visible(site_ids: set[int]) -> bool:
    scope = site_scope()
    return scope.all or any(s in scope for s in site_ids)


def _post_sites(codes: set[str]) -> set[int]:
    if not codes:
        return set()
    return set(db_session().scalars(select(Post.site_id).where(Post.code.in_(sorted(codes)))))


def _affected_sites(volunteer_id: int, window: tuple[dt.datetime, dt.datetime],
                    roster_id: int | None = None) -> tuple[set[int], set[int]]:
    """(site ids, roster ids) of the volunteer's published shifts in the window."""
    rows = [a for a in affected_assignments(db_session(), volunteer_id, window)
            if roster_id is None or a.roster_id == roster_id]
    return _post_sites({a.post for a in rows}), {a.roster_id for a in rows}


def _proposal(proposal_id: int) -> RepairProposal:
    proposal = db_session().get(RepairProposal, proposal_id)
    if proposal is None:
        abort(404)
    sites, _ = _affected_sites(proposal.volunteer_id, (proposal.starts_at, proposal.ends_at),
                               proposal.roster_id)
    sites |= _post_sites({c["post"] for c in proposal.changes})
    if not _visible(sites):
        abort(404)
    return proposal


def proposal_json(p: RepairProposal) -> dict[str, Any]:
    active = p.status in ACTIVE_PROPOSAL_STATUSES
    return {"id": p.id, "roster": p.roster_id, "status": p.status, "active": active,
            "percent": 0.0 if active else 100.0, "base": p.base_number,
            "changes": len(p.changes), "uncovered": len(p.uncovered), "error": p.error,
            "accepted": p.accepted_number}


@bp.post("/repairs/new")
@login_required(roles=STAFF)
def new() -> ResponseReturnValue:
    """Request a proposal for `absence_id` (query or form) on each roster it touches."""
    raw = request.values.get("absence_id", "")
    absence = db_session().get(Absence, int(raw)) if raw.isdigit() else None
    if absence is None:
        abort(404)
    sites, roster_ids = _affected_sites(absence.volunteer_id, (absence.starts_at, absence.ends_at))
    if not _visible(sites):
        abort(404)
    wanted = request.values.get("roster_id", type=int)
    if wanted is not None:
        roster_ids = roster_ids & {wanted}
    if not roster_ids:
        flash(gettext("该缺勤没有影响已发布的班次，无需调整。"), "info")
        return redirect(request.referrer or url_for("health.index")), 303
    created = []
    for roster_id in sorted(roster_ids):
        try:
            created.append(services.request_repair(db_session(), roster_id, absence.id, actor_name()))
        except services.RepairError as exc:
            db_session().rollback()
            flash(exc.message.zh if current_lang() == "zh" else exc.message.en, "error")
        except queues.QueueError as exc:
            flash(f"{gettext('无法开始计算调整方案：')}{exc}", "error")
    if not created:
        return redirect(request.referrer or url_for("health.index")), 303
    if len(created) > 1:
        flash(gettext("已为每个受影响的排班生成调整方案：") + ", ".join(
            f"#{p.id}" for p in created), "info")
    return redirect(url_for("repairs.show", proposal_id=created[0].id))


@bp.get("/repairs/<int:proposal_id>")
@login_required(roles=STAFF)
def show(proposal_id: int) -> ResponseReturnValue:
    proposal = _proposal(proposal_id)
    current = rosters.published_version(db_session(), proposal.roster_id)
    return render_template("repairs/show.html", proposal=proposal, data=proposal_json(proposal),
                           current=current, zh=current_lang() == "zh")


@bp.get("/repairs/<int:proposal_id>.json")
@login_required(roles=STAFF)
def status(proposal_id: int) -> ResponseReturnValue:
    response = jsonify(proposal_json(_proposal(proposal_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/repairs/<int:proposal_id>/accept")
@login_required(roles=STAFF)
def accept(proposal_id: int) -> ResponseReturnValue:
    proposal = _proposal(proposal_id)
    session = db_session()
    expected = request.form.get("expected", type=int)
    try:
        version = services.accept(session, proposal.id, actor_name(), expected)
    except services.StaleProposal:
        session.commit()  # the proposal's stale mark; the roster is untouched
        flash(gettext("排班已有新的发布版本，此调整方案已过期，请重新生成。"), "error")
        return render_template("repairs/show.html", proposal=proposal,
                               data=proposal_json(proposal), zh=current_lang() == "zh",
                               current=rosters.published_version(session, proposal.roster_id)
                               ), 409
    except rosters.PublishConflict:
        session.rollback()
        flash(gettext("发布冲突：页面显示的已发布版本不是最新的，请刷新后再试。"), "error")
        return redirect(url_for("repairs.show", proposal_id=proposal.id)), 303
    except services.RepairError as exc:
        session.rollback()
        flash(exc.message.zh if current_lang() == "zh" else exc.message.en, "error")
        return redirect(url_for("repairs.show", proposal_id=proposal.id)), 303
    session.commit()
    flash(gettext("已采纳调整方案，发布为版本 ") + str(version.number), "info")
    return redirect(url_for("repairs.show", proposal_id=proposal.id))


@bp.post("/repairs/<int:proposal_id>/reject")
@login_required(roles=STAFF)
def reject(proposal_id: int) -> ResponseReturnValue:
    proposal = _proposal(proposal_id)
    session = db_session()
    try:
        services.reject(session, proposal.id, actor_name(), request.form.get("reason") or None)
    except services.RepairError as exc:
        session.rollback()
        flash(exc.message.zh if current_lang() == "zh" else exc.message.en, "error")
        return redirect(url_for("repairs.show", proposal_id=proposal.id)), 303
    session.commit()
    flash(gettext("已拒绝调整方案。"), "info")
    return redirect(url_for("repairs.show", proposal_id=proposal.id))


# -- manual edits -------------------------------------------------------------------------

def _roster(roster_id: int) -> Roster:
    roster = db_session().get(Roster, roster_id)
    if roster is None:
        abort(404)
    return roster


def _change_from(form: Any) -> dict[str, Any]:
    change: dict[str, Any] = {k: (form.get(k) or "").strip() for k in (
        "action", "volunteer", "date", "shift", "post")}
    if change["action"] == "moved":
        change["from"] = {k: (form.get(f"from_{k}") or "").strip()
                          for k in ("date", "shift", "post")}
    return change


def _require_posts(change: dict[str, Any]) -> None:
    """A secretary edits only at their sites (404 elsewhere, like every other site)."""
    codes = {change.get("post") or ""} | {(change.get("from") or {}).get("post") or ""}
    sites = _post_sites({c for c in codes if c})
    scope = site_scope()
    if not scope.all and (not sites or any(s not in scope for s in sites)):
        abort(404)


@bp.get("/rosters/<int:roster_id>/change")
@login_required(roles=STAFF)
def change(roster_id: int) -> ResponseReturnValue:
    """The manual edit form; with `action` in the query, the preview of that edit."""
    roster = _roster(roster_id)
    session = db_session()
    current = rosters.published_version(session, roster_id)
    preview, error, form = None, None, request.args
    if request.args.get("action"):
        edit = _change_from(request.args)
        _require_posts(edit)
        try:
            preview = services.preview_change(session, roster_id, edit)
        except services.RepairError as exc:
            error = f"{exc.field}: " + (exc.message.zh if current_lang() == "zh"
                                        else exc.message.en)
    return render_template("repairs/change.html", roster=roster, current=current,
                           preview=preview, error=error, form=form,
                           zh=current_lang() == "zh"), 422 if error else 200


@bp.post("/rosters/<int:roster_id>/change")
@login_required(roles=STAFF)
def apply_change(roster_id: int) -> ResponseReturnValue:
    roster = _roster(roster_id)
    session = db_session()
    edit = _change_from(request.form)
    _require_posts(edit)
    expected = request.form.get("expected", type=int)
    preview, error, status_code = None, None, 422
    try:
        version = services.apply_change(session, roster_id, edit, actor_name(), expected,
                                        confirm_soft=request.form.get("confirm_soft") == "1")
    except (services.ChangeRefused, services.NeedsConfirmation) as exc:
        session.rollback()
        preview = exc.preview
    except services.RepairError as exc:
        session.rollback()
        error = f"{exc.field}: " + (exc.message.zh if current_lang() == "zh" else exc.message.en)
    except rosters.PublishConflict:
        session.rollback()
        error = gettext("发布冲突：页面显示的已发布版本不是最新的，请刷新后再试。")
        status_code = 409
    else:
        session.commit()
        flash(gettext("已调整并发布为版本 ") + str(version.number), "info")
        return redirect(url_for("repairs.change", roster_id=roster_id))
    return render_template("repairs/change.html", roster=roster, preview=preview, error=error,
                           current=rosters.published_version(session, roster_id),
                           form=request.form, zh=current_lang() == "zh"), status_code
