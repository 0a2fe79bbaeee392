"""Background jobs. Each takes IDs only and reads everything else from the database.

`solve_roster(run_id)` runs under an RQ worker or in a thread of the web process
(`scheduler.queues`); the `SolveRun` row is the source of truth either way. The run's
draft version is written in one transaction at the end, together with finishing the run,
so a worker killed mid-solve leaves nothing half-written; `reconcile_stale_runs` then
ends the run whose heartbeat stopped.

A roster too large for one job (several sub-problems of `solver.parts.split`) is solved
as one child run per sub-problem: `solve_roster` stores each sub-problem on its child row
and enqueues `solve_part(child_id)` for each (with one RQ retry); each child stores its
solution on its row; the last one to finish enqueues `merge_parts(parent_id)`, which merges,
validates the whole roster and stores the draft in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rq import get_current_job
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, aliased

import solver
from scheduler import audit, queues
from scheduler.db import get_engine, session_scope, sessionmaker_for, utcnow
from scheduler.models import ACTIVE_RUN_STATUSES, SolveRun
from scheduler.problems import roster_problem, store_solution
from solver.parts import CUT_PAIRS, GROUP_PAIRS, PART_GAP, merge, split
from solver.problem import parse_problem

log = logging.getLogger(__name__)

#: Progress is written to the row and to `job.meta` at most this often (seconds).
PROGRESS_INTERVAL = 1.0
#: A running job touches `heartbeat_at` at least this often (seconds), improving or not.
HEARTBEAT_INTERVAL = 5.0
#: A running run without a heartbeat for this long is taken for dead by the reconciler.
STALE_AFTER = dt.timedelta(seconds=60)
#: Solver threads per job.
WORKERS = 2
#: The actor of audit rows the system writes on its own.
SYSTEM = "system"
#: Eligible pairs per child run of a split solve; a roster within one is solved whole.
SPLIT_PAIRS = GROUP_PAIRS
#: A connected part with more eligible pairs than this is cut into pieces solved apart.
SPLIT_CUT_PAIRS = CUT_PAIRS
#: A child run whose job fails is tried this many more times by RQ, alone.
PART_RETRIES = 1
#: Seconds the merge of a split run may take: rebuilding, checking and storing a city's
#: roster takes minutes.
MERGE_TIME = 1800.0


class RunGone(RuntimeError):
    """The run is no longer this job's to finish (reconciled, retried or deleted)."""


def solve_roster(run_id: int) -> dict[str, Any]:
    """Solve the roster of SolveRun `run_id` and store the result as a new draft version.

    Marks the run running, solves with the run's time limit and seed while writing
    progress (objective, bound, elapsed) to the run and to `job.meta`, then stores the
    draft and finishes the run in one transaction. Any error marks the run failed with
    its message and is raised again (so RQ records the job as failed too). Returns a
    JSON-able summary (the RQ job result).
    """
    job = get_current_job()
    job_id = job.id if job is not None else None
    try:
        with session_scope() as session:
            run = _lock_run(session, run_id)
            if run.status != "queued":
                # Finished, failed or taken by another worker: nothing for this job to do.
                log.warning("solve run %s is %s; job %s skips it", run_id, run.status, job_id)
                return {"run": run_id, "status": run.status, "skipped": True}
            now = utcnow()
            run.status, run.started_at, run.heartbeat_at = "running", now, now
            run.error = None
            if job_id is not None:
                run.job_id = job_id
            attempt = int((run.progress or {}).get("attempt", 1))
            run.progress = {"attempt": attempt}
            audit.record(session, SYSTEM, "solve_run.start", "solve_run", run.id,
                         before={"status": "queued"},
                         after={"status": "running", "job": run.job_id, "attempt": attempt})
            roster_id, time_limit, seed = run.roster_id, run.time_limit, run.seed
    except LookupError:
        log.warning("solve run %s does not exist; job %s skips it", run_id, job_id)
        return {"run": run_id, "status": None, "skipped": True}

    reporter = _Reporter(run_id, attempt, job)
    try:
        with session_scope() as session:
            problem = roster_problem(session, roster_id)
        subs = split(problem, group_pairs=SPLIT_PAIRS, cut_pairs=SPLIT_CUT_PAIRS)
        if len(subs) > 1:
            return _fan_out(run_id, attempt, subs, job.origin if job else queues.SOLVE)
        reporter.start()
        try:
            solution = solver.solve(problem, time_limit=time_limit, workers=WORKERS, seed=seed,
                                    progress=reporter.progress)
        finally:
            reporter.stop()
        coverage = _coverage(problem, solution)
        with session_scope() as session:
            run = _lock_run(session, run_id)
            if run.status != "running" or (run.progress or {}).get("attempt", 1) != attempt:
                raise RunGone(f"solve run {run_id} is {run.status}; its result is dropped")
            version = store_solution(session, roster_id, solution, actor=run.requested_by,
                                     solve_run_id=run.id, note=f"solve run {run.id}")
            now = utcnow()
            run.status, run.finished_at, run.heartbeat_at = "finished", now, now
            run.solver_status = solution.get("status")
            run.objective, run.bound = solution.get("objective"), solution.get("bound")
            run.elapsed = solution.get("seconds")
            run.coverage = coverage
            run.progress = {**reporter.snapshot(), "attempt": attempt,
                            "version": version.number,
                            "assignments": len(solution.get("assignments", []))}
            audit.record(session, SYSTEM, "solve_run.finish", "solve_run", run.id,
                         before={"status": "running"},
                         after={"status": "finished", "version": version.number,
                                "objective": run.objective, "bound": run.bound,
                                "coverage": coverage, "solver_status": run.solver_status})
            version_number = version.number
    except RunGone:
        log.warning("solve run %s was ended elsewhere; dropping its result", run_id)
        raise
    except BaseException as exc:  # noqa: B036 - also SystemExit/timeouts: never stay running
        _fail(run_id, attempt, exc)
        raise
    if job is not None:
        job.meta.update(status="finished", version=version_number)
        job.save_meta()
    return {"run": run_id, "status": "finished", "version": version_number,
            "objective": solution.get("objective"), "bound": solution.get("bound")}


