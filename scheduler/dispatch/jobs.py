"""Periodic dispatch and absence jobs: each opens its own session and takes no arguments.

Registered for `rq cron` in `scheduler.cron` and run by the in-process clock
(`scheduler.jobs.start_local_clock`) when there is no ``REDIS_URL``. Each pass is one
transaction: committed when it ends, rolled back (nothing half-done) on an error.
"""

from __future__ import annotations

import logging

from scheduler.absences import services as absences
from scheduler.db import session_scope
from scheduler.dispatch import services as dispatch

log = logging.getLogger(__name__)

#: Seconds between two passes of `expire_offers` (the shortest offer lasts 5 minutes).
EXPIRE_INTERVAL = 30
#: Seconds between two passes of `refresh_statuses` (absences start on shift boundaries).
REFRESH_INTERVAL = 60


def expire_offers() -> dict[str, int]:
    """Expire the offers nobody answered in time and offer their places to the next people."""
    with session_scope() as session:
        expired = dispatch.expire_offers(session)
        summary = {"expired": len(expired), "tasks": len({o.task_id for o in expired})}
    if expired:
        log.info("dispatch: %(expired)d offer(s) of %(tasks)d task(s) expired", summary)
    return summary


def refresh_statuses() -> dict[str, int]:
    """Set volunteers absent while an absence covers now, and active again after it."""
    with session_scope() as session:
        changed = absences.refresh_statuses(session)
    summary = {"absent": sum(s == "absent" for s in changed.values()),
               "active": sum(s == "active" for s in changed.values())}
    if changed:
        log.info("absences: %(absent)d volunteer(s) now absent, %(active)d back", summary)
    return summary
