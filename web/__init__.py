"""Bastion web app: the Flask front end of the volunteer rostering system.

Dependencies point one way: web → scheduler → solver. For now the app only
serves a placeholder page and a health check; run it with
``flask --app web run`` (Flask finds ``create_app``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

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


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: config from ``BASTION_*`` variables, then ``overrides``."""
    app = Flask(__name__)
    app.config.from_mapping(config.load())
    if overrides:
        app.config.from_mapping(overrides)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # keep Chinese readable in JSON

    from .health import bp as health_bp

    app.register_blueprint(health_bp)

    from . import calendar

    calendar.init_app(app)

    from . import cli

    cli.init_app(app)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
