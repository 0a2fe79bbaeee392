"""The dispatch rule catalogue: who may take a task, and who should be asked first.

Each rule is one small named class, like the roster rules of `solver.rules`: an
*eligibility* rule answers `eligible(candidate, task, ctx)` with the reason it blocks the
candidate (a `Text` in Chinese and English) or None; a *scoring* rule answers
`score(candidate, task, ctx)` with points and the reason for them. Scoring rules are in
priority order and candidates are ranked by their points compared rule by rule (same
site first, then on duty with spare coverage, then fewest tasks today, then the week), so
a ranking can always be explained by the first rule that tells two people apart.

Everything a rule reads is in a `DispatchContext`, loaded by `load_context` with a fixed
number of queries whatever the number of volunteers: published assignments around the
task, closed-loop (hotel) duty in the roster period, absences, other tasks this week, the
site's demand, and this task's earlier offers.

With 40,000 volunteers, thousands are absent, on a shift elsewhere or in a closed loop:
reading them one by one is what made suggestions slow. So a context judges one by one
only the volunteers who may score (`DispatchContext.judged`: on the roster at the task's
site that day or then, with a task this week, already asked); every other volunteer is
alike but for their tags, absences and duties elsewhere, and the rules that look at
those say in SQL whom they block among them (`EligibilityRule.unjudged`), so
`ranked_candidates` counts and reads them a set at a time. `load_context(everyone=True)`
loads everyone's facts, for checking that both ways agree.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from scheduler.absences.models import REASON_NAMES, Absence
from scheduler.dispatch.models import Task, TaskOffer
from scheduler.localtime import (
    TZ,
    day_interval,
    local_date,
    overlaps,
    shift_interval,
    week_interval,
)
from scheduler.models import (
    Assignment,
    Demand,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from solver.i18n import Text, skill_label

#: Site kinds under closed-loop management (闭环): their staff go nowhere else.
CLOSED_LOOP_KINDS = ("hotel",)
#: A shift that runs at any time in [00:00, NIGHT_UNTIL) local is a night shift.
NIGHT_UNTIL = dt.time(5, 0)
#: Task states that occupy a volunteer's time (an accepted task is a promise).
BUSY_TASK_STATUSES = ("accepted", "in_progress")
#: Task states that count as work done or promised, for today's and the week's load.
LOAD_TASK_STATUSES = ("accepted", "in_progress", "done", "failed")

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class DispatchParams:
    """The tunable parameters of the catalogue."""

    #: Hours of rest after a night shift before a volunteer may take a task.
    night_rest_hours: int = 8


@dataclass(frozen=True)
class Candidate:
    """A volunteer as the rules see them."""

    id: int
    code: str
    name: str
    skills: frozenset[str]
    status: str = "active"


@dataclass(frozen=True)
class Duty:
    """A published assignment, placed in time."""

    volunteer_id: int
    site_id: int
    site_name: str
    post_id: int
    shift_id: int
    date: dt.date
    begins: dt.datetime
    ends: dt.datetime
    night: bool


@dataclass(frozen=True)
class Busy:
    """Another task a volunteer has accepted or is doing."""

    task_id: int
    site_id: int
    building: str
    window: Interval


@dataclass
class DispatchContext:
    """Everything the rules need about one task, loaded once for all candidates."""

    task_id: int
    site_id: int
    building: str
    window: Interval
    now: dt.datetime
    params: DispatchParams
    duties: dict[int, list[Duty]] = field(default_factory=dict)
    # volunteer -> (site id, site name) of closed-loop sites they work at in the period
    closed_loop: dict[int, dict[int, str]] = field(default_factory=dict)
    absences: dict[int, list[tuple[Interval, str]]] = field(default_factory=dict)
    busy: dict[int, list[Busy]] = field(default_factory=dict)
    tasks_today: Counter[int] = field(default_factory=Counter)
    tasks_week: Counter[int] = field(default_factory=Counter)
    # people assigned and demanded at (post, shift, date) of the task's site
    staffed: Counter[tuple[int, int, dt.date]] = field(default_factory=Counter)
    minimum: dict[tuple[int, int, dt.date], int] = field(default_factory=dict)
    # this task's offers: volunteer -> states of their offers
    asked: dict[int, set[str]] = field(default_factory=dict)
    # places still to fill and skills still missing, counting live offers as filled
    places: int = 1
    missing: dict[str, int] = field(default_factory=dict)
    # published versions around the task (id -> roster, first day, last day) and the
    # shifts' times: what the rules' filters in SQL are made of
    versions: dict[int, tuple[int, dt.date, dt.date]] = field(default_factory=dict)
    shift_times: dict[int, tuple[dt.time, dt.time]] = field(default_factory=dict)
    # volunteers whose facts are all loaded (None: everyone's); any other volunteer has
    # no duty at the site that day or then, no task this week and no offer of this task,
    # and only absences and duties elsewhere, which the rules filter in SQL
    judged: frozenset[int] | None = None

    @property
    def day(self) -> dt.date:
        return local_date(self.window[0])

    def shift_slots(self) -> Iterator[tuple[dt.date, int, Interval, bool]]:
        """Every (date, shift, interval, night) from the day before the task's to the day
        after: the only duties a rule looks at."""
        for offset in (-1, 0, 1):
            date = self.day + dt.timedelta(days=offset)
            for shift_id, (start, end) in sorted(self.shift_times.items()):
                yield date, shift_id, shift_interval(date, start, end), is_night(start, end)

    def covering(self) -> frozenset[int]:
        """The published versions whose period holds the task's day."""
        return frozenset(vid for vid, (_, start, end) in self.versions.items()
                         if start <= self.day <= end)


