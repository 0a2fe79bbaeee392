"""A roster solved as parts: child runs, retries, merge (scheduler/jobs.py), real RQ.

A database of this module's own: `roster_problem` takes every active volunteer, so the
small split roster here must not share a database with the Yuhua roster of test_jobs.
The split threshold is lowered so that a three-part roster splits.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import Engine, select

from scheduler import jobs, rosters
from scheduler.db import REPO, session_scope, sessionmaker_for, utcnow
from scheduler.models import AuditEvent, RosterVersion, SolveRun
from scheduler.problems import load_problem
from solver.scenario import generate
from tests.fixtures.problems import four_parts

pytest_plugins = ["tests.fixtures.db"]

REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ACTOR = "协调员"


@pytest.fixture
def roster_id(engine: Engine, job_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """A new three-part roster; jobs use this database and split at 1 pair per part."""
    monkeypatch.setenv("DATABASE_URL", job_url)
    monkeypatch.setattr(jobs, "SPLIT_PAIRS", 1)
    with session_scope(engine) as session:
        return load_problem(session, four_parts(), actor=ACTOR).id


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    conn = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        conn.ping()
    except Exception as exc:
        conn.close()
        message = f"Redis unreachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    queue = Queue(f"bastion-test-{uuid.uuid4().hex[:10]}", connection=conn,
                  serializer=JSONSerializer)
    yield queue
    queue.delete(delete_jobs=True)
    conn.close()


def _generate_and_work(engine: Engine, roster_id: int, queue: Queue) -> SolveRun:
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=5, queue=queue.name)
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True)  # the parent, its parts (and retries), then the merge
    return run


def _runs(engine: Engine, roster_id: int) -> tuple[SolveRun, list[SolveRun]]:
    with session_scope(engine) as session:
        runs = list(session.scalars(select(SolveRun).where(SolveRun.roster_id == roster_id)
                                    .order_by(SolveRun.id)))
    (parent,) = [r for r in runs if r.parent_id is None]
    return parent, sorted((r for r in runs if r.parent_id == parent.id),
                          key=lambda r: r.part or 0)


def _versions(engine: Engine, roster_id: int) -> list[RosterVersion]:
    with session_scope(engine) as session:
        return list(session.scalars(select(RosterVersion).where(
            RosterVersion.roster_id == roster_id)))


def _actions(engine: Engine, run_id: int) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.entity == "solve_run", AuditEvent.entity_id == str(run_id))
            .order_by(AuditEvent.id)))


def test_a_split_roster_is_solved_as_parts_and_merged_into_one_draft(
        engine: Engine, roster_id: int, queue: Queue) -> None:
    _generate_and_work(engine, roster_id, queue)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished", parent.error
    assert [c.part for c in children] == [0, 1, 2]
    assert all(c.status == "finished" and c.solution and c.problem for c in children)
    assert parent.objective == sum(c.objective or 0 for c in children)
    assert parent.progress and parent.progress["done"] == parent.progress["parts"] == 3
    (version,) = _versions(engine, roster_id)
    assert version.state == "draft" and version.solve_run_id == parent.id
    assert version.objective == parent.objective
    # the three parts are independent, so each is optimal and so is the whole
    assert parent.solver_status == "OPTIMAL" and parent.bound == parent.objective
    assert _actions(engine, parent.id) == [
        "solve_run.create", "solve_run.start", "solve_run.split", "solve_run.finish"]
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None


def test_a_part_too_large_for_one_job_is_cut_and_the_whole_bounded_as_one(
        engine: Engine, roster_id: int, queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "SPLIT_CUT_PAIRS", 10)  # the 15-pair part is cut in two
    _generate_and_work(engine, roster_id, queue)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished", parent.error
    cut = [c for c in children if (c.problem or {}).get("cut")]
    assert len(cut) == 2 and len(children) == 4
    assert all(c.status == "finished" for c in children)
    assert parent.objective == sum(c.objective or 0 for c in children)
    # the pieces' own bounds are not the part's; the merge bounds the part as a whole
    assert parent.bound is not None and parent.bound <= parent.objective
    assert parent.solver_status in ("OPTIMAL", "FEASIBLE")
    assert parent.solver_status == "FEASIBLE" or parent.bound == parent.objective
    (version,) = _versions(engine, roster_id)
    assert version.state == "draft" and version.objective == parent.objective


def test_a_failed_part_is_retried_alone(engine: Engine, roster_id: int, queue: Queue,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = jobs.solver.solve
    calls: list[int] = []

    def fails_once(problem: Any, **kw: Any) -> dict[str, Any]:
        calls.append(kw["seed"])
        if len(calls) == 1:
            raise RuntimeError("worker hiccup")
        return real(problem, **kw)

    monkeypatch.setattr(jobs.solver, "solve", fails_once)
    _generate_and_work(engine, roster_id, queue)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished", parent.error
    assert len(calls) == 4 and calls.count(calls[0]) == 2  # the failed part, twice
    attempts = {c.part: (c.progress or {})["attempt"] for c in children}
    assert sorted(attempts.values()) == [1, 1, 2]
    retried = next(c for c in children if attempts[c.part] == 2)
    assert retried.status == "finished" and retried.error is None
    assert _actions(engine, retried.id) == ["solve_run.retry"]
    with session_scope(engine) as session:
        assert "worker hiccup" in (session.scalar(select(AuditEvent.reason).where(
            AuditEvent.action == "solve_run.retry",
            AuditEvent.entity_id == str(retried.id))) or "")
    assert len(_versions(engine, roster_id)) == 1


def test_a_part_failing_twice_fails_the_whole_without_a_draft(
        engine: Engine, roster_id: int, queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    real = jobs.solver.solve

    def part_zero_fails(problem: Any, **kw: Any) -> dict[str, Any]:
        if kw["seed"] == 0:  # part 0: seed = the run's seed (0) + its index
            raise RuntimeError("part zero is cursed")
        return real(problem, **kw)

    monkeypatch.setattr(jobs.solver, "solve", part_zero_fails)
    _generate_and_work(engine, roster_id, queue)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "failed" and "part 0" in (parent.error or "")
    assert "cursed" in (parent.error or "")
    assert children[0].status == "failed" and (children[0].progress or {})["attempt"] == 2
    assert _versions(engine, roster_id) == []
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None  # the roster is free again


def test_a_part_the_queue_refuses_fails_the_whole_and_no_part_waits(
        engine: Engine, roster_id: int, queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis goes away while a split run enqueues its parts: the one refused, the parent
    and the parts not started all end failed; the part already enqueued is skipped."""
    real = jobs.queues.enqueue
    parts: list[str] = []

    def second_part_refused(func: str, *args: Any, **kw: Any) -> Any:
        if func == "scheduler.jobs.solve_part":
            parts.append(func)
            if len(parts) == 2:
                raise jobs.queues.QueueError("cannot enqueue: connection refused")
        return real(func, *args, **kw)

    monkeypatch.setattr(jobs.queues, "enqueue", second_part_refused)
    _generate_and_work(engine, roster_id, queue)
    parent, children = _runs(engine, roster_id)
    assert len(parts) == 2 and len(children) == 3
    assert parent.status == "failed" and "connection refused" in (parent.error or "")
    assert [c.status for c in children] == ["failed"] * 3
    assert children[0].started_at is None  # its job ran and skipped it
    assert children[2].job_id is None  # never enqueued, and nothing left queued to retry
    assert _versions(engine, roster_id) == []
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None
        assert jobs.reconcile_stale_runs(
            session, now=utcnow() + jobs.STALE_AFTER * 2) == []