def _fan_out(run_id: int, attempt: int, subs: list[Any], queue: str) -> dict[str, Any]:
    """Create one child run per sub-problem, in one transaction, then enqueue them.

    Each child gets a share of the parent's time limit by size (the largest gets all of
    it), so the roster takes about the time limit with as many workers as children.
    """
    with session_scope() as session:
        run = _lock_run(session, run_id)
        if run.status != "running" or (run.progress or {}).get("attempt", 1) != attempt:
            raise RunGone(f"solve run {run_id} is {run.status}; not splitting it")
        largest = max(sub.size for sub in subs)
        children = [SolveRun(roster_id=run.roster_id, parent_id=run.id, part=sub.index,
                             problem=sub.doc, status="queued", requested_by=run.requested_by,
                             time_limit=max(1.0, run.time_limit * sub.size / largest),
                             seed=run.seed + sub.index, created_at=utcnow())
                     for sub in subs]
        session.add_all(children)
        run.heartbeat_at = utcnow()
        run.progress = {"attempt": attempt, "parts": len(subs), "done": 0}
        session.flush()
        audit.record(session, SYSTEM, "solve_run.split", "solve_run", run.id,
                     after={"parts": len(subs), "children": [c.id for c in children]})
        child_ids = [c.id for c in children]
    with sessionmaker_for(get_engine())() as session:
        for child_id in child_ids:
            child = session.get(SolveRun, child_id)
            assert child is not None
            try:
                enqueue_run(session, child, queue=queue)
            except queues.QueueError as exc:
                # The queue refused one part (marked failed): fail the parent and the
                # parts not yet started, enqueued or not, so none waits for a retry and
                # none is solved for nothing.
                with session_scope() as failing:
                    _fail_parent(failing, _lock_run(failing, child_id),
                                 f"QueueError: {exc}"[:4000])
                raise
    return {"run": run_id, "status": "split", "parts": len(child_ids)}