class VolunteerFilter:
    """Whom a rule blocks among the volunteers a context does not judge one by one, as
    a query of their ids; equal filters give the same volunteers."""

    def volunteer_ids(self) -> Select[int]:
        raise NotImplementedError


@dataclass(frozen=True)
class AbsenceFilter(VolunteerFilter):
    """Volunteers absent at some time in `window`."""

    window: Interval

    def volunteer_ids(self) -> Select[int]:
        return select(Absence.volunteer_id).where(_absent_during(self.window))


def _absent_during(window: Interval) -> ColumnElement[bool]:
    return and_(Absence.starts_at < window[1], Absence.ends_at > window[0])


@dataclass(frozen=True)
class DutyFilter(VolunteerFilter):
    """Volunteers with a published duty in `versions`, on one of `slots` ((date, shift);
    None: any), at a site other than `not_site`, of one of `kinds` (empty: any)."""

    versions: frozenset[int]
    slots: frozenset[tuple[dt.date, int]] | None = None
    not_site: int | None = None
    kinds: tuple[str, ...] = ()

    def volunteer_ids(self) -> Select[int]:
        query = select(Assignment.volunteer_id).where(
            Assignment.version_id.in_(sorted(self.versions)))
        if self.not_site is not None or self.kinds:
            query = query.join(Post, Assignment.post_id == Post.id)
        if self.not_site is not None:
            query = query.where(Post.site_id != self.not_site)
        if self.kinds:
            query = query.join(Site, Post.site_id == Site.id).where(Site.kind.in_(self.kinds))
        if self.slots is not None:
            query = query.where(_on_slots(self.slots))
        return query


def _on_slots(slots: Iterable[tuple[dt.date, int]]) -> ColumnElement[bool]:
    by_date: dict[dt.date, set[int]] = {}
    for date, shift_id in slots:
        by_date.setdefault(date, set()).add(shift_id)
    if not by_date:
        return false()
    return or_(*(and_(Assignment.date == date, Assignment.shift_id.in_(sorted(ids)))
                 for date, ids in sorted(by_date.items())))


# ---------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------


class Rule:
    """Base of the catalogue: a name a coordinator reads, and an explanation."""

    code: ClassVar[str]
    title: ClassVar[Text]


class EligibilityRule(Rule):
    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        """The reason `c` may not take `task`, or None when this rule allows it."""
        raise NotImplementedError

    def unjudged(self, ctx: DispatchContext) -> VolunteerFilter | None:
        """Whom this rule blocks among the volunteers `ctx` does not judge one by one;
        None: none of them, but by their tags (which `eligible` judges)."""
        return None


class ScoringRule(Rule):
    def score(self, c: Candidate, task: Task, ctx: DispatchContext) -> tuple[int, Text | None]:
        """Points for `c` on `task` (more is better) and why; None: nothing to say."""
        raise NotImplementedError


def _hm(instant: dt.datetime) -> str:
    return instant.astimezone(TZ).strftime("%H:%M")


def _md(day: dt.date) -> Text:
    return Text(f"{day.month}月{day.day}日", day.isoformat())


class ActiveVolunteer(EligibilityRule):
    code = "active"
    title = Text("仅在册志愿者", "active volunteers only")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        if c.status == "active":
            return None
        return Text(f"志愿者状态为 {c.status}", f"volunteer status is {c.status}")


class NotAskedBefore(EligibilityRule):
    code = "not_asked_before"
    title = Text("不重复派给已拒绝、超时或已派的人", "not offered twice")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        states = ctx.asked.get(c.id, set())
        if "accepted" in states:
            return Text("已接受此任务", "has accepted this task")
        if "pending" in states:
            return Text("已派给此人，等待答复", "already offered, waiting for an answer")
        if "declined" in states:
            return Text("已拒绝此任务", "declined this task")
        if "expired" in states:
            return Text("此前派单超时未答复", "let an earlier offer time out")
        if "withdrawn" in states:
            return Text("此前的派单已撤回", "an earlier offer was withdrawn")
        return None


class SkillsNeeded(EligibilityRule):
    code = "skills"
    title = Text("具备任务所需技能", "has the skills the task needs")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        # After this candidate, the places left must still be able to bring every
        # missing skill (one person may bring several).
        after = {s: n - (1 if s in c.skills else 0) for s, n in ctx.missing.items()}
        short = {s: n for s, n in after.items() if n > ctx.places - 1}
        if not short:
            return None
        skill = min(short)
        label = skill_label(skill)
        return Text(f"缺少所需技能：{label.zh}", f"lacks a needed skill: {label.en}")


class NotAbsent(EligibilityRule):
    code = "not_absent"
    title = Text("缺勤期间不派单", "not while absent")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        for window, reason in ctx.absences.get(c.id, []):
            if overlaps(window, ctx.window):
                name = REASON_NAMES.get(reason, Text(reason, reason))
                until = local_date(window[1] - dt.timedelta(seconds=1))
                return Text(f"缺勤（{name.zh}）至 {_md(until).zh}",
                            f"absent ({name.en}) until {_md(until).en}")
        return None

    def unjudged(self, ctx: DispatchContext) -> VolunteerFilter | None:
        return AbsenceFilter(ctx.window)


