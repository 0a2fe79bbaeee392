"""Account services: create and disable users, passwords, one-time codes, throttling, scope.

Every function takes the database session and, for changes, the acting user's name; none
looks at request state (the web layer passes the client's IP address in). Changes are
made in the caller's transaction with their audit rows; the caller commits. A failed
login is recorded as a `LoginAttempt` *and then* raised: the caller must commit after
catching `LoginFailed`, or the throttle never sees the failure.

Throttling is kept in the database (`login_attempts`), so every gunicorn worker and
every web server sees the same counts without another service: at most
`MAX_ACCOUNT_FAILURES` failures per account and `MAX_IP_FAILURES` per IP address within
`THROTTLE_WINDOW`, and `MAX_CODES_PER_PHONE` codes sent per phone in that window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, delete, false, func, select, true, update
from sqlalchemy.orm import Session

from scheduler import audit, senders
from scheduler.accounts.models import (
    ROLES,
    STAFF_ROLES,
    LoginAttempt,
    OneTimeCode,
    User,
)
from scheduler.db import utcnow
from scheduler.models import PhoneError, Site, Volunteer, normalize_phone

log = logging.getLogger("bastion.accounts")

#: argon2id with the library's current defaults (RFC 9106 low-memory profile).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
CODE_DIGITS = 6
CODE_TTL = dt.timedelta(minutes=5)
MAX_CODE_ATTEMPTS = 5
THROTTLE_WINDOW = dt.timedelta(minutes=15)
MAX_ACCOUNT_FAILURES = 5
MAX_IP_FAILURES = 30
MAX_CODES_PER_PHONE = 3
MAX_CODES_PER_IP = 20
#: Attempts older than this are deleted when new ones are recorded.
ATTEMPT_RETENTION = dt.timedelta(days=7)


class AccountError(ValueError):
    """Bad input to an account service: says what is wrong; nothing was changed."""


class LoginFailed(Exception):
    """A login that did not succeed; `message` is safe to show (Chinese), `message_en`."""

    message = "用户名或密码错误。"
    message_en = "Wrong username or password."

    def __str__(self) -> str:
        return self.message


class WrongCode(LoginFailed):
    message = "验证码错误或已过期，请重新获取。"
    message_en = "The code is wrong or has expired; request a new one."


class Throttled(LoginFailed):
    message = "尝试次数过多，请 15 分钟后再试。"
    message_en = "Too many attempts; try again in 15 minutes."


# -- passwords ----------------------------------------------------------------------------

def hash_password(password: str) -> str:
    """An argon2id hash of `password` (refused when shorter than `MIN_PASSWORD_LENGTH`)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"
                           f" (password: at least {MIN_PASSWORD_LENGTH} characters)")
    return _hasher.hash(password)


def _check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash to verify against for unknown usernames, so they take as long as known ones.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


# -- users --------------------------------------------------------------------------------

def _sites_by_code(session: Session, codes: Iterable[str]) -> list[Site]:
    wanted = list(dict.fromkeys(codes))
    found = {s.code: s for s in session.scalars(select(Site).where(Site.code.in_(wanted)))}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise AccountError(f"未知点位编码：{', '.join(missing)} (unknown site codes)")
    return [found[c] for c in wanted]


def create_staff_user(session: Session, username: str, role: str, password: str,
                      actor: str, *, site_codes: Iterable[str] = (), branch: str = "",
                      display_name: str = "") -> User:
    """Create a coordinator or secretary; a secretary sees only the sites `site_codes`."""
    username = username.strip()
    if not username or len(username) > 100:
        raise AccountError("用户名不能为空，最多 100 个字符 (username: 1-100 characters)")
    if role not in STAFF_ROLES:
        raise AccountError(f"角色必须是 {' / '.join(STAFF_ROLES)} (role: got {role!r})")
    codes = list(site_codes)
    if codes and role != "secretary":
        raise AccountError("只有书记账号可以指定点位 (only secretaries have sites)")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"用户名 {username} 已存在 (username taken)")
    user = User(username=username, role=role, password_hash=hash_password(password),
                branch=branch, display_name=display_name or username,
                sites=_sites_by_code(session, codes))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id,
                 after={"username": username, "role": role, "sites": codes,
                        "branch": branch})
    return user


def set_password(session: Session, username: str, password: str, actor: str) -> User:
    """Change a staff user's password; their sessions end."""
    user = get_staff_user(session, username)
    user.password_hash = hash_password(password)
    user.session_generation += 1
    audit.record(session, actor, "user.set_password", "user", user.id)
    return user


def get_staff_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise AccountError(f"没有用户 {username} (no such user)")
    return user


def disable_user(session: Session, username: str, actor: str) -> User:
    """Disable a user: they cannot log in and every session of theirs ends now."""
    user = get_staff_user(session, username)
    audit.record(session, actor, "user.disable", "user", user.id,
                 before={"active": user.active}, after={"active": False})
    user.active = False
    user.session_generation += 1
    return user