def solve_part(run_id: int) -> dict[str, Any]:
    """Solve the sub-problem stored on child run `run_id` and keep its solution on the row.

    The child that finishes last enqueues `merge_parts` for the parent.  A failure puts the
    child back in the queue while RQ will try it again, and otherwise fails it and the
    parent: a roster is never drafted from some of its parts.
    """
    job = get_current_job()
    with session_scope() as session:
        run = _lock_run(session, run_id)
        if run.status != "queued" or run.parent_id is None:
            return {"run": run_id, "status": run.status, "skipped": True}
        now = utcnow()
        run.status, run.started_at, run.heartbeat_at, run.error = "running", now, now, None
        if job is not None:
            run.job_id = job.id
        attempt = int((run.progress or {}).get("attempt", 1))
        run.progress = {"attempt": attempt}
        parent_id, problem = run.parent_id, run.problem
        time_limit, seed = run.time_limit, run.seed
    reporter = _Reporter(run_id, attempt, job)
    try:
        reporter.start()
        try:
            solution = solver.solve(problem or {}, time_limit=time_limit, workers=WORKERS,
                                    seed=seed, progress=reporter.progress,
                                    gap_limit=PART_GAP)
        finally:
            reporter.stop()
        with session_scope() as session:
            parent = _lock_run(session, parent_id)  # parent first: children finish in turn
            run = _lock_run(session, run_id)
            if run.status != "running" or (run.progress or {}).get("attempt", 1) != attempt:
                raise RunGone(f"solve run {run_id} is {run.status}; its result is dropped")
            now = utcnow()
            run.status, run.finished_at, run.heartbeat_at = "finished", now, now
            run.solution, run.solver_status = solution, solution.get("status")
            run.objective, run.bound = solution.get("objective"), solution.get("bound")
            run.elapsed = solution.get("seconds")
            run.progress = {**reporter.snapshot(), "attempt": attempt}
            session.flush()
            last = _count_parts(session, parent) if parent.status == "running" else False
            if last:  # named first, as in `enqueue_run`: the reconciler asks after it
                parent.job_id = merge_job = queues.new_job_id()
    except RunGone:
        raise
    except BaseException as exc:  # noqa: B036 - never stay running
        _part_failed(run_id, attempt, exc, job)
        raise
    if last:
        _enqueue_merge(parent_id, job.origin if job else queues.SOLVE, merge_job)
    return {"run": run_id, "status": "finished", "objective": solution.get("objective")}


def _enqueue_merge(parent_id: int, queue: str, job_id: str) -> None:
    """Enqueue `merge_parts(parent_id)` as `job_id` (already stored as the parent's job)."""
    queues.enqueue("scheduler.jobs.merge_parts", parent_id, queue=queue, time_limit=MERGE_TIME,
                   meta={"run": parent_id}, description=f"merge solve run {parent_id}",
                   job_id=job_id)


def _count_parts(session: Session, parent: SolveRun) -> bool:
    """Write the whole's progress on the parent; True when every part is finished."""
    children = session.scalars(select(SolveRun).where(SolveRun.parent_id == parent.id)).all()
    done = [c for c in children if c.status == "finished"]
    parent.heartbeat_at = utcnow()
    parent.progress = {**(parent.progress or {}), "parts": len(children), "done": len(done),
                       "objective": sum(c.objective or 0 for c in done),
                       "bound": sum(c.bound or 0 for c in done)}
    return len(done) == len(children)


def _part_failed(run_id: int, attempt: int, exc: BaseException, job: Any) -> None:
    """Queue the child again if RQ will retry it, else fail it and its parent."""
    message = f"{type(exc).__name__}: {exc}"[:4000]
    retry = job is not None and job.retries_left is not None and job.retries_left > 0
    try:
        with session_scope() as session:
            run = _lock_run(session, run_id)
            if run.status != "running" or (run.progress or {}).get("attempt", 1) != attempt:
                return
            if retry:
                run.status, run.error = "queued", message
                run.progress = {"attempt": attempt + 1}
                audit.record(session, SYSTEM, "solve_run.retry", "solve_run", run.id,
                             before={"status": "running"},
                             after={"status": "queued", "attempt": attempt + 1}, reason=message)
                return
            run.status, run.error, run.finished_at = "failed", message, utcnow()
            audit.record(session, SYSTEM, "solve_run.fail", "solve_run", run.id,
                         before={"status": "running"}, after={"status": "failed",
                                                              "error": message})
            _fail_parent(session, run, message)
    except Exception:  # the reconciler will end it; do not hide the original error
        log.exception("could not record the failure of solve run %s", run_id)


