"""Calendar feed throughput under gunicorn: 200s/s, 304s/s and p99 over 1,000 volunteers.

    .venv/bin/python bench/feed_bench.py [--volunteers 1000] [--workers W] [--threads T]
        [--clients 4] [--rounds 2] [--sqlite]

Builds a fresh database (PostgreSQL on BASTION_TEST_POSTGRES_URL's server by default,
dropped at the end; --sqlite for a file) with VOLUNTEERS volunteers, 20 sites of 3 posts,
three shifts and a 14-day roster published twice (so feeds carry moved and cancelled
events), issues every volunteer a feed token, starts gunicorn with `web/gunicorn_conf.py`
on a free local port (WORKERS and THREADS default to that file's, as deployed) and
requests every volunteer's feed from CLIENTS client processes
(each one keep-alive connection): ROUNDS passes without a validator (200s), then ROUNDS
passes with the ETag of the first pass in If-None-Match (304s). Prints requests per second
and latency percentiles of each phase. Targets: >= 300/s (200), >= 1,000/s (304), p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from private_services import free_port, scratch_database  # noqa: E402

from scheduler import rosters  # noqa: E402
from scheduler.calendars import services  # noqa: E402
from scheduler.db import make_engine, upgrade  # noqa: E402
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
from web import gunicorn_conf  # noqa: E402

POSTGRES = os.environ.get("BASTION_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECRET = "feed-bench-secret"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
DAYS = 14
SHIFTS = (("早班", "06:00", "14:00"), ("中班", "14:00", "22:00"), ("夜班", "22:00", "06:00"))


def build(url: str, volunteers: int, seed: int = 1) -> list[str]:
    """Fill the database; return every volunteer's feed token."""
    rng = random.Random(seed)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        sites = []
        for i in range(20):
            site = Site(code=f"s{i:02d}", name=f"雨花区第{i + 1}防控卡口", kind="checkpoint",
                        address=f"长沙市雨花区万家丽南路{100 + i}号", street="黎托街道",
                        contact_name="王芳", contact_phone=f"1390000{i:04d}")
            site.posts = [Post(code=f"s{i:02d}-p{j}", name=n, position=j)
                          for j, n in enumerate(("车辆查验", "人员登记", "秩序维护"))]
            sites.append(site)
        shifts = [ShiftTemplate(code=c, name=c, start=dt.time.fromisoformat(a),
                                end=dt.time.fromisoformat(b), position=i)
                  for i, (c, a, b) in enumerate(SHIFTS)]
        roster = Roster(name="雨花区两周排班", start=dt.date(2022, 4, 4), days=DAYS,
                        rule_set=RuleSet(name="默认"))
        session.add_all([*sites, *shifts, roster])
        session.flush()
        people: list[dict[str, object]] = [{"code": f"v{i:05d}", "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                   "phone": None, "unit": "", "skills": [], "party_member": i % 7 == 0,
                   "sites_restricted": False, "status": "active"} for i in range(volunteers)]
        session.execute(insert(Volunteer), people)
        ids = session.scalars(select(Volunteer.id).order_by(Volunteer.id)).all()
        posts = [p.id for s in sites for p in s.posts]
        first: list[dict[str, object]] = []
        for vid in ids:  # about 7 shifts each over 14 days
            for day in sorted(rng.sample(range(DAYS), 7)):
                first.append({"uid": uuid.uuid4().hex, "revision": 1, "volunteer_id": vid,
                              "post_id": rng.choice(posts),
                              "shift_id": rng.choice(shifts).id,
                              "date": roster.start + dt.timedelta(days=day)})
        second = []
        for row in first:  # v2: 10% moved, 3% removed
            roll = rng.random()
            if roll < 0.03:
                continue
            if roll < 0.13:
                row = {**row, "post_id": rng.choice(posts), "revision": 2}
            second.append(row)
        for number, rows in ((1, first), (2, second)):
            version = RosterVersion(roster_id=roster.id, number=number, state="draft",
                                    created_by="bench")
            session.add(version)
            session.flush()
            session.execute(insert(Assignment), [{**r, "version_id": version.id} for r in rows])
            rosters.publish(session, roster.id, number, None if number == 1 else 1, "bench")
        tokens = [services.issue_volunteer_token(session, vid, "bench", secret=SECRET)
                  for vid in ids]
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum keeps them in use
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    engine.dispose()
    return tokens


