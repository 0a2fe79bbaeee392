"""The data layer: engine and sessions, migrations, models, constraints and the audit trail.

Every test that touches a database runs on SQLite and on PostgreSQL (tests/fixtures/db.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.db import (
    Base,
    alembic_config,
    database_url,
    get_engine,
    make_engine,
    session_scope,
    upgrade,
)
from scheduler.models import (
    AuditEvent,
    Post,
    Roster,
    RosterVersion,
    Site,
    SolveRun,
    Volunteer,
    normalize_phone,
)

pytest_plugins = ["tests.fixtures.db"]


# -- configuration ------------------------------------------------------------------------

def test_database_url_defaults_to_sqlite_in_the_instance_dir(tmp_path: Any) -> None:
    assert database_url({}).startswith("sqlite:///") and database_url({}).endswith(
        "instance/bastion.sqlite3")
    assert database_url({"BASTION_INSTANCE_DIR": str(tmp_path)}) == (
        f"sqlite:///{tmp_path}/bastion.sqlite3")


def test_database_url_uses_psycopg_for_postgres() -> None:
    assert database_url({"DATABASE_URL": "postgres://u@h/db"}) == "postgresql+psycopg://u@h/db"
    assert database_url({"DATABASE_URL": "postgresql://u@h/db"}) == "postgresql+psycopg://u@h/db"
    assert database_url({"DATABASE_URL": "sqlite:////x.db"}) == "sqlite:////x.db"


def test_default_engine_and_session_scope_follow_database_url(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'default.sqlite3'}")
    upgrade()
    with session_scope() as session:
        session.add(Site(code="s1", name="卡口", kind="checkpoint"))
    with session_scope() as session:
        assert session.scalars(select(Site.name)).all() == ["卡口"]
    get_engine().dispose()


# -- migrations ---------------------------------------------------------------------------

def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_empty_database_upgraded_to_head_matches_the_models_and_downgrades(fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            # Alembic does not compare CHECK constraints; the names must all be there.
            inspector = inspect(connection)
            for table in Base.metadata.sorted_tables:
                expected = {c.name for c in table.constraints
                            if c.__class__.__name__ == "CheckConstraint"}
                found = {c["name"] for c in inspector.get_check_constraints(table.name)}
                assert expected <= found, table.name
            indexes = {ix["name"]: ix for ix in inspector.get_indexes("solve_runs")}
            assert indexes["uq_solve_runs_active_roster"]["unique"]
    finally:
        engine.dispose()
    assert _tables(url) == set(Base.metadata.tables)
    # ... and the migrations go back down to an empty database, and up again.
    command.downgrade(alembic_config(url), "base")
    assert _tables(url) == set()
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)


# -- models and constraints ---------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "13800138000", "13800138000.0", 13800138000.0, "+86 138 0013 8000", "0086-138-0013-8000",
    "８６１３８００１３８０００", "１３８　００１３　８０００", "(+86)13800138000",
])
def test_phone_numbers_are_normalised_to_e164(raw: Any) -> None:
    assert normalize_phone(raw) == "+8613800138000"


def test_landline_and_foreign_numbers() -> None:
    assert normalize_phone("0731-8456 7890") == "+8673184567890"
    assert normalize_phone("+1 (415) 555-2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["", "12345", "1.38001E+10", "138001380001234", "abc", 1.5])
def test_bad_phone_numbers_are_refused(raw: Any) -> None:
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_phone_is_unique_after_normalisation(
        db: Session, create_volunteer: Callable[..., Volunteer]) -> None:
    first = create_volunteer("李伟", phone="138 0013 8000")
    assert first.phone == "+8613800138000"
    # Without a phone, any number of volunteers (problem files carry none).
    create_volunteer("王芳")
    create_volunteer("张磊")
    with pytest.raises(IntegrityError), db.begin_nested():
        create_volunteer("李伟(重复)", phone="+86 13800138000")
    assert db.scalar(select(func.count()).select_from(Volunteer)
                     .where(Volunteer.phone == "+8613800138000")) == 1


def test_foreign_keys_are_enforced(db: Session) -> None:
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(Post(site_id=999_999, code="orphan", name="无主岗位"))
        db.flush()


def test_check_constraints_are_enforced(db: Session,
                                        create_volunteer: Callable[..., Volunteer]) -> None:
    volunteer = create_volunteer()
    with pytest.raises(IntegrityError), db.begin_nested():
        volunteer.status = "gone"
        db.flush()
    db.expire(volunteer)
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(Site(code="bad-kind", name="x", kind="mall"))
        db.flush()


def test_timestamps_are_aware_utc(db: Session,
                                  create_site: Callable[..., Site]) -> None:
    site = create_site()
    event = audit.record(db, "测试员", "site.create", "site", site.id,
                         after={"opened": dt.date(2022, 4, 4)})
    db.flush()
    db.expire_all()
    again = db.get(AuditEvent, event.id)
    assert again is not None
    assert again.at.tzinfo is not None and again.at.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - again.at).total_seconds()) < 60
    assert again.after == {"opened": "2022-04-04"}
    assert again.entity_id == str(site.id)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    local = dt.datetime(2022, 4, 4, 8, 0, tzinfo=shanghai)
    again.at = local
    db.flush()
    db.expire_all()
    stored = db.get(AuditEvent, event.id)
    assert stored is not None and stored.at == local and stored.at.hour == 0
    with pytest.raises(StatementError), db.begin_nested():
        stored.at = dt.datetime(2022, 4, 4, 8, 0)  # naive
        db.flush()


def test_one_active_solve_run_per_roster(db: Session,
                                        create_roster: Callable[..., Roster]) -> None:
    roster = create_roster()
    db.add(SolveRun(roster_id=roster.id, status="finished", requested_by="a"))
    db.add(SolveRun(roster_id=roster.id, status="queued", requested_by="a"))
    db.flush()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(SolveRun(roster_id=roster.id, status="running", requested_by="b"))
        db.flush()
    other = create_roster("另一个")
    db.add(SolveRun(roster_id=other.id, status="running", requested_by="b"))
    db.flush()


def test_one_published_version_per_roster(db: Session,
                                         create_roster: Callable[..., Roster]) -> None:
    roster = create_roster()
    db.add_all([RosterVersion(roster_id=roster.id, number=1, state="superseded", created_by="a"),
                RosterVersion(roster_id=roster.id, number=2, state="published", created_by="a"),
                RosterVersion(roster_id=roster.id, number=3, state="draft", created_by="a")])
    db.flush()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(RosterVersion(roster_id=roster.id, number=4, state="published", created_by="a"))
        db.flush()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(RosterVersion(roster_id=roster.id, number=3, state="draft", created_by="a"))
        db.flush()


def test_rollback_per_test_leaves_nothing_behind(db: Session) -> None:
    # Any rows from earlier tests would have been rolled back.
    assert db.scalar(select(func.count()).select_from(Site)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0


# -- the audit trail shares the change's transaction ---------------------------------------

def _rename_site(session: Session, site_id: int, name: str, actor: str) -> None:
    """A service-shaped change: update, audit, and let the flush fail or not."""
    site = session.get(Site, site_id)
    assert site is not None
    before = {"name": site.name}
    site.name = name
    audit.record(session, actor, "site.rename", "site", site.id, before=before,
                 after={"name": name}, reason="测试")
    session.flush()


def test_audit_row_commits_and_rolls_back_with_the_change(
        fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            session.add(Site(code="s1", name="卡口1", kind="checkpoint"))
            session.add(Site(code="s2", name="卡口2", kind="checkpoint"))
        with session_scope(engine) as session:
            site_id = session.scalars(select(Site.id).where(Site.code == "s1")).one()
            _rename_site(session, site_id, "万家丽南卡口", "协调员甲")

        # A failing change (a CHECK constraint breaks at flush) leaves neither change nor audit.
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            site = session.scalars(select(Site).where(Site.code == "s2")).one()
            site.name = "改名"
            audit.record(session, "协调员乙", "site.update", "site", site.id,
                         before={"name": "卡口2", "kind": "checkpoint"},
                         after={"name": "改名", "kind": "mall"})
            site.kind = "mall"
            session.flush()
        # An error after the flush, before commit, too.
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            _rename_site(session, site_id, "不该留下", "协调员乙")
            raise RuntimeError("crash before commit")

        with session_scope(engine) as session:
            names = {code: name for code, name in session.execute(select(Site.code, Site.name))}
            assert names == {"s1": "万家丽南卡口", "s2": "卡口2"}
            events = session.scalars(select(AuditEvent)).all()
            assert [(e.actor, e.action, e.before, e.after) for e in events] == [
                ("协调员甲", "site.rename", {"name": "卡口1"}, {"name": "万家丽南卡口"})]
            assert events[0].entity_id == str(site_id) and events[0].reason == "测试"
    finally:
        engine.dispose()


def test_sqlite_engine_has_foreign_keys_and_savepoints(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.commit()
            connection.execute(text("INSERT INTO t VALUES (1)"))
            nested = connection.begin_nested()
            connection.execute(text("INSERT INTO t VALUES (2)"))
            nested.rollback()
            connection.commit()
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()