class ClosedLoopElsewhere(EligibilityRule):
    code = "closed_loop"
    title = Text("闭环管理人员不外出", "closed-loop staff stay inside")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        sites = ctx.closed_loop.get(c.id, {})
        others = {sid: name for sid, name in sites.items() if sid != ctx.site_id}
        if not others:
            return None
        name = others[min(others)]
        return Text(f"在闭环站点 {name} 工作，不能外出", f"works in closed loop at {name}")

    def unjudged(self, ctx: DispatchContext) -> DutyFilter | None:
        covering = ctx.covering()
        return DutyFilter(covering, not_site=ctx.site_id, kinds=CLOSED_LOOP_KINDS) \
            if covering else None


class NotOnShiftElsewhere(EligibilityRule):
    code = "not_on_shift_elsewhere"
    title = Text("不在其他站点当班", "not on a shift elsewhere at that time")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        for duty in ctx.duties.get(c.id, []):
            if duty.site_id != ctx.site_id and overlaps((duty.begins, duty.ends), ctx.window):
                span = f"{_hm(duty.begins)}-{_hm(duty.ends)}"
                return Text(f"此时在 {duty.site_name} 当班（{span}）",
                            f"on shift at {duty.site_name} then ({span})")
        return None

    def unjudged(self, ctx: DispatchContext) -> DutyFilter | None:
        slots = frozenset((date, shift_id) for date, shift_id, interval, _ in ctx.shift_slots()
                          if overlaps(interval, ctx.window))
        return DutyFilter(frozenset(ctx.versions), slots, not_site=ctx.site_id) \
            if slots and ctx.versions else None


class NotOnAnotherTask(EligibilityRule):
    code = "not_on_another_task"
    title = Text("同一时间只做一个任务", "one task at a time")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        for busy in ctx.busy.get(c.id, []):
            if busy.task_id != ctx.task_id and overlaps(busy.window, ctx.window):
                return Text(f"此时在做任务 {busy.task_id}", f"busy with task {busy.task_id}")
        return None


class RestAfterNight(EligibilityRule):
    code = "rest_after_night"
    title = Text("夜班后休息", "rest after a night shift")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        for duty in ctx.duties.get(c.id, []):
            if self._resting(duty.ends, duty.night, ctx):
                h = ctx.params.night_rest_hours
                return Text(f"夜班 {_hm(duty.ends)} 下班，需休息 {h} 小时",
                            f"night shift ended {_hm(duty.ends)}; needs {h} h rest")
        return None

    @staticmethod
    def _resting(ends: dt.datetime, night: bool, ctx: DispatchContext) -> bool:
        rest = dt.timedelta(hours=ctx.params.night_rest_hours)
        return night and ends <= ctx.window[0] < ends + rest

    def unjudged(self, ctx: DispatchContext) -> DutyFilter | None:
        slots = frozenset((date, shift_id) for date, shift_id, (_, ends), night
                          in ctx.shift_slots() if self._resting(ends, night, ctx))
        return DutyFilter(frozenset(ctx.versions), slots) if slots and ctx.versions else None


class SameSite(ScoringRule):
    code = "same_site"
    title = Text("同一站点、同一楼栋优先", "same site or building first")

    def score(self, c: Candidate, task: Task, ctx: DispatchContext) -> tuple[int, Text | None]:
        day = ctx.day
        here = any(d.site_id == ctx.site_id and d.date == day for d in ctx.duties.get(c.id, []))
        building = bool(ctx.building) and any(
            b.site_id == ctx.site_id and b.building == ctx.building and b.task_id != ctx.task_id
            and local_date(b.window[0]) == day for b in ctx.busy.get(c.id, []))
        if building:
            return 2, Text("今天在同一楼栋有任务", "has a task in the same building today")
        if here:
            return 1, Text("今天在本站点值班", "on the roster at this site today")
        return 0, None


def _duty_here(c: Candidate, ctx: DispatchContext) -> Duty | None:
    """The candidate's shift at the task's site during the task, if any."""
    for d in ctx.duties.get(c.id, []):
        if d.site_id == ctx.site_id and overlaps((d.begins, d.ends), ctx.window):
            return d
    return None


def _spare(d: Duty, ctx: DispatchContext) -> bool:
    key = (d.post_id, d.shift_id, d.date)
    return ctx.staffed[key] > ctx.minimum.get(key, 0)


class PostNotLeftShort(EligibilityRule):
    code = "post_not_left_short"
    title = Text("不从人手不足的岗位抽人", "no one taken from a post without spare people")

    def eligible(self, c: Candidate, task: Task, ctx: DispatchContext) -> Text | None:
        d = _duty_here(c, ctx)
        if d is None or _spare(d, ctx):
            return None
        return Text("正在本站点当班，岗位无富余人手可抽调",
                    "on duty here, and the post has no one to spare")


class OnDutyWithSpare(ScoringRule):
    code = "on_duty_spare"
    title = Text("在本站点当班且岗位有富余", "on duty here with spare coverage")

    def score(self, c: Candidate, task: Task, ctx: DispatchContext) -> tuple[int, Text | None]:
        d = _duty_here(c, ctx)
        if d is None:
            return 0, None
        return 1, Text("在本站点当班，岗位人手有富余", "on duty here, post has spare people")


