"""Large-neighbourhood search over one part of a roster problem.

Each step frees a neighbourhood of (volunteer, slot) pairs and re-optimises it with
CP-SAT, everything else staying as in the incumbent.  The step's model holds only what
the neighbourhood can change: the free pairs, the fixed assignments of the freed people
(their weekly caps, rest and balance depend on them) and the fixed assignments of other
people on the touched slots (coverage depends on them).  Every other cost term is
constant, so the step's objective moves exactly as the part's does, and a small model
spends its time searching rather than presolving a whole district.

Neighbourhoods follow the problem's structure, chosen first where demand is uncovered:
- a site (or two sites that share people) over a window of days;
- a few people who could take an uncovered slot, over the whole horizon, so their
  limited shifts can move to the days that lack people;
- a few people who could take an uncovered slot but work at other sites, over the whole
  horizon, with the shifts they would leave open to whoever could take them that day
  (`pull`): joining a closed-loop hotel means leaving every other site.
Each kind grows after steps that CP-SAT closes and shrinks after time-outs.
"""

from __future__ import annotations

import random
from collections import defaultdict

from ortools.sat.python import cp_model

from solver.model import ModelContext, build
from solver.problem import Problem
from solver.rules import Rule

Pair = tuple[int, int]
#: Share of steps, while demand is uncovered, that `pull` people in from other sites.
PULL = 0.15


