"""Solving a roster problem: decompose, construct, improve, explain.

1. Eligibility: only (volunteer, slot) pairs allowed by every hard unary rule exist.
2. Decomposition: volunteers and sites that can never share a slot are independent, so
   the connected parts of the volunteer–site eligibility graph are solved separately and
   their objectives and bounds add up.
3. Construction: the greedy fill gives every part a valid incumbent at once.
4. Improvement: small parts go to CP-SAT whole from that incumbent; large ones get
   large-neighbourhood search, in slices given to the part furthest above its bound.
   Bounds come from CP-SAT for small parts and from `bound` (max-flow shortage plus
   least balance) for large ones.
5. Explanation: every uncovered requirement comes with the reason a coordinator can act on
   (see `explain`), and the finished roster is re-checked by the validator.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from solver.bound import balance_bound, flow_coverage_bound, head_balance_bound, joint_lp_bound
from solver.explain import explain_infeasible, explain_unmet
from solver.fill import fill_gaps
from solver.greedy import eligible_pairs, greedy
from solver.model import ModelContext, build
from solver.problem import SOLUTION_FORMAT, Problem, ProblemError, parse_problem
from solver.rules import Rule, instantiate
from solver.search import PartSearch, fixed_solve
from solver.validate import Report, check, parse_assignments


@dataclass(frozen=True)
class Progress:
    """One improving solution of the whole problem (all parts together)."""

    objective: int
    bound: int
    seconds: float
    part: int
    parts: int


ProgressCallback = Callable[[Progress], None]


@dataclass
class Part:
    """An independent piece of the problem: volunteers, slots and their eligible pairs."""

    volunteers: list[int]
    slots: list[int]
    pairs: dict[tuple[int, int], None]
    status: str = "UNKNOWN"
    objective: int = 0
    bound: int = 0
    assignments: list[tuple[int, int]] = field(default_factory=list)
    infeasible_volunteers: list[int] = field(default_factory=list)
    #: `joint_lp_bound` once computed: it does not depend on the incumbent, and takes
    #: about a second on a street, so `part_bound` does not solve it again.
    lp_bound: int | None = None
    #: (head-count shortage, skill shortage, head counts and balance priced together):
    #: the flows of `part_bound` that do not depend on the incumbent, once computed.
    flow_bounds: tuple[int, int, int] | None = None

    @property
    def size(self) -> int:
        return len(self.pairs) + len(self.slots)


def decompose(problem: Problem, pairs: dict[tuple[int, int], None]) -> list[Part]:
    """Connected parts of the volunteer–site graph; slot-less and pair-less bits pooled."""
    parent = list(range(len(problem.volunteers) + len(problem.sites)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    nv = len(problem.volunteers)
    slots = problem.slots
    # One union per (volunteer, site), not per pair: a city has millions of pairs.
    for v, site in {(v, slots[s].site) for v, s in pairs}:
        a, b = find(v), find(nv + site)
        if a != b:
            parent[a] = b
    groups: dict[int, Part] = {}
    trivial = Part([], [], {})
    root = [find(v) for v in range(nv)]
    for v in range(nv):
        groups.setdefault(root[v], Part([], [], {})).volunteers.append(v)
    for slot in slots:
        groups.setdefault(find(nv + slot.site), Part([], [], {})).slots.append(slot.index)
    for v, s in pairs:
        groups[root[v]].pairs[(v, s)] = None
    parts = []
    for part in groups.values():
        if part.pairs:
            parts.append(part)
        else:  # nobody can work any of it: no choices to make, one model for all of them
            trivial.volunteers += part.volunteers
            trivial.slots += part.slots
    parts.sort(key=lambda p: -p.size)
    if trivial.volunteers or trivial.slots:
        parts.append(trivial)
    return parts


class _Watcher(cp_model.CpSolverSolutionCallback):
    def __init__(self, on_solution: Callable[[int, int], None]) -> None:
        super().__init__()
        self.on_solution = on_solution

    def on_solution_callback(self) -> None:
        self.on_solution(int(round(self.objective_value)), int(round(self.best_objective_bound)))


def complete_hint(ctx: ModelContext, assignments: list[tuple[int, int]]) -> bool:
    """Hint every variable, not only the assignments, so CP-SAT starts from the roster.

    An incomplete hint (auxiliary variables unset) is mostly ignored by CP-SAT; solving
    once with the assignments fixed fills in every derived variable cheaply.
    """
    chosen = set(assignments)
    found = fixed_solve(ctx, chosen)
    if found is None:  # e.g. the roster misses a min_shifts: hint the assignments only
        for key, var in ctx.x.items():
            ctx.model.add_hint(var, key in chosen)
        return False
    hint = ctx.model.proto.solution_hint
    hint.vars.extend(range(len(found[0])))
    hint.values.extend(found[0])
    return True


def solve_part(problem: Problem, rules: list[Rule], part: Part, time_limit: float,
               workers: int, seed: int, hint: list[tuple[int, int]],
               on_solution: Callable[[int, int], None] | None = None) -> ModelContext:
    """Build and solve one part's CP-SAT model, starting from `hint`."""
    ctx = build(problem, rules, part.volunteers, part.slots, part.pairs)
    complete_hint(ctx, hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    solver.parameters.log_search_progress = False
    watcher = _Watcher(on_solution) if on_solution else None
    status = solver.solve(ctx.model, watcher)
    part.status = solver.status_name(status)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        part.objective = int(round(solver.objective_value))
        part.bound = int(round(solver.best_objective_bound))
        part.assignments = [k for k, var in ctx.x.items() if solver.boolean_value(var)]
    elif status == cp_model.INFEASIBLE:
        core = solver.sufficient_assumptions_for_infeasibility()
        part.infeasible_volunteers = sorted({ctx.assumptions[i] for i in core
                                             if i in ctx.assumptions})
    return ctx


def solve(problem: Problem | dict[str, Any], time_limit: float = 60.0, workers: int = 2,
          seed: int = 0, progress: ProgressCallback | None = None,
          gap_limit: float = 0.0, start: dict[str, Any] | None = None) -> dict[str, Any]:
    """Solve `problem` (a `Problem` or a `roster-problem/1` dict) into a `roster-solution/1`.

    The result always carries the best roster found (status FEASIBLE or OPTIMAL), its
    objective as recomputed by the validator, the proven bound, penalties by rule and every
    uncovered requirement with its reason.  Uncovered demand never fails a roster; only
    contradictory hard rules give INFEASIBLE, with the volunteers and rules involved.
    The search stops early once the objective is within `gap_limit` (a share of the
    objective) of the proven bound: a sub-problem of a city then leaves its time to others.
    With `start` (a `roster-solution/1` of this problem that breaks no hard rule), the
    search goes on from that roster instead of constructing one: a city's sub-problem
    given more time once the others are done.
    """
    t0 = time.monotonic()
    if not isinstance(problem, Problem):
        problem = parse_problem(problem)
    rules = instantiate(problem)
    pairs = eligible_pairs(problem, rules)
    parts = decompose(problem, pairs)
    if start is None:
        # One greedy pass over everything, its gaps closed by short chains, attributed to
        # parts by volunteer and slot (the parts share neither), gives each part its
        # incumbent and its starting cost.
        roster = fill_gaps(problem, rules, pairs, greedy(problem, rules, pairs, seed=seed),
                           deadline=time.monotonic() + FILL_SHARE * time_limit)
        _attribute(problem, parts, check(problem, roster, rules))
        _restart_far_parts(problem, rules, parts, seed,
                           deadline=t0 + RESTART_SHARE * time_limit)
    else:
        _attribute(problem, parts, _checked_start(problem, rules, start))
    tracker = _Tracker(parts, t0, progress)
    _Scheduler(problem, rules, parts, t0 + time_limit, workers, seed, tracker,
               gap_limit).run()
    return _solution(problem, rules, parts, time.monotonic() - t0)


def _attribute(problem: Problem, parts: list[Part], report: Report) -> None:
    """Give each part its share of a checked roster: its assignments and its objective.

    Parts share neither volunteers nor slots, so every cost belongs to exactly one part.
    """
    cost_v: dict[str, int] = {}
    cost_s: dict[int, int] = {}
    for bad in report.violations:
        if bad.volunteer is not None:
            cost_v[bad.volunteer] = cost_v.get(bad.volunteer, 0) + bad.cost
        elif bad.slot is not None:
            cost_s[bad.slot] = cost_s.get(bad.slot, 0) + bad.cost
    owner = {v: i for i, part in enumerate(parts) for v in part.volunteers}
    for v, s in report.roster.assignments:
        parts[owner[v]].assignments.append((v, s))
    for part in parts:
        part.objective = (sum(cost_v.get(problem.volunteers[v].id, 0) for v in part.volunteers)
                          + sum(cost_s.get(s, 0) for s in part.slots))


def _checked_start(problem: Problem, rules: list[Rule], start: dict[str, Any]) -> Report:
    """The validator's report on a roster to start from; a roster that breaks a hard rule
    (the search keeps every hard rule, so it could never leave it) is bad input."""
    report = check(problem, parse_assignments(problem, start), rules)
    if not report.ok:
        raise ProblemError("start", f"the roster to start from breaks a hard rule: "
                                    f"{report.hard[0].message.en}")
    return report


def _restart_far_parts(problem: Problem, rules: list[Rule], parts: list[Part], seed: int,
                       deadline: float) -> None:
    """Construct again, with other seeds, the large parts whose roster ends far above their
    bound; keep the best roster of each.

    The greedy's ties are random, and on a part with a quarantine hotel (nights, rest, a
    driver on every shift) one seed's roster can miss a dozen more people than another's
    (a city part: 45,143 to 51,098 over four seeds, bound 29,589).  The search starts
    from it and ends further above its bound the worse it starts, and a part costs a
    fraction of the whole construction.  Each large part's cheap bound is kept for the
    search.
    """
    for part in parts:
        if len(part.pairs) <= WHOLE_MODEL_PAIRS:
            continue
        part.bound = part_bound(problem, rules, part, part.objective, lp=False)
        for k in range(1, RESTARTS + 1):
            if (part.objective - part.bound <= RESTART_GAP * part.objective
                    or time.monotonic() >= deadline):
                break
            roster = fill_gaps(problem, rules, part.pairs,
                               greedy(problem, rules, part.pairs, seed=seed + k),
                               deadline=deadline)
            trial = Part(part.volunteers, part.slots, part.pairs)
            _attribute(problem, [trial], check(problem, roster, rules))
            if trial.objective < part.objective and _meets_minimums(problem, trial,
                                                                      trial.assignments):
                part.assignments, part.objective = trial.assignments, trial.objective


def roster_bound(problem: Problem, rules: list[Rule], pairs: dict[tuple[int, int], None],
                 report: Report) -> int:
    """A valid lower bound on the whole problem's objective, given a checked roster.

    The same cheap bounds as the solver's large parts (`part_bound`), summed over the
    independent parts; the roster's cost in each part is the incumbent they need.  Used
    where no whole-model search ran (repairs) but the solution still reports a bound.
    """
    parts = decompose(problem, pairs)
    _attribute(problem, parts, report)
    return sum(min(part.objective, part_bound(problem, rules, part, part.objective))
               for part in parts)


#: Share of the time limit the chains that close the greedy's gaps may take at most (about
#: a second on a district-sized part of a city, where as much LNS gains far less).
FILL_SHARE = 0.2
#: Large parts whose constructed roster is more than `RESTART_GAP` of its cost above their
#: bound are constructed again, up to `RESTARTS` times while `RESTART_SHARE` of the time
#: limit has not passed (see `_restart_far_parts`).
RESTART_GAP = 0.2
RESTARTS = 2
RESTART_SHARE = 0.25
#: Parts with at most this many eligible pairs go to CP-SAT whole; larger ones to LNS.
WHOLE_MODEL_PAIRS = 4000
#: Seconds of LNS a large part gets at a time before the scheduler looks again.
SLICE = 2.0
#: Time limit of one LNS step: a neighbourhood CP-SAT cannot close in this is shrunk.
STEP = 1.0
#: A part stalls when a slice gains less than this share of its gap, and its gap is above
#: `STALL_GAP` of its objective: then its joint LP bound is worth solving.
STALL = 0.25
STALL_GAP = 0.01


class _Scheduler:
    """Shares the time among parts: small ones first, then LNS where the most is to gain.

    Parts are independent, so `workers` threads each work on a different part; CP-SAT
    releases the GIL while it solves, so two threads keep two cores busy.  Small parts
    (or ones whose greedy roster misses a `min_shifts`) get one whole-model CP-SAT run
    with a share of time by size.  Large parts then take turns in slices of LNS, always
    the idle part with the most to gain: its recent gain per slice (at first its whole
    gap to its bound), at most that gap.  A hotel that the greedy left short gets the
    time it needs, a part already at its bound gets none, and a part whose bound is weak
    (its gap stays however long it is searched) does not starve the others.
    """

    def __init__(self, problem: Problem, rules: list[Rule], parts: list[Part],
                 deadline: float, workers: int, seed: int, tracker: _Tracker,
                 gap_limit: float = 0.0) -> None:
        self.problem, self.rules, self.parts = problem, rules, parts
        self.gap_limit = gap_limit
        self.deadline, self.seed, self.tracker = deadline, seed, tracker
        self.threads = max(1, min(workers, len(parts)))
        self.cp_workers = max(1, workers // self.threads)
        self.lock = threading.Lock()
        self.infeasible = threading.Event()  # also set when a thread fails: all stop
        self.whole = [i for i, p in enumerate(parts) if not self._lns_ready(p)]
        self.remaining = sum(parts[i].size for i in self.whole) or 1
        self.total = sum(p.size for p in parts) or 1
        self.searches: dict[int, PartSearch] = {}
        for i, part in enumerate(parts):
            if i not in self.whole:
                search = PartSearch(problem, rules, part.pairs, seed + i)
                search.start(part.assignments, part.objective)
                self.searches[i] = search
                if not part.bound:  # not yet computed by `_restart_far_parts`
                    part.bound = part_bound(problem, rules, part, part.objective, lp=False)
                part.status = "FEASIBLE"
                tracker.update(i, part.objective, part.bound)
        self.busy: set[int] = set()
        self.gain: dict[int, float] = {}  # recent gain per LNS slice, halved each slice

    def _lns_ready(self, part: Part) -> bool:
        return len(part.pairs) > WHOLE_MODEL_PAIRS and _meets_minimums(
            self.problem, part, part.assignments)

    def run(self) -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                self._work()
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                self.infeasible.set()  # stops the other threads too

        pool = [threading.Thread(target=work, name=f"bastion-solve-{k}", daemon=True)
                for k in range(self.threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        if errors:
            raise errors[0]
        for i, search in self.searches.items():
            part = self.parts[i]
            part.objective, part.assignments = search.objective, search.assignments()
            part.bound = min(part.objective, part_bound(self.problem, self.rules, part,
                                                        part.objective, lp=False))
            part.status = "OPTIMAL" if part.objective <= part.bound else "FEASIBLE"

    def _next(self) -> tuple[str, int, float] | None:
        with self.lock:
            left = self.deadline - time.monotonic()
            if self.whole:
                i = self.whole.pop(0)
                part = self.parts[i]
                # Whole-model parts are small: their share by size, and the time the LNS
                # parts leave unused is theirs too once those reach their bounds.
                share = left * self.threads * part.size / (
                    self.remaining if not self.searches else self.total)
                self.remaining = max(1, self.remaining - part.size)
                return "whole", i, min(left, share)
            if left < 0.3 or self.gap_limit > 0 and self.tracker.within(self.gap_limit):
                return None
            open_parts = [i for i, s in self.searches.items() if i not in self.busy
                          and s.objective > self.parts[i].bound]
            if not open_parts:
                return None
            # The most to gain next: what a part's recent slices gained (at first, its
            # whole gap), at most its gap.  A part whose bound is weak (its gap stays
            # however long it is searched) soon stops taking the time that other parts
            # turn into gains.
            i = max(open_parts, key=lambda k: min(
                self.gain.get(k, math.inf), self.searches[k].objective - self.parts[k].bound))
            self.busy.add(i)
            return "lns", i, min(left, SLICE)

    def _work(self) -> None:
        while not self.infeasible.is_set():
            job = self._next()
            if job is None:
                return
            kind, i, budget = job
            part = self.parts[i]
            report = functools.partial(self.tracker.update, i)
            if kind == "whole":
                _improve_part(self.problem, self.rules, part, budget, self.cp_workers,
                              self.seed, report)
                if part.status == "INFEASIBLE":
                    self.infeasible.set()
                continue
            search = self.searches[i]
            end = time.monotonic() + budget
            before = search.objective
            while time.monotonic() < end - 0.2 and search.objective > part.bound:
                if search.step(min(STEP, end - time.monotonic())):
                    report(search.objective, part.bound)
            if self._stalls(i, before - search.objective) and (
                    self.deadline - time.monotonic() >= SLICE):
                # This slice gained little of what its bound leaves: the bound may be the
                # weak side (often a part already at its joint LP bound).  The LP, once,
                # now rather than when the part is next chosen: with its weak bound the
                # part still counts as much to gain, and its turn may come late or never.
                part.lp_bound = joint_lp_bound(self.problem, self.rules, part.slots,
                                               part.pairs)
                part.bound = max(part.bound, part.lp_bound)
                report(search.objective, part.bound)
            self._slice_done(i, before)

    def _stalls(self, i: int, gained: int) -> bool:
        """Whether part `i` has no joint LP bound yet and its last slice gained less than
        `STALL` of its gap (the gap is at least `STALL_GAP` of its objective)."""
        part, objective = self.parts[i], self.searches[i].objective
        gap = objective - part.bound
        return (part.lp_bound is None and gap > STALL_GAP * objective
                and gained < STALL * gap)

    def _slice_done(self, i: int, before: int) -> None:
        """A slice of LNS on part `i` ended (its objective was `before`): free the part and
        average what the slice gained into its recent gain."""
        with self.lock:
            self.busy.discard(i)
            last = self.gain.get(i, before - self.parts[i].bound)
            self.gain[i] = (last + before - self.searches[i].objective) / 2


class _Tracker:
    """The whole problem's objective and bound while parts improve, for `progress`."""

    def __init__(self, parts: list[Part], t0: float, progress: ProgressCallback | None) -> None:
        self.objective = [p.objective for p in parts]
        self.bound = [0 for _ in parts]
        self.t0, self.progress = t0, progress
        self.best = sum(self.objective)
        self.lock = threading.Lock()

    def within(self, gap: float) -> bool:
        """Whether the whole objective is within `gap` (a share of it) of the bound."""
        with self.lock:
            objective = sum(self.objective)
            return objective - sum(self.bound) <= gap * objective

    def update(self, i: int, objective: int, bound: int) -> None:
        with self.lock:
            self.objective[i] = min(self.objective[i], objective)
            self.bound[i] = max(self.bound[i], bound)
            total = sum(self.objective)
            if self.progress and total <= self.best:
                self.best = total
                self.progress(Progress(total, sum(self.bound), time.monotonic() - self.t0,
                                       i, len(self.objective)))


def part_bound(problem: Problem, rules: list[Rule], part: Part, incumbent: int,
               lp: bool = True) -> int:
    """A cheap, valid lower bound of a part: unavoidable shortage plus least balance.

    Three bounds, the largest kept.  Separately: any roster at least as good as the
    incumbent misses at most incumbent / coverage weight head counts, so it works at least
    demand minus that many shifts, and their balance cost is at least the evenly spread
    one; shortage and balance are different terms, so they add.  Jointly: a min-cost flow
    prices head-count shortage and balance together (see `head_balance_bound`), and skill
    shortage, a term of its own, is added.  Both count a Party member or a medic for a
    head count at one post and for a skill at another; one LP over head counts, skills
    and balance together does not (`joint_lp_bound`: on a few of a city's streets,
    about twice the others).  The LP takes a second or more on a street, so with `lp`
    false it is used only if already solved (`Part.lp_bound`); the search solves it for
    the parts that stall above their bound (`_Scheduler`).
    """
    cw = problem.coverage_weight
    if part.flow_bounds is None:
        part.flow_bounds = (*flow_coverage_bound(problem, rules, part.slots, part.pairs),
                            head_balance_bound(problem, rules, part.volunteers, part.slots,
                                               part.pairs))
    heads, skills, head_balance = part.flow_bounds
    demand = sum(problem.slots[s].min for s in part.slots)
    short_ub = incumbent // cw if cw else demand
    separate = cw * (heads + skills) + balance_bound(problem, rules, part.volunteers,
                                                     part.pairs, demand - min(demand, short_ub))
    # Head counts and balance priced together (one min-cost flow), skills apart.
    joint = cw * skills + head_balance
    if part.lp_bound is None:
        if not lp or max(separate, joint) >= incumbent:  # not now, or no need: optimal
            return max(separate, joint)
        part.lp_bound = joint_lp_bound(problem, rules, part.slots, part.pairs)
    return max(separate, joint, part.lp_bound)


def _improve_part(problem: Problem, rules: list[Rule], part: Part, budget: float, workers: int,
                  seed: int, report: Callable[[int, int], None]) -> None:
    """CP-SAT on a whole (small) part, from its greedy roster; keep the better roster."""
    greedy_assignments, greedy_objective = part.assignments, part.objective
    solve_part(problem, rules, part, budget, workers, seed, part.assignments, report)
    if part.status == "INFEASIBLE":
        return
    found = part.status in ("OPTIMAL", "FEASIBLE")
    if (not found or part.objective > greedy_objective) and _meets_minimums(
            problem, part, greedy_assignments):
        # Out of time before CP-SAT matched the construction: keep the greedy roster.
        part.assignments, part.objective = greedy_assignments, greedy_objective
        part.status = "FEASIBLE"
    elif not found:
        part.status = "UNKNOWN"  # no valid roster within the time limit
    if part.status not in ("UNKNOWN", "OPTIMAL"):
        part.bound = max(part.bound, part_bound(problem, rules, part, part.objective))
    part.bound = max(0, min(part.bound, part.objective))


def _meets_minimums(problem: Problem, part: Part, assignments: list[tuple[int, int]]) -> bool:
    """The greedy keeps every hard rule but `min_shifts`; check that one."""
    count: dict[int, int] = {}
    for v, _ in assignments:
        count[v] = count.get(v, 0) + 1
    return all(count.get(v, 0) >= (problem.volunteers[v].min_shifts or 0)
               for v in part.volunteers)


def _solution(problem: Problem, rules: list[Rule], parts: list[Part],
              seconds: float) -> dict[str, Any]:
    infeasible = [p for p in parts if p.status == "INFEASIBLE"]
    if infeasible:
        vols = sorted({v for p in infeasible for v in p.infeasible_volunteers})
        return {"format": SOLUTION_FORMAT, "status": "INFEASIBLE", "objective": None,
                "bound": None, "seconds": round(seconds, 3), "assignments": [], "unmet": [],
                "penalties": [], "conflicts": explain_infeasible(problem, rules, vols)}
    if any(p.status == "UNKNOWN" for p in parts):
        return {"format": SOLUTION_FORMAT, "status": "UNKNOWN", "objective": None,
                "bound": None, "seconds": round(seconds, 3), "assignments": [], "unmet": [],
                "penalties": [], "message": "no roster meeting every min_shifts was found "
                                            "within the time limit; allow more time"}
    status = "OPTIMAL" if all(p.status == "OPTIMAL" for p in parts) else "FEASIBLE"
    doc = solution_document(problem, rules, [a for p in parts for a in p.assignments], status,
                            sum(p.bound for p in parts), seconds)
    doc["parts"] = len(parts)
    return doc


def solution_document(problem: Problem, rules: list[Rule], assignments: list[tuple[int, int]],
                      status: str, bound: int, seconds: float,
                      report: Report | None = None) -> dict[str, Any]:
    """A `roster-solution/1` document for a roster, its cost recomputed by the validator.

    `report`: the validator's report of these very assignments, when the caller has one.
    """
    assignments = sorted(assignments)
    if report is None or sorted(report.roster.assignments) != assignments:
        report = check(problem, assignments, rules)
    if not report.ok:  # never hand out a roster that breaks a hard rule
        raise AssertionError("invalid roster: " + "; ".join(v.message.en for v in report.hard[:5]))
    slots, vols, shifts, posts = problem.slots, problem.volunteers, problem.shifts, problem.posts
    return {
        "format": SOLUTION_FORMAT,
        "status": status,
        "objective": report.objective,
        "bound": min(report.objective, bound),
        "seconds": round(seconds, 3),
        "assignments": [{"volunteer": vols[v].id, "date": problem.iso(slots[s].day),
                         "shift": shifts[slots[s].shift].id, "post": posts[slots[s].post].id}
                        for v, s in assignments],
        "unmet": explain_unmet(problem, rules, report.roster),
        "penalties": report.penalties(),
    }
