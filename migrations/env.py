"""Alembic environment: the same URL and metadata as the application.

The URL is, in order: a connection handed over in ``config.attributes["connection"]``,
``config.attributes["url"]`` (set by ``scheduler.db.upgrade``), ``-x url=…`` on the
command line, then ``scheduler.db.database_url()`` (``DATABASE_URL`` or the SQLite file).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from scheduler import models  # noqa: F401  (registers every table on the metadata)
from scheduler.db import Base, database_url, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return (config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
            or database_url())


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
