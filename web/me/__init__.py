"""Volunteers: my next shifts, my calendar subscription, my availability and preferences."""

from flask import Blueprint

bp = Blueprint("me", __name__, template_folder="templates")

from . import routes, tasks  # noqa: E402,F401  (registers the views on bp)