def _fail_parent(session: Session, child: SolveRun, message: str) -> None:
    """A part failed for good: the parent fails, and no draft is made from the rest."""
    if child.parent_id is None:
        return
    parent = _lock_run(session, child.parent_id)
    if parent.status not in ACTIVE_RUN_STATUSES:
        return
    parent.status, parent.finished_at = "failed", utcnow()
    parent.error = f"part {child.part} (run {child.id}) failed: {message}"[:4000]
    audit.record(session, SYSTEM, "solve_run.fail", "solve_run", parent.id,
                 before={"status": "running"}, after={"status": "failed",
                                                      "error": parent.error})
    # Parts not started yet would be wasted work: their jobs will skip them.
    for sibling in session.scalars(select(SolveRun).where(
            SolveRun.parent_id == parent.id, SolveRun.status == "queued")):
        sibling.status, sibling.finished_at = "failed", parent.finished_at
        sibling.error = f"not solved: {parent.error}"[:4000]


def merge_parts(run_id: int) -> dict[str, Any]:
    """Merge the children's solutions of run `run_id`, validate the whole, store the draft.

    The roster is rebuilt from the database and the merged roster checked against it as a
    whole (`solver.parts.merge`, then `store_solution`); the draft and the end of the run
    are one transaction.
    """
    try:
        with session_scope() as session:
            run = _lock_run(session, run_id)
            if run.status != "running":
                return {"run": run_id, "status": run.status, "skipped": True}
            attempt = int((run.progress or {}).get("attempt", 1))
            children = session.scalars(select(SolveRun).where(SolveRun.parent_id == run_id)
                                       .order_by(SolveRun.part)).all()
            if any(c.status != "finished" or c.solution is None for c in children):
                return {"run": run_id, "status": run.status, "skipped": True}
            doc = roster_problem(session, run.roster_id)
            seconds = (utcnow() - run.started_at).total_seconds() if run.started_at else 0.0
            solution = merge(parse_problem(doc), [c.solution or {} for c in children], seconds,
                             [c.problem or {} for c in children])
            version = store_solution(session, run.roster_id, solution, actor=run.requested_by,
                                     solve_run_id=run.id, note=f"solve run {run.id}")
            now = utcnow()
            run.status, run.finished_at, run.heartbeat_at = "finished", now, now
            run.error = None  # e.g. a merge first lost while Redis was down
            run.solver_status = solution.get("status")
            run.objective, run.bound = solution.get("objective"), solution.get("bound")
            run.elapsed, run.coverage = solution.get("seconds"), _coverage(doc, solution)
            run.progress = {**(run.progress or {}), "attempt": attempt,
                            "version": version.number}
            audit.record(session, SYSTEM, "solve_run.finish", "solve_run", run.id,
                         before={"status": "running"},
                         after={"status": "finished", "version": version.number,
                                "objective": run.objective, "bound": run.bound,
                                "parts": len(children), "solver_status": run.solver_status})
            number = version.number
    except BaseException as exc:  # noqa: B036 - never stay running
        _fail(run_id, attempt if "attempt" in locals() else 1, exc)
        raise
    return {"run": run_id, "status": "finished", "version": number}


def _lock_run(session: Session, run_id: int) -> SolveRun:
    run = session.scalars(select(SolveRun).where(SolveRun.id == run_id)
                          .with_for_update()).one_or_none()
    if run is None:
        raise LookupError(f"no solve run {run_id}")
    return run


def _fail(run_id: int, attempt: int, exc: BaseException) -> None:
    """Mark the run failed with `exc` if it is still this attempt's and active."""
    message = f"{type(exc).__name__}: {exc}"[:4000]
    try:
        with session_scope() as session:
            run = _lock_run(session, run_id)
            if run.status not in ACTIVE_RUN_STATUSES or (
                    run.progress or {}).get("attempt", 1) != attempt:
                return
            before = run.status
            run.status, run.error, run.finished_at = "failed", message, utcnow()
            audit.record(session, SYSTEM, "solve_run.fail", "solve_run", run.id,
                         before={"status": before}, after={"status": "failed",
                                                           "error": message})
    except Exception:  # the reconciler will end it; do not hide the original error
        log.exception("could not mark solve run %s failed", run_id)


def _coverage(problem: dict[str, Any], solution: dict[str, Any]) -> float | None:
    """The share of required head counts that the roster fills (1.0: none missing)."""
    required = 0
    for d in problem.get("demand") or []:
        dates = d.get("dates")
        required += int(d.get("min") or 0) * (problem["days"] if dates is None else len(dates))
    if required == 0:
        return None
    missing = sum(int(u.get("missing") or 0) for u in solution.get("unmet") or []
                  if u.get("skill") is None)
    return max(0.0, 1.0 - missing / required)


