"""Health check (`/healthz`) and the home page (a landing page, or the user's home)."""

from flask import Blueprint

bp = Blueprint("health", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