class FewestTasksToday(ScoringRule):
    code = "fewest_today"
    title = Text("今天任务少者优先", "fewest tasks today first")

    def score(self, c: Candidate, task: Task, ctx: DispatchContext) -> tuple[int, Text | None]:
        n = ctx.tasks_today[c.id]
        return -n, Text(f"今天已有 {n} 个任务", f"{n} task(s) today")


class WeeklyFairness(ScoringRule):
    code = "weekly_fairness"
    title = Text("本周任务均衡", "fair share over the week")

    def score(self, c: Candidate, task: Task, ctx: DispatchContext) -> tuple[int, Text | None]:
        n = ctx.tasks_week[c.id]
        return -n, Text(f"本周已有 {n} 个任务", f"{n} task(s) this week")


#: Hard rules, cheapest and most often blocking first.
ELIGIBILITY: tuple[EligibilityRule, ...] = (
    ActiveVolunteer(), NotAskedBefore(), SkillsNeeded(), NotAbsent(), ClosedLoopElsewhere(),
    NotOnShiftElsewhere(), PostNotLeftShort(), NotOnAnotherTask(), RestAfterNight(),
)
#: Scoring rules in priority order: earlier rules decide, later ones break ties.
SCORING: tuple[ScoringRule, ...] = (
    SameSite(), OnDutyWithSpare(), FewestTasksToday(), WeeklyFairness(),
)


@dataclass(frozen=True)
class Blocked:
    rule: str
    reason: Text


@dataclass(frozen=True)
class Ranked:
    """An eligible candidate, their points rule by rule and the reasons."""

    candidate: Candidate
    points: tuple[int, ...]
    reasons: tuple[tuple[str, Text], ...]

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        """Sort key: points compared rule by rule, higher first; then the lower id."""
        return tuple(-p for p in self.points), self.candidate.id


def _judgeable(c: Candidate, ctx: DispatchContext) -> None:
    if ctx.judged is not None and c.id not in ctx.judged:
        raise ValueError(f"volunteer {c.id}: the dispatch context of task {ctx.task_id} was "
                         "loaded without their duties; pass them to load_context(volunteers=)")


def blocking(c: Candidate, task: Task, ctx: DispatchContext) -> Blocked | None:
    """The first eligibility rule that blocks `c`, or None when `c` may take the task."""
    _judgeable(c, ctx)
    for rule in ELIGIBILITY:
        reason = rule.eligible(c, task, ctx)
        if reason is not None:
            return Blocked(rule.code, reason)
    return None


def all_blocking(c: Candidate, task: Task, ctx: DispatchContext) -> list[Blocked]:
    """Every eligibility rule that blocks `c` (for "why not this person?")."""
    _judgeable(c, ctx)
    out = []
    for rule in ELIGIBILITY:
        reason = rule.eligible(c, task, ctx)
        if reason is not None:
            out.append(Blocked(rule.code, reason))
    return out


def rank(c: Candidate, task: Task, ctx: DispatchContext) -> Ranked:
    points, reasons = [], []
    for rule in SCORING:
        p, why = rule.score(c, task, ctx)
        points.append(p)
        if why is not None:
            reasons.append((rule.code, why))
    return Ranked(c, tuple(points), tuple(reasons))


# ---------------------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------------------


def task_window(task: Task, now: dt.datetime) -> Interval:
    """When the task's work happens: ending at the due time, or from now if that is later.

    A task due at 10:00 that takes 60 minutes is worked 09:00-10:00; asked at 09:30 it
    is worked 09:30-10:30 (late, but that is when the person would be busy).
    """
    start = max(task.due_at - task.duration, now)
    return start, start + task.duration


def is_night(start: dt.time, end: dt.time) -> bool:
    """A shift that runs at some time between midnight and `NIGHT_UNTIL`."""
    after_midnight = end <= start and end > dt.time()
    return start < NIGHT_UNTIL or after_midnight


def candidate_of(v: Volunteer) -> Candidate:
    return Candidate(v.id, v.code, v.name, frozenset(v.tags), v.status)


def _tags(skills: str | None, party: bool, seen: dict[tuple[str | None, bool], frozenset[str]]
          ) -> frozenset[str]:
    """A volunteer's tags from the skills column as text (decoded once per distinct text:
    40,000 volunteers share a few dozen skill lists)."""
    key = (skills, party)
    if key not in seen:
        listed = json.loads(skills) if skills else []
        seen[key] = frozenset((["party"] if party else []) + list(listed or []))
    return seen[key]


def _candidate_query() -> Select[int, str, str, str, bool, str]:
    return select(Volunteer.id, Volunteer.code, Volunteer.name, cast(Volunteer.skills, String),
                  Volunteer.party_member, Volunteer.status)


def _candidates(session: Session, query: Select[int, str, str, str, bool, str]
                ) -> list[Candidate]:
    seen: dict[tuple[str | None, bool], frozenset[str]] = {}
    return [Candidate(i, code, name, _tags(skills, party, seen), status)
            for i, code, name, skills, party, status in session.execute(query)]


