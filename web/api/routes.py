"""Thin views over `scheduler.rosters` (generate, publish, diff) and `scheduler.listings`.

Who may call what is declared on each view (`login_required`, `public`) and summed up in
`web.api`'s docstring; scope comes from `site_scope()` and `own_volunteer_id()` only.
Every view documents the statuses it can answer, so the OpenAPI document is complete.
The access check comes first (right under the route), before any argument is read: the
wrong role is 403 whatever the request says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from scheduler import listings, queues, rosters
from scheduler.accounts.models import User
from scheduler.accounts.services import SiteScope
from scheduler.models import ACTIVE_RUN_STATUSES, Roster, RosterVersion, SolveRun, Volunteer
from web.auth import current_user, login_required, own_volunteer_id, public, site_scope
from web.database import db_session

from . import READ, WRITE, bp
from . import schemas as s
from .problems import PUBLISH_CONFLICT, QUEUE_UNAVAILABLE, VERSION_STATE, abort_problem

F = TypeVar("F", bound=Callable[..., Any])

#: Ids in paths are positive 32-bit integers; anything else is a 404 before any query.
ID = "id"
COORDINATOR = ("coordinator",)
STAFF = ("coordinator", "secretary")
EVERYONE = ("coordinator", "secretary", "volunteer")


def errors(*statuses: int) -> Callable[[F], F]:
    """Document the problem responses a view can give (401 for every non-public view)."""
    def decorate(view: F) -> F:
        for status in statuses:
            view = bp.alt_response(status, response=_RESPONSE_NAMES[status])(view)
        return view

    return decorate


_RESPONSE_NAMES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                   404: "NOT_FOUND", 409: "CONFLICT", 422: "UNPROCESSABLE_ENTITY",
                   503: "SERVICE_UNAVAILABLE"}


def _user() -> User:
    user = current_user()
    assert user is not None  # behind login_required
    return user


def _not_found(what: str) -> None:
    abort_problem(404, what)


def _roster(roster_id: int) -> Roster:
    roster = db_session().get(Roster, roster_id)
    if roster is None:
        _not_found(f"no roster {roster_id}")
    assert roster is not None
    return roster


def _sees_drafts() -> bool:
    return _user().role == "coordinator"


def _version(roster_id: int, number: int, *, published_only: bool = False) -> RosterVersion:
    """Version `number` of the roster; secretaries and volunteers see the published one only."""
    query = select(RosterVersion).where(RosterVersion.roster_id == roster_id,
                                        RosterVersion.number == number)
    if published_only or not _sees_drafts():
        query = query.where(RosterVersion.state == "published")
    version = db_session().scalars(query).one_or_none()
    if version is None:
        _not_found(f"roster {roster_id} has no version {number} you can see")
    assert version is not None
    return version


def _page(page: listings.Page[Any]) -> dict[str, Any]:
    return {"items": page.items, "page": page.page, "per_page": page.per_page,
            "total": page.total}


# -- the document and the caller ----------------------------------------------------------

@bp.route("/openapi.json", methods=["GET"])
@public
@bp.doc(summary="This OpenAPI document", security=[])
@bp.response(200, description="OpenAPI 3 document",
             example={"openapi": "3.0.3"})
def openapi() -> Any:
    return current_app.extensions["bastion_api"].spec.to_dict()


@bp.route("/me", methods=["GET"])
@login_required(roles=EVERYONE)
@bp.doc(summary="The logged-in user, their scope and the CSRF token for writes",
        security=READ)
@bp.response(200, s.MeSchema)
@errors(401)
def me() -> Any:
    user = _user()
    volunteer = None
    if user.role == "volunteer" and user.volunteer is not None:
        volunteer = _volunteer_out(user.volunteer, show_phone=True)  # their own number
    return {"id": user.id, "role": user.role, "name": user.name, "branch": user.branch,
            "site_ids": sorted(site_scope().ids), "volunteer": volunteer,
            "csrf_token": generate_csrf()}


@bp.route("/me/assignments", methods=["GET"])
@login_required(roles=("volunteer",))
@bp.doc(summary="My shifts in published rosters (volunteers)", security=READ)
@bp.arguments(s.MyAssignmentArgs, location="query", as_kwargs=True)
@bp.response(200, s.AssignmentPageSchema)
@errors(401, 403, 422)
def my_assignments(page: int, per_page: int, **filters: Any) -> Any:
    return _page(listings.assignments(
        db_session(), scope=SiteScope(all=True), volunteer_id=own_volunteer_id(),
        published_only=True, page=page, per_page=per_page, **filters))


# -- rosters and versions -----------------------------------------------------------------

@bp.route("/rosters", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="Rosters, newest first", security=READ)
@bp.arguments(s.PageArgs, location="query", as_kwargs=True)
@bp.response(200, s.RosterPageSchema)
@errors(401, 403, 422)
def roster_list(page: int, per_page: int) -> Any:
    session = db_session()
    found = listings.rosters(session, page=page, per_page=per_page)
    published = listings.published_numbers(session, [r.id for r in found.items])
    out = _page(found)
    out["items"] = [_roster_out(r, published.get(r.id)) for r in found.items]
    return out


def _roster_out(roster: Roster, published: int | None) -> dict[str, Any]:
    return {"id": roster.id, "name": roster.name, "start": roster.start,
            "end": roster.start + dt.timedelta(days=roster.days - 1), "days": roster.days,
            "timezone": roster.timezone, "status": roster.status,
            "published_version": published}


@bp.route(f"/rosters/<{ID}:roster_id>", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="A roster", security=READ)
@bp.response(200, s.RosterSchema)
@errors(401, 403, 404)
def roster_get(roster_id: int) -> Any:
    roster = _roster(roster_id)
    published = listings.published_numbers(db_session(), [roster_id]).get(roster_id)
    return _roster_out(roster, published)


def _version_out(version: RosterVersion, count: int, unmet: list[dict[str, Any]] | None = None,
                 *, with_unmet: bool = False) -> dict[str, Any]:
    shown = (version.unmet or []) if unmet is None else unmet
    out = {name: getattr(version, name) for name in (
        "id", "roster_id", "number", "state", "created_at", "created_by", "published_at",
        "published_by", "solve_run_id", "solver_status", "objective", "bound")}
    out["unmet_count"] = len(shown)
    out["assignment_count"] = count
    if with_unmet:
        out["unmet"] = shown
    return out


def _scoped_unmet(versions: list[RosterVersion]) -> dict[int, list[dict[str, Any]]]:
    """Each version's unmet demand at the sites the user may see (all for coordinators)."""
    scope = site_scope()
    if scope.all:
        return {v.id: list(v.unmet or []) for v in versions}
    codes = [u.get("post", "") for v in versions for u in (v.unmet or [])]
    sites = listings.post_sites(db_session(), codes)
    return {v.id: [u for u in (v.unmet or []) if sites.get(u.get("post", "")) in scope]
            for v in versions}


