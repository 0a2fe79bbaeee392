"""Calendar feeds on the web: ``GET /ical/<token>.ics`` (a volunteer's shifts) and
``GET /ical/site/<token>.ics`` (a site's shifts, for its leaders), and the pieces of the
volunteer page's subscribe card (links, QR code, partial template).

The feed routes read only the database, never Redis, so calendars keep updating while
the queue is down. Tokens are secrets: `web.calendar.redact` keeps them out of logs.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("calendar", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)


def init_app(app: Flask) -> None:
    """Register the feed routes and their rate limits, put their fast path in front of the
    app and keep feed tokens out of the app's and werkzeug's logs."""
    from scheduler.calendars.services import FeedCache

    from . import fastpath, limits, redact
    from .routes import CACHE_KEY

    app.register_blueprint(bp)
    redact.install(app)
    limits.init_app(app)
    fastpath.install(app)
    if app.config.get("FEED_CACHE_SIZE", 4096) > 0:
        app.extensions[CACHE_KEY] = FeedCache(app.config.get("FEED_CACHE_SIZE", 4096))