class _Reporter:
    """Writes the solver's progress and the heartbeat from a thread of its own.

    The solver calls `progress` from its threads on every improvement; that only keeps
    the latest figures. The thread writes them at most every `PROGRESS_INTERVAL` and
    touches the heartbeat at least every `HEARTBEAT_INTERVAL`, so a long solve without
    improvements still looks alive and a fast one does not flood the database.
    """

    def __init__(self, run_id: int, attempt: int, job: Any) -> None:
        self.run_id, self.attempt, self.job = run_id, attempt, job
        self.lock = threading.Lock()
        self.latest: dict[str, Any] = {}
        self.changed = False
        self.updates = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"solve-run-{run_id}-progress",
                                       daemon=True)

    def progress(self, p: Any) -> None:
        with self.lock:
            self.latest = {"objective": p.objective, "bound": p.bound,
                           "elapsed": round(p.seconds, 3)}
            self.changed = True
            self.updates += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self._figures()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(10)
        self._write(force=False)  # the last figures, if the loop had not written them

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while not self.done.wait(PROGRESS_INTERVAL):
            beat = time.monotonic() - last_beat >= HEARTBEAT_INTERVAL
            if self._write(force=beat):
                last_beat = time.monotonic()

    def _write(self, *, force: bool) -> bool:
        with self.lock:
            if not (self.changed or force):
                return False
            figures, self.changed = self._figures(), False
        try:
            if self.job is not None and figures:
                self.job.meta.update(progress=figures)
                self.job.save_meta()
            with session_scope() as session:
                run = session.get(SolveRun, self.run_id)
                if run is None or run.status != "running" or (
                        run.progress or {}).get("attempt", 1) != self.attempt:
                    return True  # ended or retried meanwhile: not ours to touch
                run.heartbeat_at = utcnow()
                if figures.get("objective") is not None:
                    run.objective, run.bound = figures["objective"], figures["bound"]
                    run.elapsed = figures["elapsed"]
                    run.progress = {**figures, "attempt": self.attempt}
        except Exception:  # progress is best effort; the final write is what counts
            log.exception("could not record progress of solve run %s", self.run_id)
        return True

    def _figures(self) -> dict[str, Any]:
        return {**self.latest, "updates": self.updates} if self.latest else {}


