"""SIGKILL the RQ worker at random moments of solves, many times; check nothing is lost.

    .venv/bin/python bench/fault_kill_worker.py [--rounds 20] [--time-limit 4] [--seed 1]

Each round enqueues a solve of the Yuhua example ("generate roster"), starts a real
`rq worker` (it and its work horse), kills the group with
SIGKILL after a random delay (before the job starts, mid-solve, while storing, or after it
finished), then starts a fresh worker and runs the reconciler (`retry=True`, as the clock
process does) until the run ends. Promises checked after every round:

- the run ends `finished` or `failed`, never stuck `queued`/`running`;
- a draft version exists only for a finished run, at most one per run, and it is whole
  (its assignment count equals the one the run recorded);
- no run needed more than two attempts.

Uses its own PostgreSQL database (created and dropped) and Redis database 9, so it never
touches other data. Prints one line per round and a summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import psutil
from redis import Redis
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from private_services import scratch_database  # noqa: E402

from scheduler import jobs, rosters  # noqa: E402
from scheduler.db import REPO, make_engine, session_scope, sessionmaker_for, upgrade  # noqa: E402
from scheduler.models import Assignment, RosterVersion, SolveRun  # noqa: E402
from scheduler.problems import load_problem  # noqa: E402

POSTGRES = os.environ.get("BASTION_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BASTION_FAULT_REDIS_URL", "redis://127.0.0.1:6379/9")
EXAMPLE = REPO.parent / "shared" / "examples" / "yuhua-small.json"
#: A live run writes a heartbeat at least every `jobs.HEARTBEAT_INTERVAL` (5 s); a run
#: silent for longer than this is dead.
STALE = dt.timedelta(seconds=12)


def _worker(url: str) -> subprocess.Popen[bytes]:
    rq_cli = Path(sys.executable).with_name("rq")
    return subprocess.Popen(
        [str(rq_cli), "worker", "-c", "scheduler.queues", "--url", REDIS,
         "--serializer", "rq.serializers.JSONSerializer"],
        cwd=REPO, env={**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its work horse (RQ starts the horse in a session of its own,
    so killing the worker's process group alone would leave the solve running)."""
    try:
        tree = [*psutil.Process(worker.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for proc in [psutil.Process(worker.pid), *tree] if worker.poll() is None else tree:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    worker.wait(10)


def _run_state(engine: object, run_id: int) -> tuple[str, int]:
    with session_scope(engine) as session:  # type: ignore[arg-type]
        run = session.get(SolveRun, run_id)
        assert run is not None
        return run.status, int((run.progress or {}).get("attempt", 1))


def _check(engine: object, run_id: int) -> list[str]:
    """The promises of one finished round; each broken one as a sentence."""
    broken: list[str] = []
    with session_scope(engine) as session:  # type: ignore[arg-type]
        run = session.get(SolveRun, run_id)
        assert run is not None
        versions = session.scalars(select(RosterVersion).where(
            RosterVersion.solve_run_id == run_id)).all()
        if run.status not in ("finished", "failed"):
            broken.append(f"run {run_id} stuck {run.status}")
        if run.status == "failed" and versions:
            broken.append(f"failed run {run_id} left {len(versions)} version(s)")
        if run.status == "finished" and len(versions) != 1:
            broken.append(f"finished run {run_id} has {len(versions)} versions")
        for version in versions:
            count = session.scalar(select(func.count()).select_from(Assignment).where(
                Assignment.version_id == version.id))
            expected = (run.progress or {}).get("assignments")
            if expected is not None and count != expected:
                broken.append(f"version {version.number}: {count} of {expected} assignments")
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    redis = Redis.from_url(REDIS)
    redis.flushdb()
    databases = ExitStack()
    url = databases.enter_context(scratch_database(POSTGRES, "bastion_fault"))
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = url, REDIS
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    longest = 0.0
    try:
        upgrade(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            roster_id = load_problem(session, json.loads(EXAMPLE.read_text("utf-8")),
                                     actor="fault").id
        for round_no in range(1, args.rounds + 1):
            worker = _worker(url)
            with sessionmaker_for(engine)() as session:
                run = rosters.generate(session, roster_id, "fault", args.time_limit)
                run_id = run.id
            delay = rng.uniform(0.0, args.time_limit + 6.0)
            time.sleep(delay)
            at_kill, _ = _run_state(engine, run_id)
            _kill(worker)
            started = time.monotonic()
            worker = _worker(url)
            try:
                while True:
                    with sessionmaker_for(engine)() as session:
                        jobs.reconcile_stale_runs(session, STALE, retry=True)
                        session.commit()
                    status, attempt = _run_state(engine, run_id)
                    if status in ("finished", "failed"):
                        break
                    if time.monotonic() - started > 180:
                        break
                    time.sleep(0.5)
            finally:
                _kill(worker)
            took = time.monotonic() - started
            longest = max(longest, took)
            broken = _check(engine, run_id)
            if attempt > 2:
                broken.append(f"run {run_id} took {attempt} attempts")
            problems += broken
            outcome = f"{status} (attempt {attempt})"
            outcomes[f"killed while {at_kill} → {outcome}"] += 1
            print(f"round {round_no:2d}: kill after {delay:4.1f} s while {at_kill:8s} → "
                  f"{outcome}, settled in {took:5.1f} s{'  ' + '; '.join(broken) if broken else ''}",
                  flush=True)
        engine.dispose()
    finally:
        databases.close()
        redis.flushdb()
    print("\nsummary")
    for line, count in sorted(outcomes.items()):
        print(f"  {count:3d} × {line}")
    print(f"  longest time from kill to a settled run: {longest:.1f} s")
    print(f"  broken promises: {len(problems)}")
    for problem in problems:
        print(f"    {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