def _assignment_scope_counts(versions: list[RosterVersion]) -> dict[int, int]:
    return listings.assignment_counts(db_session(), [v.id for v in versions],
                                      scope=site_scope())


@bp.route(f"/rosters/<{ID}:roster_id>/versions", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="Versions of a roster with their summaries (secretaries: the published one)",
        security=READ)
@bp.response(200, s.VersionListSchema)
@errors(401, 403, 404)
def version_list(roster_id: int) -> Any:
    _roster(roster_id)
    query = select(RosterVersion).where(RosterVersion.roster_id == roster_id)
    if not _sees_drafts():
        query = query.where(RosterVersion.state == "published")
    versions = list(db_session().scalars(query.order_by(RosterVersion.number)))
    counts = _assignment_scope_counts(versions)
    unmet = _scoped_unmet(versions)
    return {"items": [_version_out(v, counts.get(v.id, 0), unmet[v.id]) for v in versions]}


@bp.route(f"/rosters/<{ID}:roster_id>/versions/<{ID}:number>", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="A version: objective, bound, state, unmet demand and why", security=READ)
@bp.response(200, s.VersionDetailSchema)
@errors(401, 403, 404)
def version_get(roster_id: int, number: int) -> Any:
    version = _version(roster_id, number)
    counts = _assignment_scope_counts([version])
    return _version_out(version, counts.get(version.id, 0), _scoped_unmet([version])[version.id],
                        with_unmet=True)


@bp.route(f"/rosters/<{ID}:roster_id>/versions/<{ID}:number>/assignments", methods=["GET"])
@login_required(roles=EVERYONE)
@bp.doc(summary="Assignments of a version, a page at a time (secretaries: their sites; "
                "volunteers: their own, published versions only)", security=READ)
