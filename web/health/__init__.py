"""Health check and placeholder home page."""

from flask import Blueprint

bp = Blueprint("health", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
