"""Repairs: request a proposal for an absence, watch it, accept or reject; manual edits."""

from flask import Blueprint

bp = Blueprint("repairs", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
