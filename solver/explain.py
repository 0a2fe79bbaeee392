"""Why a requirement stayed uncovered, and why hard rules contradict each other.

Reasons are counted over the people who could in principle take the slot (allowed at the
site, with the skill), each classified by the first rule that stops them, in words a
coordinator can act on: "万家丽南卡口 车辆查验 4月5日 夜班 缺 1 名医护：可排的 3 名医护中
2 人当天不可用，1 人与相邻班次之间休息不足 12 小时".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ortools.sat.python import cp_model

from solver.greedy import eligible_pairs, unary
from solver.i18n import missing_en, skill_label
from solver.model import build
from solver.problem import Problem, Volunteer
from solver.rules import Roster, Rule, Text
from solver.rules.catalogue import AllowedSites, MinShifts
from solver.validate import volunteer_cost


def explain_unmet(problem: Problem, rules: list[Rule], roster: Roster) -> list[dict[str, Any]]:
    """One `unmet` entry per uncovered requirement, with `reason` (zh) and `reason_en`."""
    from solver.rules.catalogue import Coverage

    coverage = next(r for r in rules if isinstance(r, Coverage))
    allowed = next(r for r in rules if isinstance(r, AllowedSites))
    blockers = [r for r in unary(rules) if not isinstance(r, AllowedSites)]
    by_site: dict[int, list[int]] = defaultdict(list)
    anywhere = [v.index for v in problem.volunteers if v.sites is None]
    for vol in problem.volunteers:
        for s in vol.sites or ():
            by_site[s].append(vol.index)
    out = []
    for s, skill, missing in coverage.shortfalls(roster):
        slot = problem.slots[s]
        here = set(roster.by_slot.get(s, []))
        reasons: Counter[Text] = Counter()
        candidates = 0
        for v in by_site[slot.site] + anywhere:
            vol = problem.volunteers[v]
            if v in here or (skill and skill not in vol.skills) or not allowed.eligible(vol, slot):
                continue
            candidates += 1
            blocker = next((r for r in blockers if not r.eligible(vol, slot)), None)
            if blocker is None:
                items = sorted(roster.by_volunteer.get(v, []) + [(slot.day, slot.shift, s)],
                               key=lambda it: problem.begins(it[0], it[1]))
                blocker, _ = volunteer_cost(rules, problem, v, items)
            reasons[blocker.blocks() if blocker else _FREE] += 1
        who = skill_label(skill)
        label_zh, label_en = problem.slot_label(slot, "zh"), problem.slot_label(slot, "en")
        if candidates == 0:
            zh = f"没有可在此站点服务的{who.zh}"
            en = f"no {who.en} may work at this site"
        else:
            parts = sorted(reasons.items(), key=lambda kv: -kv[1])
            zh = f"可排的 {candidates} 名{who.zh}中 " + "，".join(
                f"{n} 人{t.zh}" for t, n in parts)
            en = f"of {candidates} {who.en} who may work here, " + ", ".join(
                f"{n} {t.en}" for t, n in parts)
        reason = f"{label_zh} 缺 {missing} 名{who.zh}：{zh}"
        out.append({
            "post": problem.posts[slot.post].id, "date": problem.iso(slot.day),
            "shift": problem.shifts[slot.shift].id, "missing": missing, "skill": skill,
            "reason": reason,
            "reason_zh": reason,
            "reason_en": f"{label_en}: {missing_en(missing, skill)}; {en}",
        })
    return out


_FREE = Text("可排但未排（其他约束代价更高或求解时间不足）",
             "could be assigned but were not (higher cost elsewhere, or out of time)")


def explain_infeasible(problem: Problem, rules: list[Rule],
                       volunteers: list[int]) -> list[dict[str, Any]]:
    """For each volunteer whose `min_shifts` cannot be met: what limits them, and by how much.

    Each volunteer is solved alone (maximum shifts under the hard rules); a rule is named
    when dropping it lets the volunteer reach the minimum.  When everyone could reach it
    alone, the conflict is between people competing for the same places (demand max).
    """
    hard = [r for r in rules if r.hard and r.per_volunteer and not isinstance(r, MinShifts)]
    pairs = eligible_pairs(problem, rules)
    out = []
    for v in volunteers:
        vol = problem.volunteers[v]
        mine = {k: None for k in pairs if k[0] == v}

        best = _most_shifts(problem, hard, vol, mine)
        need = vol.min_shifts or 0
        if best >= need:
            zh = f"{vol.name}({vol.id}) 单独可排 {best} 班，但与他人争夺有限名额，无法满足最少 {need} 班"
            en = (f"{vol.id} could work {best} shifts alone, but competes with others for "
                  f"limited places and cannot reach the minimum of {need}")
            keys = ["demand_max", "min_shifts"]
        else:
            binding = [r for r in hard
                       if _most_shifts(problem, [q for q in hard if q is not r], vol, mine) > best]
            names = [r.describe() for r in binding] or [Text("可用时段与站点", "availability and sites")]
            keys = [r.key for r in binding] or ["availability", "allowed_sites"]
            zh = (f"{vol.name}({vol.id}) 最多只能排 {best} 班，少于最少 {need} 班；受限于："
                  + "；".join(n.zh for n in names))
            en = (f"{vol.id} can work at most {best} shifts, below the minimum of {need}; "
                  "limited by: " + "; ".join(n.en for n in names))
        out.append({"volunteer": vol.id, "min_shifts": need, "achievable": best,
                    "rules": ["min_shifts", *keys], "reason": zh, "reason_en": en})
    return out


def _most_shifts(problem: Problem, active: list[Rule], vol: Volunteer,
                 pairs: dict[tuple[int, int], None]) -> int:
    """The most shifts `vol` could work alone under the `active` hard rules."""
    v = vol.index
    ctx = build(problem, active, [v], sorted({s for _, s in pairs}), pairs)
    if vol.max_shifts is not None:
        ctx.model.add(ctx.count(v) <= vol.max_shifts)
    ctx.model.maximize(ctx.count(v))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 5
    solver.parameters.num_workers = 1
    solver.solve(ctx.model)
    return int(solver.objective_value)
