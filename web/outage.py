"""Database outages answer 503 with ``Retry-After``, never a 500 or a hung request.

While PostgreSQL restarts, every request that touches it fails fast (the pool's
pre-ping finds the dead connection; new connections are refused) and gets this answer;
the first request after the database is back succeeds, since nothing is cached. A
client (or a load balancer) retries after `RETRY_AFTER` seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

#: Seconds a client should wait before trying again.
RETRY_AFTER = 5

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>暂时无法服务 · Service unavailable</title></head>
<body><main><h1>暂时无法服务</h1>
<p>数据库暂时不可用，请稍后（约 {retry} 秒后）刷新页面重试。</p>
<p lang="en">The database is unavailable for a moment; please retry in about {retry} seconds.</p>
</main></body></html>
"""


#: SQLite calls a missing table an OperationalError too; only these are transient.
_SQLITE_TRANSIENT = ("database is locked", "unable to open database", "disk i/o error")


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        return str(exc.orig).lower().startswith(_SQLITE_TRANSIENT)
    return True


def init_app(app: Flask) -> None:
    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: Exception) -> Any:
        if not _is_outage(exc):
            raise exc  # a real bug: let Flask answer 500 and log it
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            body = {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                    "detail": "数据库暂时不可用，请稍后重试。The database is unavailable; retry later."}
            response = app.json.response(body)
            response.mimetype = "application/problem+json"
        else:
            response = Response(PAGE.format(retry=RETRY_AFTER), mimetype="text/html")
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER)
        response.headers["Cache-Control"] = "no-store"
        return response
