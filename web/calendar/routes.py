"""``GET /ical/<token>.ics`` and ``GET /ical/site/<token>.ics``: the feeds.

Unknown, revoked or malformed tokens, and a site token on the volunteer route (or the
reverse), all get the same 404. A strong ETag (the SHA-256 of the body, which is
byte-stable) lets a polling calendar's ``If-None-Match`` get 304. Built feeds are kept
per process (`services.FeedCache`), so an unchanged feed costs one query (the token
lookup, which also reads the fingerprint that says whether the cached feed is current).
Too many requests for one token or from one address get 429 (`limits`), before any query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from flask import Response, abort, current_app, request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from scheduler import db
from scheduler.calendars import services
from scheduler.db import utcnow
from web.auth import public

from . import bp, limits

CONTENT_TYPE = "text/calendar; charset=utf-8"
#: Calendars poll hourly (REFRESH-INTERVAL); a short max-age keeps manual refreshes fresh,
#: and `private` keeps shared caches from holding someone's shifts.
CACHE_CONTROL = "private, max-age=300"
#: `app.extensions` key of the app's `services.FeedCache` (absent: no cache).
CACHE_KEY = "bastion.feed_cache"


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _bind() -> Engine | Connection:
    """The feeds' engine of this process (``DB_BIND`` overrides it, for tests).

    Its own engine, without ``pool_pre_ping``: a poll that is answered from the cache
    then costs one round trip to PostgreSQL, not three. After a database restart one poll
    per pooled connection fails and the pool recovers; calendars retry within the hour.
    """
    configured = current_app.config.get("DB_BIND")
    if configured is not None:
        return cast("Engine | Connection", configured)
    url = db.database_url()
    engine = _engines.get(url)
    if engine is None:
        with _engines_lock:
            engine = _engines.setdefault(url, db.make_engine(url, pool_pre_ping=False))
    return engine


def _with_isolation(bind: Engine | Connection, level: str) -> Engine | Connection:
    """`bind` at isolation `level` on PostgreSQL; SQLite and test connections as they are."""
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        return bind.execution_options(isolation_level=level)
    return bind


@contextmanager
def _session(bind: Engine | Connection) -> Iterator[Session]:
    session = Session(bind=bind, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def _serve(token: str, kind: str) -> Response:
    if (refused := limits.refuse(token)) is not None:
        return refused
    now = utcnow()
    bind = _bind()
    cache: services.FeedCache | None = current_app.extensions.get(CACHE_KEY)
    domain = current_app.config["FEED_DOMAIN"]
    # One statement, no transaction needed: the token, its owner and the fingerprint.
    with _session(_with_isolation(bind, "AUTOCOMMIT")) as session:
        owner = services.resolve(session, token)
        if owner is None or owner.kind != kind:
            abort(404)
        feed = cache.get(owner, domain, now) if cache is not None else None
        try:
            if services.mark_used(session, owner, now):
                session.commit()
        except DBAPIError:  # a concurrent poll of the same token: its write will do
            session.rollback()
    if feed is None:
        # Several statements that must see one state of the roster: one snapshot.
        with _session(_with_isolation(bind, "REPEATABLE READ")) as session:
            feed = services.owner_feed(session, owner, now, domain=domain, cache=cache)
    response = Response(feed.body, content_type=CONTENT_TYPE)
    response.headers["ETag"] = feed.etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Robots-Tag"] = "noindex"
    if feed.last_modified is not None:
        response.last_modified = feed.last_modified
    # If-None-Match compares weakly (RFC 9110 13.1.2): a proxy that compressed the feed
    # may have turned our ETag into W/"…".
    if request.if_none_match.contains_weak(feed.etag.strip('"')):
        response.status_code = 304
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


@bp.get("/ical/<token>.ics")
@public  # the token in the URL is the credential (calendar apps send no cookie)
def volunteer_feed(token: str) -> Response:
    """A volunteer's shifts in every published roster."""
    return _serve(token, "volunteer")


@bp.get("/ical/site/<token>.ics")
@public  # the token in the URL is the credential
def site_feed(token: str) -> Response:
    """Every shift at a site, for its leaders."""
    return _serve(token, "site")
