"""The feeds' WSGI fast path: polls answered in front of Flask.

Calendars poll every feed hourly, so feed requests outnumber every other request of the
app; most of them end in a 304 or in a cached body. Through Flask such a poll paid for a
request context, the session cookie, the logged-in user, CSRF and the after-request hooks
several times over the one database statement it needs. `FeedFastPath` wraps the app's
WSGI callable and answers a GET or HEAD of ``/ical/<token>.ics`` or
``/ical/site/<token>.ics`` with a well-formed token itself, through the same
`routes.lookup` and `routes.answer` as the views: same status, headers and body.

Everything else goes to Flask untouched, and so do the polls the fast path does not
answer itself: unknown or revoked tokens (Flask renders the same 404 page as for any
missing page), any exception (Flask's handlers answer: 503 on a database outage, a
logged 500 otherwise; the request is tried once more there, which also gets past a
pooled connection that died with a database restart), and requests while the app's
local clock has not started yet (`web.create_app` starts it on a request).

Access logs are the server's (gunicorn's, redacted by `web.gunicorn_conf`); nothing here
logs a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scheduler.db import utcnow
from web import CLOCK_KEY

from . import limits, routes

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

#: A feed path with a well-formed token (the shape `services.resolve` accepts).
_FEED_PATH = re.compile(r"/ical/(site/)?([A-Za-z0-9_-]{43})\.ics")
_REASONS = {200: "200 OK", 304: "304 Not Modified"}


class FeedFastPath:
    """WSGI middleware: feed polls answered without Flask, the rest passed to `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith("/ical/"):
            return self.wsgi_app(environ, start_response)
        match = _FEED_PATH.fullmatch(path)
        method = environ.get("REQUEST_METHOD")
        if (match is None or method not in ("GET", "HEAD")
                or self.app.extensions.get(CLOCK_KEY) is False):
            return self.wsgi_app(environ, start_response)
        return self.poll(environ, start_response, match[2],
                         "site" if match[1] else "volunteer", method)

    def poll(self, environ: WSGIEnvironment, start_response: StartResponse, token: str,
             kind: str, method: str) -> Iterable[bytes]:
        """Answer a poll of a live token with 200 or 304, or 429 over a rate limit (before
        the database is read); leave everything else to Flask."""
        wait = limits.retry_after(self.app, token, environ.get("REMOTE_ADDR"))
        environ[limits.COUNTED] = True
        if wait is not None:
            start_response("429 Too Many Requests", limits.headers(wait))
            return [limits.TOO_MANY_BODY.encode()]
        answer: routes.Answer | None = None
        try:
            feed = routes.lookup(self.app, token, kind, utcnow())
            if feed is not None:
                answer = routes.answer(self.app, feed, environ.get("HTTP_IF_NONE_MATCH"),
                                       method)
        except Exception:  # Flask answers it with its error handlers (see the docstring)
            answer = None
        if answer is None:
            return self.wsgi_app(environ, start_response)
        start_response(_REASONS[answer.status], answer.headers)
        return [answer.body]


def install(app: Flask) -> None:
    """Put the fast path in front of `app`'s WSGI callable (once)."""
    if not isinstance(app.wsgi_app, FeedFastPath):
        app.wsgi_app = FeedFastPath(app, app.wsgi_app)  # type: ignore[method-assign]


__all__ = ["FeedFastPath", "install"]
