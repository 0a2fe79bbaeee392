"""Coordinator: XLSX/CSV imports with the full error list, and the templates to fill in."""

from flask import Blueprint

bp = Blueprint("imports", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
