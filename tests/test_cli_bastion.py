"""``flask bastion …`` on a migrated SQLite file: the commands a coordinator runs."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from scheduler import db
from solver import parse_problem
from web import create_app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FlaskCliRunner]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.delenv("REDIS_URL", raising=False)  # solve in this process
    yield create_app({"TESTING": True}).test_cli_runner()
    db.get_engine().dispose()


def invoke(runner: FlaskCliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(args=["bastion", *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_demo_problem_solve_publish(runner: FlaskCliRunner, tmp_path: Path) -> None:
    assert "database migrated" in invoke(runner, "migrate")
    out = invoke(runner, "demo", "--days", "3", "--seed", "1")
    match = re.match(r"roster (\d+): ", out)
    assert match, out
    roster = match.group(1)

    path = tmp_path / "problem.json"
    invoke(runner, "problem", roster, str(path))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert parse_problem(doc).days == 3
    assert "\\u" not in path.read_text(encoding="utf-8")  # Chinese stays readable

    out = invoke(runner, "solve", roster, "--time-limit", "3")
    assert "status: finished" in out
    assert "objective: " in out and "draft version: 1" in out

    assert "version 1 published" in invoke(runner, "publish", roster)
    out = invoke(runner, "publish", roster, code=1)
    assert "no draft version" in out
    invoke(runner, "publish", "999", "--version", "1", code=1)
    invoke(runner, "solve", "999", "--time-limit", "1", code=1)


def test_import_errors_exit_1(runner: FlaskCliRunner, tmp_path: Path) -> None:
    invoke(runner, "migrate")
    bad = tmp_path / "志愿者.csv"
    bad.write_text("姓名,手机号,身份证号\n张三,1380013800,\n李四,13800138000,110101199003070000\n",
                   encoding="utf-8")
    out = invoke(runner, "import", "volunteers", str(bad), code=1)
    assert "导入失败" in out
    assert "第 2 行" in out and "第 3 行" in out
    assert "110101199003070000" not in out and "110***" in out  # masked

    good = tmp_path / "ok.csv"
    good.write_text("姓名,手机号\n张三,13800138000\n李四,13900139000\n", encoding="utf-8")
    assert "志愿者：共 2 行，新增 2" in invoke(runner, "import", "volunteers", str(good))


def test_export_roster_and_hours(runner: FlaskCliRunner, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from scheduler import problems
    from tests.fixtures.problems import assign, make_problem, volunteer

    invoke(runner, "migrate")
    doc = make_problem(name="导出测试", days=2, volunteers=[
        dict(volunteer("v1", skills=["party"], name="张伟"), unit="区人民医院")])
    with db.session_scope() as session:
        roster = problems.load_problem(session, doc, actor="test")
        problems.store_solution(session, roster.id, assign(doc, [("v1", 0, "M", "p1")]),
                                actor="test")
        roster_id = str(roster.id)

    book, hours = tmp_path / "排班.xlsx", tmp_path / "工时.csv"
    out = invoke(runner, "export", roster_id, str(book), "--hours", str(hours))
    assert f"roster {roster_id}: version 1 (draft) -> {book}" in out
    sheets = load_workbook(book)
    assert sheets.sheetnames == ["说明", "缺口明细", "s1", "单位·区人民医院"]
    assert sheets["s1"]["C3"].value == "张伟★"
    text = hours.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf") and "张伟" in text.decode("utf-8-sig")

    xlsx_hours = tmp_path / "hours.XLSX"
    invoke(runner, "export", roster_id, str(book), "--hours", str(xlsx_hours))
    assert load_workbook(xlsx_hours).sheetnames == ["志愿者工时", "单位汇总"]

    missing = tmp_path / "never.xlsx"
    assert "has no version 5" in invoke(runner, "export", roster_id, str(missing),
                                        "--version", "5", code=1)
    assert "no roster 999" in invoke(runner, "export", "999", str(missing), code=1)
    bare = re.match(r"roster (\d+): ", invoke(runner, "demo", "--days", "1")).group(1)
    assert "no version to export" in invoke(runner, "export", bare, str(missing), code=1)
    assert "unknown extension '.pdf'" in invoke(runner, "export", roster_id,
                                                str(tmp_path / "x.pdf"), code=2)
    assert "unknown extension '.txt'" in invoke(runner, "export", roster_id, str(missing),
                                                "--hours", str(tmp_path / "h.txt"), code=2)
    assert not missing.exists()
def test_bootstrap_loads_the_demo_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run`: migrate, the demo district and accounts once; a second run adds nothing."""
    from scheduler import db as scheduler_db
    from scheduler.accounts.models import User
    from scheduler.models import AuditEvent, Roster, RosterVersion, Volunteer

    monkeypatch.setenv("BASTION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    runner = create_app({"TESTING": True}).test_cli_runner()
    first = runner.invoke(args=["bastion", "bootstrap", "--days", "3"])
    assert first.exit_code == 0, first.output
    assert "demo district loaded" in first.output and "demo-coordinator" in first.output

    def counts() -> tuple[int, ...]:
        with scheduler_db.session_scope() as session:
            return tuple(session.scalar(select(func.count()).select_from(m)) or 0
                         for m in (Roster, RosterVersion, Volunteer, User, AuditEvent))

    before = counts()
    assert before[0] == 1 and before[1] == 1 and before[3] == 2
    second = runner.invoke(args=["bastion", "bootstrap", "--days", "3"])
    assert second.exit_code == 0 and "not loaded again" in second.output
    assert counts() == before
    assert (tmp_path / "bastion.sqlite3").exists()
    scheduler_db.get_engine().dispose()


def test_bootstrap_refuses_production(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("BASTION_ENV", "production")
    monkeypatch.setenv("BASTION_SECRET_KEY", "s")
    monkeypatch.setenv("BASTION_OTP_SENDER", "sms:send")
    monkeypatch.setenv("BASTION_NOTIFY_SENDER", "sms:notify")
    result = create_app().test_cli_runner().invoke(args=["bastion", "bootstrap"])
    assert result.exit_code == 1 and "development only" in result.output


def test_migrate_seeds_the_default_task_types_once(runner: FlaskCliRunner) -> None:
    from sqlalchemy import select

    from scheduler.dispatch.models import TaskType
    from scheduler.dispatch.services import DEFAULT_TASK_TYPES

    first = invoke(runner, "migrate")
    assert "task types added: medicine_delivery" in first
    assert "task types added" not in invoke(runner, "migrate")  # idempotent
    with db.session_scope() as session:
        codes = set(session.scalars(select(TaskType.code)))
    assert codes == {t.code for t in DEFAULT_TASK_TYPES}


def test_demo_sheets_import_through_the_cli(runner: FlaskCliRunner, tmp_path: Path) -> None:
    from scheduler import demo

    invoke(runner, "migrate")
    out = invoke(runner, "demo-sheets", str(tmp_path / "sheets"), "--days", "3", "--streets",
                 "1", "--start", "2022-04-04")
    files = sorted((tmp_path / "sheets").iterdir())
    assert [f.name for f in files] == [demo.sheet_filename(k) for k in demo.SHEET_ORDER]
    assert "2022-04-04" in out
    invoke(runner, "demo-sheets", str(tmp_path / "x"), "--days", "63", code=2)
    from scheduler import rosters

    with db.session_scope() as session:
        roster = rosters.create_roster(session, "cli", name="演示", start=dt.date(2022, 4, 4),
                                       days=3).id
    for kind, path in zip(demo.SHEET_ORDER, files, strict=True):
        extra = ["--roster", str(roster)] if kind in ("demand", "unavailability") else []
        invoke(runner, "import", kind, str(path), *extra)
    out = invoke(runner, "solve", str(roster), "--time-limit", "2")
    assert "status: finished" in out