@bp.arguments(s.AssignmentArgs, location="query", as_kwargs=True)
@bp.response(200, s.AssignmentPageSchema)
@errors(401, 404, 422)
def assignment_list(roster_id: int, number: int, page: int, per_page: int,
                    **filters: Any) -> Any:
    user = _user()
    version = _version(roster_id, number)
    scope = site_scope()
    if user.role == "volunteer":
        scope = SiteScope(all=True)  # no site limit: their own shifts, wherever
        filters["volunteer_id"] = _own_or_nobody(filters.get("volunteer_id"))
    return _page(listings.assignments(db_session(), scope=scope, version_id=version.id,
                                      page=page, per_page=per_page, **filters))


def _own_or_nobody(asked: int | None) -> int:
    """A volunteer's filter is always themselves; asking for someone else finds nothing."""
    own = own_volunteer_id()
    return own if asked in (None, own) else -1


@bp.route(f"/rosters/<{ID}:roster_id>/versions/<{ID}:number>/publish", methods=["POST"])
@login_required(roles=COORDINATOR)
@bp.doc(summary="Publish a draft (compare-and-set on the published version)", security=WRITE,
        description="`expected_current` is the number of the version you saw published "
                    "(null: none). If another is published now the answer is 409 with "
                    "`current`, and nothing changes. Only drafts can be published (409 "
                    "with `state` otherwise).")
@bp.arguments(s.PublishRequest, location="json")
@bp.response(200, s.VersionDetailSchema)
@bp.alt_response(409, schema=s.PublishConflictSchema, content_type="application/problem+json",
                 description="Another version is published, or the target is not a draft")
@errors(400, 401, 403, 404, 422)
def publish(body: dict[str, Any], roster_id: int, number: int) -> Any:
    session = db_session()
    _version(roster_id, number)
    try:
        version = rosters.publish(session, roster_id, number, body["expected_current"],
                                  _user().name, reason=body.get("reason") or None)
    except rosters.PublishConflict as exc:
        session.rollback()
        abort_problem(409, str(exc), type_=PUBLISH_CONFLICT, expected=exc.expected,
                      current=exc.current)
    except rosters.VersionStateError as exc:
        session.rollback()
        state = session.scalars(select(RosterVersion.state).where(
            RosterVersion.roster_id == roster_id, RosterVersion.number == number)).one()
        current = rosters.published_version(session, roster_id)
        abort_problem(409, str(exc), type_=VERSION_STATE, state=state,
                      current=None if current is None else current.number,
                      expected=body["expected_current"])
    session.commit()
    counts = listings.assignment_counts(session, [version.id], scope=SiteScope(all=True))
    return _version_out(version, counts.get(version.id, 0), with_unmet=True)


@bp.route(f"/rosters/<{ID}:roster_id>/diff", methods=["GET"])
@login_required(roles=COORDINATOR)
@bp.doc(summary="What changes from version `from` to version `to`", security=READ)
@bp.arguments(s.DiffArgs, location="query", as_kwargs=True)
@bp.response(200, s.DiffSchema)
@errors(401, 403, 404, 422)
def diff(roster_id: int, from_: int, to: int) -> Any:
    _roster(roster_id)
    a, b = _version(roster_id, from_), _version(roster_id, to)
    found = rosters.diff(db_session(), a.id, b.id)
    return {"from_": a.number, "to": b.number, "added": found.added,
            "removed": found.removed, "moved": found.moved}


# -- solve runs ---------------------------------------------------------------------------

def _run_out(run: SolveRun) -> dict[str, Any]:
    active = run.status in ACTIVE_RUN_STATUSES
    percent = 100.0 if not active else (
        min(99.0, 100.0 * run.elapsed / run.time_limit)
        if run.elapsed and run.time_limit else 0.0)
    return {"id": run.id, "roster": run.roster_id, "status": run.status, "active": active,
            "solver_status": run.solver_status, "objective": run.objective,
            "bound": run.bound, "coverage": run.coverage, "elapsed": run.elapsed,
            "time_limit": run.time_limit, "percent": round(percent, 1),
            "version": (run.progress or {}).get("version"), "error": run.error,
            "requested_by": run.requested_by, "created_at": run.created_at,
            "started_at": run.started_at, "finished_at": run.finished_at}


