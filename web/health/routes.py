"""``GET /healthz`` for load balancers and ``GET /`` as a placeholder page."""

from __future__ import annotations

from flask import Response, jsonify, render_template_string

from .. import __version__
from . import bp

INDEX_HTML = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bastion 志愿者排班</title>
</head>
<body>
<main>
<h1>Bastion 志愿者排班</h1>
<p>疫情防控志愿者排班与任务调度系统。网页端正在建设中，敬请期待。</p>
<p lang="en">Bastion volunteer rostering: the web app is coming soon.</p>
<p><a href="{{ url_for('health.healthz') }}">/healthz</a> · 版本 {{ version }}</p>
</main>
</body>
</html>
"""


@bp.get("/healthz")
def healthz() -> Response:
    response = jsonify(status="ok", version=__version__)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> str:
    return render_template_string(INDEX_HTML, version=__version__)
