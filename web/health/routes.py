"""``GET /healthz`` for load balancers and ``GET /``: a landing page or the user's home."""

from __future__ import annotations

from flask import Response, jsonify, redirect, render_template
from flask.typing import ResponseReturnValue

from .. import __version__
from ..auth import current_user, public
from ..auth.access import home_for
from . import bp


@bp.get("/healthz")
@public
def healthz() -> Response:
    response = jsonify(status="ok", version=__version__)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@public
def index() -> ResponseReturnValue:
    user = current_user()
    if user is not None:
        target = home_for(user)
        if target != "/":
            return redirect(target)
    return render_template("health/index.html", version=__version__)
