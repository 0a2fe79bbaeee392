"""Recurring jobs for `rq cron` (the Procfile's ``clock`` process)::

    rq cron -c scheduler.queues --serializer json scheduler.cron

Run exactly one clock per deployment; it only enqueues, workers do the work. Without
``REDIS_URL`` the web process runs the same jobs itself (`scheduler.jobs.start_local_clock`,
with the schedule `scheduler.jobs.PERIODIC`).
"""

from __future__ import annotations

from rq import cron

from scheduler import jobs, queues

for _func, _interval in jobs.PERIODIC:
    cron.register(_func, queue_name=queues.MAINTENANCE, interval=_interval,
                  job_timeout=_interval * 5, ttl=_interval * 2)
