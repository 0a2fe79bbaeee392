"""The rule catalogue: every rule type of `roster-problem/1`, and the implicit ones.

Each class is one rule as a coordinator would say it.  Listed types are looked up by
their `type`; implicit rules (availability, allowed sites, no overlap, personal shift
bounds, demand max, coverage and skills, preferences) are always present.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from solver.i18n import missing_en, skill_label
from solver.problem import Problem, ProblemError, RuleSpec, Slot, Volunteer
from solver.rules.base import Item, Roster, Rule, Text, Violation

if TYPE_CHECKING:
    from solver.model import ModelContext


# ---------------------------------------------------------------------------------------
# Where and when a volunteer may work
# ---------------------------------------------------------------------------------------


class Availability(Rule):
    type = "availability"
    title = Text("只在可用时段排班", "only when available")

    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        return v.available(slot.day, slot.shift)

    def add(self, m: ModelContext) -> None:
        pass  # enforced by eligibility: no variable exists for an unavailable pair

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        return [self.violation(1, f"{self.who(v)} {self.when(d, s).zh} 不可用却被排班",
                               f"{self.who(v)} is unavailable on {self.when(d, s).en}", v, slot)
                for d, s, slot in items if not v.available(d, s)]

    def blocks(self) -> Text:
        return Text("当天不可用", "unavailable that day")


class AllowedSites(Rule):
    type = "allowed_sites"
    title = Text("只在指定站点服务", "only at the volunteer's own sites")

    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        return v.sites is None or slot.site in v.sites

    def add(self, m: ModelContext) -> None:
        pass  # enforced by eligibility

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        out = []
        for _, _, s in items:
            site = self.problem.sites[self.problem.slots[s].site]
            if not self.eligible(v, self.problem.slots[s]):
                out.append(self.violation(1, f"{self.who(v)} 不属于站点 {site.name}",
                                          f"{self.who(v)} may not work at {site.name}", v, s))
        return out


class NoOverlap(Rule):
    type = "no_overlap"
    title = Text("同一时间只在一个岗位", "one post at a time, no overlapping shifts")

    def add(self, m: ModelContext) -> None:
        # Shift intervals form an interval graph: its maximal cliques are the intervals
        # containing some start time, so one AtMostOne per start time is exact.
        p = self.problem
        for v in m.volunteers:
            keys = m.shifts_of(v)
            for d, s in keys:
                t = p.begins(d, s)
                clique = [var for (d2, s2) in keys if p.begins(d2, s2) <= t < p.ends(d2, s2)
                          for var in m.cells(v)[(d2, s2)]]
                if len(clique) > 1:
                    m.model.add_at_most_one(clique)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        p, out = self.problem, []
        for i, (d1, s1, _a) in enumerate(items):
            for d2, s2, b in items[i + 1:]:
                if p.begins(d2, s2) >= p.ends(d1, s1):
                    break
                out.append(self.violation(
                    1, f"{self.who(v)} {self.when(d1, s1).zh} 与 {self.when(d2, s2).zh} 时间重叠",
                    f"{self.who(v)}: {self.when(d1, s1).en} overlaps {self.when(d2, s2).en}",
                    v, b))
        return out

    def blocks(self) -> Text:
        return Text("同一时间已在其他岗位", "already on another post at that time")


class OneShiftPerDay(Rule):
    type = "one_shift_per_day"
    title = Text("每天至多一个班次", "at most one shift per day")

    def __init__(self, problem: Problem, spec: RuleSpec | None = None,
                 except_tags: frozenset[str] = frozenset()) -> None:
        super().__init__(problem, spec)
        self.except_tags = except_tags  # covered by a listed version of this rule

    def applies(self, v: Volunteer) -> bool:
        return super().applies(v) and not (self.except_tags & v.skills)

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            if not self.applies(self.problem.volunteers[v]):
                continue
            by_day: dict[int, list] = defaultdict(list)
            for (d, _s), xs in m.cells(v).items():
                by_day[d].extend(xs)
            for d, xs in by_day.items():
                if len(xs) > 1:
                    if self.hard:
                        m.model.add_at_most_one(xs)
                    else:
                        m.penalise(self.key, self.weight or 0,
                                   m.excess(f"osd{v}_{d}", sum(xs), 1, len(xs)))

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        out = []
        for d, n in sorted(Counter(d for d, _, _ in items).items()):
            if n > 1:
                out.append(self.violation(n - 1, f"{self.who(v)} {self.when(d).zh} 排了 {n} 个班次",
                                          f"{self.who(v)} works {n} shifts on {self.when(d).en}", v))
        return out

    def blocks(self) -> Text:
        return Text("当天已排其他班次", "already works another shift that day")


# ---------------------------------------------------------------------------------------
# Rest and runs
# ---------------------------------------------------------------------------------------


class MinRestHours(Rule):
    type = "min_rest_hours"
    title = Text("两班之间休息时间", "rest between shifts")
    params: ClassVar = {"hours": "int"}

    @property
    def minutes(self) -> int:
        return int(self.p["hours"]) * 60

    def describe(self) -> Text:
        h = self.p["hours"]
        return Text(f"两班之间至少休息 {h} 小时", f"at least {h} hours of rest between shifts")

    def too_close(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        """b starts after a ends but less than the rest time later (overlaps are NoOverlap's)."""
        p = self.problem
        gap = p.begins(*b) - p.ends(*a)
        return 0 <= gap < self.minutes

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            if not self.applies(self.problem.volunteers[v]):
                continue
            keys = m.shifts_of(v)
            p = self.problem
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    if p.begins(*b) >= p.ends(*a) + self.minutes:
                        break  # sorted by start: nothing later is too close to `a`
                    if self.too_close(a, b):
                        la, lb = m.work(v, *a), m.work(v, *b)
                        if la is not None and lb is not None:
                            m.forbid_pair(self, la, lb, f"rest{v}_{a}_{b}")

    def pairs(self, items: list[Item]) -> list[tuple[Item, Item]]:
        out = []
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if self.problem.begins(b[0], b[1]) >= self.problem.ends(a[0], a[1]) + self.minutes:
                    break
                if self.too_close(a[:2], b[:2]):
                    out.append((a, b))
        return out

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        h = self.p["hours"]
        return [self.violation(
            1, f"{self.who(v)} {self.when(*a[:2]).zh} 与 {self.when(*b[:2]).zh} 之间休息不足 {h} 小时",
            f"{self.who(v)}: less than {h} h rest between {self.when(*a[:2]).en} and "
            f"{self.when(*b[:2]).en}", v, b[2]) for a, b in self.pairs(items)]

    def blocks(self) -> Text:
        h = self.p["hours"]
        return Text(f"与相邻班次之间休息不足 {h} 小时", f"less than {h} h rest from another shift")


class MaxConsecutiveDays(Rule):
    type = "max_consecutive_days"
    title = Text("最多连续工作天数", "maximum consecutive working days")
    params: ClassVar = {"days": "int"}

    def describe(self) -> Text:
        k = self.p["days"]
        return Text(f"最多连续工作 {k} 天", f"at most {k} working days in a row")

    def add(self, m: ModelContext) -> None:
        k = int(self.p["days"])
        for v in m.volunteers:
            if not self.applies(self.problem.volunteers[v]):
                continue
            for start in range(0, self.problem.days - k):
                window = [m.works_on(v, d) for d in range(start, start + k + 1)]
                lits = [w for w in window if w is not None]
                if len(lits) <= k:
                    continue
                if self.hard:
                    m.model.add(sum(lits) <= k)
                else:
                    pen = m.model.new_bool_var(f"mcd{v}_{start}")
                    m.model.add(sum(lits) <= k + pen)
                    m.penalise(self.key, self.weight or 0, pen)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        k, out = int(self.p["days"]), []
        days = sorted({d for d, _, _ in items})
        run_start = 0
        for i in range(1, len(days) + 1):
            if i == len(days) or days[i] != days[i - 1] + 1:
                length = i - run_start
                if length > k:
                    first = days[run_start]
                    out.append(self.violation(
                        length - k, f"{self.who(v)} 自 {self.when(first).zh} 起连续工作 {length} 天，超过 {k} 天",
                        f"{self.who(v)} works {length} days in a row from {self.when(first).en} "
                        f"(limit {k})", v))
                run_start = i
        return out

    def blocks(self) -> Text:
        k = self.p["days"]
        return Text(f"将连续工作超过 {k} 天", f"would work more than {k} days in a row")


# ---------------------------------------------------------------------------------------
# Counts
# ---------------------------------------------------------------------------------------


class _WeeklyCount(Rule):
    """Shared by the weekly caps: count (day, shift) pairs matching `counts` per week."""

    def counts(self, shift: int) -> bool:
        return True

    @property
    def limit(self) -> int:
        return int(self.p["count"])

    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        return not (self.filters() and self.applies(v) and self.counts(slot.shift))

    def filters(self) -> bool:
        return self.hard and self.limit == 0

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            if not self.applies(self.problem.volunteers[v]):
                continue
            weeks: dict[int, list] = defaultdict(list)
            for (d, s), xs in m.cells(v).items():
                if self.counts(s):
                    weeks[self.problem.week(d)].extend(xs)
            for w, xs in weeks.items():
                if len(xs) <= self.limit:
                    continue
                if self.hard:
                    m.model.add(sum(xs) <= self.limit)
                else:
                    m.penalise(self.key, self.weight or 0,
                               m.excess(f"{self.type}{v}_{w}", sum(xs), self.limit, len(xs)))

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        per_week = Counter(self.problem.week(d) for d, s, _ in items if self.counts(s))
        out = []
        for w, n in sorted(per_week.items()):
            if n > self.limit:
                first = self.problem.date(7 * w)
                out.append(self.violation(
                    n - self.limit,
                    f"{self.who(v)} {first.month}月{first.day}日起的一周 {self.what.zh} {n} 个，超过 {self.limit} 个",
                    f"{self.who(v)} works {n} {self.what.en} in the week from {first.isoformat()} "
                    f"(limit {self.limit})", v))
        return out

    @property
    def what(self) -> Text:
        return Text("班次", "shifts")

    def describe(self) -> Text:
        return Text(f"每周{self.what.zh}至多 {self.limit} 个", f"at most {self.limit} {self.what.en} a week")

    def blocks(self) -> Text:
        if self.limit == 0:
            return Text(f"不排{self.what.zh}", f"takes no {self.what.en}")
        return Text(f"本周{self.what.zh}已满 {self.limit} 个", f"already has {self.limit} {self.what.en} that week")


class MaxShiftsPerWeek(_WeeklyCount):
    type = "max_shifts_per_week"
    title = Text("每周班次上限", "weekly shift limit")
    params: ClassVar = {"count": "int"}


class MaxShiftPerWeek(_WeeklyCount):
    type = "max_shift_per_week"
    title = Text("每周某班次上限", "weekly limit of one shift type")
    params: ClassVar = {"shift": "shift", "count": "int"}

    def __init__(self, problem: Problem, spec: RuleSpec | None = None) -> None:
        super().__init__(problem, spec)
        self.shift = problem.shift_by_id[self.p["shift"]].index

    def counts(self, shift: int) -> bool:
        return shift == self.shift

    @property
    def what(self) -> Text:
        sh = self.problem.shifts[self.shift]
        return Text(sh.name, f"{sh.id} shifts")


class MaxShifts(Rule):
    """`max_shifts` of each volunteer over the whole horizon."""

    type = "max_shifts"
    title = Text("个人班次上限", "personal maximum of shifts")

    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        return v.max_shifts != 0

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            vol = self.problem.volunteers[v]
            if vol.max_shifts is not None and len(m.by_vol[v]) > vol.max_shifts:
                m.model.add(m.count(v) <= vol.max_shifts)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        n = len(items)
        if v.max_shifts is None or n <= v.max_shifts:
            return []
        return [self.violation(n - v.max_shifts,
                               f"{self.who(v)} 排了 {n} 个班次，超过上限 {v.max_shifts}",
                               f"{self.who(v)} works {n} shifts, above max {v.max_shifts}", v)]

    def blocks(self) -> Text:
        return Text("已达个人班次上限", "already at their maximum number of shifts")


class MinShifts(Rule):
    """`min_shifts` of each volunteer: the one hard rule an empty roster can break."""

    type = "min_shifts"
    title = Text("个人班次下限", "personal minimum of shifts")
    #: judged on whole rosters only: a partial roster is not yet short of anything
    demanding = True

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            vol = self.problem.volunteers[v]
            if vol.min_shifts:
                # Under an assumption literal, so an infeasible roster names who is involved.
                lit = m.model.new_bool_var(f"min{v}")
                m.model.add(m.count(v) >= vol.min_shifts).only_enforce_if(lit)
                m.assumptions[lit.index] = v
                m.model.add_assumption(lit)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        n = len(items)
        if not v.min_shifts or n >= v.min_shifts:
            return []
        return [self.violation(v.min_shifts - n,
                               f"{self.who(v)} 只排了 {n} 个班次，少于下限 {v.min_shifts}",
                               f"{self.who(v)} works {n} shifts, below min {v.min_shifts}", v)]


# ---------------------------------------------------------------------------------------
# Sites
# ---------------------------------------------------------------------------------------


class ClosedLoop(Rule):
    type = "closed_loop"
    title = Text("闭环管理", "closed loop")
    params: ClassVar = {"site_kinds": "site_kinds", "sites": "sites"}
    optional = frozenset({"site_kinds", "sites"})

    @classmethod
    def validate(cls, spec: RuleSpec, shift_ix: Mapping[str, int],
                 site_ix: Mapping[str, int]) -> None:
        super().validate(spec, shift_ix, site_ix)
        if "site_kinds" not in spec.params and "sites" not in spec.params:
            raise ProblemError(spec.path, "closed_loop needs site_kinds or sites")

    def __init__(self, problem: Problem, spec: RuleSpec | None = None) -> None:
        super().__init__(problem, spec)
        kinds = set(self.p.get("site_kinds") or [])
        ids = set(self.p.get("sites") or [])
        self.closed = frozenset(s.index for s in problem.sites if s.kind in kinds or s.id in ids)

    def describe(self) -> Text:
        names = "、".join(self.problem.sites[s].name for s in sorted(self.closed)[:3])
        more = " 等" if len(self.closed) > 3 else ""
        return Text(f"闭环管理：在 {names}{more} 工作者不去其他站点",
                    "closed loop: whoever works at a closed site works at no other site")

    def conflicts(self, sites: set[int]) -> list[tuple[int, int]]:
        ordered = sorted(sites)
        return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]
                if a in self.closed or b in self.closed]

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            if not self.applies(self.problem.volunteers[v]):
                continue
            for a, b in self.conflicts(m.sites_of(v)):
                la, lb = m.works_at(v, a), m.works_at(v, b)
                if la is not None and lb is not None:
                    m.forbid_pair(self, la, lb, f"cl{v}_{a}_{b}")

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        sites = {self.problem.slots[s].site for _, _, s in items}
        out = []
        for a, b in self.conflicts(sites):
            na, nb = self.problem.sites[a].name, self.problem.sites[b].name
            out.append(self.violation(1, f"{self.who(v)} 同时在闭环站点与其他站点工作：{na}、{nb}",
                                      f"{self.who(v)} works at closed-loop {na} and at {nb}", v))
        return out

    def blocks(self) -> Text:
        return Text("闭环管理，已在另一站点工作", "closed loop: already works at another site")


