"""Recurring jobs for `rq cron` (the Procfile's ``clock`` process)::

    rq cron -c scheduler.queues --serializer json scheduler.cron

Run exactly one clock per deployment; it only enqueues, workers do the work. Without
``REDIS_URL`` the web process runs the same job itself
(`scheduler.jobs.start_local_reconciler`).
"""

from __future__ import annotations

from rq import cron

from scheduler import jobs, queues

cron.register(jobs.reconcile, queue_name=queues.MAINTENANCE,
              interval=jobs.RECONCILE_INTERVAL, job_timeout=jobs.RECONCILE_INTERVAL * 5,
              ttl=jobs.RECONCILE_INTERVAL * 2)
