"""Dispatch (派单) for secretaries and coordinators: the board, new tasks, offers.

A secretary sees and acts on the tasks of her sites only (`site_scope`; a task of another
branch's site is a 404); a coordinator on every task. The HTML pages are `routes`; the
same actions as JSON are `api` (``/dispatch/tasks/<id>.json`` and
``POST /dispatch/tasks/<id>/<action>.json``, answering ``application/problem+json`` on
refusal, 409 with the task's current state on a stale ``expected_version``). They stay
here rather than under ``/api/v1`` until the OpenAPI framework of that API takes them.
"""

from flask import Blueprint

bp = Blueprint("dispatch", __name__, template_folder="templates")

from . import api, routes  # noqa: E402,F401  (registers the views on bp)