def reconcile_stale_runs(session: Session, max_age: dt.timedelta = STALE_AFTER, *,
                         retry: bool = False, now: dt.datetime | None = None,
                         roster_id: int | None = None,
                         queue: str = queues.SOLVE) -> list[SolveRun]:
    """End the runs whose worker is gone; return them. Never leaves a run stuck running.

    A running run whose heartbeat (or start) is older than `max_age` is taken for dead:
    its worker was killed, lost its database or Redis. A queued run older than `max_age`
    whose job the queue no longer knows was lost before it started. Such a run is marked
    failed, or with `retry` (once per run) queued again as a second attempt and
    re-enqueued on `queue` after the commit. A part of a split run is treated alike (its
    parent waits while a part is active, and fails with a part that fails); a split run
    whose parts are all finished lost its merge, which `retry` enqueues again. A retry the
    queue cannot take (Redis down) does not count: the run waits, named by a job the queue
    does not know, and a later pass that reaches Redis retries it (`_retry_later`). Works
    in the caller's transaction and leaves the commit to the caller, except with `retry`
    when something is re-enqueued: then it commits itself first (pass a plain session, not
    one inside ``session.begin()``). Run it periodically (and `generate` runs it for its
    roster); `roster_id` limits it to one roster.
    """
    now = now or utcnow()
    cutoff = now - max_age
    # A split run is alive while its parts are: they carry the heartbeats.
    part = aliased(SolveRun)
    parts_alive = exists().where(part.parent_id == SolveRun.id,
                                 part.status.in_(ACTIVE_RUN_STATUSES))
    query = select(SolveRun).where(
        SolveRun.status.in_(ACTIVE_RUN_STATUSES), ~parts_alive,
        or_(SolveRun.heartbeat_at < cutoff,
            SolveRun.heartbeat_at.is_(None) & (SolveRun.created_at < cutoff)))
    if roster_id is not None:
        query = query.where(SolveRun.roster_id == roster_id)
    candidates = session.scalars(
        query.order_by(SolveRun.id).with_for_update(skip_locked=True)).all()
    ended: list[SolveRun] = []
    requeue: list[SolveRun] = []
    remerge: list[SolveRun] = []
    for run in candidates:
        if run.status not in ACTIVE_RUN_STATUSES:
            continue  # ended above with its failed part (see `_fail_parent`)
        # A split run whose parts are all finished (a failed one fails it at once) waits
        # for its merge job, named by `job_id` like a queued run's solve job.
        split_run = run.status == "running" and session.scalar(
            select(exists().where(part.parent_id == run.id)))
        if (run.status == "queued" or split_run) and run.job_id and _job_pending(
                run.job_id, cutoff):
            continue  # still waiting its turn in a busy queue (or Redis cannot tell)
        before = {"status": run.status, "heartbeat_at": run.heartbeat_at, "job": run.job_id}
        attempt = int((run.progress or {}).get("attempt", 1))
        if retry and attempt < 2 and split_run:
            # The merge job was lost, or its worker died: merge again (solving again
            # would add a second set of parts).
            run.heartbeat_at, run.job_id, run.error = now, queues.new_job_id(), None
            run.progress = {**(run.progress or {}), "attempt": attempt + 1}
            audit.record(session, SYSTEM, "solve_run.retry", "solve_run", run.id,
                         before=before, after={"status": "running", "attempt": attempt + 1,
                                               "merge": run.job_id},
                         reason="merge lost (stale heartbeat)")
            remerge.append(run)
        elif retry and attempt < 2:
            # The heartbeat restarts the grace period before it counts as lost again; the
            # job is named before it is enqueued, as in `enqueue_run`.
            run.status, run.heartbeat_at, run.started_at = "queued", now, None
            run.job_id, run.error = queues.new_job_id(), None
            run.progress = {"attempt": attempt + 1}
            audit.record(session, SYSTEM, "solve_run.retry", "solve_run", run.id,
                         before=before, after={"status": "queued", "attempt": attempt + 1,
                                               "job": run.job_id},
                         reason="worker gone (stale heartbeat)")
            requeue.append(run)
        else:
            run.status, run.finished_at = "failed", now
            run.error = (f"worker gone: no heartbeat since {run.heartbeat_at or run.created_at}"
                         f" (attempt {attempt})")
            audit.record(session, SYSTEM, "solve_run.fail", "solve_run", run.id,
                         before=before, after={"status": "failed", "error": run.error},
                         reason="stale heartbeat")
            _fail_parent(session, run, run.error)
        ended.append(run)
    session.flush()
    if requeue or remerge:
        session.commit()
        for run in requeue + remerge:  # each on its own: one that fails stops no other
            try:
                if run in remerge:
                    _enqueue_merge(run.id, queue, run.job_id or "")
                else:
                    _enqueue_solve(run, queue)
            except queues.QueueError as exc:
                _retry_later(session, run, exc)
    return ended


#: How the error of a run waiting for the queue begins (`_retry_later`).
RETRY_LATER = "queue unreachable, retried later"


def summarise(ended: list[SolveRun]) -> dict[str, int]:
    """What a reconciler pass did with the runs `reconcile_stale_runs` returned: queued
    again (`retried`), their merge enqueued again (`remerged`), left waiting for a queue it
    could not reach (`deferred`), or `failed`."""
    summary = {"retried": 0, "remerged": 0, "deferred": 0, "failed": 0}
    for run in ended:
        if run.status == "failed":
            summary["failed"] += 1
        elif (run.error or "").startswith(RETRY_LATER):
            summary["deferred"] += 1
        elif run.status == "queued":
            summary["retried"] += 1
        else:
            summary["remerged"] += 1
    return summary