@bp.route(f"/rosters/<{ID}:roster_id>/solve-runs", methods=["GET"])
@login_required(roles=COORDINATOR)
@bp.doc(summary="Solve runs of a roster, newest first", security=READ)
@bp.arguments(s.PageArgs, location="query", as_kwargs=True)
@bp.response(200, s.SolveRunPageSchema)
@errors(401, 403, 404, 422)
def run_list(roster_id: int, page: int, per_page: int) -> Any:
    _roster(roster_id)
    found = listings.solve_runs(db_session(), roster_id, page=page, per_page=per_page)
    out = _page(found)
    out["items"] = [_run_out(run) for run in found.items]
    return out


@bp.route(f"/rosters/<{ID}:roster_id>/solve-runs", methods=["POST"])
@login_required(roles=COORDINATOR)
@bp.doc(summary="Generate the roster: start a background solve", security=WRITE,
        description="202 with a new run (its URL in `Location`); 200 with the run already "
                    "queued or running for this roster, if any: one solve per roster at a "
                    "time, so repeating the request is safe.")
@bp.arguments(s.SolveRunRequest, location="json")
@bp.response(202, s.SolveRunSchema, description="A new run was queued")
@bp.alt_response(200, schema=s.SolveRunSchema, success=True,
                 description="The roster's active run (nothing new was started)")
@errors(400, 401, 403, 404, 422, 503)
def run_create(body: dict[str, Any], roster_id: int) -> Any:
    session = db_session()
    _roster(roster_id)
    before = rosters.active_run(session, roster_id)
    try:
        run = rosters.generate(session, roster_id, _user().name, body["time_limit"],
                               seed=body["seed"])
    except queues.QueueError as exc:
        abort_problem(503, f"the solve queue cannot take the job: {exc}",
                      type_=QUEUE_UNAVAILABLE)
    location = url_for("api.run_get", run_id=run.id)
    status = 200 if before is not None and before.id == run.id else 202
    return _run_out(run), status, {"Location": location}


@bp.route(f"/solve-runs/<{ID}:run_id>", methods=["GET"])
@login_required(roles=COORDINATOR)
@bp.doc(summary="A solve run and its progress: objective, bound, coverage, elapsed",
        security=READ)
@bp.response(200, s.SolveRunSchema)
@errors(401, 403, 404)
def run_get(run_id: int) -> Any:
    run = db_session().get(SolveRun, run_id)
    if run is None:
        _not_found(f"no solve run {run_id}")
    assert run is not None
    return _run_out(run)


# -- volunteers ---------------------------------------------------------------------------

@bp.route("/volunteers", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="Volunteers (secretaries: those allowed at or working at their sites)",
        security=READ)
@bp.arguments(s.VolunteerArgs, location="query", as_kwargs=True)
@bp.response(200, s.VolunteerPageSchema)
@errors(401, 403, 422)
def volunteer_list(page: int, per_page: int, status: str | None = None,
                   q: str | None = None) -> Any:
    found = listings.volunteers(db_session(), scope=site_scope(), status=status, query_text=q,
                                page=page, per_page=per_page)
    out = _page(found)
    out["items"] = [_volunteer_out(v, show_phone=site_scope().all) for v in found.items]
    return out


def _volunteer_out(volunteer: Volunteer, *, show_phone: bool) -> dict[str, Any]:
    """A volunteer as the API shows them; phones only to coordinators and to themselves."""
    out = {name: getattr(volunteer, name) for name in (
        "id", "code", "name", "unit", "skills", "party_member", "status", "max_shifts",
        "min_shifts", "sites_restricted")}
    out["allowed_sites"] = [site.id for site in volunteer.allowed_sites]
    out["phone"] = volunteer.phone if show_phone else None
    return out


@bp.route(f"/volunteers/<{ID}:volunteer_id>", methods=["GET"])
@login_required(roles=STAFF)
@bp.doc(summary="A volunteer (404 outside a secretary's sites)", security=READ)
@bp.response(200, s.VolunteerSchema)
@errors(401, 403, 404)
def volunteer_get(volunteer_id: int) -> Any:
    found = listings.volunteer(db_session(), volunteer_id, scope=site_scope())
    if found is None:
        _not_found(f"no volunteer {volunteer_id} you can see")
    assert found is not None
    return _volunteer_out(found, show_phone=site_scope().all)