# ---------------------------------------------------------------------------------------
# Fairness and wishes
# ---------------------------------------------------------------------------------------


class Balance(Rule):
    type = "balance"
    title = Text("工作量均衡", "balanced workload")
    soft_only = True

    def describe(self) -> Text:
        return Text("工作量均衡：每人班次数的平方和越小越好",
                    "balance: the sum of squared shift counts is kept small")

    def add(self, m: ModelContext) -> None:
        # count^2 = sum_k (2k-1)·[count >= k]: the ordered indicators make the convex
        # cost exact, and its LP relaxation stays tight (a useful bound).
        for v in m.volunteers:
            vol = self.problem.volunteers[v]
            xs = [var for _, var in m.by_vol[v]]
            if not xs or not self.applies(vol):
                continue
            upper = min(len(xs), len(m.shifts_of(v)), vol.max_shifts or len(xs))
            steps = [m.model.new_bool_var(f"bal{v}_{k}") for k in range(1, upper + 1)]
            for a, b in zip(steps, steps[1:], strict=False):
                m.model.add_implication(b, a)
            m.model.add(sum(steps) == sum(xs))
            for k, y in enumerate(steps, start=1):
                m.penalise(self.key, (self.weight or 0) * (2 * k - 1), y)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        n = len(items)
        if not n:
            return []
        return [self.violation(n * n, f"{self.who(v)} 共 {n} 个班次（均衡代价 {n}²）",
                               f"{self.who(v)} works {n} shifts (balance cost {n}²)", v)]