def load_candidates(session: Session, volunteer_ids: Sequence[int] | None = None
                    ) -> list[Candidate]:
    """Active volunteers (or exactly `volunteer_ids`, whatever their status): one query."""
    query = _candidate_query()
    if volunteer_ids is None:
        query = query.where(Volunteer.status == "active")
    else:
        query = query.where(Volunteer.id.in_(list(volunteer_ids)))
    return _candidates(session, query.order_by(Volunteer.id))


def load_context(session: Session, task: Task, now: dt.datetime,
                 params: DispatchParams | None = None, *, volunteers: Collection[int] = (),
                 everyone: bool = False) -> DispatchContext:
    """Load what every rule needs for `task`, in a fixed number of queries.

    The context judges one by one the volunteers it knows of and `volunteers` (pass the
    one you mean to check with `blocking`); `everyone` loads every volunteer's facts.
    """
    return load_contexts(session, [task], now, params, volunteers=volunteers,
                         everyone=everyone)[task.id]


def load_contexts(session: Session, tasks: Sequence[Task], now: dt.datetime,
                  params: DispatchParams | None = None, *, volunteers: Collection[int] = (),
                  everyone: bool = False) -> dict[int, DispatchContext]:
    """The contexts of several tasks (a board's), in the same fixed number of queries as
    one: each query covers every task's period and the rows are shared out in Python.
    The tasks' offers (with their volunteers) should be loaded already. Every context
    judges the volunteers any of them knows of (see `load_context`)."""
    ctxs = []
    for task in tasks:
        ctx = DispatchContext(task.id, task.site_id, task.building, task_window(task, now),
                              now, params or DispatchParams())
        _load_offers(ctx, task)
        ctxs.append(ctx)
    if not ctxs:
        return {}
    days = [c.day for c in ctxs]
    versions = _published_versions(session, min(days) - dt.timedelta(days=1),
                                   max(days) + dt.timedelta(days=1))
    shifts = {} if not versions else {i: (start, end) for i, start, end in session.execute(
        select(ShiftTemplate.id, ShiftTemplate.start, ShiftTemplate.end))}
    for ctx in ctxs:
        ctx.versions, ctx.shift_times = versions, shifts
    _load_site_duties(session, ctxs)
    _load_minimum(session, ctxs)
    _load_tasks(session, ctxs)
    judged = None if everyone else frozenset(set(volunteers).union(*map(_mentioned, ctxs)))
    _load_absences(session, ctxs, judged)
    _load_elsewhere(session, ctxs, judged)
    for ctx in ctxs:
        ctx.judged = judged
    return {c.task_id: c for c in ctxs}


def _mentioned(ctx: DispatchContext) -> set[int]:
    """Volunteers the context says anything about."""
    return (set(ctx.duties) | set(ctx.closed_loop) | set(ctx.absences) | set(ctx.busy)
            | set(ctx.tasks_today) | set(ctx.tasks_week) | set(ctx.asked))


def _among(session: Session, column: InstrumentedAttribute[int], ids: Collection[int]
           ) -> ColumnElement[bool]:
    """`column IN ids`: one array parameter on PostgreSQL, numbers written in the SQL
    elsewhere (no limit on bound parameters; a list of a thousand parameters costs more
    to send than the query takes)."""
    values = sorted(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Integer)))
    return column.in_(bindparam(None, values, expanding=True, literal_execute=True))


def _load_offers(ctx: DispatchContext, task: Task) -> None:
    holders: list[TaskOffer] = []
    for offer in task.offers:
        ctx.asked.setdefault(offer.volunteer_id, set()).add(offer.state)
        if offer.state in ("pending", "accepted"):
            holders.append(offer)
    ctx.places = task.people - len(holders)
    skills = {o.volunteer_id: frozenset(o.volunteer.tags) for o in holders}
    ctx.missing = {s: n - sum(1 for tags in skills.values() if s in tags)
                   for s, n in (task.requires or {}).items()}
    ctx.missing = {s: n for s, n in ctx.missing.items() if n > 0}


def _published_versions(session: Session, first: dt.date, last: dt.date
                        ) -> dict[int, tuple[int, dt.date, dt.date]]:
    """Published versions whose period meets [first, last]: id -> (roster, start, end)."""
    rows = session.execute(
        select(RosterVersion.id, Roster.id, Roster.start, Roster.days)
        .join(Roster, RosterVersion.roster_id == Roster.id)
        .where(RosterVersion.state == "published", Roster.start <= last)).all()
    out = {}
    for vid, rid, start, days in rows:
        end = start + dt.timedelta(days=days - 1)
        if end >= first:
            out[vid] = (rid, start, end)
    return out


def _duty_slots(ctx: DispatchContext) -> set[tuple[dt.date, int]]:
    """(date, shift) around the task's day whose shifts meet its window, or end within
    the night rest before it: the only duties elsewhere that a rule can look at."""
    begin = ctx.window[0] - dt.timedelta(hours=ctx.params.night_rest_hours)
    return {(date, shift_id) for date, shift_id, interval, _ in ctx.shift_slots()
            if overlaps(interval, (begin, ctx.window[1]))}