def test_a_parent_lives_while_its_parts_do_and_fails_with_a_dead_one(
        engine: Engine, roster_id: int) -> None:
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        parent = SolveRun(roster_id=roster_id, requested_by=ACTOR, status="running",
                          created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago)
        session.add(parent)
        session.flush()
        alive = SolveRun(roster_id=roster_id, requested_by=ACTOR, status="running",
                         parent_id=parent.id, part=0, heartbeat_at=utcnow())
        dead = SolveRun(roster_id=roster_id, requested_by=ACTOR, status="running",
                        parent_id=parent.id, part=1, created_at=long_ago,
                        heartbeat_at=long_ago)
        session.add_all([alive, dead])
    with session_scope(engine) as session:
        ended = jobs.reconcile_stale_runs(session)
        assert [r.id for r in ended] == [dead.id]  # not the parent: a part is still alive
    parent_now, children = _runs(engine, roster_id)
    assert children[1].status == "failed" and "worker gone" in (children[1].error or "")
    assert parent_now.status == "failed" and "part 1" in (parent_now.error or "")
    assert _versions(engine, roster_id) == []


def test_sigkill_of_a_part_leaves_no_draft_and_the_reconciler_fails_the_whole(
        engine: Engine, roster_id: int, job_url: str, queue: Queue) -> None:
    with sessionmaker_for(engine)() as session:
        run = rosters.generate(session, roster_id, ACTOR, time_limit=30, queue=queue.name)
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=1)  # only the parent: it splits and queues the parts
    parent, children = _runs(engine, roster_id)
    assert parent.status == "running" and [c.status for c in children] == ["queued"] * 3
    with session_scope(engine) as session:  # part 0 becomes a district: time to kill it
        first = session.get(SolveRun, children[0].id)
        assert first is not None
        first.problem, first.time_limit = generate(districts=1, seed=0, days=7), 30.0

    rq_cli = Path(sys.executable).with_name("rq")
    proc = subprocess.Popen(
        [str(rq_cli), "worker", "--burst", "--url", REDIS_URL,
         "--serializer", "rq.serializers.JSONSerializer", queue.name],
        cwd=REPO, env={**os.environ, "DATABASE_URL": job_url, "REDIS_URL": REDIS_URL},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _runs(engine, roster_id)[1][0].status != "running":
            assert time.monotonic() < deadline, "part 0 never started"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert _versions(engine, roster_id) == []

    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with session_scope(engine) as session:
        ended = jobs.reconcile_stale_runs(session, now=later)
        assert children[0].id in [r.id for r in ended]
    parent, children = _runs(engine, roster_id)
    assert children[0].status == "failed" and "worker gone" in (children[0].error or "")
    assert parent.status == "failed" and "part 0" in (parent.error or "")
    # the parts still queued are not solved for nothing
    assert [c.status for c in children[1:]] == ["failed", "failed"]
    assert "not solved" in (children[1].error or "")
    assert _versions(engine, roster_id) == []
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None
    assert run.id == parent.id


def _lose_job(queue: Queue, job_id: str | None) -> None:
    """Drop a queued job from Redis, as a restart of a Redis that keeps nothing does."""
    assert job_id is not None and job_id in queue.job_ids
    Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer).delete()
    assert job_id not in queue.job_ids