class Preferences(Rule):
    type = "preferences"
    title = Text("个人意愿", "personal preferences")

    def __init__(self, problem: Problem, spec: RuleSpec | None = None) -> None:
        super().__init__(problem, spec)
        self.weight = 1  # soft; each preference carries its own weight

    def matches(self, pref_day: int, pref_shift: int | None, pref_post: int | None,
                slot: Slot) -> bool:
        return (slot.day == pref_day and (pref_shift is None or slot.shift == pref_shift)
                and (pref_post is None or slot.post == pref_post))

    def add(self, m: ModelContext) -> None:
        for v in m.volunteers:
            vol = self.problem.volunteers[v]
            for pr in vol.preferences:
                xs = [var for s, var in m.by_vol[v]
                      if self.matches(pr.day, pr.shift, pr.post, self.problem.slots[s])]
                if not xs:
                    if pr.want:
                        m.penalise(self.key, pr.weight, 1)
                    continue
                hit = m.any_of(xs, f"pref{v}_{pr.index}")
                assert hit is not None
                m.penalise(self.key, pr.weight, 1 - hit if pr.want else hit)

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        out = []
        for pr in v.preferences:
            hit = any(self.matches(pr.day, pr.shift, pr.post, self.problem.slots[s])
                      for _, _, s in items)
            if hit != pr.want:
                what = self.when(pr.day, pr.shift)
                zh = f"{self.who(v)} {'希望' if pr.want else '不希望'}在 {what.zh} 上班"
                en = f"{self.who(v)} {'wanted' if pr.want else 'did not want'} {what.en}"
                out.append(Violation(self.key, False, 1, pr.weight, Text(zh, en), v.id))
        return out


