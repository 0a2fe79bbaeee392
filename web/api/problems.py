"""Errors of the JSON API as RFC 9457 problem details (``application/problem+json``).

Every 4xx/5xx under ``/api/v1`` has this shape::

    {"type": "about:blank", "title": "没有权限", "status": 403,
     "detail": "…", "instance": "/api/v1/rosters/1",
     "errors": [{"location": "query", "field": "per_page", "value": "9999",
                 "message": "Must be greater than or equal to 1 and less than or equal to 500."}]}

``errors`` appears on 400/422 validation problems: one entry per field, with where it was
(``query``/``json``/``path``), the field path (``rules[0].hours`` style) and the value
sent. Other problems add their own members (a publish conflict says which version is
published now). Titles are Chinese, or English with the ``lang=en`` cookie.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, json, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from web.i18n import current_lang

PREFIX = "/api/v1"
MEDIA_TYPE = "application/problem+json"

#: Problem types beyond the plain HTTP status (``about:blank``).
VALIDATION = "urn:bastion:problem:validation"
CSRF = "urn:bastion:problem:csrf"
PUBLISH_CONFLICT = "urn:bastion:problem:publish-conflict"
VERSION_STATE = "urn:bastion:problem:version-state"
QUEUE_UNAVAILABLE = "urn:bastion:problem:queue-unavailable"

TITLES: dict[int, tuple[str, str]] = {
    400: ("请求无效", "Bad request"),
    401: ("需要登录", "Login required"),
    403: ("没有权限", "Forbidden"),
    404: ("不存在", "Not found"),
    405: ("不支持该方法", "Method not allowed"),
    409: ("冲突", "Conflict"),
    413: ("请求过大", "Request too large"),
    415: ("不支持的内容类型", "Unsupported media type"),
    422: ("参数无效", "Invalid parameters"),
    429: ("请求过多", "Too many requests"),
    500: ("服务器错误", "Internal server error"),
    503: ("暂时无法处理", "Service unavailable"),
}


def title(status: int) -> str:
    zh, en = TITLES.get(status, ("错误", "Error"))
    return en if current_lang() == "en" else zh


def problem(status: int, detail: str | None = None, *, type_: str = "about:blank",
            title_: str | None = None, headers: Mapping[str, str] | None = None,
            **members: Any) -> Response:
    """A problem+json response (``members`` are extra members, e.g. ``errors``)."""
    body: dict[str, Any] = {"type": type_, "title": title_ or title(status), "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update(members)
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


# -- validation errors --------------------------------------------------------------------

def _sent_value(location: str, path: list[str | int]) -> Any:
    """What the client sent at `path` of `location`, if it can be found."""
    if location == "query" and path:
        values = request.args.getlist(str(path[0]))
        return values[0] if len(values) == 1 else (values or None)
    if location == "json":
        node: Any = request.get_json(silent=True)
        for key in path:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                node = node[key]
            else:
                return None
        return node if not isinstance(node, dict | list) else None
    return None


def _field(path: list[str | int]) -> str:
    out = ""
    for key in path:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


def _flatten(messages: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            step: str | int = int(key) if isinstance(key, str) and key.isdigit() else key
            yield from _flatten(value, [*path, step])
    elif isinstance(messages, list | tuple) and messages and all(
            isinstance(m, str) for m in messages):
        for message in messages:
            yield path, message
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, path)
    else:
        yield path, str(messages)


def field_errors(messages: Mapping[str, Any]) -> list[dict[str, Any]]:
    """webargs' ``{"query": {"per_page": ["…"]}}`` as a flat list with paths and values."""
    errors = []
    for location, by_field in messages.items():
        location_name = "query" if location == "querystring" else str(location)
        for path, message in _flatten(by_field, []):
            field = _field(path) if path else "(body)"
            if field == "_schema":
                field = "(body)"
            errors.append({"location": location_name, "field": field, "message": message,
                           "value": _sent_value(location_name, path)})
    return errors


# -- handlers -----------------------------------------------------------------------------

def from_exception(exc: HTTPException) -> Response:
    """The problem response of an HTTP error raised while serving the API."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if isinstance(exc, CSRFError):
        return problem(400, exc.description, type_=CSRF)
    if "problem" in data:  # raised by `abort_problem`
        return problem(status, **data["problem"])
    if "messages" in data:  # webargs validation (422) or an unreadable body (400)
        errors = field_errors(data["messages"])
        detail: str | None = "; ".join(f"{e['location']}.{e['field']}: {e['message']}" for e in errors)
        return problem(status, detail, type_=VALIDATION, errors=errors,
                       headers=data.get("headers"))
    detail = exc.description if status != 500 else None  # no internals in a 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    return problem(status, detail, headers=headers)


class ProblemException(HTTPException):
    """An HTTP error carrying the members of its problem document."""

    def __init__(self, status: int, problem_members: dict[str, Any]) -> None:
        super().__init__(description=problem_members.get("detail"))
        self.code = status
        self.data = {"problem": problem_members}


def abort_problem(status: int, detail: str, **members: Any) -> None:
    """Stop the request with a problem response (``type_`` and extra members allowed)."""
    raise ProblemException(status, {"detail": detail, **members})


def init_app(app: Flask) -> None:
    """Problem responses for API errors raised outside the API's own views.

    Routing errors (an unknown path under ``/api/v1``, a wrong method) and server errors
    do not reach the blueprint's handlers; this app-level handler makes them problems
    too and leaves every other path's errors as they were.
    """

    def handle(exc: HTTPException) -> Any:
        if is_api_request():
            return from_exception(exc)
        return exc

    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(InternalServerError, handle)
