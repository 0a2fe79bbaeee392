"""Curtois & Qu shift scheduling benchmark: instance parser and roster I/O.

The text format (see http://www.schedulingbenchmarks.org/) consists of sections
introduced by ``SECTION_<NAME>`` lines; ``#`` starts a comment line and blank lines
are ignored.  Every parse error raises :class:`CurtoisFormatError` naming the file,
the 1-based line number and the offending value, so a malformed file can be
reported to the user in one line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CoverRequirement",
    "CurtoisFormatError",
    "Instance",
    "Roster",
    "Shift",
    "ShiftRequest",
    "Staff",
    "format_roster",
    "parse_instance",
    "parse_instance_text",
    "read_roster",
    "write_roster",
]

#: A roster: ``roster[e][d]`` is the index of the shift (into ``Instance.shifts``)
#: employee ``e`` works on day ``d``, or ``-1`` for a day off.
Roster = list[list[int]]

OFF = -1


class CurtoisFormatError(ValueError):
    """A Curtois instance or roster file is malformed."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.detail = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Shift:
    """A shift type: its length and the shift types banned on the following day."""

    id: str
    minutes: int
    cannot_follow: tuple[str, ...]


@dataclass(frozen=True)
class Staff:
    """An employee's contract limits (all hard constraints)."""

    id: str
    #: Maximum number of shifts of each type; types not listed are unlimited.
    max_shifts: dict[str, int]
    max_total_minutes: int
    min_total_minutes: int
    max_consecutive_shifts: int
    min_consecutive_shifts: int
    min_consecutive_days_off: int
    max_weekends: int


@dataclass(frozen=True)
class ShiftRequest:
    """A soft shift-on or shift-off request of one employee on one day."""

    employee: int
    day: int
    shift: int
    weight: int


@dataclass(frozen=True)
class CoverRequirement:
    """Soft cover: wanted number of people on ``shift`` on ``day`` and the penalty weights."""

    day: int
    shift: int
    requirement: int
    weight_under: int
    weight_over: int


