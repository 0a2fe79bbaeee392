"""Coordinator: rosters, generate with live progress, the grid, publish, diff, rule settings."""

from flask import Blueprint

bp = Blueprint("rosters", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
