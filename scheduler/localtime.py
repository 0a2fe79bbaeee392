"""Local (Asia/Shanghai) calendar time ↔ aware UTC instants, for shifts, absences and tasks.

Rosters speak in local dates and shift templates; tasks and offers in UTC instants. These
helpers are the one place that converts, so a night shift (00:00-08:00) and a shift that
ends at midnight (16:00-00:00, ending the next day) mean the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: The time zone every Bastion district uses.
TZ = ZoneInfo("Asia/Shanghai")


def at_local(day: dt.date, time: dt.time) -> dt.datetime:
    """The UTC instant of local `time` on `day`."""
    return dt.datetime.combine(day, time, tzinfo=TZ).astimezone(dt.UTC)


def local_date(instant: dt.datetime) -> dt.date:
    """The local calendar date of an aware instant."""
    return instant.astimezone(TZ).date()


def shift_interval(day: dt.date, start: dt.time, end: dt.time) -> tuple[dt.datetime, dt.datetime]:
    """[begin, end) in UTC of a shift of `day`; an `end` not after `start` is the next day."""
    last = day + dt.timedelta(days=1) if end <= start else day
    return at_local(day, start), at_local(last, end)


def day_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[begin, end) in UTC of the whole local `day`."""
    return at_local(day, dt.time()), at_local(day + dt.timedelta(days=1), dt.time())


def week_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[Monday 00:00, next Monday 00:00) in UTC of the local ISO week holding `day`."""
    monday = day - dt.timedelta(days=day.weekday())
    return day_interval(monday)[0], day_interval(monday + dt.timedelta(days=7))[0]


def overlaps(a: tuple[dt.datetime, dt.datetime], b: tuple[dt.datetime, dt.datetime]) -> bool:
    """Whether two half-open intervals share a moment."""
    return a[0] < b[1] and b[0] < a[1]