def end_sessions(session: Session, user: User, actor: str) -> None:
    """Log `user` out everywhere: every session cookie issued so far stops working."""
    session.execute(update(User).where(User.id == user.id)
                    .values(session_generation=User.session_generation + 1))
    session.refresh(user)
    audit.record(session, actor, "user.logout", "user", user.id)


def session_user(session: Session, user_id: Any, generation: Any) -> User | None:
    """The user a session cookie names, if still active and of the current generation."""
    if not isinstance(user_id, int) or not isinstance(generation, int):
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or user.session_generation != generation:
        return None
    return user


# -- throttling ---------------------------------------------------------------------------

def _failures(session: Session, kinds: tuple[str, ...], since: dt.datetime,
              account: str | None = None, ip: str | None = None) -> int:
    query = select(func.count(LoginAttempt.id)).where(
        LoginAttempt.kind.in_(kinds), LoginAttempt.at >= since,
        LoginAttempt.success == false())
    if account is not None:
        query = query.where(LoginAttempt.account == account)
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    return session.scalar(query) or 0


def _throttled(session: Session, kinds: tuple[str, ...], account: str, ip: str,
               now: dt.datetime, per_account: int, per_ip: int) -> bool:
    since = now - THROTTLE_WINDOW
    return (_failures(session, kinds, since, account=account) >= per_account
            or _failures(session, kinds, since, ip=ip) >= per_ip)


def _record_attempt(session: Session, kind: str, account: str, ip: str, success: bool,
                    now: dt.datetime) -> None:
    session.add(LoginAttempt(kind=kind, account=account[:100], ip=ip[:64], success=success,
                             at=now))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - ATTEMPT_RETENTION))
    session.flush()


def authenticate_password(session: Session, username: str, password: str, ip: str, *,
                          now: dt.datetime | None = None) -> User:
    """The active coordinator or secretary with this username and password.

    Raises `Throttled` when the account or the IP address failed too often lately (the
    password is not even checked), else `LoginFailed`; the failure is recorded either way.
    """
    now = now or utcnow()
    username = username.strip()
    kinds = ("password",)
    if _throttled(session, kinds, username, ip, now, MAX_ACCOUNT_FAILURES, MAX_IP_FAILURES):
        _record_attempt(session, "password", username, ip, False, now)
        raise Throttled()
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        _check_dummy(password)  # as slow as a real check: usernames cannot be probed
        ok = False
    else:
        ok = _check_password(user, password) and user.active and user.role in STAFF_ROLES
    _record_attempt(session, "password", username, ip, ok, now)
    if not ok or user is None:
        raise LoginFailed()
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    audit.record(session, user.name, "user.login", "user", user.id, after={"ip": ip})
    return user


def _check_dummy(password: str) -> None:
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except VerificationError:
        pass


# -- one-time codes -----------------------------------------------------------------------

CodeSender = Callable[[str, str], None]


def log_sender(phone: str, code: str) -> None:
    """Development sender: writes the code to the server log (refused in production).

    The phone is masked like everywhere else in the logs: whoever asked for the code
    knows their own number.
    """
    from scheduler.dispatch.services import mask_phone

    log.warning("login code for %s: %s (development: not sent)", mask_phone(phone), code)


def load_sender(spec: str) -> CodeSender:
    """The sender named by ``BASTION_OTP_SENDER``: ``log`` or ``package.module:function``.

    A sender is called as ``sender(phone_e164, code)`` and raises if it cannot send.
    """
    return senders.load(spec, setting="BASTION_OTP_SENDER", builtin=log_sender,
                        error=AccountError)


def _code_hash(phone: str, code: str) -> str:
    # A 6-digit code has little entropy; what protects it is the attempt limit and the
    # expiry. Hashing keeps live codes out of backups and database dumps.
    return hashlib.sha256(f"{phone}:{code}".encode()).hexdigest()


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except PhoneError:
        raise AccountError("手机号格式不正确 (not a phone number)") from None


def request_code(session: Session, raw_phone: str, ip: str, sender: CodeSender, *,
                 now: dt.datetime | None = None) -> bool:
    """Send a login code to an active volunteer's phone; True if one was sent.

    An unknown or inactive phone gets no code and no error (the page says the same either
    way, so phone numbers cannot be probed). Raises `AccountError` for a malformed number
    and `Throttled` when the phone or the IP asked too often.
    """
    now = now or utcnow()
    phone = _phone(raw_phone)
    since = now - THROTTLE_WINDOW
    sent_to_phone = session.scalar(select(func.count(OneTimeCode.id)).where(
        OneTimeCode.phone == phone, OneTimeCode.created_at >= since)) or 0
    asked_from_ip = session.scalar(select(func.count(LoginAttempt.id)).where(
        LoginAttempt.kind == "otp_request", LoginAttempt.ip == ip,
        LoginAttempt.at >= since)) or 0
    if sent_to_phone >= MAX_CODES_PER_PHONE or asked_from_ip >= MAX_CODES_PER_IP:
        raise Throttled()
    volunteer = session.scalars(select(Volunteer).where(
        Volunteer.phone == phone, Volunteer.status == "active")).one_or_none()
    known = volunteer is not None and _volunteer_account_active(session, volunteer.id)
    _record_attempt(session, "otp_request", phone, ip, known, now)
    if not known:
        return False
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    # Older codes of this phone stop working: only the latest message counts.
    session.execute(update(OneTimeCode).where(OneTimeCode.phone == phone,
                                              OneTimeCode.used_at.is_(None))
                    .values(used_at=now))
    session.add(OneTimeCode(phone=phone, code_hash=_code_hash(phone, code), created_at=now,
                            expires_at=now + CODE_TTL))
    session.flush()
    sender(phone, code)
    return True


