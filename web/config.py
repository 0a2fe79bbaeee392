"""Configuration from the environment.

Every setting is read from a ``BASTION_``-prefixed environment variable through
one of the typed helpers below, except the two conventional ones shared with the
scheduler and its workers: ``DATABASE_URL`` (see `scheduler.db.database_url`) and
``REDIS_URL`` (see `scheduler.queues.redis_url`). Nothing is read from files.
``create_app`` then applies its ``overrides`` on top (tests use that instead of the
environment).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from scheduler import senders
from scheduler.db import database_url
from scheduler.queues import redis_url

PREFIX = "BASTION_"

# Only used outside production; never a secret.
DEV_SECRET_KEY = "bastion-dev-only-not-secret"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(RuntimeError):
    """A BASTION_* variable is missing or malformed."""


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    source = os.environ if env is None else env
    return source.get(PREFIX + name)


def env_str(name: str, default: str | None = None, *, env: Mapping[str, str] | None = None) -> str | None:
    """``BASTION_<name>`` as a string, or ``default`` when unset or empty."""
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool = False, *, env: Mapping[str, str] | None = None) -> bool:
    """``BASTION_<name>`` as a boolean (1/true/yes/on, 0/false/no/off)."""
    value = _raw(name, env)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{PREFIX}{name}: expected a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, *, env: Mapping[str, str] | None = None) -> int:
    """``BASTION_<name>`` as an integer, or ``default`` when unset or empty."""
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: expected an integer, got {value!r}") from None


def load(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask config read from the environment (``os.environ`` by default).

    ``BASTION_ENV`` is ``development`` (default), ``test`` or ``production``. In
    production ``BASTION_SECRET_KEY`` is required and session cookies are
    marked secure; elsewhere a fixed development key is used when it is unset.
    """
    bastion_env = (env_str("ENV", "development", env=env) or "development").lower()
    if bastion_env not in {"development", "test", "production"}:
        raise ConfigError(
            f"{PREFIX}ENV: expected development, test or production, got {bastion_env!r}"
        )
    production = bastion_env == "production"

    secret_key = env_str("SECRET_KEY", env=env)
    if secret_key is None:
        if production:
            raise ConfigError(f"{PREFIX}SECRET_KEY must be set when {PREFIX}ENV=production")
        secret_key = DEV_SECRET_KEY

    for old in ("DATABASE_URL", "REDIS_URL"):
        if _raw(old, env) is not None:
            raise ConfigError(f"{PREFIX}{old} is not read: set {old} (shared with the "
                              f"scheduler and its workers)")
    otp_sender = env_str("OTP_SENDER", "log", env=env) or "log"
    if production and senders.is_log(otp_sender):
        raise ConfigError(f"{PREFIX}OTP_SENDER=log only writes codes to the server log; "
                          f"set a real sender (module:function) when {PREFIX}ENV=production")
    notify_sender = env_str("NOTIFY_SENDER", "log", env=env) or "log"
    if production and senders.is_log(notify_sender):
        raise ConfigError(f"{PREFIX}NOTIFY_SENDER=log only writes notifications to the server "
                          f"log; set a real sender (module:function) when "
                          f"{PREFIX}ENV=production")

    proxy_hops = env_int("PROXY_HOPS", 0, env=env)
    if proxy_hops < 0:
        raise ConfigError(f"{PREFIX}PROXY_HOPS: expected the number of proxies in front of "
                          f"the app (0: none), got {proxy_hops}")
    feed_limits = {"FEED_LIMIT_PER_TOKEN": env_int("FEED_LIMIT_PER_TOKEN", 30, env=env),
                   "FEED_LIMIT_PER_IP": env_int("FEED_LIMIT_PER_IP", 2000, env=env),
                   "FEED_LIMIT_WINDOW": env_int("FEED_LIMIT_WINDOW", 600, env=env)}
    for name, value in feed_limits.items():
        if value < 0 or (value == 0 and name == "FEED_LIMIT_WINDOW"):
            raise ConfigError(f"{PREFIX}{name}: expected a positive number (0 turns a "
                              f"per-token or per-IP limit off), got {value}")

    base_url = (env_str("BASE_URL", "http://localhost:5000", env=env) or "").rstrip("/")
    return {
        "BASTION_ENV": bastion_env,
        "SECRET_KEY": secret_key,
        "DEBUG": env_bool("DEBUG", False, env=env) and not production,
        "TIMEZONE": env_str("TIMEZONE", "Asia/Shanghai", env=env),
        "DATABASE_URL": database_url(env),
        "REDIS_URL": redis_url(env),
        "OTP_SENDER": otp_sender,
        "NOTIFY_SENDER": notify_sender,
        # The in-process clock (expire offers, refresh absences, reconcile solve runs) when
        # there is no REDIS_URL; off under TESTING whatever this says.
        "CLOCK": env_bool("CLOCK", True, env=env),
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=env_int("SESSION_HOURS", 12, env=env)),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024, env=env),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        # The public address of the app: calendar feed links are built on it.
        "BASE_URL": base_url,
        # Right-hand side of calendar event UIDs; keep it fixed once feeds are subscribed.
        "FEED_DOMAIN": env_str("FEED_DOMAIN", urlsplit(base_url).hostname or "bastion.local",
                               env=env),
        # Built calendar feeds kept per worker process (0: none).
        "FEED_CACHE_SIZE": env_int("FEED_CACHE_SIZE", 4096, env=env),
        # Reverse proxies in front of the app (nginx: 1) whose X-Forwarded-For and
        # X-Forwarded-Proto are trusted, so the client's address and scheme are seen (login
        # throttles, feed limits, secure cookies). 0: the headers are ignored.
        "PROXY_HOPS": proxy_hops,
        # Feed requests per token and per client address in a burst, given back over
        # FEED_LIMIT_WINDOW seconds, per worker process (0: no limit); see web.calendar.limits.
        **feed_limits,
    }
