"""Time `suggest` for an ad-hoc task on the demo district with a published roster.

    .venv/bin/python bench/dispatch_bench.py [--districts N] [--days D] [--repeat R]
                                             [--postgres URL]

Builds a fresh database (a temporary SQLite file, or with ``--postgres`` a temporary
database on that PostgreSQL server, dropped afterwards), loads the generated demo
district, stores the greedy roster as a version and publishes it, then creates a task at
a residential site on day 3 and times `scheduler.dispatch.services.suggest` (best of
`R` runs, and the mean), counting the SQL statements of one call. A suggestion must be
quick enough for a secretary on the phone with a resident: the target is < 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from private_services import scratch_database  # noqa: E402

from scheduler import rosters  # noqa: E402
from scheduler.db import make_engine, upgrade  # noqa: E402
from scheduler.dispatch import services as dispatch  # noqa: E402
from scheduler.localtime import TZ  # noqa: E402
from scheduler.models import Roster, Site, Volunteer  # noqa: E402
from scheduler.problems import load_problem, store_solution  # noqa: E402
from solver import scenario  # noqa: E402
from solver.greedy import greedy  # noqa: E402
from solver.problem import parse_problem  # noqa: E402
from solver.rules import instantiate  # noqa: E402
from solver.solve import solution_document  # noqa: E402

ACTOR = "bench"


def published_demo(session: Session, districts: int, days: int) -> Roster:
    """The demo district(s) with the greedy roster published as version 1."""
    doc = scenario.generate(districts=districts, seed=0, days=days)
    problem = parse_problem(doc)
    rules = instantiate(problem)
    solution = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
    roster = load_problem(session, doc, actor=ACTOR)
    version = store_solution(session, roster.id, solution, actor=ACTOR,
                             allow_hard_violations=True)
    rosters.publish(session, roster.id, version.number, None, ACTOR)
    return roster


def count_statements(session: Session, call: Any) -> int:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def run(url: str, districts: int, days: int, repeat: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            t0 = time.perf_counter()
            roster = published_demo(session, districts, days)
            dispatch.ensure_task_types(session, ACTOR)
            session.commit()
            setup = time.perf_counter() - t0
            site = session.scalars(select(Site).where(Site.kind == "building")
                                   .order_by(Site.id)).first()
            assert site is not None
            due = dt.datetime.combine(roster.start + dt.timedelta(days=2), dt.time(11),
                                      tzinfo=TZ)
            task = dispatch.create_task(session, ACTOR, type_code="medicine_delivery",
                                        site_id=site.id, building="3栋", room="502",
                                        requester_name="张三", requester_phone="13800138000",
                                        due_at=due)
            session.commit()
            now = due - dt.timedelta(hours=3)
            volunteers = len(session.scalars(select(Volunteer.id)).all())

            def once() -> dispatch.Suggestions:
                session.expire_all()  # no help from the identity map
                return dispatch.suggest(session, task.id, 10, now=now)

            statements = count_statements(session, once)
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                result = once()
                times.append((time.perf_counter() - t) * 1000)
        backend = make_url(url).get_backend_name()
        print(f"{backend}: {districts} district(s), {days} days, {volunteers} volunteers; "
              f"setup {setup:.1f} s")
        print(f"suggest: best {min(times):.1f} ms, mean {statistics.mean(times):.1f} ms over "
              f"{repeat} runs; {statements} SQL statements per call")
        print(f"eligible {len(result.candidates)} shown, excluded by rule: {result.excluded}")
        for c in result.candidates[:3]:
            print(f"  {c.rank}. {c.name} {c.points} " + "；".join(r.zh for r in c.reasons))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=1)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="server URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test)")
    args = parser.parse_args()
    server = args.postgres or "sqlite://"
    with scratch_database(server, "bastion_bench", sqlite=args.postgres is None) as url:
        run(url, args.districts, args.days, args.repeat)

if __name__ == "__main__":
    main()
