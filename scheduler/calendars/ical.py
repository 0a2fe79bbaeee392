"""iCalendar (RFC 5545) text, written by hand so that every byte is under our control.

Calendar clients poll a feed every hour; an unchanged roster must give identical bytes so
that a strong ETag answers most polls with 304. So nothing here depends on the clock or on
dict order: properties come out in a fixed order, and the caller passes every timestamp.
Lines end with CRLF and are folded at 75 octets, never inside a UTF-8 character.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The only time zone of the feeds; China has had no daylight saving time since 1991, so
#: one STANDARD component at +0800 describes every date a roster can have.
TZID = "Asia/Shanghai"
VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    f"TZID:{TZID}",
    f"X-LIC-LOCATION:{TZID}",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0800",
    "TZOFFSETTO:+0800",
    "TZNAME:CST",
    "DTSTART:19700101T000000",
    "END:STANDARD",
    "END:VTIMEZONE",
)
PRODID = "-//Bastion//Volunteer Roster//ZH-CN"
#: How often clients should poll (RFC 7986 REFRESH-INTERVAL and Outlook's X-PUBLISHED-TTL).
REFRESH = "PT1H"
FOLD_OCTETS = 75


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line: str) -> bytes:
    """`line` as UTF-8, folded into CRLF-ended lines of at most 75 octets.

    A continuation line starts with one space, which counts towards its 75 octets. Cuts
    fall between characters (never before a UTF-8 continuation byte), so every physical
    line is valid UTF-8 on its own.
    """
    data = line.encode("utf-8")
    if len(data) <= FOLD_OCTETS:
        return data + b"\r\n"
    parts = []
    start, limit = 0, FOLD_OCTETS
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:  # inside a character: cut before it
            cut -= 1
        parts.append(data[start:cut])
        start, limit = cut, FOLD_OCTETS - 1  # the leading space takes one octet
    parts.append(data[start:])
    return b"\r\n ".join(parts) + b"\r\n"


def utc_stamp(moment: dt.datetime) -> str:
    """A DATE-TIME in UTC form (`20220404T020000Z`), as DTSTAMP and LAST-MODIFIED need."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: use an aware timestamp")
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def local_stamp(moment: dt.datetime) -> str:
    """A local DATE-TIME (`20220404T220000`) for use with TZID=Asia/Shanghai."""
    return moment.strftime("%Y%m%dT%H%M%S")


@dataclass(frozen=True)
class Event:
    """One VEVENT: an assignment as the calendar shows it."""

    uid: str
    sequence: int
    modified: dt.datetime  # DTSTAMP and LAST-MODIFIED
    start: dt.datetime  # naive, Asia/Shanghai wall time
    end: dt.datetime
    summary: str
    location: str
    description: str
    cancelled: bool = False

    def lines(self) -> list[str]:
        stamp = utc_stamp(self.modified)
        return [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            f"SEQUENCE:{self.sequence}",
            f"DTSTAMP:{stamp}",
            f"LAST-MODIFIED:{stamp}",
            f"DTSTART;TZID={TZID}:{local_stamp(self.start)}",
            f"DTEND;TZID={TZID}:{local_stamp(self.end)}",
            f"SUMMARY:{escape_text(self.summary)}",
            f"LOCATION:{escape_text(self.location)}",
            f"DESCRIPTION:{escape_text(self.description)}",
            f"STATUS:{'CANCELLED' if self.cancelled else 'CONFIRMED'}",
            f"TRANSP:{'TRANSPARENT' if self.cancelled else 'OPAQUE'}",
            "END:VEVENT",
        ]


def calendar(name: str, events: Iterable[Event]) -> bytes:
    """A complete VCALENDAR of `events` in the order given, named `name`."""
    lines: list[str] = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{escape_text(name)}",
        f"X-WR-CALNAME:{escape_text(name)}",
        f"X-WR-TIMEZONE:{TZID}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
        f"X-PUBLISHED-TTL:{REFRESH}",
        *VTIMEZONE,
    ]
    for event in events:
        lines.extend(event.lines())
    lines.append("END:VCALENDAR")
    return b"".join(fold(line) for line in lines)


def sorted_events(events: Sequence[Event]) -> list[Event]:
    """Events in a stable order: by start, then UID."""
    return sorted(events, key=lambda e: (e.start, e.uid))
