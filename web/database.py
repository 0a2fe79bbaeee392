"""The request's database session: ``db_session()``, closed when the request ends.

The engine is the scheduler's (`scheduler.db.get_engine`, ``DATABASE_URL``) so the web
app, the CLI and the in-process solve jobs share one database. Tests may set
``DB_BIND`` in the overrides to a connection already inside a transaction: sessions then
work in savepoints of it, and everything is rolled back after the test.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from scheduler import db


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)


def _engine(app: Flask) -> Any:
    bind = app.config.get("DB_BIND")
    if bind is not None:
        return bind
    url = app.config["DATABASE_URL"]
    if url == db.database_url():
        return db.get_engine()
    engine: Engine | None = app.extensions.get("bastion_engine")
    if engine is None:
        engine = app.extensions["bastion_engine"] = db.make_engine(url)
    return engine


def db_session() -> Session:
    """The session of this request (created on first use); the route commits."""
    session: Session | None = g.get("db_session")
    if session is None:
        session = Session(bind=_engine(current_app), expire_on_commit=False,
                          join_transaction_mode="create_savepoint")
        g.db_session = session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()  # anything not committed is rolled back
