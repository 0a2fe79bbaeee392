"""The validator: every rule's own check over a finished roster, and nothing else.

It never looks at how the roster was made, so it also checks rosters edited by hand,
imported from elsewhere or produced by another solver.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from solver.problem import SOLUTION_FORMAT, Problem, ProblemError
from solver.rules import Roster, Rule, Text, Violation, instantiate


@dataclass
class Report:
    """The outcome of checking a roster: hard violations, the objective and its parts."""

    roster: Roster
    violations: list[Violation]

    @property
    def hard(self) -> list[Violation]:
        return [v for v in self.violations if v.hard]

    @property
    def ok(self) -> bool:
        return not self.hard

    @property
    def objective(self) -> int:
        return sum(v.cost for v in self.violations if not v.hard)

    def penalties(self) -> list[dict[str, Any]]:
        """Cost by rule, largest first, in the solution's `penalties` shape."""
        by_rule: dict[str, int] = defaultdict(int)
        for v in self.violations:
            if not v.hard and v.cost:
                by_rule[v.rule] += v.cost
        return [{"rule": k, "cost": c} for k, c in sorted(by_rule.items(), key=lambda kv: -kv[1])]


def parse_assignments(problem: Problem, doc: Any) -> list[tuple[int, int]]:
    """Read a solution document's assignments as (volunteer, slot) pairs.

    An assignment that names an unknown volunteer, post or shift, or a (post, shift, date)
    that no demand entry asks for, is a format error naming its place.
    """
    if not isinstance(doc, dict):
        raise ProblemError("", "a solution must be a JSON object")
    if doc.get("format", SOLUTION_FORMAT) != SOLUTION_FORMAT:
        raise ProblemError("format", f"expected {SOLUTION_FORMAT!r}, got {doc.get('format')!r}")
    items = doc.get("assignments")
    if not isinstance(items, list):
        raise ProblemError("assignments", "expected a list")
    return [parse_assignment(problem, a, f"assignments[{i}]") for i, a in enumerate(items)]


def parse_assignment(problem: Problem, a: Any, path: str) -> tuple[int, int]:
    """One assignment object as a (volunteer, slot) pair; errors name `path`."""
    if not isinstance(a, dict):
        raise ProblemError(path, "expected an object")
    vol = problem.volunteer_by_id.get(_key(a.get("volunteer")))
    if vol is None:
        raise ProblemError(f"{path}.volunteer", f"unknown volunteer {a.get('volunteer')!r}")
    post = problem.post_by_id.get(_key(a.get("post")))
    if post is None:
        raise ProblemError(f"{path}.post", f"unknown post {a.get('post')!r}")
    shift = problem.shift_by_id.get(_key(a.get("shift")))
    if shift is None:
        raise ProblemError(f"{path}.shift", f"unknown shift {a.get('shift')!r}")
    day = problem.day_of(_key(a.get("date")))
    if day is None:
        raise ProblemError(f"{path}.date", f"{a.get('date')!r} is not a date in the horizon")
    slot = problem.slot_at.get((post.index, shift.index, day))
    if slot is None:
        raise ProblemError(path, f"no demand asks for {post.id} {shift.id} on {a['date']}")
    return vol.index, slot


def _key(value: Any) -> str:
    """An id as written, or "" (found nowhere) when it is not a string at all."""
    return value if isinstance(value, str) else ""


def check(problem: Problem, assignments: list[tuple[int, int]],
          rules: list[Rule] | None = None) -> Report:
    """Check a roster against every rule in force; the report carries the objective."""
    roster = Roster(problem, assignments)
    violations: list[Violation] = []
    for rule in rules if rules is not None else instantiate(problem):
        violations.extend(rule.check(roster))
    # The same person twice on one slot is a hard error of the roster itself.
    seen: set[tuple[int, int]] = set()
    for v, s in assignments:
        if (v, s) in seen:
            vol = problem.volunteers[v]
            violations.append(Violation("duplicate", True, 1, 0, Text(
                f"{vol.name}({vol.id}) 在 {problem.slot_label(problem.slots[s], 'zh')} 重复出现",
                f"{vol.id} appears twice on {problem.slot_label(problem.slots[s], 'en')}"),
                vol.id, s))
        seen.add((v, s))
    return Report(roster, violations)


def volunteer_cost(rules: list[Rule], problem: Problem, v: int,
                   items: list[tuple[int, int, int]]) -> tuple[Rule | None, int]:
    """(first hard rule broken, soft cost) of one volunteer's (possibly partial) work list.

    Demanding rules (`min_shifts`) are left out: a partial roster is not short yet.

    Used by the greedy construction and by unmet-slot explanations: only volunteer-scoped
    rules take part, so it is cheap enough to call per candidate.
    """
    vol = problem.volunteers[v]
    cost = 0
    for rule in rules:
        if not rule.per_volunteer or rule.demanding or not rule.applies(vol):
            continue
        found = rule.check_volunteer(vol, items)
        if not found:
            continue
        if rule.hard:
            if any(f.hard for f in found):
                return rule, cost
        cost += sum(f.cost for f in found)
    return None, cost