# ---------------------------------------------------------------------------------------
# Demand
# ---------------------------------------------------------------------------------------


class DemandMax(Rule):
    type = "demand_max"
    title = Text("岗位人数上限", "no more people than a post asks for")
    per_volunteer = False

    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        return slot.max > 0

    def add(self, m: ModelContext) -> None:
        for s in m.slots:
            xs = [var for _, var in m.by_slot[s]]
            if len(xs) > self.problem.slots[s].max:
                m.model.add(sum(xs) <= self.problem.slots[s].max)

    def check(self, roster: Roster) -> list[Violation]:
        out = []
        for s, vols in roster.by_slot.items():
            slot = self.problem.slots[s]
            if len(vols) > slot.max:
                label = self.problem.slot_label(slot, "zh"), self.problem.slot_label(slot, "en")
                out.append(self.violation(len(vols) - slot.max,
                                          f"{label[0]} 排了 {len(vols)} 人，上限 {slot.max}",
                                          f"{label[1]}: {len(vols)} people, max {slot.max}", slot=s))
        return out


class Coverage(Rule):
    """Missing people below `min`, and missing people with each required skill."""

    type = "coverage"
    title = Text("岗位需求覆盖", "cover every post's demand and skills")
    per_volunteer = False

    def __init__(self, problem: Problem, spec: RuleSpec | None = None) -> None:
        super().__init__(problem, spec)
        self.weight = problem.coverage_weight

    @property
    def key(self) -> str:
        return "coverage"

    def add(self, m: ModelContext) -> None:
        vols = self.problem.volunteers
        for s in m.slots:
            slot = self.problem.slots[s]
            pairs = m.by_slot[s]
            for skill, need in (("", slot.min), *slot.requires):
                xs = [var for v, var in pairs if not skill or skill in vols[v].skills]
                if need <= 0:
                    continue
                if len(xs) == 0:
                    m.penalise(self.key, self.weight or 0, need)
                else:
                    m.penalise(self.key, self.weight or 0,
                               m.excess(f"short{s}_{skill}", need - sum(xs), 0, need))

    def shortfalls(self, roster: Roster) -> list[tuple[int, str | None, int]]:
        """(slot, skill or None, missing) for every uncovered requirement."""
        p = self.problem
        return [(slot.index, skill, n) for slot in p.slots
                for skill, n in p.missing(slot.index, roster.by_slot.get(slot.index, []))]

    def check(self, roster: Roster) -> list[Violation]:
        out = []
        for s, skill, missing in self.shortfalls(roster):
            slot = self.problem.slots[s]
            who = skill_label(skill)
            out.append(self.violation(
                missing, f"{self.problem.slot_label(slot, 'zh')} 缺 {missing} 名{who.zh}",
                f"{self.problem.slot_label(slot, 'en')}: {missing_en(missing, skill)}", slot=s))
        return out


#: Types that may be listed in `rules[]`.
LISTED: dict[str, type[Rule]] = {cls.type: cls for cls in (
    OneShiftPerDay, MinRestHours, MaxConsecutiveDays, MaxShiftsPerWeek, MaxShiftPerWeek,
    ClosedLoop, Balance)}

#: Always present, in the order the validator reports them.
IMPLICIT: tuple[type[Rule], ...] = (Availability, AllowedSites, NoOverlap, MaxShifts,
                                    MinShifts, DemandMax, Coverage, Preferences)


def instantiate(problem: Problem) -> list[Rule]:
    """The rules in force for a problem: implicit ones, then the listed ones in order."""
    rules: list[Rule] = [cls(problem) for cls in IMPLICIT]
    listed = [LISTED[spec.type](problem, spec) for spec in problem.rules]
    # One shift a day is hard even when not listed; a listed version replaces it only
    # for the volunteers it applies to.
    own = [r for r in listed if isinstance(r, OneShiftPerDay)]
    if not any(r.applies_to is None for r in own):
        rules.append(OneShiftPerDay(problem, except_tags=frozenset(
            r.applies_to for r in own if r.applies_to is not None)))
    return rules + listed
