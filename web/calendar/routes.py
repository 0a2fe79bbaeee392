"""``GET /ical/<token>.ics`` and ``GET /ical/site/<token>.ics``: the feeds.

Unknown, revoked or malformed tokens, and a site token on the volunteer route (or the
reverse), all get the same 404. A strong ETag (the SHA-256 of the body, which is
byte-stable) lets a polling calendar's ``If-None-Match`` get 304.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Response, abort, current_app, request
from sqlalchemy.orm import Session

from scheduler import db
from scheduler.calendars import services
from scheduler.db import utcnow

from . import bp

CONTENT_TYPE = "text/calendar; charset=utf-8"
#: Calendars poll hourly (REFRESH-INTERVAL); a short max-age keeps manual refreshes fresh,
#: and `private` keeps shared caches from holding someone's shifts.
CACHE_CONTROL = "private, max-age=300"


@contextmanager
def feed_session() -> Iterator[Session]:
    """A session on the scheduler's database (``DB_BIND`` overrides it, for tests)."""
    bind = current_app.config.get("DB_BIND") or db.get_engine()
    session = Session(bind=bind, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def _serve(token: str, kind: str) -> Response:
    now = utcnow()
    with feed_session() as session:
        owner = services.resolve(session, token)
        if owner is None or owner.kind != kind:
            abort(404)
        feed = services.owner_feed(session, owner, now, domain=current_app.config["FEED_DOMAIN"])
        if services.mark_used(session, owner, now):
            session.commit()
    response = Response(feed.body, content_type=CONTENT_TYPE)
    response.headers["ETag"] = feed.etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Robots-Tag"] = "noindex"
    if feed.last_modified is not None:
        response.last_modified = feed.last_modified
    if feed.etag.strip('"') in request.if_none_match:
        response.status_code = 304
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


@bp.get("/ical/<token>.ics")
def volunteer_feed(token: str) -> Response:
    """A volunteer's shifts in every published roster."""
    return _serve(token, "volunteer")


@bp.get("/ical/site/<token>.ics")
def site_feed(token: str) -> Response:
    """Every shift at a site, for its leaders."""
    return _serve(token, "site")