def _split_and_lose_part_1(engine: Engine, roster_id: int, queue: Queue) -> SolveRun:
    with sessionmaker_for(engine)() as session:
        rosters.generate(session, roster_id, ACTOR, time_limit=5, queue=queue.name)
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=1)  # only the parent: it splits and queues the parts
    parent, children = _runs(engine, roster_id)
    assert parent.status == "running" and [c.status for c in children] == ["queued"] * 3
    _lose_job(queue, children[1].job_id)
    with sessionmaker_for(engine)() as session:  # too early to call it lost
        assert jobs.reconcile_stale_runs(session, retry=True, queue=queue.name) == []
    return children[1]


def test_a_part_whose_job_vanished_from_redis_is_queued_again_and_the_whole_finishes(
        engine: Engine, roster_id: int, queue: Queue) -> None:
    lost = _split_and_lose_part_1(engine, roster_id, queue)
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue.name)
        assert [r.id for r in ended] == [lost.id]  # the parts still in the queue wait
        session.commit()
    parent, children = _runs(engine, roster_id)
    assert parent.status == "running"
    again = children[1]
    assert again.status == "queued" and (again.progress or {})["attempt"] == 2
    assert again.job_id != lost.job_id and again.job_id in queue.job_ids
    assert _actions(engine, lost.id) == ["solve_run.retry"]

    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True)  # the two parts left, the retried one, then the merge
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished", parent.error
    assert [c.status for c in children] == ["finished"] * 3
    (version,) = _versions(engine, roster_id)
    assert version.solve_run_id == parent.id