def _retry_later(session: Session, run: SolveRun, exc: queues.QueueError) -> None:
    """The queue could not take the retry of `run`: give the attempt back; commits.

    The run keeps the job id it was given, which the queue does not know: passes that
    cannot reach Redis leave it alone (`_job_pending`), and the first one that can, once
    the grace period is over, retries it with its retry still unspent.
    """
    job_id = run.job_id
    log.warning("reconciler: cannot enqueue the retry of solve run %s; a later pass "
                "retries it: %s", run.id, exc)
    fresh = session.get(SolveRun, run.id, with_for_update=True, populate_existing=True)
    if fresh is not None and fresh.job_id == job_id and fresh.status in ACTIVE_RUN_STATUSES:
        attempt = int((fresh.progress or {}).get("attempt", 2))
        fresh.progress = {**(fresh.progress or {}), "attempt": attempt - 1}
        fresh.error = f"{RETRY_LATER}: {exc}"[:4000]
        audit.record(session, SYSTEM, "solve_run.retry_later", "solve_run", fresh.id,
                     before={"attempt": attempt}, after={"status": fresh.status,
                                                         "attempt": attempt - 1},
                     reason=str(exc)[:4000])
    session.commit()


def _job_pending(job_id: str, cutoff: dt.datetime) -> bool:
    """Whether the job of a queued run may still start it.

    A job a worker took (``started``) before `cutoff` whose run is still queued lost its
    worker between taking the job and starting the run: RQ keeps calling such a job
    started until its own registry cleanup, minutes later.
    """
    state = queues.job_state(job_id)
    if state in ("queued", "deferred", "scheduled", queues.UNKNOWN):
        return True
    if state == "started":
        taken = queues.job_started_at(job_id)
        return taken is None or taken >= cutoff
    return False


def enqueue_run(session: Session, run: SolveRun, *, queue: str = queues.SOLVE) -> None:
    """Enqueue `solve_roster(run.id)` for a queued run; commits.

    The job id is chosen and committed with the run first, so the worker never races the
    web process to write it. If the queue cannot take the job the run is marked failed
    and `queues.QueueError` raised.
    """
    run.job_id = queues.new_job_id()
    session.commit()
    try:
        _enqueue_solve(run, queue)
    except queues.QueueError as exc:
        fresh = session.get(SolveRun, run.id, with_for_update=True, populate_existing=True)
        if fresh is not None and fresh.status == "queued":
            fresh.status, fresh.error, fresh.finished_at = "failed", str(exc), utcnow()
            audit.record(session, SYSTEM, "solve_run.fail", "solve_run", fresh.id,
                         before={"status": "queued"}, after={"status": "failed",
                                                             "error": str(exc)})
        session.commit()
        raise


def _enqueue_solve(run: SolveRun, queue: str) -> None:
    """Enqueue the job of a queued run as `run.job_id`: `solve_roster`, or `solve_part`."""
    if run.parent_id is None:
        queues.enqueue(
            "scheduler.jobs.solve_roster", run.id, queue=queue, time_limit=run.time_limit,
            meta={"run": run.id, "roster": run.roster_id}, job_id=run.job_id,
            description=f"solve roster {run.roster_id} (run {run.id})")
    else:
        queues.enqueue(
            "scheduler.jobs.solve_part", run.id, queue=queue, time_limit=run.time_limit,
            meta={"run": run.id, "parent": run.parent_id, "part": run.part},
            job_id=run.job_id, retries=PART_RETRIES,
            description=f"solve part {run.part} of run {run.parent_id}")


def reconcile() -> dict[str, int]:
    """The periodic job: end (or retry once) every run whose worker is gone.

    Run every `RECONCILE_INTERVAL` seconds by `rq cron scheduler.cron` (the Procfile's
    ``clock``), or by `start_local_reconciler` in a process that runs jobs in-process.
    """
    # A plain session: with something to retry, reconcile_stale_runs commits before it
    # enqueues.
    with sessionmaker_for(get_engine())() as session:
        ended = reconcile_stale_runs(session, retry=True)
        summary = summarise(ended)
        session.commit()
    if ended:
        log.warning("reconciler: %(retried)d run(s) retried, %(remerged)d merged again, "
                    "%(deferred)d waiting for the queue, %(failed)d failed", summary)
    return summary


#: Seconds between two reconciler passes.
RECONCILE_INTERVAL = 60


def _periodic() -> list[tuple[Callable[[], Any], int]]:
    from scheduler.dispatch import jobs as dispatch_jobs
    from scheduler.notifications import jobs as notification_jobs

    return [(reconcile, RECONCILE_INTERVAL),
            (dispatch_jobs.expire_offers, dispatch_jobs.EXPIRE_INTERVAL),
            (dispatch_jobs.refresh_statuses, dispatch_jobs.REFRESH_INTERVAL),
            (notification_jobs.create_reminders, notification_jobs.REMIND_INTERVAL),
            (notification_jobs.send_due, notification_jobs.SEND_INTERVAL)]


