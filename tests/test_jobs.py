"""Background solving (scheduler/jobs.py, scheduler/queues.py) on SQLite and PostgreSQL.

Jobs run in other threads and processes, so these tests use a committed database of
their own (not the rolled-back `db` session) and real Redis at ``BASTION_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``) with a unique queue per test. Redis unreachable:
the tests that need it fail when ``CI`` is set and are skipped otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import Engine, func, select

from scheduler import jobs, queues, rosters
from scheduler.db import REPO, session_scope, sessionmaker_for, utcnow
from scheduler.models import AuditEvent, Demand, Roster, RosterVersion, SolveRun
from scheduler.problems import load_problem
from tests.fixtures.problems import shared_dir

pytest_plugins = ["tests.fixtures.db"]

YUHUA = shared_dir() / "examples" / "yuhua-small.json"
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ACTOR = "协调员"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, job_url: str) -> None:
    """Jobs find the database through DATABASE_URL; no REDIS_URL (in-process) by default."""
    monkeypatch.setenv("DATABASE_URL", job_url)
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    conn = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        conn.ping()
    except Exception as exc:
        conn.close()
        message = f"Redis unreachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield conn
    conn.close()


@pytest.fixture
def queue_name(redis_conn: Redis) -> Iterator[str]:
    name = f"bastion-test-{uuid.uuid4().hex[:10]}"
    yield name
    Queue(name, connection=redis_conn, serializer=JSONSerializer).delete(delete_jobs=True)


@pytest.fixture(scope="module")
def yuhua(engine: Engine) -> int:
    """The Yuhua example, loaded once per module (loading 240 volunteers takes a while)."""
    if not YUHUA.exists():
        pytest.skip(f"{YUHUA} is missing")
    doc = json.loads(YUHUA.read_text(encoding="utf-8"))
    with session_scope(engine) as session:
        return load_problem(session, doc, actor=ACTOR).id


@pytest.fixture
def roster_id(engine: Engine, yuhua: int, env: None) -> int:
    """A new roster with Yuhua's period, demand and rules (same district, no versions)."""
    return _copy_roster(engine, yuhua)


def _copy_roster(engine: Engine, yuhua: int) -> int:
    with session_scope(engine) as session:
        source = session.get(Roster, yuhua)
        assert source is not None
        roster = Roster(name=source.name, start=source.start, days=source.days,
                        timezone=source.timezone, coverage_weight=source.coverage_weight,
                        rule_set_id=source.rule_set_id)
        roster.demand = [Demand(position=d.position, post_id=d.post_id, shift_id=d.shift_id,
                                min=d.min, max=d.max, requires=dict(d.requires or {}),
                                dates=None if d.dates is None else list(d.dates))
                         for d in source.demand]
        session.add(roster)
        session.flush()
        return roster.id


def _run(engine: Engine, run_id: int) -> SolveRun:
    with session_scope(engine) as session:
        run = session.get(SolveRun, run_id)
        assert run is not None
        return run


def _versions(engine: Engine, roster_id: int) -> list[RosterVersion]:
    with session_scope(engine) as session:
        return list(session.scalars(select(RosterVersion).where(
            RosterVersion.roster_id == roster_id).order_by(RosterVersion.number)))


def _actions(engine: Engine, *entities: tuple[str, int]) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(AuditEvent.action).where(
            (AuditEvent.entity + ":" + AuditEvent.entity_id).in_(
                [f"{e}:{i}" for e, i in entities])).order_by(AuditEvent.id)))


def _assert_finished(engine: Engine, run_id: int, roster_id: int) -> RosterVersion:
    run = _run(engine, run_id)
    assert run.status == "finished", run.error
    assert run.started_at and run.finished_at and run.heartbeat_at
    assert run.objective is not None and run.bound is not None and run.elapsed is not None
    assert run.coverage is not None and 0 < run.coverage <= 1
    assert run.progress and run.progress["updates"] >= 1 and run.progress["version"] == 1
    (version,) = _versions(engine, roster_id)
    assert version.state == "draft" and version.solve_run_id == run_id
    assert version.objective == run.objective and version.created_by == ACTOR
    with session_scope(engine) as session:
        assert len(session.get(RosterVersion, version.id).assignments) > 0  # type: ignore[union-attr]
    assert _actions(engine, ("solve_run", run_id), ("roster_version", version.id)) == [
        "solve_run.create", "solve_run.start", "roster_version.create", "solve_run.finish"]
    return version


