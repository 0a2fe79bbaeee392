"""Database engine, sessions and migrations.

The URL comes from ``DATABASE_URL``; without it the embedded default is a SQLite file
under the instance directory (``BASTION_INSTANCE_DIR``, default ``<repo>/instance``).
PostgreSQL is reached through ``postgresql+psycopg://…`` (a bare ``postgresql://`` or
``postgres://`` URL is rewritten to use psycopg 3).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "migrations"
ALEMBIC_INI = REPO / "alembic.ini"

# Stable constraint names, so migrations can drop and alter them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored
    as naive UTC and made aware again on the way out. Naive input is refused: a naive
    timestamp is a bug waiting for a server in another time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC timestamp")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def instance_dir(env: Mapping[str, str] | None = None) -> Path:
    source = os.environ if env is None else env
    configured = (source.get("BASTION_INSTANCE_DIR") or "").strip()
    return Path(configured) if configured else REPO / "instance"


def database_url(env: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL``, or the SQLite file ``bastion.sqlite3`` in the instance directory."""
    source = os.environ if env is None else env
    url = (source.get("DATABASE_URL") or "").strip()
    if not url:
        return f"sqlite:///{instance_dir(source) / 'bastion.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for `url` (default: `database_url()`); SQLite gets foreign keys on.

    For SQLite the driver's own transaction handling is switched off and SQLAlchemy emits
    BEGIN itself, so SAVEPOINTs (nested transactions, rollback-per-test) work as on
    PostgreSQL.
    """
    url = url or database_url()
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    else:
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", 30)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


_engine: Engine | None = None
_engine_url: str | None = None


def get_engine() -> Engine:
    """The process-wide engine for `database_url()`, created on first use."""
    global _engine, _engine_url
    url = database_url()
    if _engine is None or _engine_url != url:
        if _engine is not None:
            _engine.dispose()
        _engine, _engine_url = make_engine(url), url
    return _engine


def sessionmaker_for(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: services return them to callers.
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(bind: Engine | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    session = sessionmaker_for(bind or get_engine())()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def alembic_config(url: str | None = None) -> Any:
    """The Alembic config of this repository, pointed at `url` (default `database_url()`)."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url or database_url()
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Run the migrations on `url` (default `database_url()`) up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
