"""Bastion web app: the Flask front end of the volunteer rostering system.

Dependencies point one way: web → scheduler → solver. Each feature is a blueprint in
its own folder (``web/<feature>/{routes,forms,schemas}.py``) with thin routes over the
``scheduler`` services; who may use a route is declared on it (see `web.auth`). Run it
with ``flask --app web run`` (Flask finds ``create_app``).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config

__version__ = "0.1.0"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}

csrf = CSRFProtect()
#: `app.extensions` key: absent if the web process runs no clock, False until it started.
CLOCK_KEY = "bastion_clock"

#: The main pages of each role, in the header (shown when their blueprint is registered).
NAV = {
    "coordinator": [("dashboard.index", "概览"), ("rosters.index", "排班"),
                    ("imports.index", "导入"), ("dispatch.board", "派单"),
                    ("absences.index", "缺勤登记"), ("notifications.index", "通知")],
    "secretary": [("branch.index", "本支部"), ("dispatch.board", "派单"),
                  ("absences.index", "缺勤登记"), ("notifications.index", "通知")],
    "volunteer": [("me.index", "我的班次"), ("me.tasks", "我的任务")],
}


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: config from ``BASTION_*`` variables, then ``overrides``."""
    app = Flask(__name__)
    app.config.from_mapping(config.load())
    if overrides:
        app.config.from_mapping(overrides)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # keep Chinese readable in JSON

    from . import auth as auth_feature
    from . import database, i18n

    database.init_app(app)
    csrf.init_app(app)
    auth_feature.init_app(app)
    i18n.init_app(app)
    _register_blueprints(app)
    from . import api

    api.init_app(app)  # /api/v1 and its OpenAPI document (flask-smorest)

    from . import calendar

    calendar.init_app(app)

    from . import cli

    cli.init_app(app)
    _register_error_pages(app)
    from . import outage

    outage.init_app(app)
    _start_clock_on_first_request(app)

    @app.context_processor
    def navigation() -> dict[str, Any]:
        def nav_links(user: Any) -> list[tuple[str, str]]:
            return [(e, label) for e, label in NAV.get(user.role, [])
                    if e in app.view_functions]

        return {"nav_links": nav_links}

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in security_headers(app):
            response.headers.setdefault(name, value)
        if g.get("user") is not None:
            # Pages of a logged-in user are theirs alone: no shared or back-button caches.
            response.headers.setdefault("Cache-Control", "private, no-store")
        response.vary.add("Cookie")
        return response

    # Last, so it wraps whatever else wraps the WSGI app: all of it sees the client.
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind `PROXY_HOPS` proxies, take the client's address and scheme from them.

    Only the last `PROXY_HOPS` values of X-Forwarded-For / -Proto are used, those our
    proxies appended; anything a client put before them is ignored.
    """
    hops = app.config.get("PROXY_HOPS", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def security_headers(app: Flask) -> list[tuple[str, str]]:
    """The headers every response of `app` carries: `SECURITY_HEADERS`, and HSTS when
    cookies are secure (served over HTTPS). Also sent by the feeds' WSGI fast path
    (`web.calendar.fastpath`), which answers without Flask."""
    headers = list(SECURITY_HEADERS.items())
    if app.config["SESSION_COOKIE_SECURE"]:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def _register_blueprints(app: Flask) -> None:
    from .absences import bp as absences_bp
    from .auth import bp as auth_bp
    from .branch import bp as branch_bp
    from .dashboard import bp as dashboard_bp
    from .dispatch import bp as dispatch_bp
    from .health import bp as health_bp
    from .imports import bp as imports_bp
    from .me import bp as me_bp
    from .notifications import bp as notifications_bp
    from .repairs import bp as repairs_bp
    from .rosters import bp as rosters_bp

    for blueprint in (health_bp, auth_bp, dashboard_bp, rosters_bp, imports_bp, me_bp,
                      branch_bp, dispatch_bp, absences_bp, repairs_bp, notifications_bp):
        app.register_blueprint(blueprint)


def _start_clock_on_first_request(app: Flask) -> None:
    """Without Redis there is no `rq cron`: the web process runs the periodic jobs.

    Started by the first request rather than by `create_app`, so ``flask bastion …``
    commands (which build the app too, e.g. before the schema exists) never start it.
    The clock is the app's: it runs only when the app's database is the one the periodic
    jobs use (``DATABASE_URL``; not an app given another one, or `DB_BIND`), it is kept in
    ``app.extensions[CLOCK_KEY]``, and `stop_clock` ends it.
    """
    if not app.config.get("CLOCK") or app.config.get("TESTING") or app.config.get("REDIS_URL"):
        return
    # False: wanted but not started yet (the feeds' fast path leaves such requests to Flask).
    app.extensions[CLOCK_KEY] = False
    lock = threading.Lock()

    @app.before_request
    def start_clock() -> None:
        if app.extensions.get(CLOCK_KEY) is not False:
            return
        from scheduler import db, jobs

        with lock:
            if app.extensions.get(CLOCK_KEY) is not False:
                return
            if app.config.get("DB_BIND") is not None or (
                    app.config["DATABASE_URL"] != db.database_url()):
                app.logger.warning("no in-process clock: this app's database is not the "
                                   "periodic jobs' (DATABASE_URL)")
                app.extensions[CLOCK_KEY] = None
            else:
                app.extensions[CLOCK_KEY] = jobs.start_local_clock()


def stop_clock(app: Flask, timeout: float = 10.0) -> bool:
    """Stop the in-process clock `app` started, if any (before its database goes away).

    True if there was one. A later request does not start it again.
    """
    clock = app.extensions.get(CLOCK_KEY)
    if not clock:  # never wanted (absent), not started yet (False) or not for this app (None)
        return False
    clock.stop(timeout)
    return True


def _register_error_pages(app: Flask) -> None:
    from .i18n import gettext

    pages = {
        400: ("请求无效", "表单已过期或无效，请刷新页面后重试。"),
        403: ("没有权限", "你没有权限查看此页面。"),
        404: ("页面不存在", "找不到这个页面。"),
    }

    def render(status: int, message: str | None = None) -> Any:
        from .api import problems

        if problems.is_api_request():  # the JSON API answers application/problem+json
            return problems.problem(status, message or problems.TITLES[status][1])
        title, default = pages[status]
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return {"error": gettext(title), "message": message or gettext(default)}, status
        return render_template("error.html", title=gettext(title),
                               message=message or gettext(default)), status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return render(400, gettext("表单已过期或无效，请刷新页面后重试。") + f" ({exc.description})")

    for status in pages:
        def handler(exc: HTTPException, status: int = status) -> Any:
            return render(status)

        app.register_error_handler(status, handler)
