"""The JSON API, ``/api/v1``: rosters, versions, assignments, volunteers and solve runs.

Built with flask-smorest: each view's arguments and responses are marshmallow schemas
(`web.api.schemas`), and the OpenAPI 3 document generated from them is served at
``GET /api/v1/openapi.json`` (public: it describes the API, it holds no data).

Access is the pages' (`web.auth`): the same session cookie, the same roles, the same
scope. Differences an API client needs:

- anonymous calls get **401** (not a redirect to the login page), the wrong role 403,
  and anything outside the user's scope **404**, exactly like a missing one;
- writes (POST) need the ``X-CSRFToken`` header; ``GET /api/v1/me`` returns the token;
- every error is ``application/problem+json`` (`web.api.problems`).

Role rules (decided here, tested in ``tests/test_api.py``):

=================================  ===========  =====================  ==================
                                   coordinator  secretary              volunteer
=================================  ===========  =====================  ==================
rosters, versions                  all          published versions     403
assignments of a version           all          their sites, published own, published
volunteers                         all          allowed at or working  403
                                                at their sites
solve runs, publish, diff          yes          403                    403
me, me/assignments                 me           me                     me (+ own shifts)
=================================  ===========  =====================  ==================
"""

from __future__ import annotations

import http
from typing import Any

from flask import Flask, current_app, request
from flask_smorest import Api, Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, Unauthorized, default_exceptions
from werkzeug.routing import BaseConverter

from web.auth import current_user

from . import problems
from .problems import PREFIX
from .schemas import ProblemSchema

TITLE = "Bastion API"
VERSION = "1"



class _Parser(FlaskParser):
    # An unknown query parameter is a 422, not ignored: ``site=3`` for ``site_id=3``
    # must not quietly list every site.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": None, "querystring": None}


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _Parser()


bp = _Blueprint("api", __name__, url_prefix=PREFIX,
               description="Bastion 志愿者排班 JSON API / volunteer rostering JSON API")

#: The security requirements of reads (the session cookie) and writes (cookie + CSRF).
READ: list[dict[str, list[str]]] = [{"session": []}]
WRITE: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]


class BastionApi(Api):
    """flask-smorest's Api with problem+json errors documented and handled by us."""

    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists its own error statuses

    def _register_error_handlers(self) -> None:
        """Our handlers (`web.api.problems`) instead of smorest's JSON ones, for the API only."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {
                "description": status.phrase,
                "content": {problems.MEDIA_TYPE: {"schema": ProblemSchema}},
            }
            self.spec.components.response(status.name, response, lazy=True)


@bp.before_request
def _login_first() -> None:
    """Anonymous calls are 401 problems (`login_required` would answer pages' JSON)."""
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "bastion_roles", None) != "public" and current_user() is None:
        raise Unauthorized("log in first: POST /login/staff or /login/code, then send the "
                           "session cookie")


def _problem(exc: HTTPException) -> Any:
    return problems.from_exception(exc)


# Flask looks for a handler of the status code (blueprint, then app) before one of the
# class, so the pages' 400/403/404 handlers would win over a class handler here: register
# each error status on the blueprint. (CSRFError is a 400: it lands here too.)
for _code in sorted(c for c in default_exceptions if c >= 400):
    bp.register_error_handler(_code, _problem)
bp.register_error_handler(HTTPException, _problem)


class IdConverter(BaseConverter):
    """``<id:roster_id>``: a positive 32-bit integer, else the path does not match (404).

    The range is in the pattern, not in ``to_python``: werkzeug answers 405 instead of 404
    when a value fails conversion on a path that another method serves (schemathesis
    found ``POST /rosters/7519033723600790528/solve-runs`` → 405).
    """

    regex = (r"(?:[1-9]\d{0,8}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}"
             r"|21474[0-7]\d{4}|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d"
             r"|214748364[0-7])")
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


def _id_schema(_converter: IdConverter) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def init_app(app: Flask) -> Api:
    """Register the API blueprint, its error handling and its OpenAPI document on `app`."""
    app.config.setdefault("API_TITLE", TITLE)
    app.config.setdefault("API_VERSION", VERSION)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": __doc__.split("\n\n")[0]},
        "servers": [{"url": "/"}],
    })
    app.url_map.converters["id"] = IdConverter
    api = BastionApi(app)
    api.register_converter(IdConverter, _id_schema)
    cookie = app.config.get("SESSION_COOKIE_NAME", "session")
    api.spec.components.security_scheme("session", {
        "type": "apiKey", "in": "cookie", "name": cookie,
        "description": "The session cookie set by logging in (POST /login/staff or "
                       "/login/code)"})
    api.spec.components.security_scheme("csrf", {
        "type": "apiKey", "in": "header", "name": "X-CSRFToken",
        "description": "The CSRF token of the session (GET /api/v1/me → csrf_token), "
                       "required on every POST"})
    api.register_blueprint(bp)
    problems.init_app(app)
    app.extensions["bastion_api"] = api
    return api


from . import routes  # noqa: E402,F401  (registers the views on bp)

__all__ = ["PREFIX", "READ", "WRITE", "bp", "init_app"]
