"""Secretaries: the people, sites and shifts of their branch, today and tomorrow."""

from flask import Blueprint

bp = Blueprint("branch", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