def _volunteer_account_active(session: Session, volunteer_id: int) -> bool:
    active = session.scalar(select(User.active).where(User.volunteer_id == volunteer_id))
    return active is None or bool(active)


def verify_code(session: Session, raw_phone: str, code: str, ip: str, *,
                now: dt.datetime | None = None) -> User:
    """Log a volunteer in with the code sent to their phone; create their user at first.

    A wrong code counts against the latest code of the phone (dead after
    `MAX_CODE_ATTEMPTS`) and the throttle; expired and used codes never work. Raises
    `WrongCode` or `Throttled` (recorded; the caller commits).
    """
    now = now or utcnow()
    phone = _phone(raw_phone)
    kinds = ("otp_verify",)
    if _throttled(session, kinds, phone, ip, now, MAX_ACCOUNT_FAILURES * 2, MAX_IP_FAILURES):
        _record_attempt(session, "otp_verify", phone, ip, False, now)
        raise Throttled()
    latest = session.scalars(select(OneTimeCode).where(
        OneTimeCode.phone == phone, OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.created_at.desc(), OneTimeCode.id.desc()).limit(1)).first()
    usable = (latest is not None and latest.expires_at > now
              and latest.attempts < MAX_CODE_ATTEMPTS)
    matches = usable and latest is not None and hmac.compare_digest(
        latest.code_hash, _code_hash(phone, code.strip()))
    volunteer = session.scalars(select(Volunteer).where(
        Volunteer.phone == phone, Volunteer.status == "active")).one_or_none()
    if not matches or volunteer is None or latest is None:
        if latest is not None and usable:
            latest.attempts += 1
        _record_attempt(session, "otp_verify", phone, ip, False, now)
        raise WrongCode()
    latest.used_at = now
    user = _volunteer_user(session, volunteer)
    if not user.active:
        _record_attempt(session, "otp_verify", phone, ip, False, now)
        raise WrongCode()
    _record_attempt(session, "otp_verify", phone, ip, True, now)
    user.last_login_at = now
    audit.record(session, user.name, "user.login", "user", user.id, after={"ip": ip})
    return user


def _volunteer_user(session: Session, volunteer: Volunteer) -> User:
    user = session.scalars(select(User).where(User.volunteer_id == volunteer.id)).one_or_none()
    if user is None:
        user = User(role="volunteer", volunteer_id=volunteer.id, display_name=volunteer.name)
        session.add(user)
        session.flush()
        audit.record(session, f"volunteer:{volunteer.id}", "user.create", "user", user.id,
                     after={"role": "volunteer", "volunteer": volunteer.code})
    return user


# -- scope --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SiteScope:
    """The sites a user may see: all of them (coordinator) or the ids listed."""

    all: bool
    ids: frozenset[int] = frozenset()

    def __contains__(self, site_id: object) -> bool:
        return self.all or site_id in self.ids

    def clause(self, column: Any) -> ColumnElement[bool]:
        """A WHERE condition limiting `column` (a site id column) to this scope."""
        if self.all:
            return true()
        if not self.ids:
            return false()
        return column.in_(sorted(self.ids))


def visible_site_ids(session: Session, user: User) -> SiteScope:
    """What `user` may see of sites: coordinators all, secretaries theirs, volunteers none.

    (A volunteer sees their own shifts through `own_volunteer_id`, never a site's roster.)
    """
    if user.role == "coordinator":
        return SiteScope(all=True)
    if user.role == "secretary":
        from scheduler.accounts.models import user_sites

        ids = session.scalars(select(user_sites.c.site_id)
                              .where(user_sites.c.user_id == user.id)).all()
        return SiteScope(all=False, ids=frozenset(ids))
    return SiteScope(all=False)


class NotAVolunteer(PermissionError):
    """Only a volunteer's own account has a volunteer id to act on."""


def own_volunteer_id(user: User) -> int:
    """The only volunteer whose data `user` may read or change (volunteers only)."""
    if user.role != "volunteer" or user.volunteer_id is None:
        raise NotAVolunteer(f"user {user.name} is not a volunteer")
    return user.volunteer_id


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return role
