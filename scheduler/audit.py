"""The audit trail: one row per change, written in the same transaction as the change.

Services call `record()` with the session they change things in and never commit on
their own, so a change that fails leaves neither the change nor its audit row, and a
change that commits always has one.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from scheduler.db import utcnow
from scheduler.models import AuditEvent


def jsonable(value: Any) -> Any:
    """`value` with dates, times, sets and decimals turned into JSON values."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def record(session: Session, actor: str, action: str, entity: str,
           entity_id: int | str | None = None, before: Any = None, after: Any = None,
           reason: str | None = None) -> AuditEvent:
    """Add an audit event to `session`'s transaction and return it.

    `actor` is who acted (a user name, ``system`` or ``cli:<user>``); `action` a dotted
    verb (``roster.create``, ``roster_version.publish``); `entity` and `entity_id` name
    what changed; `before`/`after` are its state (JSON-able; dates become ISO strings).
    """
    if not actor:
        raise ValueError("an audit event needs an actor")
    event = AuditEvent(
        at=utcnow(), actor=actor, action=action, entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=jsonable(before), after=jsonable(after), reason=reason)
    session.add(event)
    return event
