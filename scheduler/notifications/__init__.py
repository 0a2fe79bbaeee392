"""Notifications (通知): task offers, published shift changes and shift reminders by SMS.

The `notifications` table is an outbox: producers add rows in the transaction of the
change they announce; a job claims and sends each row (see `services`).
"""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