def _duty_rows(session: Session, ctxs: list[DispatchContext], where: ColumnElement[bool]
               ) -> Iterator[tuple[Duty, int, str]]:
    """Published duties of the contexts' versions matching `where`, each with its
    version and its site's kind."""
    rows = session.execute(
        select(Assignment.volunteer_id, Assignment.version_id, Assignment.date,
               Assignment.post_id, Assignment.shift_id, Post.site_id, Site.name, Site.kind)
        .join(Post, Assignment.post_id == Post.id)
        .join(Site, Post.site_id == Site.id)
        .where(Assignment.version_id.in_(list(ctxs[0].versions)), where))
    shifts = ctxs[0].shift_times
    placed: dict[tuple[dt.date, int], tuple[dt.datetime, dt.datetime, bool]] = {}
    for vol, version, date, post, shift_id, site, site_name, kind in rows:
        if (date, shift_id) not in placed:  # a few shifts x 3 days: convert each once
            start, end = shifts[shift_id]
            placed[(date, shift_id)] = (*shift_interval(date, start, end), is_night(start, end))
        begins, ends, night = placed[(date, shift_id)]
        yield Duty(vol, site, site_name, post, shift_id, date, begins, ends, night), version, kind


def _load_site_duties(session: Session, ctxs: list[DispatchContext]) -> None:
    """Everyone's published duties at each task's site on its day or at its time (or
    just before it, for the night rest), and how many people those posts have: the
    duties at the site that a rule reads (the others, the day before or after, change
    nothing: those people are judged like everyone else)."""
    if not ctxs[0].versions:
        return
    slots = {c.task_id: _duty_slots(c) for c in ctxs}
    where = and_(Post.site_id.in_({c.site_id for c in ctxs}),
                 or_(Assignment.date.in_({c.day for c in ctxs}),
                     _on_slots(set().union(*slots.values()))))
    for duty, _, _ in _duty_rows(session, ctxs, where):
        for ctx in ctxs:
            if duty.site_id == ctx.site_id and (
                    duty.date == ctx.day or (duty.date, duty.shift_id) in slots[ctx.task_id]):
                ctx.staffed[(duty.post_id, duty.shift_id, duty.date)] += 1
                ctx.duties.setdefault(duty.volunteer_id, []).append(duty)


def _load_elsewhere(session: Session, ctxs: list[DispatchContext],
                    judged: frozenset[int] | None) -> None:
    """The `judged` volunteers' (None: everyone's) duties elsewhere at the time of each
    task (or just before it, for the night rest) and their closed-loop sites in the
    roster period: with 40,000 volunteers, everyone's are thousands of rows."""
    if not ctxs[0].versions or judged is not None and not judged:
        return
    slots = {c.task_id: _duty_slots(c) for c in ctxs}
    covering = {c.task_id: c.covering() for c in ctxs}
    closed = sorted(set().union(*covering.values()))
    where = or_(_on_slots(set().union(*slots.values())),
                and_(Assignment.version_id.in_(closed), Site.kind.in_(CLOSED_LOOP_KINDS)))
    if judged is not None:
        where = and_(where, _among(session, Assignment.volunteer_id, judged))
    for duty, version, kind in _duty_rows(session, ctxs, where):
        for ctx in ctxs:
            if kind in CLOSED_LOOP_KINDS and version in covering[ctx.task_id]:
                ctx.closed_loop.setdefault(duty.volunteer_id, {})[duty.site_id] = duty.site_name
            if duty.site_id != ctx.site_id and (duty.date, duty.shift_id) in slots[ctx.task_id]:
                ctx.duties.setdefault(duty.volunteer_id, []).append(duty)


def _load_minimum(session: Session, ctxs: list[DispatchContext]) -> None:
    """Demand minimum at each task site's (post, shift, date) for the dates around it."""
    roster_ids = {r for r, _, _ in ctxs[0].versions.values()}
    staffed = [c for c in ctxs if c.staffed]
    if not roster_ids or not staffed:
        return
    rows = session.execute(
        select(Post.site_id, Demand.post_id, Demand.shift_id, Demand.min, Demand.dates)
        .join(Post, Demand.post_id == Post.id)
        .where(Demand.roster_id.in_(roster_ids),
               Post.site_id.in_({c.site_id for c in staffed}))).all()
    for ctx in staffed:
        dates = {d for _, _, d in ctx.staffed}
        for site, post, shift, minimum, on in rows:
            if site != ctx.site_id:
                continue
            for d in dates:
                if on is None or d.isoformat() in on:
                    key = (post, shift, d)
                    ctx.minimum[key] = ctx.minimum.get(key, 0) + minimum


def _load_absences(session: Session, ctxs: list[DispatchContext],
                   judged: frozenset[int] | None) -> None:
    """The `judged` volunteers' (None: everyone's) absences during each task."""
    if judged is not None and not judged:
        return
    where = _absent_during((min(c.window[0] for c in ctxs), max(c.window[1] for c in ctxs)))
    if judged is not None:
        where = and_(where, _among(session, Absence.volunteer_id, judged))
    rows = session.execute(
        select(Absence.volunteer_id, Absence.starts_at, Absence.ends_at, Absence.reason)
        .where(where)).all()
    for vol, a, b, reason in rows:
        for ctx in ctxs:
            if a < ctx.window[1] and b > ctx.window[0]:
                ctx.absences.setdefault(vol, []).append(((a, b), reason))