def test_queue_defaults() -> None:
    assert queues.job_timeout(60) > 60 and queues.job_timeout(2.5) > 2.5
    assert queues.SOLVE in queues.QUEUES
    assert queues.redis_url({"REDIS_URL": " "}) is None
    assert queues.redis_url({"REDIS_URL": "redis://x:6379/1"}) == "redis://x:6379/1"


def test_job_runs_through_a_real_rq_worker(engine: Engine, roster_id: int, redis_conn: Redis,
                                           queue_name: str, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=2, queue=queue_name)
    assert run.status == "queued" and run.job_id and not run.job_id.startswith("local-")
    queue = Queue(queue_name, connection=redis_conn, serializer=JSONSerializer)
    job = queue.fetch_job(run.job_id)
    assert job is not None and job.args == [run.id] and job.timeout > 2
    assert job.result_ttl == queues.RESULT_TTL and job.failure_ttl == queues.FAILURE_TTL
    assert job.meta["run"] == run.id

    worker = SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer)
    assert worker.work(burst=True)

    _assert_finished(engine, run.id, roster_id)
    job = Job.fetch(run.job_id, connection=redis_conn, serializer=JSONSerializer)
    assert job.is_finished and job.return_value()["version"] == 1
    assert job.meta["status"] == "finished" and job.meta["progress"]["objective"] is not None


def test_job_runs_in_process_without_redis(engine: Engine, roster_id: int) -> None:
    assert queues.redis_url() is None
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=2)
    assert run.job_id is not None and run.job_id.startswith(queues.LOCAL_PREFIX)
    assert queues.wait_local(timeout=60)
    _assert_finished(engine, run.id, roster_id)


def test_a_failing_solve_marks_the_run_failed(engine: Engine, roster_id: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(jobs.solver, "solve", broken)
    with session_scope(engine) as session:
        run = SolveRun(roster_id=roster_id, requested_by=ACTOR, time_limit=2)
        session.add(run)
    with pytest.raises(RuntimeError, match="exploded"):
        jobs.solve_roster(run.id)
    failed = _run(engine, run.id)
    assert failed.status == "failed" and "solver exploded" in (failed.error or "")
    assert failed.finished_at is not None and _versions(engine, roster_id) == []
    assert _actions(engine, ("solve_run", run.id)) == ["solve_run.start", "solve_run.fail"]
    # A finished or failed run is not solved again by a duplicate job.
    assert jobs.solve_roster(run.id)["skipped"] is True


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(0.1)


def test_sigkill_mid_solve_leaves_no_draft_and_the_run_is_reconciled(
        engine: Engine, roster_id: int, job_url: str, redis_conn: Redis, queue_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=30, queue=queue_name)
    rq_cli = Path(sys.executable).with_name("rq")
    worker = subprocess.Popen(
        [str(rq_cli), "worker", "--burst", "--url", REDIS_URL,
         "--serializer", "rq.serializers.JSONSerializer", queue_name],
        cwd=REPO, env={**os.environ, "DATABASE_URL": job_url, "REDIS_URL": REDIS_URL},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own process group: the worker and its work horse
    try:
        _wait_for(lambda: _run(engine, run.id).status == "running", 30)
        # Well into the solve: progress is on the row and in job.meta.
        _wait_for(lambda: _run(engine, run.id).objective is not None, 20)
        running = _run(engine, run.id)
        assert running.progress and running.progress["updates"] >= 1
        assert running.bound is not None and running.elapsed is not None
        job = Job.fetch(run.job_id or "", connection=redis_conn, serializer=JSONSerializer)
        assert job.get_meta()["progress"]["objective"] is not None
        with session_scope(engine) as session:
            assert jobs.reconcile_stale_runs(session) == []  # alive: left alone
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL

    killed = _run(engine, run.id)
    assert killed.status == "running" and _versions(engine, roster_id) == []
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with session_scope(engine) as session:
        ended = jobs.reconcile_stale_runs(session, now=later)
        assert [r.id for r in ended] == [run.id]
    failed = _run(engine, run.id)
    assert failed.status == "failed" and "worker gone" in (failed.error or "")
    assert _versions(engine, roster_id) == []
    assert _actions(engine, ("solve_run", run.id)) == [
        "solve_run.create", "solve_run.start", "solve_run.fail"]
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None  # the roster is free again


def test_reconciler_retries_a_stale_run_once(engine: Engine, roster_id: int) -> None:
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        run = SolveRun(roster_id=roster_id, requested_by=ACTOR, time_limit=1, status="running",
                       created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago)
        session.add(run)
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True)  # commits, then enqueues
        assert [r.id for r in ended] == [run.id]
    assert queues.wait_local(timeout=60)
    again = _run(engine, run.id)
    assert again.status == "finished" and again.progress and again.progress["attempt"] == 2
    assert len(_versions(engine, roster_id)) == 1

    # A second attempt that goes stale is failed, not retried again.
    with session_scope(engine) as session:
        stale = session.get(SolveRun, run.id)
        assert stale is not None
        stale.status, stale.heartbeat_at = "running", long_ago
    with sessionmaker_for(engine)() as session:
        jobs.reconcile_stale_runs(session, retry=True)
        session.commit()
    assert _run(engine, run.id).status == "failed"
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "solve_run.retry",
            AuditEvent.entity_id == str(run.id))) == 1


