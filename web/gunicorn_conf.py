"""gunicorn settings: ``gunicorn -c web/gunicorn_conf.py 'web:create_app()'``.

The access log goes to stdout with feed tokens replaced by ``***`` (a feed URL is a
credential). Workers, threads and bind address come from the environment, as everywhere
else.

One process of 8 threads (gthread, keep-alive) by default. Calendar polls are most of the
requests and each is short (one indexed query, then 304 or a body from the process's feed
cache). On the 2-core machine that also runs PostgreSQL, in alternating runs under the
same load, one process answered 304s about 1.5 times and cached 200s about twice as fast
as two processes of 4 threads (each process builds a changed feed once for itself, so two
build it twice), with less CPU per request (`bench/feed_bench.py`; figures in the
README). A larger machine raises BASTION_WORKERS.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from web.calendar.redact import redact

bind = os.environ.get("BASTION_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("BASTION_WORKERS", "1"))
threads = int(os.environ.get("BASTION_THREADS", "8"))
worker_class = "gthread"  # threads and keep-alive (the sync worker has neither)
accesslog = os.environ.get("BASTION_ACCESS_LOG", "-")
errorlog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger with feed tokens redacted from every access-log atom (request
    line, path, raw URI, referer, environ) and from error messages."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in atoms.items()}

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().error(_clean(msg), *map(_clean, args), **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().exception(_clean(msg), *map(_clean, args), **kwargs)


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


logger_class = RedactingLogger
