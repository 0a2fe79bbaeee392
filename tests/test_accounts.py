"""Accounts and login: passwords, one-time codes, throttling, sessions, CSRF, scope, CLI."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.accounts import services
from scheduler.accounts.models import LoginAttempt, OneTimeCode, User
from scheduler.db import upgrade, utcnow
from scheduler.models import AuditEvent, Site, Volunteer
from tests.fixtures.webhelp import PASSWORD, csrf_token, form_post, login
from web import create_app

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

IP = "203.0.113.7"


def _codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return re.findall(r"login code for \S+: (\d{6})", caplog.text)


def _sent() -> tuple[list[tuple[str, str]], Callable[[str, str], None]]:
    sent: list[tuple[str, str]] = []
    return sent, lambda phone, code: sent.append((phone, code))


# -- passwords and users ------------------------------------------------------------------

def test_staff_user_gets_an_argon2id_hash_and_an_audit_row(db: Session,
                                                          create_site: Callable[..., Site]) -> None:
    site = create_site("hq")
    user = services.create_staff_user(db, "wang", "secretary", PASSWORD, "admin",
                                      site_codes=["hq"], branch="一支部")
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert [s.id for s in user.sites] == [site.id]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.create")).one()
    assert event.actor == "admin" and event.after["sites"] == ["hq"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"role": "volunteer"}, "role"),
    ({"password": "short"}, "at least 10"),
    ({"site_codes": ["nowhere"]}, "nowhere"),
    ({"role": "coordinator", "site_codes": ["hq"]}, "only secretaries"),
    ({"username": " "}, "username"),
])
def test_bad_user_input_is_refused_and_nothing_is_written(
        db: Session, create_site: Callable[..., Site], kwargs: dict[str, Any],
        message: str) -> None:
    create_site("hq")
    args: dict[str, Any] = {"username": "li", "role": "secretary", "password": PASSWORD}
    args.update(kwargs)
    with pytest.raises(services.AccountError, match=message):
        services.create_staff_user(db, args.pop("username"), args.pop("role"),
                                   args.pop("password"), "admin", **args)
    assert db.scalar(select(func.count(User.id))) == 0
    assert db.scalar(select(func.count(AuditEvent.id))) == 0


def test_duplicate_username_is_refused(db: Session) -> None:
    services.create_staff_user(db, "li", "coordinator", PASSWORD, "admin")
    with pytest.raises(services.AccountError, match="li"):
        services.create_staff_user(db, "li", "coordinator", PASSWORD, "admin")


def test_password_login_records_attempts(db: Session, create_user: Callable[..., User]) -> None:
    user = create_user("coordinator", username="zhang")
    assert services.authenticate_password(db, "zhang", PASSWORD, IP).id == user.id
    with pytest.raises(services.LoginFailed):
        services.authenticate_password(db, "zhang", "wrong password", IP)
    with pytest.raises(services.LoginFailed):
        services.authenticate_password(db, "nobody", PASSWORD, IP)
    rows = db.execute(select(LoginAttempt.account, LoginAttempt.success)
                      .order_by(LoginAttempt.id)).all()
    assert rows == [("zhang", True), ("zhang", False), ("nobody", False)]


def test_disabled_user_cannot_log_in(db: Session, create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang", active=False)
    with pytest.raises(services.LoginFailed):
        services.authenticate_password(db, "zhang", PASSWORD, IP)


def test_account_throttle_refuses_even_the_right_password(
        db: Session, create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    now = utcnow()
    for i in range(services.MAX_ACCOUNT_FAILURES):
        with pytest.raises(services.LoginFailed) as info:
            services.authenticate_password(db, "zhang", "guess", f"198.51.100.{i}", now=now)
        assert not isinstance(info.value, services.Throttled)
    with pytest.raises(services.Throttled):
        services.authenticate_password(db, "zhang", PASSWORD, IP, now=now)
    # After the window the right password works again.
    later = now + services.THROTTLE_WINDOW + dt.timedelta(seconds=1)
    assert services.authenticate_password(db, "zhang", PASSWORD, IP, now=later).username == "zhang"


def test_ip_throttle_spans_accounts(db: Session, create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    now = utcnow()
    for i in range(services.MAX_IP_FAILURES):
        with pytest.raises(services.LoginFailed):
            services.authenticate_password(db, f"user{i}", "guess", IP, now=now)
    with pytest.raises(services.Throttled):
        services.authenticate_password(db, "zhang", PASSWORD, IP, now=now)
    assert services.authenticate_password(db, "zhang", PASSWORD, "192.0.2.1", now=now)


# -- one-time codes -----------------------------------------------------------------------

def test_code_login_creates_the_volunteer_user_once(
        db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    volunteer = create_volunteer("陈静", phone="13800138000")
    sent, sender = _sent()
    assert services.request_code(db, "138 0013 8000", IP, sender) is True
    (phone, code), = sent
    assert phone == "+8613800138000"
    stored = db.scalars(select(OneTimeCode)).one()
    assert code not in stored.code_hash
    user = services.verify_code(db, "+86 138-0013-8000", code, IP)
    assert (user.role, user.volunteer_id) == ("volunteer", volunteer.id)
    with pytest.raises(services.WrongCode):  # a used code never works again
        services.verify_code(db, "13800138000", code, IP)
    services.request_code(db, "13800138000", IP, sender)
    again = services.verify_code(db, "13800138000", sent[-1][1], IP)
    assert again.id == user.id
    assert db.scalar(select(func.count(User.id))) == 1


def test_unknown_or_inactive_phone_gets_no_code(
        db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("赵磊", phone="13900000001", status="left")
    sent, sender = _sent()
    assert services.request_code(db, "13900000001", IP, sender) is False
    assert services.request_code(db, "13900000002", IP, sender) is False
    assert sent == [] and db.scalar(select(func.count(OneTimeCode.id))) == 0
    with pytest.raises(services.AccountError, match="phone"):
        services.request_code(db, "not a phone", IP, sender)


def test_wrong_codes_count_and_kill_the_code(
        db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("陈静", phone="13800138000")
    sent, sender = _sent()
    services.request_code(db, "13800138000", IP, sender)
    code = sent[0][1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(services.MAX_CODE_ATTEMPTS):
        with pytest.raises(services.WrongCode):
            services.verify_code(db, "13800138000", wrong, IP)
    assert db.scalars(select(OneTimeCode)).one().attempts == services.MAX_CODE_ATTEMPTS
    with pytest.raises(services.LoginFailed):  # the right code is dead now
        services.verify_code(db, "13800138000", code, IP)


def test_codes_expire(db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("陈静", phone="13800138000")
    sent, sender = _sent()
    now = utcnow()
    services.request_code(db, "13800138000", IP, sender, now=now)
    with pytest.raises(services.WrongCode):
        services.verify_code(db, "13800138000", sent[0][1], IP,
                             now=now + services.CODE_TTL + dt.timedelta(seconds=1))


def test_code_requests_are_throttled_per_phone(
        db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("陈静", phone="13800138000")
    sent, sender = _sent()
    for _ in range(services.MAX_CODES_PER_PHONE):
        services.request_code(db, "13800138000", IP, sender)
    with pytest.raises(services.Throttled):
        services.request_code(db, "13800138000", "192.0.2.9", sender)
    assert len(sent) == services.MAX_CODES_PER_PHONE


def test_only_the_latest_code_works(db: Session,
                                    create_volunteer: Callable[..., Volunteer]) -> None:
    create_volunteer("陈静", phone="13800138000")
    sent, sender = _sent()
    services.request_code(db, "13800138000", IP, sender)
    services.request_code(db, "13800138000", IP, sender)
    first, second = sent[0][1], sent[1][1]
    if first != second:
        with pytest.raises(services.WrongCode):
            services.verify_code(db, "13800138000", first, IP)
    assert services.verify_code(db, "13800138000", second, IP).role == "volunteer"


def test_the_log_sender_masks_the_phone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        services.log_sender("+8613812345678", "493021")
    assert "138****5678" in caplog.text and "493021" in caplog.text
    assert "13812345678" not in caplog.text


def test_load_sender() -> None:
    assert services.load_sender("log") is services.log_sender
    assert services.load_sender("scheduler.accounts.services:log_sender") is services.log_sender
    with pytest.raises(services.AccountError, match="module:function"):
        services.load_sender("nonsense")


# -- scope --------------------------------------------------------------------------------

def test_site_scope_by_role(db: Session, create_site: Callable[..., Site],
                            create_user: Callable[..., User]) -> None:
    a, b = create_site("a"), create_site("b")
    secretary = create_user("secretary", sites=[a])
    scope = services.visible_site_ids(db, secretary)
    assert a.id in scope and b.id not in scope
    assert db.scalars(select(Site.id).where(scope.clause(Site.id))).all() == [a.id]
    everything = services.visible_site_ids(db, create_user("coordinator"))
    assert b.id in everything
    volunteer = create_user("volunteer")
    nothing = services.visible_site_ids(db, volunteer)
    assert db.scalars(select(Site.id).where(nothing.clause(Site.id))).all() == []
    assert services.own_volunteer_id(volunteer) == volunteer.volunteer_id
    with pytest.raises(services.NotAVolunteer):
        services.own_volunteer_id(secretary)


# -- the web login flows ------------------------------------------------------------------

def test_staff_login_page_logs_in_and_redirects(client: FlaskClient,
                                                create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    response = form_post(client, "/login/staff",
                         {"username": "zhang", "password": PASSWORD, "next": "/healthz"})
    assert response.status_code == 302 and response.headers["Location"] == "/healthz"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    wrong = form_post(client, "/login/staff", {"username": "zhang", "password": "nope"})
    assert wrong.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True)


def test_login_refuses_open_redirects(client: FlaskClient,
                                      create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    response = form_post(client, "/login/staff", {"username": "zhang", "password": PASSWORD,
                                                  "next": "//evil.example/x"})
    assert "evil" not in response.headers["Location"]


def test_staff_login_throttled_page(client: FlaskClient,
                                    create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    for _ in range(services.MAX_ACCOUNT_FAILURES):
        assert form_post(client, "/login/staff",
                         {"username": "zhang", "password": "nope"}).status_code == 401
    response = form_post(client, "/login/staff", {"username": "zhang", "password": PASSWORD})
    assert response.status_code == 429
    assert "尝试次数过多" in response.get_data(as_text=True)


def test_phone_login_flow_logs_the_code_in_development(
        client: FlaskClient, create_volunteer: Callable[..., Volunteer],
        caplog: pytest.LogCaptureFixture) -> None:
    create_volunteer("陈静", phone="13800138000")
    with caplog.at_level(logging.WARNING, logger="bastion.accounts"):
        page = form_post(client, "/login", {"phone": "13800138000"})
    assert page.status_code == 200
    code, = _codes(caplog)
    bad = form_post(client, "/login/code", {"phone": "13800138000", "code": "000000"
                                            if code != "000000" else "111111"})
    assert bad.status_code == 401
    good = form_post(client, "/login/code", {"phone": "13800138000", "code": code})
    assert good.status_code == 302
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("hops", [0, 1])
def test_the_throttle_sees_the_proxys_client_address_only_when_told_to(
        app: Flask, db: Session, create_user: Callable[..., User], hops: int) -> None:
    app = create_app({**app.config, "PROXY_HOPS": hops})
    create_user("coordinator", username="zhang")
    client = app.test_client()

    def wrong_password(forwarded_for: str) -> int:
        # A client may send its own X-Forwarded-For; nginx appends the address it saw.
        return form_post(client, "/login/staff", {"username": "zhang", "password": "nope"},
                         headers={"X-Forwarded-For": forwarded_for}).status_code

    assert wrong_password(f"10.9.9.9, {IP}") == 401
    recorded = db.scalar(select(LoginAttempt.ip).order_by(LoginAttempt.id.desc()).limit(1))
    assert recorded == (IP if hops else "127.0.0.1")

    other = "198.51.100.4"
    for i in range(services.MAX_IP_FAILURES - 1):
        form_post(client, "/login/staff", {"username": f"u{i}", "password": "nope"},
                  headers={"X-Forwarded-For": IP})
    throttled = form_post(client, "/login/staff", {"username": "zhang", "password": PASSWORD},
                          headers={"X-Forwarded-For": IP})
    assert throttled.status_code == 429
    # Another client behind the proxy logs in, unless the proxy's address is all we see.
    elsewhere = form_post(client, "/login/staff", {"username": "zhang", "password": PASSWORD},
                          headers={"X-Forwarded-For": other})
    assert elsewhere.status_code == (302 if hops else 429)


def test_post_without_csrf_token_is_rejected(client: FlaskClient,
                                             create_user: Callable[..., User]) -> None:
    create_user("coordinator", username="zhang")
    response = client.post("/login/staff", data={"username": "zhang", "password": PASSWORD})
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers or "session=" not in response.headers.get(
        "Set-Cookie", "") or "uid" not in response.headers.get("Set-Cookie", "")
    bad = client.post("/login/staff", data={"username": "zhang", "password": PASSWORD,
                                            "csrf_token": "forged"})
    assert bad.status_code == 400


def _logged_in(client: FlaskClient, user: User) -> bool:
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    return f'<span class="who">{user.display_name}</span>' in html


def test_logout_ends_every_session_of_the_user(app: Flask, db: Session,
                                               create_user: Callable[..., User]) -> None:
    user = create_user("coordinator")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user)
    login(phone, user)
    assert _logged_in(laptop, user) and _logged_in(phone, user)
    token = csrf_token(laptop)
    assert laptop.post("/logout", data={"csrf_token": token}).status_code == 302
    db.refresh(user)
    assert user.session_generation == 1
    # The other device's cookie is of the old generation: logged out too.
    assert not _logged_in(phone, user)
    assert phone.post("/logout", data={"csrf_token": csrf_token(phone)}).status_code == 302
    assert phone.post("/logout", data={"csrf_token": csrf_token(phone)}).headers[
        "Location"].startswith("/login")


def test_disabling_a_user_ends_their_session(app: Flask, db: Session,
                                             create_user: Callable[..., User]) -> None:
    user = create_user("coordinator", username="zhang")
    client = app.test_client()
    login(client, user)
    assert _logged_in(client, user)
    services.disable_user(db, "zhang", "admin")
    db.flush()
    assert not _logged_in(client, user)
    with client.session_transaction() as cookie:
        assert "uid" not in cookie


def test_language_switch_is_a_cookie(client: FlaskClient) -> None:
    assert "志愿者登录" in client.get("/login").get_data(as_text=True)
    response = form_post(client, "/lang", {"lang": "en", "next": "/login"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    html = client.get("/login").get_data(as_text=True)
    assert "Volunteer login" in html and '<html lang="en">' in html
    form_post(client, "/lang", {"lang": "zh"})
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)


# -- CLI ----------------------------------------------------------------------------------

def test_cli_user_add_and_disable(fresh_url: Callable[[], str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler import db as scheduler_db
    from web import create_app

    url = fresh_url()
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    with scheduler_db.session_scope() as session:
        session.add(Site(code="hq", name="总部", kind="other"))
    runner = create_app({"TESTING": True}).test_cli_runner()
    monkeypatch.setenv("BASTION_NEW_USER_PASSWORD", PASSWORD)
    result = runner.invoke(args=["bastion", "user", "add", "wang", "--role", "secretary",
                                 "--site", "hq"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["bastion", "user", "add", "li", "--role", "secretary",
                              "--site", "nowhere"])
    assert bad.exit_code == 1 and "nowhere" in bad.output
    assert runner.invoke(args=["bastion", "user", "disable", "wang"]).exit_code == 0
    with scheduler_db.session_scope() as session:
        wang = session.scalars(select(User).where(User.username == "wang")).one()
        assert (wang.active, wang.session_generation, [s.code for s in wang.sites]) == (
            False, 1, ["hq"])
        assert session.scalar(select(func.count(User.id))) == 1
    scheduler_db.get_engine().dispose()
