"""Notification jobs: make the due reminders, send the due notices, send one notice.

`create_reminders` and `send_due` are periodic (`scheduler.jobs.PERIODIC`: `rq cron` with
``REDIS_URL``, else the web process's clock thread). With ``REDIS_URL``, `send_due` puts
each due notice on the maintenance queue as its own `send_notification(id)` job (one RQ
retry for an infrastructure error; the gateway's failures are retried by the row's own
back-off); without it, the clock thread sends them itself. A notice enqueued twice (the
next pass came before a worker did) is still sent once: the job claims the row first.
"""

from __future__ import annotations

import logging
from typing import Any

from scheduler import queues
from scheduler.db import get_engine, session_scope, sessionmaker_for, utcnow
from scheduler.notifications import services

log = logging.getLogger(__name__)

#: Seconds between two passes of `send_due`.
SEND_INTERVAL = 30
#: Seconds between two passes of `create_reminders`.
REMIND_INTERVAL = 60
#: Notices sent (or enqueued) per pass of `send_due`.
BATCH = 200


def create_reminders() -> dict[str, int]:
    """Add a reminder for each published shift starting within ``BASTION_REMIND_BEFORE``."""
    lead = services.remind_before()
    with session_scope() as session:
        created = services.create_reminders(session, utcnow(), lead)
    if created:
        log.info("notifications: %d shift reminder(s) created", len(created))
    return {"created": len(created)}


def send_notification(notification_id: int) -> dict[str, Any]:
    """Send notice `notification_id` now if it is due and nobody else is sending it."""
    sender = services.load_sender()
    with sessionmaker_for(get_engine())() as session:
        outcome = services.deliver(session, notification_id, sender)
    return {"notification": notification_id, "status": outcome}


def send_due() -> dict[str, int]:
    """Put back dead workers' claims, then send (or enqueue) every due notice."""
    with session_scope() as session:
        requeued = len(services.sweep(session, utcnow()))
    with sessionmaker_for(get_engine())() as session:
        ids = services.due(session, utcnow(), BATCH)
    summary = {"requeued": requeued, "due": len(ids), "sent": 0}
    if queues.redis_url() is None:
        sender = services.load_sender()
        with sessionmaker_for(get_engine())() as session:
            for notification_id in ids:
                if services.deliver(session, notification_id, sender) == "sent":
                    summary["sent"] += 1
    else:
        for notification_id in ids:
            try:
                queues.enqueue("scheduler.notifications.jobs.send_notification",
                               notification_id, queue=queues.MAINTENANCE, time_limit=60,
                               meta={"notification": notification_id}, retries=1,
                               description=f"send notification {notification_id}")
            except queues.QueueError as exc:  # the rows stay pending for the next pass
                log.warning("notifications: cannot enqueue: %s", exc)
                break
    if requeued or ids:
        log.info("notifications: %(requeued)d requeued, %(due)d due, %(sent)d sent", summary)
    return summary
