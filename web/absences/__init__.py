"""Absences (缺勤登记): a secretary or coordinator records that a volunteer is away.

A secretary records absences of her volunteers only: those allowed at one of her sites or
assigned to one in a published roster recently or from today on (see
`scheduler.absences.reports`); anyone else is "no such volunteer". A coordinator may
record anyone's. The answer lists at once the volunteer's future published assignments
in the window and the tasks that went back to the dispatch queue.
"""

from flask import Blueprint

bp = Blueprint("absences", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)
