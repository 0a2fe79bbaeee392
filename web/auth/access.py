"""The logged-in user of a request, the role decorator and the scope helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from scheduler.accounts import services
from scheduler.accounts.models import ROLES, User
from web.database import db_session

F = TypeVar("F", bound=Callable[..., Any])

#: The session keys: the user's id and the session generation seen at login.
USER_KEY, GENERATION_KEY = "uid", "gen"


def init_app(app: Flask) -> None:
    app.before_request(_load_user)


def _load_user() -> None:
    g.user = None
    if USER_KEY not in session:
        return
    user = services.session_user(db_session(), session.get(USER_KEY),
                                 session.get(GENERATION_KEY))
    if user is None:
        session.clear()  # logged out elsewhere, disabled, or a forged/stale cookie
        return
    g.user = user


def log_in(user: User) -> None:
    """Start a fresh session for `user` (a new cookie: no fixation of an old one)."""
    session.clear()
    session.permanent = True
    session[USER_KEY] = user.id
    session[GENERATION_KEY] = user.session_generation
    g.user = user


def current_user() -> User | None:
    """The logged-in user of this request, or None."""
    return g.get("user")


def actor_name() -> str:
    """The logged-in user's name, as audit records and services take it.

    Only behind ``login_required``, where there is always a user.
    """
    user = current_user()
    assert user is not None, "actor_name() outside login_required"
    return user.name


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json")


def _deny_anonymous() -> ResponseReturnValue:
    if _wants_json():
        return jsonify(error="login required"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(roles: Iterable[str] | None = None) -> Callable[[F], F]:
    """Views for logged-in users of `roles` (any role if None); others get 302/401/403."""
    allowed = tuple(roles) if roles is not None else ROLES
    unknown = set(allowed) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return _deny_anonymous()
            if user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        wrapper.bastion_roles = allowed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a view as open to everyone (the route table test needs every view marked)."""
    view.bastion_roles = "public"  # type: ignore[attr-defined]
    return view


def _user() -> User:
    user = current_user()
    if user is None:
        abort(401)
    return user


def site_scope() -> services.SiteScope:
    """The sites the current user may see (cached for the request)."""
    scope: services.SiteScope | None = g.get("site_scope")
    if scope is None:
        scope = g.site_scope = services.visible_site_ids(db_session(), _user())
    return scope


def require_site(site_id: int) -> None:
    """404 unless the current user may see site `site_id`."""
    if site_id not in site_scope():
        abort(404)


def own_volunteer_id() -> int:
    """The current user's own volunteer id (403 for anyone but a volunteer)."""
    try:
        return services.own_volunteer_id(_user())
    except services.NotAVolunteer:
        abort(403)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (no open redirect), else None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def home_for(user: User) -> str:
    """Where a user lands after login: their role's main page."""
    endpoint = {"coordinator": "dashboard.index", "secretary": "branch.index",
                "volunteer": "me.index"}[user.role]
    try:
        return url_for(endpoint)
    except Exception:  # the page's blueprint is not registered (yet)
        return url_for("health.index")
