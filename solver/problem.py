"""Reading `roster-problem/1` into typed, indexed objects.

Every error names the place in the document (`demand[3].post: unknown post "wjln-chk"`)
so a coordinator can fix the file; nothing here raises a bare KeyError or TypeError.

The problem is flattened into *slots*: one slot per demand entry and date.  A volunteer
works a slot by being assigned to it; the solver only creates variables for the
(volunteer, slot) pairs that pass every hard, unary rule (availability, allowed sites,
hard zero caps), which keeps the model sparse.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBLEM_FORMAT = "roster-problem/1"
SOLUTION_FORMAT = "roster-solution/1"
SITE_KINDS = ("checkpoint", "building", "hotel", "testing", "other")
DEFAULT_COVERAGE_WEIGHT = 1000
MINUTES_PER_DAY = 24 * 60

_TIME = re.compile(r"^(\d{2}):(\d{2})$")
_ID = re.compile(r"^[^\s]{1,100}$")


class ProblemError(ValueError):
    """Malformed input; the message starts with the JSON path of the offending value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True)
class Shift:
    index: int
    id: str
    name: str
    start: int  # minutes after midnight of the shift's date
    end: int  # minutes after midnight of the shift's date; > start, may exceed 1440

    @property
    def minutes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Post:
    index: int
    id: str
    name: str
    site: int  # index into Problem.sites


@dataclass(frozen=True)
class Site:
    index: int
    id: str
    name: str
    kind: str
    posts: tuple[int, ...]


@dataclass(frozen=True)
class Demand:
    index: int
    post: int
    shift: int
    min: int
    max: int
    requires: tuple[tuple[str, int], ...]
    days: tuple[int, ...] | None  # None: every day of the horizon


@dataclass(frozen=True)
class Preference:
    index: int
    day: int
    shift: int | None
    post: int | None
    want: bool
    weight: int


@dataclass(frozen=True)
class Volunteer:
    index: int
    id: str
    name: str
    unit: str
    skills: frozenset[str]
    max_shifts: int | None
    min_shifts: int | None
    sites: frozenset[int] | None
    unavailable_days: frozenset[int]
    unavailable_shifts: frozenset[tuple[int, int]]  # (day, shift)
    preferences: tuple[Preference, ...]

    def available(self, day: int, shift: int) -> bool:
        return day not in self.unavailable_days and (day, shift) not in self.unavailable_shifts


@dataclass(frozen=True)
class RuleSpec:
    """One entry of `rules[]`, as written, with its position for error messages."""

    index: int
    type: str
    params: dict[str, Any]
    weight: int | None
    applies_to: str | None

    @property
    def hard(self) -> bool:
        return self.weight is None

    @property
    def path(self) -> str:
        return f"rules[{self.index}]"


@dataclass(frozen=True)
class Slot:
    """People needed at one post, on one shift of one date (one demand entry, one day)."""

    index: int
    demand: int
    post: int
    site: int
    shift: int
    day: int
    min: int
    max: int
    requires: tuple[tuple[str, int], ...]