def _load_tasks(session: Session, ctxs: list[DispatchContext]) -> None:
    """Accepted, running and finished tasks of the week: load today and this week, busy."""
    weeks = {c.task_id: week_interval(c.day) for c in ctxs}
    # A task's work may start up to its duration before it is due; a day is a safe margin.
    margin = dt.timedelta(days=1)
    rows = session.execute(
        select(TaskOffer.volunteer_id, Task.id, Task.status, Task.due_at,
               Task.duration_minutes, Task.site_id, Task.building)
        .join(Task, TaskOffer.task_id == Task.id)
        .where(TaskOffer.state == "accepted", Task.status.in_(LOAD_TASK_STATUSES),
               Task.due_at >= min(w[0] for w in weeks.values()),
               Task.due_at < max(w[1] for w in weeks.values()) + margin)).all()
    for ctx in ctxs:
        week, today = weeks[ctx.task_id], day_interval(ctx.day)
        for vol, tid, status, due, minutes, site, building in rows:
            if tid == ctx.task_id or not week[0] <= due < week[1] + margin:
                continue
            if week[0] <= due < week[1]:
                ctx.tasks_week[vol] += 1
            if today[0] <= due < today[1]:
                ctx.tasks_today[vol] += 1
            if status in BUSY_TASK_STATUSES:
                window = (due - dt.timedelta(minutes=minutes), due)
                ctx.busy.setdefault(vol, []).append(Busy(tid, site, building, window))


def eligible_ranked(candidates: Iterable[Candidate], task: Task, ctx: DispatchContext
                    ) -> tuple[list[Ranked], dict[str, int]]:
    """Eligible candidates, best first, and how many each eligibility rule excluded."""
    ranked, excluded = [], Counter[str]()
    for c in candidates:
        blocked = blocking(c, task, ctx)
        if blocked is None:
            ranked.append(rank(c, task, ctx))
        else:
            excluded[blocked.rule] += 1
    ranked.sort(key=lambda r: r.key)
    return ranked, dict(excluded)


#: Volunteers read per query when looking for the first eligible ones nobody knows of.
PAGE = 100

#: A volunteer's tags as stored: the skills column as text, and whether a Party member.
TagKey = tuple[str | None, bool]


def _judged(ctx: DispatchContext) -> frozenset[int]:
    return ctx.judged if ctx.judged is not None else frozenset(_mentioned(ctx))


def _filters(ctx: DispatchContext) -> tuple[tuple[str, VolunteerFilter], ...]:
    """The rules that block some of the volunteers `ctx` does not judge, in catalogue
    order, each with whom."""
    return tuple((rule.code, f) for rule in ELIGIBILITY if (f := rule.unjudged(ctx)) is not None)


def _first_filter(filters: tuple[tuple[str, VolunteerFilter], ...]) -> ColumnElement[str | None]:
    """SQL: the code of the first of `filters` that holds a volunteer, or NULL."""
    return case(*((Volunteer.id.in_(f.volunteer_ids()), literal(code))
                  for code, f in filters), else_=None)


def _filtered_by(c: Candidate, filters: tuple[tuple[str, VolunteerFilter], ...], task: Task,
                 ctx: DispatchContext) -> str | None:
    """The first of the rules' `filters` that holds `c`, a volunteer `ctx` judges: their
    duties are all loaded, so that rule blocks them."""
    codes = {code for code, _ in filters}
    for rule in ELIGIBILITY:
        if rule.code in codes and rule.eligible(c, task, ctx) is not None:
            return rule.code
    return None


def _unjudged_rule(tags: frozenset[str], category: str | None,
                   filters: tuple[tuple[str, VolunteerFilter], ...], task: Task,
                   ctx: DispatchContext) -> str | None:
    """The first rule that blocks a volunteer `ctx` does not judge, who has `tags` and
    whom `category` (the first of the rules' `filters` to hold them) names, or None."""
    filtered = {code for code, _ in filters}
    nobody = Candidate(0, "", "", tags)  # known to no rule: only the tags count
    for rule in ELIGIBILITY:
        if rule.code in filtered:
            if rule.code == category:
                return rule.code
        elif rule.eligible(nobody, task, ctx) is not None:
            return rule.code
    return None


def _outranked(ranked: list[Ranked], limit: int, fits: set[TagKey], task: Task,
               ctx: DispatchContext, seen: dict[TagKey, frozenset[str]]) -> bool:
    """Whether `limit` of the judged volunteers (`ranked`, best first) score more than
    any volunteer `ctx` does not judge can: then none of those need be read."""
    if len(ranked) < limit:
        return False
    best = max(rank(Candidate(0, "", "", _tags(*key, seen)), task, ctx).points for key in fits)
    return ranked[limit - 1].points > best


def _tags_in(keys: Iterable[TagKey]) -> ColumnElement[bool]:
    return or_(*(and_(Volunteer.skills.is_(None) if skills is None
                      else cast(Volunteer.skills, String) == skills,
                      Volunteer.party_member == party)
                 for skills, party in sorted(keys, key=lambda k: (k[0] or "", k[1]))))


def ranked_candidates(session: Session, task: Task, ctx: DispatchContext, limit: int
                      ) -> tuple[list[Ranked], dict[str, int]]:
    """The best `limit` eligible active volunteers and how many each rule excluded, as
    `eligible_ranked` over every active volunteer would say, without reading them all.

    The volunteers `ctx` judges are read and judged one by one. Any other volunteer has
    no fact but their tags, absences and duties elsewhere, scores like every other such
    volunteer (so they are ranked by id), and is blocked by their tags or by the first
    rule whose `unjudged` filter holds them: the database counts them by tags and first
    filter (one grouped query over the volunteers), the rules judge each such class
    once, and only the first `limit` eligible ones are read.
    """
    return ranked_for_tasks(session, [(task, ctx)], limit)[task.id]


