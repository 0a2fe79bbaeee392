"""Keeping feed tokens out of logs.

A feed URL is the only credential a calendar has, and access logs are read by more
people than the database. Every path segment after ``/ical/`` (or ``/ical/site/``) is
replaced by ``***``, whatever it holds: a mistyped or revoked token is hidden too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask

_FEED_PATH = re.compile(r"(/ical/(?:site/)?)([^\s/?#\"']+?)(\.ics)?(?=[\s/?#\"']|$)")
#: Loggers that can print a request path: werkzeug's request log and the app's own
#: (Flask logs "Exception on <path>"); gunicorn's are covered by `web.gunicorn_conf`.
LOGGERS = ("werkzeug",)


def redact(text: str) -> str:
    """`text` with every feed token in a feed path replaced by ``***``."""
    if "/ical/" not in text:
        return text
    return _FEED_PATH.sub(lambda m: f"{m.group(1)}***{m.group(3) or ''}", text)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactFeedTokens(logging.Filter):
    """A logging filter that rewrites a record's message and arguments, never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        return True


def _add_once(logger: logging.Logger) -> None:
    if not any(isinstance(f, RedactFeedTokens) for f in logger.filters):
        logger.addFilter(RedactFeedTokens())


def install(app: Flask) -> None:
    """Put the filter on werkzeug's request logger and on the app's logger."""
    for name in LOGGERS:
        _add_once(logging.getLogger(name))
    _add_once(app.logger)