@dataclass
class Instance:
    """A parsed benchmark instance; employees and shifts are referred to by index."""

    name: str
    horizon: int
    shifts: list[Shift]
    staff: list[Staff]
    #: ``days_off[e]`` — days on which employee ``e`` must not work.
    days_off: list[frozenset[int]]
    on_requests: list[ShiftRequest]
    off_requests: list[ShiftRequest]
    cover: list[CoverRequirement]
    shift_index: dict[str, int] = field(default_factory=dict)
    staff_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.shift_index:
            self.shift_index = {s.id: i for i, s in enumerate(self.shifts)}
        if not self.staff_index:
            self.staff_index = {s.id: i for i, s in enumerate(self.staff)}

    @property
    def num_staff(self) -> int:
        """Number of employees."""
        return len(self.staff)

    @property
    def num_shifts(self) -> int:
        """Number of shift types."""
        return len(self.shifts)

    def max_shifts(self, employee: int, shift: int) -> int:
        """Maximum number of shifts of type ``shift`` for ``employee`` (horizon if unlisted)."""
        return self.staff[employee].max_shifts.get(self.shifts[shift].id, self.horizon)

    def banned_successors(self, shift: int) -> list[int]:
        """Indices of the shift types that cannot be worked the day after ``shift``."""
        return [self.shift_index[t] for t in self.shifts[shift].cannot_follow]

    def weekends(self) -> list[tuple[int, int]]:
        """(Saturday, Sunday) day pairs of every full week; day 0 is a Monday."""
        return [(7 * k + 5, 7 * k + 6) for k in range(self.horizon // 7)]


_SECTIONS = (
    "SECTION_HORIZON",
    "SECTION_SHIFTS",
    "SECTION_STAFF",
    "SECTION_DAYS_OFF",
    "SECTION_SHIFT_ON_REQUESTS",
    "SECTION_SHIFT_OFF_REQUESTS",
    "SECTION_COVER",
)


def _int(src: str, line: int, text: str, what: str, minimum: int = 0) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise CurtoisFormatError(src, line, f"{what} is not an integer: {text.strip()!r}") from None
    if value < minimum:
        raise CurtoisFormatError(src, line, f"{what} must be >= {minimum}, got {value}")
    return value


def parse_instance(path: str | Path) -> Instance:
    """Parse an instance file; raises :class:`CurtoisFormatError` on malformed content."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CurtoisFormatError(str(p), None, f"cannot read file: {exc}") from None
    return parse_instance_text(text, source=str(p), name=p.stem)


def parse_instance_text(text: str, source: str = "<string>", name: str = "instance") -> Instance:
    """Parse the text of an instance; ``source`` is used in error messages."""
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("SECTION_"):
            if line not in _SECTIONS:
                raise CurtoisFormatError(source, lineno, f"unknown section {line!r}")
            if line in sections:
                raise CurtoisFormatError(source, lineno, f"duplicate section {line!r}")
            current = line
            sections[current] = []
            continue
        if current is None:
            raise CurtoisFormatError(source, lineno, f"data before the first section: {line!r}")
        sections[current].append((lineno, line))
    if "SECTION_HORIZON" not in sections:
        raise CurtoisFormatError(source, None, "missing SECTION_HORIZON")
    hz = sections["SECTION_HORIZON"]
    if len(hz) != 1:
        at = hz[1][0] if len(hz) > 1 else None
        raise CurtoisFormatError(source, at, "SECTION_HORIZON must hold exactly one number")
    horizon = _int(source, hz[0][0], hz[0][1], "horizon", minimum=1)
    for sec in ("SECTION_SHIFTS", "SECTION_STAFF"):
        if sec not in sections:
            raise CurtoisFormatError(source, None, f"missing {sec}")

    shifts: list[Shift] = []
    seen_shifts: dict[str, int] = {}
    follow_lines: list[int] = []
    for lineno, line in sections["SECTION_SHIFTS"]:
        parts = line.split(",")
        if len(parts) != 3:
            raise CurtoisFormatError(
                source, lineno, f"shift line needs 3 comma-separated fields: {line!r}"
            )
        sid = parts[0].strip()
        if not sid:
            raise CurtoisFormatError(source, lineno, "empty shift ID")
        if sid in seen_shifts:
            raise CurtoisFormatError(source, lineno, f"duplicate shift ID {sid!r}")
        minutes = _int(source, lineno, parts[1], f"length of shift {sid}")
        follow = tuple(t.strip() for t in parts[2].split("|") if t.strip())
        seen_shifts[sid] = len(shifts)
        shifts.append(Shift(sid, minutes, follow))
        follow_lines.append(lineno)
    if not shifts:
        raise CurtoisFormatError(source, None, "SECTION_SHIFTS is empty")
    for s, lineno in zip(shifts, follow_lines, strict=True):
        for t in s.cannot_follow:
            if t not in seen_shifts:
                raise CurtoisFormatError(
                    source, lineno, f"unknown shift {t!r} in cannot-follow list"
                )

    staff: list[Staff] = []
    seen_staff: dict[str, int] = {}
    for lineno, line in sections["SECTION_STAFF"]:
        parts = line.split(",")
        if len(parts) != 8:
            raise CurtoisFormatError(
                source, lineno, f"staff line needs 8 comma-separated fields: {line!r}"
            )
        eid = parts[0].strip()
        if not eid:
            raise CurtoisFormatError(source, lineno, "empty employee ID")
        if eid in seen_staff:
            raise CurtoisFormatError(source, lineno, f"duplicate employee ID {eid!r}")
        maxes: dict[str, int] = {}
        for item in parts[1].split("|"):
            item = item.strip()
            if not item:
                continue
            if "=" not in item:
                raise CurtoisFormatError(source, lineno, f"MaxShifts item is not ID=N: {item!r}")
            k, v = item.split("=", 1)
            k = k.strip()
            if k not in seen_shifts:
                raise CurtoisFormatError(source, lineno, f"unknown shift {k!r} in MaxShifts")
            maxes[k] = _int(source, lineno, v, f"MaxShifts for {k}")
        vals = [
            _int(source, lineno, parts[i], label)
            for i, label in (
                (2, "MaxTotalMinutes"),
                (3, "MinTotalMinutes"),
                (4, "MaxConsecutiveShifts"),
                (5, "MinConsecutiveShifts"),
                (6, "MinConsecutiveDaysOff"),
                (7, "MaxWeekends"),
            )
        ]
        seen_staff[eid] = len(staff)
        staff.append(Staff(eid, maxes, *vals))
    if not staff:
        raise CurtoisFormatError(source, None, "SECTION_STAFF is empty")

    def employee(lineno: int, text: str) -> int:
        key = text.strip()
        if key not in seen_staff:
            raise CurtoisFormatError(source, lineno, f"unknown employee {key!r}")
        return seen_staff[key]

    def shift(lineno: int, text: str) -> int:
        key = text.strip()
        if key not in seen_shifts:
            raise CurtoisFormatError(source, lineno, f"unknown shift {key!r}")
        return seen_shifts[key]

    def day(lineno: int, text: str) -> int:
        d = _int(source, lineno, text, "day")
        if d >= horizon:
            raise CurtoisFormatError(source, lineno, f"day {d} outside horizon 0..{horizon - 1}")
        return d

    days_off: list[set[int]] = [set() for _ in staff]
    for lineno, line in sections.get("SECTION_DAYS_OFF", []):
        parts = line.split(",")
        e = employee(lineno, parts[0])
        for t in parts[1:]:
            if t.strip():
                days_off[e].add(day(lineno, t))

    def requests(sec: str) -> list[ShiftRequest]:
        out: list[ShiftRequest] = []
        for lineno, line in sections.get(sec, []):
            parts = line.split(",")
            if len(parts) != 4:
                raise CurtoisFormatError(
                    source, lineno, f"request line needs 4 comma-separated fields: {line!r}"
                )
            out.append(
                ShiftRequest(
                    employee(lineno, parts[0]),
                    day(lineno, parts[1]),
                    shift(lineno, parts[2]),
                    _int(source, lineno, parts[3], "weight"),
                )
            )
        return out

    cover: list[CoverRequirement] = []
    for lineno, line in sections.get("SECTION_COVER", []):
        parts = line.split(",")
        if len(parts) != 5:
            raise CurtoisFormatError(
                source, lineno, f"cover line needs 5 comma-separated fields: {line!r}"
            )
        cover.append(
            CoverRequirement(
                day(lineno, parts[0]),
                shift(lineno, parts[1]),
                _int(source, lineno, parts[2], "requirement"),
                _int(source, lineno, parts[3], "weight for under"),
                _int(source, lineno, parts[4], "weight for over"),
            )
        )

    return Instance(
        name=name,
        horizon=horizon,
        shifts=shifts,
        staff=staff,
        days_off=[frozenset(s) for s in days_off],
        on_requests=requests("SECTION_SHIFT_ON_REQUESTS"),
        off_requests=requests("SECTION_SHIFT_OFF_REQUESTS"),
        cover=cover,
    )


def read_roster(path: str | Path, instance: Instance) -> Roster:
    """Read a roster TSV (``ID<TAB>cell…`` per employee, in instance order).

    Missing trailing cells count as days off.  Raises :class:`CurtoisFormatError`
    on unknown employees/shifts, wrong order or too many cells.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CurtoisFormatError(str(p), None, f"cannot read file: {exc}") from None
    return parse_roster_text(text, instance, source=str(p))


def parse_roster_text(text: str, instance: Instance, source: str = "<string>") -> Roster:
    """Parse roster TSV text; see :func:`read_roster`."""
    roster: Roster = []
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if len(lines) != instance.num_staff:
        raise CurtoisFormatError(
            source, None, f"expected {instance.num_staff} employee lines, found {len(lines)}"
        )
    for e, (lineno, line) in enumerate(lines):
        cells = line.rstrip("\r\n").split("\t")
        eid = cells[0].strip()
        if eid != instance.staff[e].id:
            raise CurtoisFormatError(
                source, lineno, f"expected employee {instance.staff[e].id!r}, found {eid!r}"
            )
        days = cells[1:]
        if len(days) > instance.horizon:
            extra = [c for c in days[instance.horizon :] if c.strip()]
            if extra:
                raise CurtoisFormatError(
                    source, lineno, f"{len(days)} cells for a {instance.horizon}-day horizon"
                )
        row: list[int] = []
        for d in range(instance.horizon):
            cell = days[d].strip() if d < len(days) else ""
            if not cell:
                row.append(OFF)
            elif cell in instance.shift_index:
                row.append(instance.shift_index[cell])
            else:
                raise CurtoisFormatError(source, lineno, f"unknown shift {cell!r} on day {d}")
        roster.append(row)
    return roster


def format_roster(roster: Sequence[Sequence[int]], instance: Instance) -> str:
    """Render a roster as TSV text (one line per employee, empty cell = day off)."""
    out: list[str] = []
    for e, row in enumerate(roster):
        cells: Iterable[str] = (instance.shifts[s].id if s >= 0 else "" for s in row)
        out.append("\t".join([instance.staff[e].id, *cells]))
    return "\n".join(out) + "\n"


def write_roster(path: str | Path, roster: Sequence[Sequence[int]], instance: Instance) -> None:
    """Write a roster as TSV; see :func:`format_roster`."""
    Path(path).write_text(format_roster(roster, instance), encoding="utf-8")
