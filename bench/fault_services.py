"""Feeds and pages while Redis and PostgreSQL fail, and while a solve runs.

    .venv/bin/python bench/fault_services.py [--volunteers 300] [--clients 4]

Starts its own PostgreSQL and Redis (`bench/private_services.py`: the machine's shared
servers are never restarted), a database with VOLUNTEERS volunteers holding published
shifts and feed tokens plus the Yuhua example roster to solve, gunicorn with the app
(`web/gunicorn_conf.py`), and an RQ worker (niced, as the Procfile runs it). CLIENTS
threads then request volunteers' feeds and a coordinator's read pages (the roster list,
the JSON API) without pause, while:

1. **Redis restart during a solve**: a solve is enqueued; mid-solve Redis is stopped for
   5 s and started again (empty: it keeps nothing). Promise: feeds and read pages answer
   throughout (0 server errors), and the solve ends `finished` after Redis returns (the
   worker is restarted as a supervisor would; the reconciler re-enqueues what Redis lost).
2. **PostgreSQL restart under load**: PostgreSQL is stopped for 5 s and started again.
   Promise: during the outage requests fail cleanly (503 with Retry-After, never another
   5xx, never a hang), and the first success comes within 10 s of the database's return.
3. **Feed latency while a solve runs**: feed p99 with nothing else running, then while a
   solve runs. Promise: p99 at most twice the idle figure.

Prints the figures of each scenario and exits 1 if a promise is broken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from feed_bench import build, start_gunicorn  # noqa: E402
from private_services import PrivatePostgres, PrivateRedis, free_port  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from scheduler import jobs, rosters  # noqa: E402
from scheduler.accounts import services as accounts  # noqa: E402
from scheduler.db import make_engine, sessionmaker_for, upgrade  # noqa: E402
from scheduler.models import SolveRun  # noqa: E402
from scheduler.problems import load_problem  # noqa: E402

EXAMPLE = REPO.parent / "shared" / "examples" / "yuhua-small.json"
PASSWORD = "fault-bench-password"
#: Longer than the worker's heartbeat interval (5 s): a silent run is dead.
STALE = dt.timedelta(seconds=12)


@dataclass
class Sample:
    at: float
    kind: str
    status: int  # -1: no answer (connection refused, reset, timeout)
    seconds: float
    retry_after: str | None = None


@dataclass
class Load:
    """CLIENTS threads requesting feeds and pages until stopped; every answer recorded."""

    port: int
    feeds: list[str]
    cookie: str
    clients: int
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    pages: bool = True

    def start(self) -> None:
        self.stop.clear()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(self.clients)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            if self.pages and rng.random() < 0.2:
                kind, path = rng.choice([("page", "/rosters"), ("api", "/api/v1/rosters")])
                headers = {"Cookie": self.cookie}
            else:
                kind, path, headers = "feed", rng.choice(self.feeds), {}
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status, retry = response.status, response.headers.get("Retry-After")
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn, status, retry = None, -1, None
                time.sleep(0.05)
            self.samples.append(Sample(time.monotonic(), kind, status,
                                       time.perf_counter() - started, retry))

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]


def p99(samples: list[Sample]) -> float:
    latencies = sorted(s.seconds for s in samples if s.status in (200, 304))
    return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000


def summary(samples: list[Sample]) -> str:
    by_kind: dict[str, Counter[int]] = {}
    for s in samples:
        by_kind.setdefault(s.kind, Counter())[s.status] += 1
    return "; ".join(f"{kind} {dict(sorted(c.items()))}" for kind, c in sorted(by_kind.items()))


def start_web(url: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    """gunicorn (2 workers × 4 threads) with Redis and without the in-process clock."""
    return start_gunicorn(url, port, 2, 4, True, {"REDIS_URL": redis_url,
                                                  "BASTION_CLOCK": "false"})


def start_worker(url: str, redis_url: str) -> subprocess.Popen[bytes]:
    rq_cli = Path(sys.executable).with_name("rq")
    return subprocess.Popen(
        ["nice", "-n", "10", str(rq_cli), "worker", "-c", "scheduler.queues", "--url", redis_url,
         "--serializer", "rq.serializers.JSONSerializer"],
        cwd=REPO, env={**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 9)
    process.wait(10)


def login(port: int) -> str:
    """Log the coordinator in through the form (CSRF token and all); the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login/staff")
    response = conn.getresponse()
    html = response.read().decode()
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert token is not None, "no CSRF token on the login page"
    body = urllib.parse.urlencode({"csrf_token": token.group(1), "username": "fault-coord",
                                   "password": PASSWORD})
    conn.request("POST", "/login/staff", body=body, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status in (302, 303), f"login failed: {response.status}"
    return response.headers["Set-Cookie"].split(";", 1)[0]


def run_status(engine: object, run_id: int) -> str:
    with sessionmaker_for(engine)() as session:  # type: ignore[arg-type]
        run = session.get(SolveRun, run_id)
        assert run is not None
        return run.status


def reconcile_until_done(engine: object, run_id: int, url: str, redis_url: str,
                         worker: list[subprocess.Popen[bytes]], timeout: float) -> str:
    """The clock's job (and a supervisor's) until the run ends: reconcile, keep a worker."""
    deadline = time.monotonic() + timeout
    status = run_status(engine, run_id)
    while status not in ("finished", "failed") and time.monotonic() < deadline:
        if worker[0].poll() is not None:  # the worker died with Redis: restart it
            worker[0] = start_worker(url, redis_url)
        try:
            with sessionmaker_for(engine)() as session:  # type: ignore[arg-type]
                jobs.reconcile_stale_runs(session, STALE, retry=True)
                session.commit()
        except Exception as exc:  # Redis still away: try again
            print(f"    reconciler: {type(exc).__name__}: {exc}", flush=True)
        time.sleep(1)
        status = run_status(engine, run_id)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--solve-seconds", type=float, default=20.0)
    args = parser.parse_args()
    broken: list[str] = []
    pg, redis = PrivatePostgres(), PrivateRedis()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        redis.start()
        os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = pg.url, redis.url
        upgrade(pg.url)
        tokens = build(pg.url, args.volunteers)
        engine = make_engine(pg.url)
        with Session(engine) as session, session.begin():
            roster_id = load_problem(session, json.loads(EXAMPLE.read_text("utf-8")),
                                     actor="fault").id
            accounts.create_staff_user(session, "fault-coord", "coordinator", PASSWORD, "fault")
        port = free_port()
        web = start_web(pg.url, redis.url, port)
        processes.append(web)
        worker = [start_worker(pg.url, redis.url)]
        load = Load(port, [f"/ical/{t}.ics" for t in tokens], login(port), args.clients)
        print(f"{args.volunteers} volunteers with feeds; gunicorn 2×4 on :{port}; "
              f"{args.clients} client threads; load average {os.getloadavg()[0]:.1f}", flush=True)

        # 3 (first, while everything is healthy): idle p99, then p99 during a solve.
        load.pages = False
        load.start()
        time.sleep(5)  # warm-up: every worker has built (and cached) the feeds once
        began = time.monotonic()
        time.sleep(10)
        idle = load.window(began, time.monotonic())
        with sessionmaker_for(engine)() as session:
            run = rosters.generate(session, roster_id, "fault", args.solve_seconds)
            run_id = run.id
        while run_status(engine, run_id) != "running":
            time.sleep(0.2)
        solving_from = time.monotonic()
        while run_status(engine, run_id) == "running":
            time.sleep(0.5)
        during = load.window(solving_from, time.monotonic())
        load.finish()
        idle_p99, busy_p99 = p99(idle), p99(during)
        print(f"3. feed p99 idle {idle_p99:.1f} ms ({len(idle)} requests), while solving "
              f"{busy_p99:.1f} ms ({len(during)} requests): ratio {busy_p99 / idle_p99:.2f}",
              flush=True)
        if busy_p99 > 2 * idle_p99:
            broken.append(f"feed p99 while solving {busy_p99:.1f} ms > 2 × {idle_p99:.1f} ms")

        # 1. Redis stopped for 5 s in the middle of a solve.
        load.pages = True
        load.samples.clear()
        load.start()
        with sessionmaker_for(engine)() as session:
            run = rosters.generate(session, roster_id, "fault", args.solve_seconds)
            run_id = run.id
        while run_status(engine, run_id) != "running":
            time.sleep(0.2)
        time.sleep(3)
        redis.stop()
        time.sleep(5)
        redis.start()
        status = reconcile_until_done(engine, run_id, pg.url, redis.url, worker, 240)
        load.finish()
        errors = [s for s in load.samples if s.status >= 500 or s.status == -1]
        print(f"1. Redis restart mid-solve: run {run_id} ended {status}; "
              f"{len(load.samples)} requests, {len(errors)} server errors; {summary(load.samples)}",
              flush=True)
        if errors:
            broken.append(f"{len(errors)} server errors while Redis restarted")
        if status != "finished":
            broken.append(f"the solve interrupted by the Redis restart ended {status}")

        # 2. PostgreSQL stopped for 5 s under load.
        load.samples.clear()
        load.start()
        time.sleep(3)
        down = time.monotonic()
        pg.stop()
        time.sleep(5)
        pg.start()
        back = time.monotonic()
        time.sleep(12)
        load.finish()
        outage = load.window(down, back)
        after = [s for s in load.window(back, time.monotonic()) if s.status in (200, 304)]
        recovered = (after[0].at - back) if after else float("inf")
        bad = [s for s in outage if s.status not in (200, 304, 503)]
        no_retry = [s for s in outage if s.status == 503 and s.retry_after is None]
        slow = max((s.seconds for s in outage), default=0.0)
        print(f"2. PostgreSQL restart: during the {back - down:.1f} s outage "
              f"{summary(outage)}; slowest answer {slow:.2f} s; first success "
              f"{recovered:.2f} s after the database was back", flush=True)
        if bad:
            broken.append(f"{len(bad)} answers other than 503 during the outage: "
                          f"{Counter(s.status for s in bad)}")
        if no_retry:
            broken.append(f"{len(no_retry)} 503s without Retry-After")
        if recovered > 10:
            broken.append(f"first success {recovered:.1f} s after PostgreSQL returned")
        stop(worker[0])
        engine.dispose()
    finally:
        for process in processes:
            stop(process)
        redis.close()
        pg.close()
    print("\nbroken promises:", len(broken))
    for line in broken:
        print("  ", line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
