"""Time `suggest` with 40,000 volunteers in the database: p50/p95 and SQL statements.

    .venv/bin/python bench/suggest_bench.py [--volunteers 40000] [--tasks 300]
        [--timed 60] [--repeat 3] [--limit 10] [--sqlite]

Builds a fresh database (PostgreSQL on BASTION_TEST_POSTGRES_URL's server in a uniquely
named database, dropped at the end; --sqlite for a temporary file) by bulk insert:
VOLUNTEERS volunteers (10% drivers, 5% medical, 2% counselors, every 7th a Party member),
100 sites (a tenth closed-loop) of 3 posts, three shifts (night 22:00-06:00), a 7-day
roster published with 8 people per post and shift (50,400 assignments; with fewer than
7,200 volunteers, as many as there are people: each works at most one shift a day), 300
absences (at most a tenth of the volunteers) and TASKS tasks around day 3, a third of them
accepted (they make the "tasks today / this week" counts and busy windows). Then times
`suggest` of LIMIT candidates for TIMED tasks at different sites and urgencies (three task
types: none, driver, medical), each REPEAT times with an expired identity map, and prints
p50/p95/max in ms and the statements of one call. Target: p95 < 100 ms. (A site has 72
people on duty a day, so 10 suggestions come from those suggest judges one by one; ask
for more, say --limit 100, to time reading the first eligible of the others too.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from dispatch_bench import count_statements  # noqa: E402
from private_services import scratch_database  # noqa: E402

from scheduler import rosters  # noqa: E402
from scheduler.absences.models import Absence  # noqa: E402
from scheduler.db import make_engine, upgrade  # noqa: E402
from scheduler.dispatch import services as dispatch  # noqa: E402
from scheduler.dispatch.models import Task, TaskOffer, TaskType  # noqa: E402
from scheduler.localtime import TZ  # noqa: E402
from scheduler.models import (  # noqa: E402
    Assignment,
    Post,
    Roster,
    RosterVersion,
    RuleSet,
    ShiftTemplate,
    Site,
    Volunteer,
)

POSTGRES = os.environ.get("BASTION_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ACTOR = "bench"
START = dt.date(2022, 4, 4)
DAYS = 7
SITES = 100
PER_SLOT = 8
SHIFTS = (("morning", "06:00", "14:00"), ("evening", "14:00", "22:00"),
          ("night", "22:00", "06:00"))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"


def build(url: str, volunteers: int, tasks: int, seed: int = 1) -> tuple[list[int], int]:
    """Fill the database; return the ids of the open tasks to time and the number of
    published assignments."""
    rng = random.Random(seed)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        dispatch.ensure_task_types(session, ACTOR)
        sites = []
        for i in range(SITES):
            site = Site(code=f"s{i:03d}", name=f"第{i + 1}卡口",
                        kind="hotel" if i % 10 == 9 else "building")
            site.posts = [Post(code=f"s{i:03d}-p{j}", name=f"岗位{j}", position=j)
                          for j in range(3)]
            sites.append(site)
        shifts = [ShiftTemplate(code=c, name=c, start=dt.time.fromisoformat(a),
                                end=dt.time.fromisoformat(b), position=i)
                  for i, (c, a, b) in enumerate(SHIFTS)]
        roster = Roster(name="bench", start=START, days=DAYS, rule_set=RuleSet(name="默认"))
        session.add_all([*sites, *shifts, roster])
        session.flush()

        def skills(i: int) -> list[str]:
            roll = rng.random()
            return (["driver"] if roll < 0.10 else ["medical"] if roll < 0.15
                    else ["counselor"] if roll < 0.17 else [])

        session.execute(insert(Volunteer), [
            {"code": f"v{i:05d}", "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
             "phone": None, "unit": "", "skills": skills(i), "party_member": i % 7 == 0,
             "sites_restricted": False, "status": "active"} for i in range(volunteers)])
        ids = session.scalars(select(Volunteer.id).order_by(Volunteer.id)).all()
        version = RosterVersion(roster_id=roster.id, number=1, state="draft", created_by=ACTOR)
        session.add(version)
        session.flush()
        rows: list[dict[str, Any]] = []
        pool = list(ids)
        places = [(post, shift) for site in sites for post in site.posts for shift in shifts
                  for _ in range(PER_SLOT)]
        for day in range(DAYS):
            rng.shuffle(pool)  # each volunteer at most one shift a day
            for volunteer_id, (post, shift) in zip(pool, places, strict=False):
                rows.append({"uid": uuid.uuid4().hex, "revision": 1, "version_id": version.id,
                             "volunteer_id": volunteer_id, "post_id": post.id,
                             "shift_id": shift.id, "date": START + dt.timedelta(days=day)})
        session.execute(insert(Assignment), rows)
        assignments = len(rows)
        rosters.publish(session, roster.id, 1, None, ACTOR)
        day3 = dt.datetime.combine(START + dt.timedelta(days=2), dt.time(), tzinfo=TZ)
        absences = [
            {"volunteer_id": vid, "from_date": START + dt.timedelta(days=1),
             "to_date": START + dt.timedelta(days=4), "starts_at": day3 - dt.timedelta(days=1),
             "ends_at": day3 + dt.timedelta(days=2), "reason": "sick", "created_by": ACTOR}
            for vid in rng.sample(list(ids), min(300, len(ids) // 10))]
        if absences:  # an empty list would insert one row of defaults
            session.execute(insert(Absence), absences)
        types = {t.code: t for t in session.scalars(select(TaskType))}
        codes = ("medicine_delivery", "hospital_escort", "home_sampling")
        task_rows = []
        for i in range(tasks):
            tt = types[codes[i % 3]]
            due = day3 + dt.timedelta(hours=rng.randint(8, 20), minutes=rng.choice((0, 30)))
            task_rows.append({
                "type_id": tt.id, "site_id": sites[rng.randrange(SITES)].id, "building": "3栋",
                "room": str(100 + i), "requester_name": "张三", "requester_phone": "+8613800138000",
                "urgency": ("urgent", "today", "normal")[i % 3], "due_at": due.astimezone(dt.UTC),
                "duration_minutes": tt.default_minutes, "notes": "", "people": tt.people,
                # Every type among the accepted tasks and among the open ones timed.
                "requires": tt.requires, "status": "accepted" if i % 9 in (0, 4, 8) else "open",
                "version": 1, "created_by": ACTOR})
        session.execute(insert(Task), task_rows)
        all_tasks = session.execute(select(Task.id, Task.status, Task.due_at)).all()
        offers = []
        for tid, status, due in all_tasks:
            if status == "accepted":
                offers.append({"task_id": tid, "volunteer_id": rng.choice(ids),
                               "state": "accepted", "offered_by": ACTOR,
                               "offered_at": due - dt.timedelta(hours=5),
                               "expires_at": due - dt.timedelta(hours=4),
                               "accepted_at": due - dt.timedelta(hours=4)})
        if offers:
            session.execute(insert(TaskOffer), offers)
        open_ids = [tid for tid, status, _ in all_tasks if status == "open"]
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    engine.dispose()
    return open_ids, assignments


def measure(url: str, task_ids: list[int], timed: int, repeat: int, limit: int) -> None:
    engine = make_engine(url)
    now = dt.datetime.combine(START + dt.timedelta(days=2), dt.time(7), tzinfo=TZ)
    try:
        with Session(engine) as session:
            chosen = task_ids[:timed]
            n = count_statements(session, lambda: dispatch.suggest(session, chosen[0], limit, now=now))
            for tid in chosen[:5]:  # warm-up (plans, caches)
                dispatch.suggest(session, tid, limit, now=now)
            times, shown = [], []
            for _ in range(repeat):
                for tid in chosen:
                    session.expire_all()
                    started = time.perf_counter()
                    result = dispatch.suggest(session, tid, limit, now=now)
                    times.append((time.perf_counter() - started) * 1000)
                    shown.append(len(result.candidates))
            times.sort()
            sample = dispatch.suggest(session, chosen[-1], limit, now=now)
    finally:
        engine.dispose()

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))]

    print(f"suggest over {len(chosen)} tasks x {repeat}: p50 {pct(0.50):.1f} ms, "
          f"p95 {pct(0.95):.1f} ms, max {times[-1]:.1f} ms, mean {statistics.mean(times):.1f} ms; "
          f"{n} SQL statements per call; {min(shown)}-{max(shown)} candidates shown; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  e.g. task {sample.task_id}: excluded {sample.excluded}; top "
          + ", ".join(f"{c.code} {c.points}" for c in sample.candidates[:3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=40_000)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--timed", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=10,
                        help="suggestions asked for (more than the task's site has people on "
                             "duty makes suggest read volunteers it does not know)")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    if min(args.volunteers, args.timed, args.repeat, args.limit) < 1 or args.tasks < 2:
        parser.error("--volunteers, --timed, --repeat and --limit must be at least 1 and --tasks at "
                     "least 2 (two thirds of the tasks are the open ones timed)")
    with scratch_database(POSTGRES, "bastion_suggest_bench", sqlite=args.sqlite) as url:
        upgrade(url)
        started = time.perf_counter()
        open_ids, assignments = build(url, args.volunteers, args.tasks)
        print(f"{'SQLite' if args.sqlite else 'PostgreSQL'}: {args.volunteers} volunteers, "
              f"{SITES} sites, {DAYS}-day roster published ({assignments} assignments), "
              f"{args.tasks} tasks; built in {time.perf_counter() - started:.1f} s")
        measure(url, open_ids, args.timed, args.repeat, args.limit)

if __name__ == "__main__":
    main()