def start_gunicorn(url: str, port: int, workers: int, threads: int, cache: bool,
                   extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """gunicorn with the app on 127.0.0.1:`port`, once it answers /healthz.

    No REDIS_URL unless `extra_env` gives one (which may also override the rest)."""
    env = {**os.environ, "BASTION_FEED_CACHE_SIZE": "4096" if cache else "0",
           "DATABASE_URL": url, "BASTION_SECRET_KEY": SECRET, "BASTION_ENV": "development",
           "BASTION_BASE_URL": "https://bench.example", "BASTION_ACCESS_LOG": "/dev/null",
           "PYTHONPATH": str(REPO),
           # One client polls every token many times a second: limits that are checked
           # (their cost is measured) but never reached.
           "BASTION_FEED_LIMIT_PER_TOKEN": "1000000000",
           "BASTION_FEED_LIMIT_PER_IP": "1000000000"}
    env.pop("REDIS_URL", None)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "web/gunicorn_conf.py"),
               "-b", f"127.0.0.1:{port}", "-w", str(workers), "--threads", str(threads),
               "web:create_app()"]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def client(args: tuple[int, list[tuple[str, str | None]], int]) -> tuple[
        list[float], dict[int, int], dict[str, str]]:
    """One client process: its share of requests, in order, on one keep-alive connection.
    Returns latencies (s), status counts and the ETag of each path."""
    port, requests, expected = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    etags: dict[str, str] = {}
    for path, etag in requests:
        headers = {"If-None-Match": etag} if etag else {}
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            statuses[-1] = statuses.get(-1, 0) + 1
            continue
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        etags[path] = response.headers.get("ETag", "")
        if response.headers.get("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    return latencies, statuses, etags


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by gunicorn's master and workers."""
    master = psutil.Process(server.pid)
    total = 0.0
    for process in [master, *master.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


#: The bench database's name when it is PostgreSQL (its backends' CPU is counted too).
DATABASE: dict[str, str] = {}


def database_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench database."""
    if "name" not in DATABASE:
        return {}
    engine = create_engine(POSTGRES)
    try:
        with engine.connect() as conn:
            pids = conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"),
                {"d": DATABASE["name"]}).scalars().all()
    finally:
        engine.dispose()
    out = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out[pid] = times.user + times.system
    return out


def phase(name: str, server: subprocess.Popen[bytes], port: int,
          requests: list[tuple[str, str | None]], clients: int,
          expected: int) -> dict[str, str]:
    shares = [(port, requests[i::clients], expected) for i in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        cpu, db_before = server_cpu(server), database_cpu()
        started = time.perf_counter()
        results = pool.map(client, shares)
        elapsed = time.perf_counter() - started
        cpu, db_after = server_cpu(server) - cpu, database_cpu()
        db_cpu = sum(t - db_before.get(pid, 0.0) for pid, t in db_after.items())
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    etags: dict[str, str] = {}
    for _lat, counts, tags in results:
        for status, n in counts.items():
            statuses[status] = statuses.get(status, 0) + n
        etags.update(tags)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    good = statuses.get(expected, 0)
    print(f"{name}: {len(requests)} requests in {elapsed:.2f} s = {good / elapsed:.0f} "
          f"{expected}-responses/s; latency p50 {pct(0.50):.1f} ms, p90 {pct(0.90):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms; statuses {statuses}")
    per_request = cpu / len(requests) * 1000
    per_query = db_cpu / len(requests) * 1000
    print(f"    CPU per request: gunicorn {per_request:.2f} ms + PostgreSQL {per_query:.2f} ms "
          f"= {1000 / (per_request + per_query):.0f}/s per free core "
          f"({len(db_after)} database connections, {len(set(db_after) - set(db_before))} new); "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return etags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=gunicorn_conf.workers,
                        help="gunicorn workers (default: web/gunicorn_conf.py's)")
    parser.add_argument("--threads", type=int, default=gunicorn_conf.threads,
                        help="threads per worker (default: web/gunicorn_conf.py's)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--no-cache", action="store_true",
                        help="Build every feed on every request (BASTION_FEED_CACHE_SIZE=0).")
    args = parser.parse_args()

    with scratch_database(POSTGRES, "bastion_feed_bench", sqlite=args.sqlite) as url:
        if not args.sqlite:
            DATABASE["name"] = str(make_url(url).database)
        upgrade(url)
        started = time.perf_counter()
        tokens = build(url, args.volunteers)
        print(f"database: {'SQLite' if args.sqlite else 'PostgreSQL'}, "
              f"{args.volunteers} volunteers, ~7 shifts each, 2 publications; "
              f"built in {time.perf_counter() - started:.1f} s")
        port = free_port()
        server = start_gunicorn(url, port, args.workers, args.threads, not args.no_cache)
        print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), "
              f"feed cache {'off' if args.no_cache else 'on'}; "
              f"{args.clients} client processes, keep-alive; {os.cpu_count()} CPUs")
        try:
            paths = [f"/ical/{t}.ics" for t in tokens]
            phase("warm-up (100 other requests)", server, port,
                  [("/healthz", None)] * 100, args.clients, 200)
            etags = phase("200, first poll of each feed (built, last_used written)",
                          server, port, [(p, None) for p in paths], args.clients, 200)
            phase("200, later polls (built or from the worker's cache)", server, port,
                  [(p, None) for _ in range(args.rounds) for p in paths],
                  args.clients, 200)
            phase("304 (If-None-Match)", server, port,
                  [(p, etags[p]) for _ in range(args.rounds) for p in paths],
                  args.clients, 304)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)


if __name__ == "__main__":
    main()
