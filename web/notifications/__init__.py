"""Notifications (通知): the notices waiting or failed, for the staff who can act on them.

A coordinator sees every notice; a secretary those to her volunteers (the people she may
record absent, `scheduler.absences.reports`), with the phone masked, and may send a
failed one again.
"""

from flask import Blueprint

bp = Blueprint("notifications", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
