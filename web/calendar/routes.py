"""``GET /ical/<token>.ics`` and ``GET /ical/site/<token>.ics``: the feeds.

Unknown, revoked or malformed tokens, and a site token on the volunteer route (or the
reverse), all get the same 404. A strong ETag (the SHA-256 of the body, which is
byte-stable) lets a polling calendar's ``If-None-Match`` get 304. Built feeds are kept
per process (`services.FeedCache`), so an unchanged feed costs one query (the token
lookup, which also reads the fingerprint that says whether the cached feed is current).

`lookup` and `answer` hold the whole behaviour and need no request context: the views
below and the WSGI fast path in front of Flask (`web.calendar.fastpath`, which answers
the 200s and 304s of well-formed tokens) both call them. Too many requests for one token
or from one address get 429 (`limits`) before any query, in either.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple, cast

from flask import Flask, Response, abort, current_app, request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.http import http_date, parse_etags

from scheduler import db
from scheduler.calendars import services
from scheduler.db import utcnow
from web import security_headers
from web.auth import public

from . import bp, limits

CONTENT_TYPE = "text/calendar; charset=utf-8"
#: Calendars poll hourly (REFRESH-INTERVAL); a short max-age keeps manual refreshes fresh,
#: and `private` keeps shared caches from holding someone's shifts.
CACHE_CONTROL = "private, max-age=300"
#: `app.extensions` key of the app's `services.FeedCache` (absent: no cache).
CACHE_KEY = "bastion.feed_cache"

log = logging.getLogger(__name__)


class _Binds(NamedTuple):
    """Where a poll reads: `lookup` for the token statement (autocommit on PostgreSQL),
    `snapshot` for building a feed (one REPEATABLE READ snapshot on PostgreSQL)."""

    lookup: Engine | Connection
    snapshot: Engine | Connection


_binds: dict[str, _Binds] = {}
_binds_lock = threading.Lock()


def _binds_of(app: Flask) -> _Binds:
    """The feeds' engine of this process (``DB_BIND`` overrides it, for tests).

    Its own engine, without ``pool_pre_ping``: a poll that is answered from the cache
    then costs one round trip to PostgreSQL, not three. After a database restart the
    fast path's poll on a dead pooled connection fails and is answered again by Flask
    (see `web.calendar.fastpath`). The isolation-level variants are made once: making
    one per request costs more than the poll's query.
    """
    configured = app.config.get("DB_BIND")
    if configured is not None:
        bind = cast("Engine | Connection", configured)
        return _Binds(bind, bind)
    url = db.database_url()
    binds = _binds.get(url)
    if binds is None:
        with _binds_lock:
            binds = _binds.get(url)
            if binds is None:
                engine = db.make_engine(url, pool_pre_ping=False)
                binds = _binds[url] = _Binds(_with_isolation(engine, "AUTOCOMMIT"),
                                             _with_isolation(engine, "REPEATABLE READ"))
    return binds


def _with_isolation(engine: Engine, level: str) -> Engine:
    """`engine` at isolation `level` on PostgreSQL; SQLite's as it is."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level=level)
    return engine


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    """A Core connection that commits what was written when the block ends; a test's
    connection (``DB_BIND``) works in a savepoint of its transaction."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn
            conn.commit()
    else:
        with bind.begin_nested():
            yield bind


@contextmanager
def _snapshot(bind: Engine | Connection) -> Iterator[Session]:
    """A session for reading one state of the database, ended by COMMIT.

    The reads change nothing, so COMMIT ends them as ROLLBACK would; but psycopg forgets
    every prepared statement of the connection on ROLLBACK, and then PostgreSQL plans
    the feed's queries (and the token lookup) again on each poll: three times the CPU.
    """
    session = Session(bind=bind, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
        session.commit()
    finally:
        session.close()


def lookup(app: Flask, token: str, kind: str, now: dt.datetime) -> services.Feed | None:
    """The feed `token` opens if it is a live token of `kind`, else None (404).

    One statement on a bare connection when the process's cache holds the current feed
    (plus the hourly `last_used_at` write); a snapshot session to build it otherwise.
    """
    binds = _binds_of(app)
    cache: services.FeedCache | None = app.extensions.get(CACHE_KEY)
    domain = app.config["FEED_DOMAIN"]
    with _connection(binds.lookup) as conn:
        owner = services.resolve(conn, token)
    if owner is None or owner.kind != kind:
        return None
    if services.use_is_due(owner, now):
        _record_use(binds.lookup, owner, now)
    feed = cache.get(owner, domain, now) if cache is not None else None
    if feed is None:
        # Several statements that must see one state of the roster: one snapshot.
        with _snapshot(binds.snapshot) as session:
            feed = services.owner_feed(session, owner, now, domain=domain, cache=cache)
    return feed


def _record_use(bind: Engine | Connection, owner: services.FeedOwner, now: dt.datetime) -> None:
    """Write the token's hourly `last_used_at`, best effort, in a transaction of its own.

    Not in the lookup's transaction: on SQLite a transaction that has read cannot take
    the write lock once another poll has written (SQLITE_BUSY at once, no waiting), while
    one that starts by writing waits its turn. A failed write is a missed sign of life,
    not a reason to fail the poll.
    """
    try:
        with _connection(bind) as conn:
            services.mark_used(conn, owner, now)
    except DBAPIError as exc:
        log.warning("feed token row %s: last use not recorded: %s", owner.token_id,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


class Answer(NamedTuple):
    """A feed response: status, headers and body (empty for 304 and HEAD)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def answer(app: Flask, feed: services.Feed, if_none_match: str | None,
           method: str = "GET") -> Answer:
    """The response to a poll of `feed`: 304 if `if_none_match` names its ETag, else
    200 with the body. The headers are those Flask would send (the views' own plus
    `web.security_headers` and ``Vary: Cookie``, as `web.create_app` adds to every
    response)."""
    common = [("ETag", feed.etag), ("Cache-Control", CACHE_CONTROL),
              ("X-Robots-Tag", "noindex"), *security_headers(app), ("Vary", "Cookie")]
    # If-None-Match compares weakly (RFC 9110 13.1.2): a proxy that compressed the feed
    # may have turned our ETag into W/"…". Most polls send back our ETag as it was.
    if if_none_match is not None and (
            if_none_match == feed.etag
            or parse_etags(if_none_match).contains_weak(feed.etag.strip('"'))):
        return Answer(304, common, b"")
    headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(feed.body))),
               *common]
    if feed.last_modified is not None:
        headers.append(("Last-Modified", http_date(feed.last_modified)))
    return Answer(200, headers, b"" if method == "HEAD" else feed.body)


def _serve(token: str, kind: str) -> Response:
    if (refused := limits.refuse(token)) is not None:
        return refused
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    feed = lookup(app, token, kind, utcnow())
    if feed is None:
        abort(404)
    # Werkzeug leaves out the body of a HEAD response itself.
    status, headers, body = answer(app, feed, request.headers.get("If-None-Match"))
    return Response(body, status, headers)


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