#: Every periodic job and its interval in seconds: `rq cron` (`scheduler.cron`) registers
#: these, and the in-process clock runs them when there is no Redis.
PERIODIC: list[tuple[Callable[[], Any], int]] = _periodic()

#: A periodic job that keeps failing the same way is logged again at most this often
#: (seconds); its first such failure is logged with the traceback.
FAILURE_LOG_INTERVAL = 3600.0


class LocalClock(threading.Thread):
    """The in-process clock: one daemon thread running periodic jobs in turn until `stop`.

    A job's failure never stops the clock. It is logged with its traceback when it is
    new; the same failure again (a database that is gone fails every pass alike) only
    every `FAILURE_LOG_INTERVAL`, and the job working again is logged too.
    """

    def __init__(self, schedule: Sequence[tuple[Callable[[], Any], float]],
                 stop: threading.Event | None = None) -> None:
        super().__init__(name="bastion-clock", daemon=True)
        self.schedule = [(func, float(interval)) for func, interval in schedule]
        self.stopping = stop or threading.Event()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the clock to stop and wait up to `timeout` for the job under way to end."""
        self.stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        due = [time.monotonic()] * len(self.schedule)
        failing: dict[int, tuple[str, float]] = {}  # job → (its failure, when logged)
        while not self.stopping.is_set():
            for i, (func, interval) in enumerate(self.schedule):
                if time.monotonic() < due[i] or self.stopping.is_set():
                    continue
                try:
                    func()
                except Exception as exc:  # a database outage must not kill the clock
                    failing[i] = _log_failure(func.__name__, exc, failing.get(i))
                else:
                    if failing.pop(i, None) is not None:
                        log.warning("periodic job %s works again", func.__name__)
                due[i] = time.monotonic() + interval
            self.stopping.wait(max(0.0, min(due) - time.monotonic()))


def _log_failure(name: str, exc: Exception,
                 before: tuple[str, float] | None) -> tuple[str, float]:
    """Log a periodic job's failure unless it is the one logged last, and recently."""
    cause = getattr(exc, "orig", None) or exc  # the driver's error: no SQL, no parameters
    lines = str(cause).strip().splitlines()
    what = f"{type(cause).__name__}: {lines[0] if lines else ''}"
    now = time.monotonic()
    if before is None or before[0] != what:
        log.exception("periodic job %s failed (the same failure again is logged only "
                      "every %d s)", name, FAILURE_LOG_INTERVAL)
        return what, now
    if now - before[1] >= FAILURE_LOG_INTERVAL:
        log.error("periodic job %s is still failing: %s", name, what)
        return what, now
    log.debug("periodic job %s failed again: %s", name, what)
    return before


_clock: LocalClock | None = None
_clock_lock = threading.Lock()


def start_local_clock(schedule: Sequence[tuple[Callable[[], Any], float]] | None = None,
                      stop: threading.Event | None = None) -> LocalClock | None:
    """Run each job of `schedule` (default `PERIODIC`) now and then every its interval.

    For the embedded default (no ``REDIS_URL``), where no `rq cron` process exists. One
    daemon thread runs every job in turn, so jobs never overlap each other; the first
    pass at start-up ends the solve runs a previous process left behind when it died.
    Starts one clock per process; returns it (`LocalClock.stop` or `stop` ends it), or
    None when one is running.
    """
    global _clock
    with _clock_lock:
        if _clock is not None and _clock.is_alive():
            return None
        _clock = LocalClock(schedule or PERIODIC, stop)
        _clock.start()
        return _clock


def stop_local_clock(timeout: float | None = 10.0) -> bool:
    """Stop this process's clock, if one runs; True if there was one."""
    with _clock_lock:
        clock = _clock
    if clock is None or not clock.is_alive():
        return False
    clock.stop(timeout)
    return True


def start_local_reconciler(interval: float = RECONCILE_INTERVAL,
                           stop: threading.Event | None = None) -> LocalClock | None:
    """The clock with the reconciler alone (see `start_local_clock`)."""
    return start_local_clock([(reconcile, interval)], stop)
