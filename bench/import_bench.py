"""Import 5,000 volunteer rows from an XLSX file into a fresh SQLite database; print seconds.

    .venv/bin/python bench/import_bench.py [ROWS]

The goal (issue 3) is under 5 s for 5,000 rows. The sheet is what districts send: phones
as numbers and as text with +86, Chinese skill labels, 是/否, units, a title row.
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.db import make_engine, upgrade  # noqa: E402
from scheduler.imports import import_file  # noqa: E402
from scheduler.models import Volunteer  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
SKILLS = ["", "", "党员", "医护", "驾驶员", "安保", "心理咨询", "党员、医护", "驾驶员、安保"]


def sheet(rows: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    book = Workbook()
    ws = book.active
    ws.append(["雨花区志愿者名单"])
    ws.append(["姓名", "手机号", "单位", "技能", "党员", "最多班次", "状态"])
    for i in range(rows):
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        number = 13800000000 + i
        phone: int | str = number if i % 2 else f"+86 {number}"
        skills = rng.choice(SKILLS)
        party = "是" if "党员" in skills else rng.choice(("是", "否", ""))
        ws.append([name, phone, f"第{i % 40 + 1}社区", skills, party,
                   rng.choice(("", 4, 5, 6)), "在岗"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    data = sheet(rows)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            result = import_file(session, "volunteers", "bench.xlsx", data, "bench")
        seconds = time.perf_counter() - started
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(Volunteer))
        # The same people again with other data: every row updates a volunteer by phone.
        again = sheet(rows, seed=2)
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            second = import_file(session, "volunteers", "bench.xlsx", again, "bench")
        update_seconds = time.perf_counter() - started
        engine.dispose()
    print(f"{rows} rows ({len(data) / 1024:.0f} KiB XLSX): created {result.created}, "
          f"stored {stored}, {seconds:.2f} s")
    print(f"{rows} rows again: updated {second.updated}, unchanged {second.unchanged}, "
          f"{update_seconds:.2f} s")


if __name__ == "__main__":
    main()