@dataclass
class Problem:
    name: str
    timezone: str
    start: dt.date
    days: int
    coverage_weight: int
    shifts: list[Shift]
    sites: list[Site]
    posts: list[Post]
    demand: list[Demand]
    volunteers: list[Volunteer]
    rules: list[RuleSpec]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    slots: list[Slot] = field(init=False, repr=False)
    slot_at: dict[tuple[int, int, int], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = []
        self.slot_at = {}  # (post, shift, day) -> slot index
        for d in self.demand:
            for day in d.days if d.days is not None else range(self.days):
                s = Slot(len(self.slots), d.index, d.post, self.posts[d.post].site,
                         d.shift, day, d.min, d.max, d.requires)
                self.slots.append(s)
                self.slot_at[(d.post, d.shift, day)] = s.index
        self.shift_by_id = {s.id: s for s in self.shifts}
        self.post_by_id = {p.id: p for p in self.posts}
        self.site_by_id = {s.id: s for s in self.sites}
        self.volunteer_by_id = {v.id: v for v in self.volunteers}

    # -- time ------------------------------------------------------------------------
    def date(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=day)

    def iso(self, day: int) -> str:
        return self.date(day).isoformat()

    def day_of(self, iso: str) -> int | None:
        try:
            d = (dt.date.fromisoformat(iso) - self.start).days
        except (TypeError, ValueError):
            return None
        return d if 0 <= d < self.days else None

    def begins(self, day: int, shift: int) -> int:
        """Minutes from the start of the horizon to the start of `shift` on `day`."""
        return day * MINUTES_PER_DAY + self.shifts[shift].start

    def ends(self, day: int, shift: int) -> int:
        return day * MINUTES_PER_DAY + self.shifts[shift].end

    def week(self, day: int) -> int:
        return day // 7

    def missing(self, s: int, people: Collection[int]) -> list[tuple[str | None, int]]:
        """What slot `s` lacks if `people` work it: (None, head count) and (skill, count)
        for each requirement they fall short of, in the demand's order."""
        slot = self.slots[s]
        out: list[tuple[str | None, int]] = []
        if len(people) < slot.min:
            out.append((None, slot.min - len(people)))
        for skill, need in slot.requires:
            have = sum(1 for v in people if skill in self.volunteers[v].skills)
            if have < need:
                out.append((skill, need - have))
        return out

    # -- labels for explanations -----------------------------------------------------
    def slot_label(self, slot: Slot, lang: str = "zh") -> str:
        site, post, shift = self.sites[slot.site], self.posts[slot.post], self.shifts[slot.shift]
        date = self.date(slot.day)
        if lang == "zh":
            return f"{site.name} {post.name} {date.month}月{date.day}日 {shift.name}"
        return f"{site.name} / {post.name}, {date.isoformat()} shift {shift.id}"


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProblemError(path, f"expected an object, got {_show(value)}")
    return value


def _list(value: Any, path: str, *, allow_null: bool = False) -> list[Any] | None:
    if value is None and allow_null:
        return None
    if not isinstance(value, list):
        raise ProblemError(path, f"expected a list, got {_show(value)}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ProblemError(path, f"expected a string, got {_show(value)}")
    return value


def _ident(value: Any, path: str) -> str:
    s = _str(value, path)
    if not _ID.match(s):
        raise ProblemError(path, f"invalid id {_show(s)} (1-100 characters, no spaces)")
    return s


def _int(value: Any, path: str, *, low: int = 0, high: int = 10**9) -> int:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
        raise ProblemError(path, f"expected a whole number, got {_show(value)}")
    if not low <= int(value) <= high:
        raise ProblemError(path, f"{int(value)} is out of range {low}..{high}")
    return int(value)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _time(value: Any, path: str) -> int:
    s = _str(value, path)
    m = _TIME.match(s)
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ProblemError(path, f"invalid time {_show(s)} (expected HH:MM, 00:00-23:59)")
    return int(m[1]) * 60 + int(m[2])


def _date(value: Any, path: str) -> dt.date:
    s = _str(value, path)
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ProblemError(path, f"invalid date {_show(s)} (expected YYYY-MM-DD)") from None


def _unique(items: list[Any], what: str, path: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise ProblemError(f"{path}[{i}].id", f"duplicate {what} id {_show(item.id)}")
        seen.add(item.id)


def parse_problem(doc: Any) -> Problem:
    """Validate a decoded `roster-problem/1` document and build a `Problem`."""
    # Rule types are validated here so that an unknown type is a format error.
    from solver.rules import RULE_TYPES

    d = _obj(doc, "")
    if d.get("format") != PROBLEM_FORMAT:
        raise ProblemError("format", f"expected {_show(PROBLEM_FORMAT)}, got {_show(d.get('format'))}")
    start = _date(d.get("start"), "start")
    days = _int(d.get("days"), "days", low=1, high=3660)
    cw = d.get("coverage_weight", DEFAULT_COVERAGE_WEIGHT)
    coverage_weight = _int(cw, "coverage_weight", low=0, high=10**7)

    def day_index(value: Any, path: str) -> int:
        day = (_date(value, path) - start).days
        if not 0 <= day < days:
            raise ProblemError(path, f"date {value} is outside the horizon "
                               f"{start.isoformat()} + {days} days")
        return day

    shifts: list[Shift] = []
    for i, s in enumerate(_list(d.get("shifts"), "shifts") or []):
        p = f"shifts[{i}]"
        s = _obj(s, p)
        begin, end = _time(s.get("start"), f"{p}.start"), _time(s.get("end"), f"{p}.end")
        if end <= begin:
            end += MINUTES_PER_DAY  # ends on the next day
        shifts.append(Shift(i, _ident(s.get("id"), f"{p}.id"),
                            _str(s.get("name", s.get("id")), f"{p}.name"), begin, end))
    if not shifts:
        raise ProblemError("shifts", "at least one shift is needed")
    _unique(shifts, "shift", "shifts")
    shift_ix = {s.id: s.index for s in shifts}

    sites: list[Site] = []
    posts: list[Post] = []
    for i, s in enumerate(_list(d.get("sites"), "sites") or []):
        p = f"sites[{i}]"
        s = _obj(s, p)
        kind = s.get("kind", "other")
        if kind not in SITE_KINDS:
            raise ProblemError(f"{p}.kind", f"unknown site kind {_show(kind)} "
                               f"(one of {', '.join(SITE_KINDS)})")
        post_ix = []
        for j, q in enumerate(_list(s.get("posts"), f"{p}.posts") or []):
            q = _obj(q, f"{p}.posts[{j}]")
            post = Post(len(posts), _ident(q.get("id"), f"{p}.posts[{j}].id"),
                        _str(q.get("name", q.get("id")), f"{p}.posts[{j}].name"), i)
            posts.append(post)
            post_ix.append(post.index)
        sites.append(Site(i, _ident(s.get("id"), f"{p}.id"),
                          _str(s.get("name", s.get("id")), f"{p}.name"), kind, tuple(post_ix)))
    _unique(sites, "site", "sites")
    seen_posts: set[str] = set()
    for post in posts:
        if post.id in seen_posts:
            raise ProblemError(f"sites[{post.site}].posts", f"duplicate post id {_show(post.id)}")
        seen_posts.add(post.id)
    post_ix_by_id = {q.id: q.index for q in posts}
    site_ix = {s.id: s.index for s in sites}

    demand: list[Demand] = []
    covered: dict[tuple[int, int, int], int] = {}
    for i, e in enumerate(_list(d.get("demand"), "demand") or []):
        p = f"demand[{i}]"
        e = _obj(e, p)
        post_id = _str(e.get("post"), f"{p}.post")
        if post_id not in post_ix_by_id:
            raise ProblemError(f"{p}.post", f"unknown post {_show(post_id)}")
        shift_id = _str(e.get("shift"), f"{p}.shift")
        if shift_id not in shift_ix:
            raise ProblemError(f"{p}.shift", f"unknown shift {_show(shift_id)}")
        lo = _int(e.get("min"), f"{p}.min", high=10_000)
        hi = _int(e.get("max", lo) if e.get("max") is not None else lo, f"{p}.max", high=10_000)
        if hi < lo:
            raise ProblemError(f"{p}.max", f"max {hi} is below min {lo}")
        req = []
        for skill, n in (_obj(e.get("requires") or {}, f"{p}.requires")).items():
            n = _int(n, f"{p}.requires.{skill}", high=10_000)
            if n > hi:
                raise ProblemError(f"{p}.requires.{skill}",
                                   f"needs {n} people with {skill} but max is {hi}")
            if n:
                req.append((skill, n))
        raw_dates = _list(e.get("dates"), f"{p}.dates", allow_null=True)
        dates = None if raw_dates is None else tuple(sorted({
            day_index(x, f"{p}.dates[{k}]") for k, x in enumerate(raw_dates)}))
        entry = Demand(i, post_ix_by_id[post_id], shift_ix[shift_id], lo, hi, tuple(req), dates)
        for day in dates if dates is not None else range(days):
            key = (entry.post, entry.shift, day)
            if key in covered:
                raise ProblemError(p, f"{post_id} {shift_id} on {(start + dt.timedelta(day))} "
                                   f"is already covered by demand[{covered[key]}]")
            covered[key] = i
        demand.append(entry)

    volunteers: list[Volunteer] = []
    for i, v in enumerate(_list(d.get("volunteers"), "volunteers") or []):
        p = f"volunteers[{i}]"
        v = _obj(v, p)
        skills = _list(v.get("skills", []), f"{p}.skills", allow_null=True) or []
        for k, sk in enumerate(skills):
            _str(sk, f"{p}.skills[{k}]")
        vsites = _list(v.get("sites"), f"{p}.sites", allow_null=True)
        site_set = None
        if vsites is not None:
            site_set = set()
            for k, sid in enumerate(vsites):
                if not isinstance(sid, str) or sid not in site_ix:
                    raise ProblemError(f"{p}.sites[{k}]", f"unknown site {_show(sid)}")
                site_set.add(site_ix[sid])
        udays, ushifts = set(), set()
        for k, u in enumerate(_list(v.get("unavailable", []), f"{p}.unavailable",
                                    allow_null=True) or []):
            q = f"{p}.unavailable[{k}]"
            u = _obj(u, q)
            try:
                day = day_index(u.get("date"), f"{q}.date")
            except ProblemError as exc:
                if "outside the horizon" in str(exc):
                    continue  # unavailability outside the horizon is harmless
                raise
            if u.get("shift") is None:
                udays.add(day)
            else:
                sid = _str(u["shift"], f"{q}.shift")
                if sid not in shift_ix:
                    raise ProblemError(f"{q}.shift", f"unknown shift {_show(sid)}")
                ushifts.add((day, shift_ix[sid]))
        prefs = []
        for k, pr in enumerate(_list(v.get("preferences", []), f"{p}.preferences",
                                     allow_null=True) or []):
            q = f"{p}.preferences[{k}]"
            pr = _obj(pr, q)
            day = day_index(pr.get("date"), f"{q}.date")
            sh = pr.get("shift")
            if sh is not None and (not isinstance(sh, str) or sh not in shift_ix):
                raise ProblemError(f"{q}.shift", f"unknown shift {_show(sh)}")
            po = pr.get("post")
            if po is not None and (not isinstance(po, str) or po not in post_ix_by_id):
                raise ProblemError(f"{q}.post", f"unknown post {_show(po)}")
            want = pr.get("want", True)
            if not isinstance(want, bool):
                raise ProblemError(f"{q}.want", f"expected true or false, got {_show(want)}")
            prefs.append(Preference(k, day, None if sh is None else shift_ix[sh],
                                    None if po is None else post_ix_by_id[po], want,
                                    _int(pr.get("weight", 1), f"{q}.weight", high=10**6)))
        mx, mn = v.get("max_shifts"), v.get("min_shifts")
        max_shifts = None if mx is None else _int(mx, f"{p}.max_shifts", high=10_000)
        min_shifts = None if mn is None else _int(mn, f"{p}.min_shifts", high=10_000)
        if max_shifts is not None and min_shifts is not None and min_shifts > max_shifts:
            raise ProblemError(f"{p}.min_shifts",
                               f"min_shifts {min_shifts} is above max_shifts {max_shifts}")
        volunteers.append(Volunteer(
            i, _ident(v.get("id"), f"{p}.id"), _str(v.get("name", v.get("id")), f"{p}.name"),
            _str(v.get("unit", "") or "", f"{p}.unit"), frozenset(skills), max_shifts,
            min_shifts or None, None if site_set is None else frozenset(site_set),
            frozenset(udays), frozenset(ushifts), tuple(prefs)))
    _unique(volunteers, "volunteer", "volunteers")

    rules: list[RuleSpec] = []
    for i, r in enumerate(_list(d.get("rules", []), "rules", allow_null=True) or []):
        p = f"rules[{i}]"
        r = _obj(r, p)
        rtype = _str(r.get("type"), f"{p}.type")
        if rtype not in RULE_TYPES:
            raise ProblemError(f"{p}.type", f"unknown rule type {_show(rtype)} "
                               f"(known: {', '.join(sorted(RULE_TYPES))})")
        weight = r.get("weight")
        applies = r.get("applies_to")
        spec = RuleSpec(i, rtype, {k: val for k, val in r.items()
                                   if k not in ("type", "weight", "applies_to")},
                        None if weight is None else _int(weight, f"{p}.weight", high=10**7),
                        None if applies is None else _str(applies, f"{p}.applies_to"))
        RULE_TYPES[rtype].validate(spec, shift_ix, site_ix)
        rules.append(spec)

    return Problem(
        name=_str(d.get("name", ""), "name"),
        timezone=_str(d.get("timezone", "Asia/Shanghai"), "timezone"),
        start=start, days=days, coverage_weight=coverage_weight, shifts=shifts, sites=sites,
        posts=posts, demand=demand, volunteers=volunteers, rules=rules, raw=d)


def load_problem(path: str | Path) -> Problem:
    """Read and validate a problem file; errors are `ProblemError` naming the place."""
    return parse_problem(read_json(path))


def read_json(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ProblemError("", f"{path}: cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ProblemError("", f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError("", f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                           f"{exc.msg}") from None