def test_reconciler_retries_later_the_runs_the_queue_cannot_take(
        engine: Engine, roster_id: int, yuhua: int, redis_conn: Redis, queue_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis down during a pass: each stale run is tried, none is failed or spends its one
    retry; the first pass that reaches Redis again re-enqueues them."""
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        runs = [SolveRun(roster_id=rid, requested_by=ACTOR, time_limit=1, status="running",
                         created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago)
                for rid in (roster_id, _copy_roster(engine, yuhua))]
        session.add_all(runs)
        session.flush()
        ids = [r.id for r in runs]
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, queue=queue_name)
        assert sorted(r.id for r in ended) == ids
        assert jobs.summarise(ended) == {"retried": 0, "remerged": 0, "deferred": 2,
                                         "failed": 0}
    for run_id in ids:
        waiting = _run(engine, run_id)
        assert waiting.status == "queued" and waiting.progress == {"attempt": 1}
        assert "queue unreachable" in (waiting.error or "")
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:  # still down: the runs wait, not failed
        assert jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue_name) == []
    assert [_run(engine, i).status for i in ids] == ["queued", "queued"]

    monkeypatch.setenv("REDIS_URL", REDIS_URL)  # back
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue_name)
        assert sorted(r.id for r in ended) == ids
        assert jobs.summarise(ended) == {"retried": 2, "remerged": 0, "deferred": 0,
                                         "failed": 0}
    waiting_jobs = Queue(queue_name, connection=redis_conn, serializer=JSONSerializer).job_ids
    for run_id in ids:
        again = _run(engine, run_id)
        assert again.status == "queued" and again.progress == {"attempt": 2}
        assert again.job_id in waiting_jobs
        assert _actions(engine, ("solve_run", run_id)) == [
            "solve_run.retry", "solve_run.retry_later", "solve_run.retry"]


def test_reconciler_fails_a_queued_run_whose_job_is_lost(
        engine: Engine, roster_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        run = SolveRun(roster_id=roster_id, requested_by=ACTOR, created_at=long_ago,
                       job_id="0123456789abcdef")
        session.add(run)
    # Redis cannot be asked: the job may be waiting there, the run is left alone.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with session_scope(engine) as session:
        assert jobs.reconcile_stale_runs(session) == []
    # The queue does not know the job (here: an in-process job of a process now gone).
    with session_scope(engine) as session:
        queued = session.get(SolveRun, run.id)
        assert queued is not None and queued.status == "queued"
        queued.job_id = queues.LOCAL_PREFIX + "gone"
    with session_scope(engine) as session:
        assert [r.id for r in jobs.reconcile_stale_runs(session)] == [run.id]
    assert _run(engine, run.id).status == "failed"


class _Figures:
    def __init__(self, objective: int) -> None:
        self.objective, self.bound, self.seconds = objective, 0, 0.5


def test_reporter_throttles_progress_and_keeps_the_heartbeat(
        engine: Engine, roster_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL", 0.1)
    monkeypatch.setattr(jobs, "HEARTBEAT_INTERVAL", 0.3)
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        run = SolveRun(roster_id=roster_id, requested_by=ACTOR, status="running",
                       started_at=long_ago, heartbeat_at=long_ago)
        session.add(run)
    reporter = jobs._Reporter(run.id, 1, None)
    writes: list[bool] = []
    write = reporter._write

    def counted(*, force: bool) -> bool:
        wrote = write(force=force)
        writes.append(wrote)
        return wrote

    monkeypatch.setattr(reporter, "_write", counted)
    reporter.start()
    for i in range(200):  # a burst of improvements: one write per interval, not 200
        reporter.progress(_Figures(1000 - i))
    _wait_for(lambda: _run(engine, run.id).objective == 801, 5)
    first = _run(engine, run.id)
    assert first.heartbeat_at and first.heartbeat_at > long_ago
    time.sleep(0.8)  # no improvement: the heartbeat still moves
    reporter.stop()
    later = _run(engine, run.id)
    assert later.heartbeat_at and later.heartbeat_at > first.heartbeat_at
    assert later.progress == {"objective": 801, "bound": 0, "elapsed": 0.5, "updates": 200,
                              "attempt": 1}
    assert 2 <= sum(writes) <= 15  # progress once, then heartbeats; never per improvement


def test_the_clock_process_enqueues_the_periodic_jobs(redis_conn: Redis) -> None:
    """`rq cron scheduler.cron` (the Procfile's clock) knows every periodic job and its queue:
    the reconciler, expiring offers, refreshing absence statuses, reminders and sends."""
    from scheduler.dispatch import jobs as dispatch_jobs
    from scheduler.notifications import jobs as notification_jobs

    assert "clock: rq cron -c scheduler.queues" in (REPO / "Procfile").read_text()
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.load_config_from_file("scheduler.cron")
    found = {job.func: job for job in scheduler.get_jobs()}
    assert found.keys() == {jobs.reconcile, dispatch_jobs.expire_offers,
                            dispatch_jobs.refresh_statuses, notification_jobs.create_reminders,
                            notification_jobs.send_due}
    assert found[notification_jobs.send_due].interval == notification_jobs.SEND_INTERVAL
    assert found[jobs.reconcile].interval == jobs.RECONCILE_INTERVAL
    assert found[dispatch_jobs.expire_offers].interval == dispatch_jobs.EXPIRE_INTERVAL
    for job in found.values():
        assert job.queue_name == queues.MAINTENANCE and queues.MAINTENANCE in queues.QUEUES


def test_the_in_process_reconciler_ends_a_dead_run_by_itself(engine: Engine,
                                                             roster_id: int) -> None:
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        # Already a second attempt: the reconciler fails it instead of solving again.
        run = SolveRun(roster_id=roster_id, requested_by=ACTOR, status="running",
                       started_at=long_ago, heartbeat_at=long_ago, progress={"attempt": 2})
        session.add(run)
    stop = threading.Event()
    clock = jobs.start_local_reconciler(interval=0.05, stop=stop)
    try:
        assert clock is not None and clock.is_alive()
        assert jobs.start_local_reconciler(interval=0.05) is None  # one clock per process
        deadline = time.monotonic() + 20
        while _run(engine, run.id).status == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        if clock is not None:
            clock.join(5)
    ended = _run(engine, run.id)
    assert ended.status == "failed" and ended.error and "worker gone" in ended.error
    assert clock is not None and not clock.is_alive()


def test_a_job_failing_alike_every_pass_is_logged_once_until_it_works_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """A database that is gone fails every pass the same way: one traceback, not one a pass."""
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []
    works = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) <= 20 or len(calls) > 30:  # fails, works, then fails again
            raise OperationalError("SELECT ... FROM solve_runs", {"now": len(calls)},
                                   Exception("no such table: solve_runs"))
        works.set()

    caplog.set_level("WARNING", logger="scheduler.jobs")
    clock = jobs.start_local_clock([(job, 0.001)])
    try:
        assert clock is not None
        deadline = time.monotonic() + 20
        while len(calls) < 40:
            assert time.monotonic() < deadline, "the clock does not tick"
            time.sleep(0.01)
    finally:
        if clock is not None:
            clock.stop()
    assert clock is not None and not clock.is_alive() and works.is_set()
    logged = [(r.levelname, r.getMessage().split(" (")[0], r.exc_info is not None)
              for r in caplog.records if r.name == "scheduler.jobs"]
    assert logged == [("ERROR", "periodic job job failed", True),
                      ("WARNING", "periodic job job works again", False),
                      ("ERROR", "periodic job job failed", True)]


def test_reconciler_ends_a_queued_run_whose_worker_died_after_taking_the_job(
        engine: Engine, roster_id: int, redis_conn: Redis, queue_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """RQ calls the job 'started' until its registry cleanup; the run never started."""
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    long_ago = utcnow() - dt.timedelta(hours=1)
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=1, queue=queue_name)
        run.created_at = long_ago
        session.commit()
        run_id, job_id = run.id, run.job_id or ""
    job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
    job.set_status(JobStatus.STARTED)
    job.started_at = utcnow() - dt.timedelta(seconds=30)  # taken recently: may still start
    job.save()
    with sessionmaker_for(engine)() as session:
        assert jobs.reconcile_stale_runs(session) == []
    job.started_at = long_ago  # taken an hour ago and the run never started: lost
    job.save()
    with sessionmaker_for(engine)() as session:
        assert [r.id for r in jobs.reconcile_stale_runs(session)] == [run_id]
        session.commit()
    assert _run(engine, run_id).status == "failed"
