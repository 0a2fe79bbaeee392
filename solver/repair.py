"""Minimal-change repair of a published roster when volunteers drop out (临时缺勤调整).

When someone falls ill after the roster is published, the secretary needs a new roster
that differs from the published one as little as possible: people have planned around
their shifts.  `repair` therefore

1. marks each absent volunteer unavailable in their window (a hard rule, so the
   validator and the unmet-slot reasons know it too) and vacates their shifts there;
2. keeps the past (before `frozen_before`) exactly as published;
3. re-optimises only a neighbourhood of the vacated shifts with CP-SAT: the people who
   could take a vacated shift (ring 1) are free over those shifts and their own; when a
   shift stays uncovered, the people who could take the shifts of ring 1 join (ring 2,
   a chain move), and so on up to `MAX_DEPTH`.  Everyone else stays fixed, and gaps
   the published roster already had stay as they were (unless `fill_gaps`);
4. prices every added or removed assignment of the published roster at `change_weight`,
   on top of the roster's own objective, so a free volunteer is preferred to a chain move
   and nothing is reshuffled for a small soft gain;
5. returns a `roster-solution/1` document plus `changes`, the diff a secretary reads:
   who replaces whom, where and when.

`check_change` checks one manual edit the same way the validator checks a roster: every
rule the edit newly breaks, hard (blocks the edit) or soft (shown as a warning).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from solver.greedy import eligible_pairs, unary
from solver.model import ModelContext
from solver.problem import Problem, ProblemError, Slot, parse_problem
from solver.rules import Rule, instantiate
from solver.search import fixed_solve, submodel
from solver.solve import roster_bound, solution_document
from solver.validate import Report, check, parse_assignment, parse_assignments

Pair = tuple[int, int]

#: Cost of each assignment of the published roster that is added or removed.
#:
#: The scale: one missing person costs `coverage_weight` (1000 by default); soft rules
#: cost tens (a night above the weekly two: 20; balance 2n+1 ≈ 11-21 for one more shift of
#: someone with 5-10; preferences 1-10).  At 100, filling a vacated shift with a free
#: person (1 change, 100) or by a chain move (move = remove + add, plus the one who fills
#: the gap: 300) still pays well against 1000, each extra link costs as much as five
#: balance steps, so the shortest chain wins; and a swap that only improves soft costs
#: must gain more than 200, which ordinary fairness or preference gains never do.  With a
#: smaller `coverage_weight`, keep `change_weight` at most about a third of it.
CHANGE_WEIGHT = 100
#: Rings of people around the vacated shifts tried at most (3: chains of three people).
MAX_DEPTH = 3
#: Share of the time limit (at most 1 s) kept for the final check and explanations.
FINISH = 0.15


@dataclass(frozen=True)
class Absence:
    """A volunteer who cannot work from `start` to `end` (inclusive ISO dates; None: open)."""

    volunteer: str
    start: str | None = None
    end: str | None = None
    #: where the absence was written, for error messages (e.g. "--absent v1:2022-04-05")
    path: str = ""

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> Absence:
        """Read `VOLUNTEER[:FROM_DATE[:TO_DATE]]` (empty parts are open ends)."""
        parts = text.split(":")
        where = path if path is not None else f"--absent {text}"
        if len(parts) > 3 or not parts[0]:
            raise ProblemError(where, "expected VOLUNTEER[:FROM_DATE[:TO_DATE]]")
        start = parts[1] if len(parts) > 1 and parts[1] else None
        end = parts[2] if len(parts) > 2 and parts[2] else None
        return cls(parts[0], start, end, where)


@dataclass(frozen=True)
class _Window:
    volunteer: int
    first: int  # first absent day index (inclusive)
    last: int  # last absent day index (inclusive)


def _day(problem: Problem, value: Any, path: str) -> int:
    """A date of the horizon as a day index, or a ProblemError naming `path`."""
    if not isinstance(value, str):
        raise ProblemError(path, f"expected a date YYYY-MM-DD, got {value!r}")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ProblemError(path, f"invalid date {value!r} (expected YYYY-MM-DD)") from None
    day = problem.day_of(value)
    if day is None:
        raise ProblemError(path, f"date {value} is outside the horizon "
                           f"{problem.start.isoformat()} + {problem.days} days")
    return day


def _windows(problem: Problem, absences: Sequence[Absence]) -> list[_Window]:
    """Each absence as day indices; errors name the absence (`absences[0].from`, or the
    command-line argument it came from)."""
    out = []
    for i, a in enumerate(absences):
        def where(part: str, a: Absence = a, i: int = i) -> str:
            return a.path or f"absences[{i}].{part}"

        vol = problem.volunteer_by_id.get(a.volunteer)
        if vol is None:
            raise ProblemError(where("volunteer"), f"unknown volunteer {a.volunteer!r}")
        first = 0 if a.start is None else _day(problem, a.start, where("from"))
        last = problem.days - 1 if a.end is None else _day(problem, a.end, where("to"))
        if last < first:
            raise ProblemError(where("to"), f"the absence ends ({a.end}) before it starts "
                               f"({a.start})")
        out.append(_Window(vol.index, first, last))
    return out


def _with_absences(problem: Problem, windows: Iterable[_Window], frozen: int) -> Problem:
    """The problem with each absent volunteer unavailable in the unfrozen part of their window.

    The past is what happened: an absence is not written back before `frozen`.
    """
    vols = list(problem.volunteers)
    for w in windows:
        days = frozenset(range(max(w.first, frozen), w.last + 1))
        vols[w.volunteer] = dataclasses.replace(
            vols[w.volunteer], unavailable_days=vols[w.volunteer].unavailable_days | days)
    return dataclasses.replace(problem, volunteers=vols)


def _excuse_minimums(problem: Problem, kept: dict[int, int], losers: Iterable[int]) -> Problem:
    """Lower `min_shifts` of those who lost shifts to what they keep: the absence excuses it."""
    vols = list(problem.volunteers)
    changed = False
    for v in losers:
        mn = vols[v].min_shifts
        if mn and kept.get(v, 0) < mn:
            vols[v] = dataclasses.replace(vols[v], min_shifts=kept.get(v, 0) or None)
            changed = True
    return dataclasses.replace(problem, volunteers=vols) if changed else problem


# ---------------------------------------------------------------------------------------
# The neighbourhood
# ---------------------------------------------------------------------------------------


class _Neighbourhood:
    """Rings of people and slots around the vacated shifts, grown on demand.

    Ring 1: who could take a vacated slot.  Ring k+1: who could take a future slot that a
    ring-k person works now (a chain move would free it).  Eligibility is computed only for
    the ring slots, so a 900-volunteer district costs what the neighbourhood costs.
    """

    def __init__(self, problem: Problem, rules: list[Rule], start: set[Pair],
                 vacated: set[int], frozen: int) -> None:
        self.problem, self.rules, self.start, self.frozen = problem, rules, start, frozen
        self.pairs: dict[Pair, None] = {}
        self.cands: dict[int, list[int]] = defaultdict(list)
        self.mine: dict[int, list[int]] = defaultdict(list)  # volunteer -> future slots
        for v, s in start:
            if problem.slots[s].day >= frozen:
                self.mine[v].append(s)
        self.people: set[int] = set()
        self.slots: set[int] = set()
        self.frontier: set[int] = set(vacated)
        self.depth = 0

    def widen(self) -> bool:
        """Add the next ring; False when it brings neither people nor slots.

        A ring may bring only slots: ring-1 people who could cover each other's shifts.
        """
        if not self.frontier:
            return False
        pairs = eligible_pairs(self.problem, self.rules, self.frontier)
        for v, s in pairs:
            self.cands[s].append(v)
        self.pairs.update(pairs)
        self.slots |= self.frontier
        new = {v for s in self.frontier for v in self.cands[s]} - self.people
        self.people |= new
        self.frontier = {s for v in self.people for s in self.mine[v]} - self.slots
        self.depth += 1
        return True

    def free(self) -> set[Pair]:
        """What may change: ring people on ring slots, and their own future shifts."""
        days = self.problem.slots
        free = {(v, s) for v, s in self.pairs
                if v in self.people and days[s].day >= self.frozen}
        free |= {(v, s) for v in self.people for s in self.mine[v]}
        return free


def _keep_old_gaps(problem: Problem, ctx: ModelContext, start: set[Pair],
                   vacated: set[int]) -> None:
    """Leave the gaps the published roster already had as they were.

    A repair answers for the vacated shifts; filling older gaps on the way would change
    assignments nobody asked to change (and is the solver's job), so on every other slot
    that falls short, the short head count or skill count may not grow.
    """
    vols = problem.volunteers
    here: dict[int, list[int]] = defaultdict(list)
    for v, s in start:
        here[s].append(v)
    for s in ctx.slots:
        if s in vacated:
            continue
        slot, people = problem.slots[s], here.get(s, [])
        for skill, need in (("", slot.min), *slot.requires):
            have = sum(1 for v in people if not skill or skill in vols[v].skills)
            if have < need:
                ctx.model.add(sum(var for v, var in ctx.by_slot[s]
                                  if not skill or skill in vols[v].skills) <= have)


def _solve_neighbourhood(problem: Problem, rules: list[Rule], free: set[Pair],
                         start: set[Pair], incumbent: set[Pair], change_weight: int,
                         deadline: float, share: int, workers: int, seed: int,
                         vacated: set[int] | None) -> tuple[set[Pair] | None, str]:
    """Re-optimise `free` (plus change costs against `start`) from the incumbent roster,
    for 1/`share` of the time left once the model is built.

    `vacated`: the slots the repair is for; other gaps are kept (None: fill them too).
    """
    ctx = submodel(problem, rules, incumbent, free)
    for key in sorted(free):
        var = ctx.x[key]
        ctx.penalise("changes", change_weight, 1 - var if key in start else var)
    if vacated is not None:
        _keep_old_gaps(problem, ctx, start, vacated)
    ctx.finish()
    before = fixed_solve(ctx, incumbent)
    if before is not None:
        values, _ = before
        hint = ctx.model.proto.solution_hint
        hint.vars.extend(range(len(values)))
        hint.values.extend(values)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, (deadline - time.monotonic()) / share)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    # Small neighbourhoods close much sooner with the full linear relaxation (as in LNS).
    solver.parameters.linearization_level = 2
    status = solver.solve(ctx.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, solver.status_name(status)
    chosen = {k for k in free if solver.boolean_value(ctx.x[k])}
    return (incumbent - free) | chosen, solver.status_name(status)


def _short(problem: Problem, roster: set[Pair], slots: Iterable[int]) -> list[int]:
    """The slots among `slots` whose head count or skills fall short in `roster`."""
    people: dict[int, list[int]] = defaultdict(list)
    for v, s in roster:
        people[s].append(v)
    vols = problem.volunteers
    out = []
    for s in slots:
        slot, here = problem.slots[s], people.get(s, [])
        if len(here) < slot.min or any(sum(1 for v in here if k in vols[v].skills) < n
                                       for k, n in slot.requires):
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------
# repair
# ---------------------------------------------------------------------------------------


def repair(problem: Problem | dict[str, Any], solution: dict[str, Any],
           absences: Sequence[Absence], *, frozen_before: str | None = None,
           time_limit: float = 10.0, workers: int = 1, change_weight: int = CHANGE_WEIGHT,
           fill_gaps: bool = False, seed: int = 0) -> dict[str, Any]:
    """A new roster for `problem` that keeps `solution` wherever the absences allow.

    `frozen_before` (ISO date): assignments before it are the past and never change; by
    default the earliest absence start (what happened before someone fell ill stands).
    An absence cannot reach into the frozen past.  Gaps the published roster already had
    stay as they were unless `fill_gaps` (then the neighbourhood may fill them too, at
    `change_weight` per change).  `workers`: CP-SAT workers per ring model; one is the
    default because these small models close much sooner with one worker's full linear
    relaxation than with a portfolio (on a 900-volunteer district, ring 1 was proven
    optimal in 0.5 s with one worker and not in 3 s with two).  The result is a `roster-solution/1`
    document for the problem with the absences applied, plus `changes` (the diff against
    `solution`) and `repair` (a summary).  Malformed input raises `ProblemError` naming
    the place.
    """
    t0 = time.monotonic()
    if not isinstance(problem, Problem):
        problem = parse_problem(problem)
    if isinstance(change_weight, bool) or not isinstance(change_weight, int) or change_weight < 0:
        raise ProblemError("change_weight", f"expected a whole number >= 0, got {change_weight!r}")
    original = set(parse_assignments(problem, solution))
    windows = _windows(problem, absences)
    if frozen_before is not None:
        frozen = _day(problem, frozen_before, "frozen_before")
    else:
        frozen = min((w.first for w in windows), default=0)
    adj = _with_absences(problem, windows, frozen)
    rules = instantiate(adj)
    # Vacated: future assignments the absences (or the problem itself) no longer allow.
    filters = unary(rules)
    vacated = {(v, s) for v, s in original if adj.slots[s].day >= frozen and not all(
        r.eligible(adj.volunteers[v], adj.slots[s]) for r in filters)}
    start = original - vacated
    kept: dict[int, int] = defaultdict(int)
    for v, _ in start:
        kept[v] += 1
    excused = _excuse_minimums(adj, kept, {v for v, _ in vacated})
    if excused is not adj:
        adj, rules = excused, instantiate(excused)
    best, depth = set(start), 0
    vacated_slots = {s for _, s in vacated}
    if vacated_slots:
        # The final check and the unmet reasons take their time after the search.
        deadline = t0 + time_limit - min(1.0, FINISH * time_limit)
        best, depth = _widen(adj, rules, start, vacated_slots, frozen, deadline,
                             workers, seed, change_weight, fill_gaps)
    report = check(adj, sorted(best), rules)
    if not report.ok:
        # The neighbourhood keeps every hard rule of a valid roster, so the published
        # roster itself should be at fault (checked only now: a full check costs time).
        broken = check(adj, sorted(start), rules).hard
        if not broken:
            raise AssertionError("repair broke a hard rule: " + report.hard[0].message.en)
        raise ProblemError("solution", f"the roster breaks a hard rule outside the absences: "
                           f"[{broken[0].rule}] {broken[0].message.en}")
    bound = _bound(adj, rules, report, solution, excused is adj)
    doc = solution_document(adj, rules, sorted(best),
                            "OPTIMAL" if report.objective <= bound else "FEASIBLE", bound,
                            time.monotonic() - t0, report)
    doc["changes"] = diff(adj, original, best, {v for v, _ in vacated})
    doc["repair"] = _summary(adj, windows, frozen, vacated, doc, depth, change_weight)
    return doc


def _bound(problem: Problem, rules: list[Rule], report: Report, solution: dict[str, Any],
           same_minimums: bool) -> int:
    """A valid lower bound for the repaired problem.

    Absences only take options away, so the published solution's own bound stays valid
    and costs nothing; when an absence excuses a `min_shifts` (which adds options) or the
    solution carries no bound, it is recomputed from the solver's cheap bounds.
    """
    claimed = solution.get("bound")
    if same_minimums and isinstance(claimed, int) and not isinstance(claimed, bool):
        return min(report.objective, max(0, claimed))
    return roster_bound(problem, rules, eligible_pairs(problem, rules), report)


def _summary(problem: Problem, windows: list[_Window], frozen: int, vacated: set[Pair],
             doc: dict[str, Any], depth: int, change_weight: int) -> dict[str, Any]:
    """The `repair` block: what was vacated, how many other assignments changed, and which
    vacated shifts stay uncovered (their reasons are in `unmet`)."""
    p = problem

    def row(v: int, s: int) -> tuple[str, str, str, str]:
        slot = p.slots[s]
        return (p.volunteers[v].id, p.iso(slot.day), p.shifts[slot.shift].id,
                p.posts[slot.post].id)

    gone = {row(v, s) for v, s in vacated}
    places = {r[1:] for r in gone}
    others = [c for c in doc["changes"] if not (
        c["action"] == "removed" and (c["volunteer"], c["date"], c["shift"], c["post"]) in gone)]
    return {
        "absences": [{"volunteer": p.volunteers[w.volunteer].id,
                      "from": p.iso(max(w.first, frozen)), "to": p.iso(w.last)}
                     for w in windows if max(w.first, frozen) <= w.last],
        "frozen_before": p.iso(frozen),
        "vacated": len(vacated),
        "changed_others": len(others),
        "depth": depth,
        "change_weight": change_weight,
        "uncovered": [u for u in doc["unmet"] if (u["date"], u["shift"], u["post"]) in places],
    }


def _widen(problem: Problem, rules: list[Rule], start: set[Pair], vacated: set[int],
           frozen: int, deadline: float, workers: int, seed: int,
           change_weight: int, fill_gaps: bool) -> tuple[set[Pair], int]:
    """Repair in growing rings until the vacated slots are covered (or nothing more helps).

    A ring is widened only when its model was solved to optimality and still leaves a
    vacated slot short: then the shortage is not for lack of search time but of people.
    """
    hood = _Neighbourhood(problem, rules, start, vacated, frozen)
    best = set(start)
    keep = None if fill_gaps else vacated
    while hood.depth < MAX_DEPTH and hood.widen():
        free = hood.free()
        rings_left = MAX_DEPTH - hood.depth + 1
        for attempt in range(2):
            # A ring out of time (not out of people) gets a second go from where it
            # stopped, with part of the time kept for wider rings.
            found, status = _solve_neighbourhood(problem, rules, free, start, best,
                                                 change_weight, deadline,
                                                 max(1, rings_left - attempt), workers, seed,
                                                 keep)
            best = found if found is not None else best
            if status not in ("FEASIBLE", "UNKNOWN") or not _short(problem, best, vacated):
                break
        if status != "OPTIMAL" or not _short(problem, best, vacated):
            break
    return best, hood.depth


# ---------------------------------------------------------------------------------------
# The diff a secretary reads
# ---------------------------------------------------------------------------------------


def diff(problem: Problem, before: set[Pair], after: set[Pair],
         absent: Iterable[int] = ()) -> list[dict[str, Any]]:
    """The changes from `before` to `after`: removed, added, and moved (same person, same
    date, another post or shift), each with whom it replaces and why, in time order.

    `replaces` is the person who left that post and shift (the absent volunteer, or a
    colleague moved away to cover for them); `covers_for` follows a chain of moves back
    to the absent volunteer it starts from.
    """
    p, absent = problem, set(absent)
    removed = sorted(before - after, key=lambda k: (k[0] not in absent, k))
    added = sorted(after - before)
    moved: dict[Pair, Pair] = {}  # added pair -> removed pair of the same person and day
    rest_removed = list(removed)
    for v, s in added:
        match = next((r for r in rest_removed if r[0] == v
                      and p.slots[r[1]].day == p.slots[s].day), None)
        if match is not None:
            moved[(v, s)] = match
            rest_removed.remove(match)
    leavers: dict[int, list[int]] = defaultdict(list)  # slot -> who left it
    for v, s in removed:
        leavers[s].append(v)
    took: dict[int, int] = {}  # volunteer -> slot they moved to
    for (v, s), _ in moved.items():
        took[v] = s
    replaces: dict[Pair, int | None] = {}
    for v, s in added:
        replaces[(v, s)] = leavers[s].pop(0) if leavers[s] else None

    def root(v: int | None) -> int | None:
        seen: set[int] = set()
        while v is not None and v not in absent and v in took and v not in seen:
            seen.add(v)
            v = replaces.get((v, took[v]))
        return v if v is not None and v in absent else None

    out = []
    for v, s in rest_removed:
        why = _ABSENT if v in absent else _TAKEN_OFF
        out.append(_entry(p, v, s, "removed", None, None, why))
    for v, s in added:
        rep = replaces[(v, s)]
        action = "moved" if (v, s) in moved else "added"
        out.append(_entry(p, v, s, action, rep, root(rep) if rep is not None else None,
                          None, moved.get((v, s))))
    out.sort(key=lambda c: (c["date"], c["_start"], c["post"], c["volunteer"]))
    for c in out:
        del c["_start"]
    return out


_ABSENT = ("缺勤（不可排班），班次空出", "absent (unavailable): the shift is vacated")
_TAKEN_OFF = ("调整中撤下", "taken off in the adjustment")


def _entry(p: Problem, v: int, s: int, action: str, replaces: int | None,
           covers_for: int | None, why: tuple[str, str] | None,
           source: Pair | None = None) -> dict[str, Any]:
    slot, vol = p.slots[s], p.volunteers[v]
    who = f"{vol.name}({vol.id})"
    entry: dict[str, Any] = {
        "volunteer": vol.id, "name": vol.name, "date": p.iso(slot.day),
        "shift": p.shifts[slot.shift].id, "post": p.posts[slot.post].id, "action": action,
        "replaces": None if replaces is None else p.volunteers[replaces].id,
        "covers_for": None if covers_for is None else p.volunteers[covers_for].id,
        "_start": p.shifts[slot.shift].start,
    }
    if source is not None:
        src = p.slots[source[1]]
        entry["from"] = {"date": p.iso(src.day), "shift": p.shifts[src.shift].id,
                         "post": p.posts[src.post].id}
    if why is not None:
        zh, en = f"{who} {p.slot_label(slot, 'zh')} {why[0]}", f"{vol.id} {p.slot_label(slot, 'en')}: {why[1]}"
    else:
        zh, en = _reason(p, vol.id, who, slot, action, replaces, covers_for, source)
    entry["reason"], entry["reason_en"] = zh, en
    return entry


def _reason(p: Problem, vid: str, who: str, slot: Slot, action: str, replaces: int | None,
            covers_for: int | None, source: Pair | None) -> tuple[str, str]:
    label_zh, label_en = p.slot_label(slot, "zh"), p.slot_label(slot, "en")
    if action == "moved" and source is not None:
        src = p.slots[source[1]]
        zh = f"{who} 从 {p.slot_label(src, 'zh')} 调到 {label_zh}"
        en = f"{vid} moves from {p.slot_label(src, 'en')} to {label_en}"
    else:
        zh, en = f"{who} 补排 {label_zh}", f"{vid} is added to {label_en}"
    if replaces is not None:
        r = p.volunteers[replaces]
        zh += f"，顶替 {r.name}({r.id})"
        en += f", replacing {r.id}"
        if covers_for is not None and covers_for != replaces:
            a = p.volunteers[covers_for]
            zh += f"（{r.name} 已调去顶替缺勤的 {a.name}({a.id})）"
            en += f" (who moved to cover for the absent {a.id})"
        elif covers_for is not None:
            zh += "（缺勤）"
            en += " (absent)"
    else:
        zh += "，补上原有缺口"
        en += ", filling a gap the roster already had"
    return zh, en


# ---------------------------------------------------------------------------------------
# One manual edit
# ---------------------------------------------------------------------------------------


def check_change(problem: Problem | dict[str, Any], solution: dict[str, Any],
                 change: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rule a manual edit newly breaks: hard ones block it, soft ones are warnings.

    `change` is an entry shaped like those of `changes`: `action` (added, removed or
    moved), `volunteer`, `date`, `shift`, `post`, and for a move `from` (date, shift,
    post).  Each result is a violation (`rule`, `hard`, `units`, `cost`, `volunteer`,
    `message`, `message_en`) that the roster did not have before, with `cost_change`: how
    much the edit adds to that rule's cost for that person or post.
    """
    if not isinstance(problem, Problem):
        problem = parse_problem(problem)
    rules = instantiate(problem)
    before = parse_assignments(problem, solution)
    after = apply_change(problem, before, change)
    old = check(problem, before, rules)
    new = check(problem, after, rules)
    return _new_violations(old, new)


def apply_change(problem: Problem, roster: list[Pair], change: Any) -> list[Pair]:
    """The roster with one change applied; a change that does not fit it is a ProblemError."""
    if not isinstance(change, dict):
        raise ProblemError("change", "expected an object")
    action = change.get("action")
    if action not in ("added", "removed", "moved"):
        raise ProblemError("change.action", f"expected added, removed or moved, got {action!r}")
    pair = parse_assignment(problem, change, "change")
    out = list(roster)
    if action == "removed":
        if pair not in out:
            raise ProblemError("change", "the roster has no such assignment to remove")
        out.remove(pair)
        return out
    if action == "moved":
        src = change.get("from")
        if not isinstance(src, dict):
            raise ProblemError("change.from", "a move needs the date, shift and post it leaves")
        old = parse_assignment(problem, {**src, "volunteer": change.get("volunteer")},
                               "change.from")
        if old not in out:
            raise ProblemError("change.from", "the roster has no such assignment to move")
        out.remove(old)
    if pair in out:
        raise ProblemError("change", "the roster already has this assignment")
    out.append(pair)
    return out


def _new_violations(old: Report, new: Report) -> list[dict[str, Any]]:
    def key(v: Any) -> tuple[Any, ...]:
        return (v.rule, v.volunteer, v.slot)

    seen = {(key(v), v.message.en) for v in old.violations}
    was: dict[tuple[Any, ...], int] = defaultdict(int)
    for v in old.violations:
        was[key(v)] += v.cost
    out = []
    for v in new.violations:
        if (key(v), v.message.en) in seen:
            continue
        d = v.as_dict()
        d["cost_change"] = v.cost - was.get(key(v), 0)
        out.append(d)
    out.sort(key=lambda d: (not d["hard"], d["rule"]))
    return out