def test_a_part_whose_job_vanishes_twice_fails_the_whole_without_a_draft(
        engine: Engine, roster_id: int, queue: Queue) -> None:
    lost = _split_and_lose_part_1(engine, roster_id, queue)
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:
        jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue.name)
        session.commit()
    _lose_job(queue, _runs(engine, roster_id)[1][1].job_id)
    much_later = later + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=much_later,
                                          queue=queue.name)
        assert [r.id for r in ended] == [lost.id]
        session.commit()
    parent, children = _runs(engine, roster_id)
    assert children[1].status == "failed" and "attempt 2" in (children[1].error or "")
    assert parent.status == "failed" and "part 1" in (parent.error or "")
    assert [c.status for c in children] == ["failed"] * 3  # the others are not solved
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True)  # their jobs skip them
    assert [c.status for c in _runs(engine, roster_id)[1]] == ["failed"] * 3
    assert _versions(engine, roster_id) == []
    with session_scope(engine) as session:
        assert rosters.active_run(session, roster_id) is None


def test_a_lost_merge_is_run_again_from_the_parts_solutions(
        engine: Engine, roster_id: int, queue: Queue) -> None:
    with sessionmaker_for(engine)() as session:
        rosters.generate(session, roster_id, ACTOR, time_limit=5, queue=queue.name)
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=4)  # the parent and its three parts, not the merge
    parent, children = _runs(engine, roster_id)
    assert parent.status == "running" and [c.status for c in children] == ["finished"] * 3
    (merge_job,) = queue.job_ids
    assert parent.job_id == merge_job
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:  # a merge waiting in a busy queue waits
        assert jobs.reconcile_stale_runs(session, retry=True, now=later,
                                         queue=queue.name) == []
    _lose_job(queue, merge_job)
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue.name)
        assert [r.id for r in ended] == [parent.id]
        session.commit()
    worker.work(burst=True)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished", parent.error
    assert len(children) == 3  # the parts were not solved again
    (version,) = _versions(engine, roster_id)
    assert version.solve_run_id == parent.id and version.objective == parent.objective
    assert parent.objective == sum(c.objective or 0 for c in children)
    assert _actions(engine, parent.id) == [
        "solve_run.create", "solve_run.start", "solve_run.split", "solve_run.retry",
        "solve_run.finish"]


def test_a_merge_lost_while_redis_is_down_is_run_again_once_it_is_back(
        engine: Engine, roster_id: int, queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    with sessionmaker_for(engine)() as session:
        rosters.generate(session, roster_id, ACTOR, time_limit=5, queue=queue.name)
    worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=4)  # the parent and its three parts, not the merge
    parent, _ = _runs(engine, roster_id)
    _lose_job(queue, parent.job_id)
    job_pending = jobs._job_pending

    def then_redis_goes_down(job_id: str, cutoff: dt.datetime) -> bool:
        pending = job_pending(job_id, cutoff)  # asked while Redis is up: the job is gone
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
        return pending

    monkeypatch.setattr(jobs, "_job_pending", then_redis_goes_down)
    later = utcnow() + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=later, queue=queue.name)
        assert [r.id for r in ended] == [parent.id]
        assert jobs.summarise(ended)["deferred"] == 1
    monkeypatch.setattr(jobs, "_job_pending", job_pending)
    waiting, _ = _runs(engine, roster_id)
    assert waiting.status == "running" and (waiting.progress or {})["attempt"] == 1
    assert "queue unreachable" in (waiting.error or "")
    much_later = later + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    with sessionmaker_for(engine)() as session:  # still down: the run waits, not failed
        assert jobs.reconcile_stale_runs(session, retry=True, now=much_later,
                                         queue=queue.name) == []

    monkeypatch.setenv("REDIS_URL", REDIS_URL)  # back
    with sessionmaker_for(engine)() as session:
        ended = jobs.reconcile_stale_runs(session, retry=True, now=much_later,
                                          queue=queue.name)
        assert [r.id for r in ended] == [parent.id]
        assert jobs.summarise(ended) == {"retried": 0, "remerged": 1, "deferred": 0,
                                         "failed": 0}
    retried, _ = _runs(engine, roster_id)
    assert retried.status == "running" and (retried.progress or {})["attempt"] == 2
    assert queue.job_ids == [retried.job_id]
    worker.work(burst=True)
    parent, children = _runs(engine, roster_id)
    assert parent.status == "finished" and parent.error is None
    assert len(children) == 3 and len(_versions(engine, roster_id)) == 1
    assert _actions(engine, parent.id) == [
        "solve_run.create", "solve_run.start", "solve_run.split", "solve_run.retry",
        "solve_run.retry_later", "solve_run.retry", "solve_run.finish"]
