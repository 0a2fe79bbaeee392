"""The Flask app factory, health check, home page and security headers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web import SECURITY_HEADERS, __version__, config, create_app, stop_clock


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from no BASTION_* variables, whatever the shell exports."""
    for name in list(os.environ):
        if name.startswith(config.PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def app() -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret"})


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_SECRET_KEY", "from-env")
    assert create_app().config["SECRET_KEY"] == "from-env"
    app = create_app({"TESTING": True, "SECRET_KEY": "from-overrides"})
    assert app.testing
    assert app.config["SECRET_KEY"] == "from-overrides"


def test_dev_default_secret_only_outside_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASTION_SECRET_KEY", raising=False)
    monkeypatch.setenv("BASTION_ENV", "development")
    assert create_app().config["SECRET_KEY"] == config.DEV_SECRET_KEY
    monkeypatch.setenv("BASTION_ENV", "production")
    with pytest.raises(config.ConfigError, match="BASTION_SECRET_KEY"):
        create_app()
    monkeypatch.setenv("BASTION_SECRET_KEY", "s3cret")
    with pytest.raises(config.ConfigError, match="BASTION_OTP_SENDER"):
        create_app()  # the development sender only logs codes
    monkeypatch.setenv("BASTION_OTP_SENDER", "sms_gateway:send_code")
    with pytest.raises(config.ConfigError, match="BASTION_NOTIFY_SENDER"):
        create_app()  # nor notifications
    monkeypatch.setenv("BASTION_NOTIFY_SENDER", "sms_gateway:send_notice")
    app = create_app()
    assert app.config["SECRET_KEY"] == "s3cret"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_typed_env_helpers() -> None:
    env = {"BASTION_FLAG": "yes", "BASTION_N": " 42 ", "BASTION_S": " x ", "BASTION_BAD": "maybe"}
    assert config.env_bool("FLAG", env=env) is True
    assert config.env_bool("MISSING", True, env=env) is True
    assert config.env_int("N", 0, env=env) == 42
    assert config.env_str("S", env=env) == "x"
    assert config.env_str("MISSING", "d", env=env) == "d"
    with pytest.raises(config.ConfigError, match="BASTION_BAD"):
        config.env_bool("BAD", env=env)
    with pytest.raises(config.ConfigError, match="BASTION_S"):
        config.env_int("S", 0, env=env)


def test_proxy_hops_setting() -> None:
    assert config.load({})["PROXY_HOPS"] == 0
    assert config.load({"BASTION_PROXY_HOPS": "1"})["PROXY_HOPS"] == 1
    with pytest.raises(config.ConfigError, match="BASTION_PROXY_HOPS"):
        config.load({"BASTION_PROXY_HOPS": "-1"})


def test_healthz_json(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json() == {"status": "ok", "version": __version__}
    assert response.headers["Cache-Control"] == "no-store"


def test_index_is_chinese_html(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "<title>Bastion 志愿者排班</title>" in html
    assert 'href="/healthz"' in html


@pytest.mark.parametrize("path", ["/", "/healthz", "/no-such-page"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_unknown_route_is_404(client: FlaskClient) -> None:
    assert client.get("/no-such-page").status_code == 404


def test_healthz_rejects_post(client: FlaskClient) -> None:
    assert client.post("/healthz").status_code == 405


def test_database_and_redis_urls_are_the_schedulers(monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.db import database_url
    from scheduler.queues import redis_url

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app()
    assert app.config["DATABASE_URL"] == database_url() and app.config["REDIS_URL"] is None
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/bastion")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    app = create_app()
    assert app.config["DATABASE_URL"] == "postgresql+psycopg://u@db.example/bastion"
    assert app.config["DATABASE_URL"] == database_url()
    assert app.config["REDIS_URL"] == "redis://cache.example:6379/0" == redis_url()
    monkeypatch.setenv("BASTION_DATABASE_URL", "sqlite://")
    with pytest.raises(config.ConfigError, match="set DATABASE_URL"):
        create_app()


def test_every_interface_text_has_an_english_entry() -> None:
    import re
    from pathlib import Path

    from web.i18n import EN

    root = Path(__file__).resolve().parent.parent / "web"
    texts: set[str] = set()
    for path in root.rglob("*.html"):
        texts |= set(re.findall(r"""_\((["'])(.+?)\1\)""", path.read_text(encoding="utf-8")))
    for path in root.rglob("*.py"):
        texts |= set(re.findall(r"""gettext\((["'])(.+?)\1\)""", path.read_text(encoding="utf-8")))
    missing = sorted(text for _quote, text in texts if text not in EN)
    assert not missing, f"no English for: {missing}"


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_database_outage_answers_503_with_retry_after(accept: str) -> None:
    """Nothing listens on port 1: every query fails as during a PostgreSQL restart."""
    from sqlalchemy import text

    from web.database import db_session

    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                      "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/down"})

    @app.get("/_probe")
    def probe() -> str:
        return str(db_session().execute(text("SELECT 1")).scalar())

    response = app.test_client().get("/_probe", headers={"Accept": accept})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    if accept == "application/json":
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 503
    else:
        assert "数据库暂时不可用" in response.get_data(as_text=True)


def test_a_programming_error_in_sql_is_still_a_500() -> None:
    from sqlalchemy import text

    from web.database import db_session

    app = create_app({"TESTING": False, "SECRET_KEY": "test-secret",
                      "DATABASE_URL": "sqlite://", "CLOCK": False})

    @app.get("/_probe")
    def probe() -> str:
        return str(db_session().execute(text("SELECT * FROM no_such_table")).scalar())

    assert app.test_client().get("/_probe").status_code == 500


def test_the_clock_an_app_started_stops_with_it(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from scheduler import jobs

    ticks: list[float] = []
    monkeypatch.setattr(jobs, "PERIODIC", [(lambda: ticks.append(time.monotonic()), 0.01)])
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bastion.sqlite3'}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app({"SECRET_KEY": "test-secret", "TESTING": False, "CLOCK": True})
    app.test_client().get("/healthz")
    clock = app.extensions["bastion_clock"]
    try:
        assert clock is not None and clock.is_alive()
        deadline = time.monotonic() + 10
        while len(ticks) < 3:
            assert time.monotonic() < deadline, "the clock does not tick"
            time.sleep(0.01)
    finally:
        assert stop_clock(app)
    assert not clock.is_alive()
    app.test_client().get("/healthz")  # a later request does not start another
    assert app.extensions["bastion_clock"] is clock and not clock.is_alive()
    assert not stop_clock(create_app({"SECRET_KEY": "test-secret"}))  # started none
