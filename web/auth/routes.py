"""Login (volunteers by phone and code, staff by password), logout, language switch."""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from scheduler.accounts import services
from web.database import db_session
from web.i18n import LANG_COOKIE, LANGS, gettext

from . import bp
from .access import current_user, home_for, log_in, login_required, public, safe_next
from .forms import CodeForm, EmptyForm, PhoneForm, StaffLoginForm


def _ip() -> str:
    return request.remote_addr or "unknown"


def _message(exc: services.LoginFailed) -> str:
    return gettext(exc.message)


def _after_login() -> ResponseReturnValue:
    user = current_user()
    assert user is not None
    return redirect(safe_next(request.form.get("next")) or home_for(user))


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    """Volunteers: step 1, ask for a code sent to the phone."""
    form = PhoneForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login_phone.html", form=form)
    session = db_session()
    try:
        sender = services.load_sender(current_app.config["OTP_SENDER"])
        services.request_code(session, form.phone.data or "", _ip(), sender)
    except services.AccountError:
        session.rollback()
        form.phone.errors = [gettext("手机号格式不正确。")]
        return render_template("auth/login_phone.html", form=form), 422
    except services.Throttled as exc:
        session.commit()
        flash(_message(exc), "error")
        return render_template("auth/login_phone.html", form=form), 429
    session.commit()
    code_form = CodeForm(phone=form.phone.data, next=form.next.data, formdata=None)
    return render_template("auth/login_code.html", form=code_form)


@bp.post("/login/code")
@public
def login_code() -> ResponseReturnValue:
    """Volunteers: step 2, the code."""
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/login_code.html", form=form), 422
    session = db_session()
    try:
        user = services.verify_code(session, form.phone.data or "", form.code.data or "", _ip())
    except services.AccountError:
        session.rollback()
        return redirect(url_for("auth.login"))
    except services.LoginFailed as exc:
        session.commit()  # the failure counts
        form.code.errors = [_message(exc)]
        status = 429 if isinstance(exc, services.Throttled) else 401
        return render_template("auth/login_code.html", form=form), status
    session.commit()
    log_in(user)
    return _after_login()


@bp.route("/login/staff", methods=["GET", "POST"])
@public
def staff_login() -> ResponseReturnValue:
    """Coordinators and secretaries: username and password."""
    form = StaffLoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login_staff.html", form=form)
    session = db_session()
    try:
        user = services.authenticate_password(session, form.username.data or "",
                                              form.password.data or "", _ip())
    except services.LoginFailed as exc:
        session.commit()  # the failure counts
        flash(_message(exc), "error")
        status = 429 if isinstance(exc, services.Throttled) else 401
        return render_template("auth/login_staff.html", form=form), status
    session.commit()
    log_in(user)
    return _after_login()


@bp.post("/logout")
@login_required()
def logout() -> ResponseReturnValue:
    """End the user's sessions (on every device: the generation moves on)."""
    user = current_user()
    assert user is not None
    session = db_session()
    services.end_sessions(session, user, user.name)
    session.commit()
    from flask import session as cookie

    cookie.clear()
    flash(gettext("已退出登录。"), "info")
    return redirect(url_for("auth.login"))


@bp.post("/lang")
@public
def set_language() -> ResponseReturnValue:
    """Switch the interface language (a cookie; zh-CN unless it says en)."""
    EmptyForm()  # CSRFProtect has checked the token already
    lang = request.form.get("lang", "zh")
    if lang not in LANGS:
        lang = "zh"
    response = redirect(safe_next(request.form.get("next")) or url_for("health.index"))
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response