class PartSearch:
    """The incumbent roster of one part and the moves that improve it."""

    def __init__(self, problem: Problem, rules: list[Rule], pairs: dict[Pair, None],
                 seed: int = 0) -> None:
        self.problem, self.rules = problem, rules
        self.rng = random.Random(seed)
        self.assigned: set[Pair] = set()
        self.objective = 0
        self.by_site_day: dict[tuple[int, int], list[Pair]] = defaultdict(list)
        self.by_vol: dict[int, list[Pair]] = defaultdict(list)
        self.by_vol_day: dict[tuple[int, int], list[Pair]] = defaultdict(list)
        self.by_slot: dict[int, list[int]] = defaultdict(list)
        self.vols_at_site: dict[int, set[int]] = defaultdict(set)
        for v, s in pairs:
            slot = problem.slots[s]
            self.by_site_day[(slot.site, slot.day)].append((v, s))
            self.by_vol[v].append((v, s))
            self.by_vol_day[(v, slot.day)].append((v, s))
            self.by_slot[s].append(v)
            self.vols_at_site[slot.site].add(v)
        # Sites that share volunteers, to move people between neighbouring sites.
        self.neighbours: dict[int, list[int]] = defaultdict(list)
        sites = sorted(self.vols_at_site)
        for i, a in enumerate(sites):
            for b in sites[i + 1:]:
                if self.vols_at_site[a] & self.vols_at_site[b]:
                    self.neighbours[a].append(b)
                    self.neighbours[b].append(a)
        self.window = 4  # days, for site neighbourhoods
        self.people = 12  # volunteers, for whole-horizon neighbourhoods
        self.movers = 3  # volunteers, for `pull` neighbourhoods
        self.steps = self.improvements = 0
        #: CP-SAT's deterministic time per step instead of wall time, for benchmarks
        #: whose figures must not depend on the machine's load (`bench/lns_bench.py`).
        self.deterministic: float | None = None

    def start(self, assignments: list[Pair], objective: int) -> None:
        """Take a valid roster of the part, and its objective, as the incumbent."""
        self.assigned = set(assignments)
        self.objective = objective

    def assignments(self) -> list[Pair]:
        return sorted(self.assigned)

    # -- neighbourhoods ------------------------------------------------------------------
    def uncovered(self) -> list[int]:
        """Slots whose head count or skills fall short in the incumbent."""
        p = self.problem
        people: dict[int, list[int]] = defaultdict(list)
        for v, s in self.assigned:
            people[s].append(v)
        out = []
        for s in self.by_slot:
            slot, here = p.slots[s], people.get(s, [])
            if len(here) < slot.min or any(
                    sum(1 for v in here if k in p.volunteers[v].skills) < n
                    for k, n in slot.requires):
                out.append(s)
        return out

    def site_window(self, short: list[int]) -> set[Pair]:
        """The people of one or two sites, and those sites' slots, over a window of days."""
        p = self.problem
        if short and self.rng.random() < 0.7:
            slot = p.slots[self.rng.choice(short)]
            site, centre = slot.site, slot.day
        else:
            site = self.rng.choice(sorted(self.vols_at_site))
            centre = self.rng.randrange(p.days)
        sites = [site]
        if self.neighbours[site] and self.rng.random() < 0.5:
            sites.append(self.rng.choice(self.neighbours[site]))
        lo = max(0, centre - self.window // 2 - self.rng.randrange(2))
        days = range(lo, min(p.days, lo + self.window))
        people = set().union(*(self.vols_at_site[s] for s in sites))
        free = {pair for s in sites for d in days for pair in self.by_site_day[(s, d)]}
        free.update(pair for v in people for pair in self.by_vol[v]
                    if p.slots[pair[1]].day in days)
        return free

    def people_horizon(self, short: list[int]) -> set[Pair]:
        """Some of the people who could take an uncovered slot, over the whole horizon."""
        if short:
            pool = sorted(self.by_slot[self.rng.choice(short)])
        else:
            pool = sorted(self.vols_at_site[self.rng.choice(sorted(self.vols_at_site))])
        people = self.rng.sample(pool, min(len(pool), self.people))
        return {pair for v in people for pair in self.by_vol[v]}

    def pull(self, short: list[int]) -> set[Pair]:
        """A few people who could take an uncovered slot but work at other sites, over the
        whole horizon, and the shifts they would leave, open that day to whoever could
        take them.

        Someone joins a closed-loop hotel only by leaving every shift they had elsewhere:
        unless others take those, the move costs more than it gains, and neither a site's
        window nor a few people's horizon frees both sides of it.
        """
        if not short:
            return set()
        slots = self.problem.slots
        s = self.rng.choice(short)
        mine: dict[int, list[int]] = defaultdict(list)
        for v, t in self.assigned:
            mine[v].append(t)
        pool = sorted(v for v in self.by_slot[s]
                      if any(slots[t].site != slots[s].site for t in mine[v]))
        free: set[Pair] = set()
        for v in self.rng.sample(pool, min(len(pool), self.movers)):
            free.update(self.by_vol[v])
            for t in mine[v]:
                for u in self.by_slot[t]:
                    free.update(self.by_vol_day[(u, slots[t].day)])
        return free

    # -- one step ------------------------------------------------------------------------
    def submodel(self, free: set[Pair]) -> ModelContext:
        """The model of what `free` can change from the incumbent (see `submodel`)."""
        return submodel(self.problem, self.rules, self.assigned, free)

    def step(self, limit: float) -> bool:
        """Re-optimise one neighbourhood; True if the incumbent improved."""
        short = self.uncovered()
        kind = self.rng.random()
        whole, moves = kind < 0.4, bool(short) and kind >= 1 - PULL
        free = (self.pull(short) if moves else self.people_horizon(short) if whole
                else self.site_window(short))
        if not free:
            return False
        ctx = self.submodel(free)
        # Start from the incumbent: every variable hinted (derived ones by a quick solve
        # with the assignments fixed), so CP-SAT only has to look for better.
        before = fixed_solve(ctx, self.assigned)
        if before is None:
            return False
        values, hint_objective = before
        hint = ctx.model.proto.solution_hint
        hint.vars.extend(range(len(values)))
        hint.values.extend(values)
        ctx.model.add(ctx.objective() <= hint_objective)
        solver = step_solver(limit, self.rng.randrange(1 << 30), self.deterministic)
        status = solver.solve(ctx.model)
        self.steps += 1
        # Grow a kind of neighbourhood while CP-SAT closes it, shrink it when it cannot.
        if moves:
            self.movers = self.movers + 1 if status == cp_model.OPTIMAL else max(1, self.movers - 1)
        elif whole:
            self.people = self.people + 2 if status == cp_model.OPTIMAL else max(4, self.people - 2)
        elif status == cp_model.OPTIMAL:
            self.window = min(self.problem.days, self.window + 1)
        elif self.window > 2:
            self.window -= 1
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return False
        gain = hint_objective - int(round(solver.objective_value))
        # Equal moves are taken too: they shift the incumbent and diversify the search.
        self.assigned -= free
        self.assigned |= {k for k in free if solver.boolean_value(ctx.x[k])}
        self.objective -= gain
        if gain > 0:
            self.improvements += 1
        return gain > 0


def submodel(problem: Problem, rules: list[Rule], assigned: set[Pair],
             free: set[Pair]) -> ModelContext:
    """The model of what `free` can change in the roster `assigned`; fixed pairs pinned to 1.

    Costs it leaves out (other people's rules, untouched slots) are the same before and
    after any change of `free`, so the model's objective moves exactly as the roster's does.
    """
    freed = {v for v, _ in free}
    touched = {s for _, s in free}
    fixed = {(v, s) for v, s in assigned
             if (v, s) not in free and (v in freed or s in touched)}
    pairs = dict.fromkeys(sorted(free | fixed))
    slots = sorted({s for _, s in pairs})
    # Only the freed people's own rules go in: others appear through fixed assignments
    # on the touched slots, where they count for coverage and head-count caps only.
    ctx = build(problem, rules, sorted(freed), slots, pairs)
    for key in fixed:
        dom = ctx.model.proto.variables[ctx.x[key].index].domain
        dom[0] = 1
        dom[1] = 1
    return ctx


def step_solver(limit: float, seed: int, deterministic: float | None = None) -> cp_model.CpSolver:
    """A one-worker CP-SAT for one neighbourhood, with a light presolve.

    A step's model is small and mostly decided already, yet the default presolve (probing
    every literal, symmetry detection, repeated rounds) took most of a one-second step.
    One round without probing or symmetry leaves the time to the search: fewer steps end
    without getting past their hint, and more are proven optimal.
    """
    solver = cp_model.CpSolver()
    params = solver.parameters
    if deterministic is None:
        params.max_time_in_seconds = max(0.05, limit)
    else:
        params.max_deterministic_time = deterministic
    params.num_workers = 1
    # Small neighbourhoods close much sooner with the full linear relaxation.
    params.linearization_level = 2
    params.cp_model_probing_level = 0
    params.symmetry_level = 0
    params.max_presolve_iterations = 1
    params.random_seed = seed
    return solver


def fixed_solve(ctx: ModelContext, assigned: set[Pair]) -> tuple[list[int], int] | None:
    """Every variable's value, and the objective, of the model with all x as in `assigned`."""
    model = ctx.model.clone()
    for key, var in ctx.x.items():
        val = 1 if key in assigned else 0
        dom = model.proto.variables[var.index].domain
        dom[0] = val
        dom[1] = val
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 10.0
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return list(solver.response_proto.solution), int(round(solver.objective_value))