def ranked_for_tasks(session: Session, pairs: Sequence[tuple[Task, DispatchContext]],
                     limit: int) -> dict[int, tuple[list[Ranked], dict[str, int]]]:
    """`ranked_candidates` for several tasks, sharing the queries (a board's top picks)."""
    if not pairs:
        return {}
    judged = {task.id: _judged(ctx) for task, ctx in pairs}
    filters = {task.id: _filters(ctx) for task, ctx in pairs}
    # One column per distinct set of filters (tasks at one site and time share it).
    position: dict[tuple[tuple[str, VolunteerFilter], ...], int] = {}
    for found in filters.values():
        if found:
            position.setdefault(found, len(position))
    firsts = [_first_filter(found) for found in position]
    seen: dict[TagKey, frozenset[str]] = {}

    known: list[tuple[Candidate, TagKey]] = []
    every_judged = frozenset().union(*judged.values())
    if every_judged:
        for i, code, name, skills, party, status in session.execute(
                _candidate_query()
                .where(Volunteer.status == "active", _among(session, Volunteer.id, every_judged))
                .order_by(Volunteer.id)):
            known.append((Candidate(i, code, name, _tags(skills, party, seen), status),
                          (skills, party)))
    inner = (select(cast(Volunteer.skills, String).label("skills"),
                    Volunteer.party_member.label("party"), Volunteer.id,
                    *(first.label(f"filter_{i}") for i, first in enumerate(firsts)))
             .where(Volunteer.status == "active").subquery())
    groups = [c for c in inner.c if c.name != "id"]
    classes = session.execute(select(*groups, func.count(), func.min(inner.c.id),
                                     func.max(inner.c.id)).group_by(*groups)).all()

    out: dict[int, tuple[list[Ranked], Counter[str]]] = {}
    wanted: dict[int, tuple[set[TagKey], int | None]] = {}
    fit_count: dict[int, int] = {}
    for task, ctx in pairs:
        mine, col = judged[task.id], position.get(filters[task.id])
        here = [(c, key) for c, key in known if c.id in mine]
        ranked, excluded = eligible_ranked([c for c, _ in here], task, ctx)
        plain = Counter[tuple[TagKey, str | None]]()
        for skills, party, *cats, n, _, _ in classes:
            plain[((skills, party), None if col is None else cats[col])] += n
        for c, key in here:  # the database counted them too, by the same filters
            plain[(key, _filtered_by(c, filters[task.id], task, ctx))] -= 1
        excluded_by, fits = Counter(excluded), set()
        for (key, category), n in plain.items():
            if n <= 0:
                continue
            rule = _unjudged_rule(_tags(*key, seen), category, filters[task.id], task, ctx)
            if rule is None:
                fits.add(key)
                fit_count[task.id] = fit_count.get(task.id, 0) + n
            else:
                excluded_by[rule] += n
        out[task.id] = (ranked, excluded_by)
        if fits and limit > 0 and not _outranked(ranked, limit, fits, task, ctx, seen):
            wanted[task.id] = (fits, col)

    chosen: dict[int, list[Candidate]] = {tid: [] for tid in wanted}
    if wanted:
        # Read the first eligible ones by id, a range of ids at a time (ranges the
        # database walks by primary key), the first one wide enough to hold `limit` of
        # them three times over at their density; each next one twice as wide.
        lo = min(row[-2] for row in classes)
        hi = max(row[-1] for row in classes)
        density = min(fit_count[tid] for tid in wanted) / (hi - lo + 1)
        after, span = lo - 1, max(PAGE, math.ceil(3 * limit / density))
        # When the tasks share their filters the WHERE clause says it all; otherwise each
        # row says which it passes (the database works those columns out twice).
        shown = firsts if len({col for _, col in wanted.values()}) > 1 else []
        while wanted and after < hi:
            page = session.execute(
                _candidate_query().add_columns(*shown)
                .where(Volunteer.status == "active", Volunteer.id > after,
                       Volunteer.id <= after + span,
                       or_(*(_tags_in(fits) if col is None
                             else and_(firsts[col].is_(None), _tags_in(fits))
                             for fits, col in wanted.values())))
                .order_by(Volunteer.id).limit(PAGE)).all()
            for i, code, name, skills, party, status, *cats in page:
                for tid, (fits, col) in list(wanted.items()):
                    if (i in judged[tid] or (skills, party) not in fits
                            or shown and col is not None and cats[col] is not None):
                        continue
                    chosen[tid].append(Candidate(i, code, name, _tags(skills, party, seen),
                                                 status))
                    if len(chosen[tid]) == limit:
                        del wanted[tid]
            if len(page) == PAGE:
                after = page[-1][0]
            else:
                after, span = after + span, span * 2

    result = {}
    for task, ctx in pairs:
        ranked, excluded_by = out[task.id]
        ranked.extend(rank(c, task, ctx) for c in chosen.get(task.id, []))
        ranked.sort(key=lambda r: r.key)
        result[task.id] = (ranked[:limit], dict(excluded_by))
    return result
