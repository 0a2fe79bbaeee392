"""Background work: queue names, enqueue defaults and the connection, in one place.

With ``REDIS_URL`` set, jobs go to RQ on Redis (JSON serializer) and ``rq worker``
processes run them::

    rq worker -c scheduler.queues --serializer rq.serializers.JSONSerializer solve

Without it (the embedded default) a job runs in a background thread of the calling
process: the same function, the same database writes, so ``make run`` needs no Redis.
Jobs take IDs only; the database row they serve is the source of truth (Redis results
expire). Progress goes to ``job.meta`` under RQ and always to the database row.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

#: Solver runs ("generate roster").
SOLVE = "solve"
#: Housekeeping: the reconciler of stale solve runs (`scheduler.cron`).
MAINTENANCE = "maintenance"
#: Every queue, in the order a worker should serve them (`rq worker -c scheduler.queues`).
QUEUES = [MAINTENANCE, SOLVE]

#: Seconds a job may run beyond the solver's time limit: building the problem, storing
#: the roster, CP-SAT overshooting its limit.
JOB_TIMEOUT_MARGIN = 300
#: A result is kept this long in Redis (the database keeps it for good).
RESULT_TTL = 24 * 3600
#: A failed job (with its traceback) is kept for a week.
FAILURE_TTL = 7 * 24 * 3600
#: A job not started within this long is dropped from the queue (the reconciler then
#: fails its run).
QUEUED_TTL = 24 * 3600

#: `job_state` of a job when Redis cannot be asked.
UNKNOWN = "unknown"
#: Prefix of job ids of the in-process fallback.
LOCAL_PREFIX = "local-"

#: For `rq worker -c scheduler.queues` (read once, at import).
REDIS_URL = (os.environ.get("REDIS_URL") or "").strip() or None


class QueueError(RuntimeError):
    """A job could not be enqueued (Redis unreachable, …)."""


def redis_url(env: Mapping[str, str] | None = None) -> str | None:
    """``REDIS_URL``, or None: run jobs in-process."""
    source = os.environ if env is None else env
    return (source.get("REDIS_URL") or "").strip() or None


def get_redis(url: str | None = None) -> Redis:
    """A Redis connection to `url` (default ``REDIS_URL``)."""
    url = url or redis_url()
    if url is None:
        raise QueueError("REDIS_URL is not set")
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def get_queue(name: str = SOLVE, connection: Redis | None = None) -> Queue:
    """The RQ queue `name` with the JSON serializer."""
    return Queue(name, connection=connection or get_redis(), serializer=JSONSerializer)


def job_timeout(time_limit: float) -> int:
    """The RQ job timeout for a solve of `time_limit` seconds: always above it."""
    return int(time_limit) + 1 + JOB_TIMEOUT_MARGIN


@dataclass(frozen=True)
class Enqueued:
    """Where a job went: its id and whether it runs in this process."""

    job_id: str
    local: bool


def new_job_id() -> str:
    """A job id chosen before enqueueing, so the database row can name its job first."""
    return (LOCAL_PREFIX if redis_url() is None else "") + uuid.uuid4().hex


def enqueue(func: str, *args: int | str | float, queue: str = SOLVE, time_limit: float = 60.0,
            meta: dict[str, Any] | None = None, description: str | None = None,
            job_id: str | None = None, connection: Redis | None = None,
            retries: int = 0) -> Enqueued:
    """Run ``func(*args)`` (a dotted path; IDs and plain values only) in the background.

    Under RQ the job gets the defaults of this module: a timeout above `time_limit`,
    result and failure TTLs, `meta`, and `retries` more tries if it fails. Without
    ``REDIS_URL`` (and no `connection`) it runs once in a daemon thread of this process.
    """
    if connection is None and redis_url() is None:
        return Enqueued(_run_local(func, args, job_id), local=True)
    try:
        job = get_queue(queue, connection).enqueue_call(
            func, args=list(args), timeout=job_timeout(time_limit), result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL, ttl=QUEUED_TTL, meta=dict(meta or {}),
            description=description, job_id=job_id,
            retry=Retry(max=retries) if retries else None)
    except Exception as exc:  # redis.ConnectionError, timeouts, …
        raise QueueError(f"cannot enqueue {func}: {exc}") from exc
    return Enqueued(job.id, local=False)


def job_state(job_id: str, connection: Redis | None = None) -> str | None:
    """What the queue knows of a job: ``queued``, ``started``, ``finished``, ``failed``, …

    None when the queue has no such job (expired, lost with Redis, or a local job of a
    process that is gone); `UNKNOWN` when Redis cannot be asked.
    """
    if job_id.startswith(LOCAL_PREFIX):
        with _local_lock:
            thread = _local.get(job_id)
        return "started" if thread is not None and thread.is_alive() else None
    try:
        job = Job.fetch(job_id, connection=connection or get_redis(), serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    except Exception:  # Redis unreachable: the job may well be waiting there
        return UNKNOWN
    status = job.get_status(refresh=False)
    return None if status is None else str(status.value if isinstance(status, JobStatus)
                                           else status)



def job_started_at(job_id: str, connection: Redis | None = None) -> dt.datetime | None:
    """When a worker took the job off the queue (aware UTC), or None if unknown.

    In-process jobs give None: their thread starts the run at once.
    """
    if job_id.startswith(LOCAL_PREFIX):
        return None
    try:
        job = Job.fetch(job_id, connection=connection or get_redis(), serializer=JSONSerializer)
    except Exception:  # gone, or Redis unreachable
        return None
    started = job.started_at
    if started is None:
        return None
    return started if started.tzinfo else started.replace(tzinfo=dt.UTC)

# -- the in-process fallback --------------------------------------------------------------

_local: dict[str, threading.Thread] = {}
_local_lock = threading.Lock()


def _resolve(func: str) -> Callable[..., Any]:
    module, _, name = func.rpartition(".")
    target: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return target


def _run_local(func: str, args: tuple[Any, ...], job_id: str | None) -> str:
    target = _resolve(func)  # fail now, in the caller, if the name is wrong
    job_id = job_id or LOCAL_PREFIX + uuid.uuid4().hex

    def run() -> None:
        try:
            target(*args)
        except Exception:  # the job records its failure in the database itself
            log.exception("background job %s %s%r failed", job_id, func, args)
        finally:
            with _local_lock:
                _local.pop(job_id, None)

    thread = threading.Thread(target=run, name=f"bastion-{job_id}", daemon=True)
    with _local_lock:
        _local[job_id] = thread
    thread.start()
    return job_id


def wait_local(job_id: str | None = None, timeout: float | None = None) -> bool:
    """Wait for one in-process job (or all); True when none of them is still running."""
    with _local_lock:
        threads = list(_local.values()) if job_id is None else [
            t for k, t in _local.items() if k == job_id]
    for thread in threads:
        thread.join(timeout)
    return not any(t.is_alive() for t in threads)
