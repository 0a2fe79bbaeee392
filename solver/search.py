"""Large-neighbourhood search over one part's CP-SAT model.

The part's model is built once.  Each step copies it, fixes every assignment outside a
neighbourhood to the incumbent, and lets CP-SAT re-optimise the rest for a second or two,
starting from the incumbent (a complete hint).  Neighbourhoods follow the structure of
the problem: a site (or two sites that share people) over a window of days, chosen first
where demand is uncovered, so a short step can move the people who matter.  The window
grows after steps that prove their neighbourhood optimal and shrinks after time-outs.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable

from ortools.sat.python import cp_model

from solver.model import ModelContext


class PartSearch:
    """Incumbent and neighbourhood moves for one part."""

    def __init__(self, ctx: ModelContext, seed: int = 0, workers: int = 1) -> None:
        self.ctx = ctx
        self.rng = random.Random(seed)
        self.workers = workers
        self.values: list[int] = []
        self.objective: int | None = None
        p = ctx.problem
        self.slot_of = {var.index: s for (_, s), var in ctx.x.items()}
        self.var_by_site_day: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.vols_at_site: dict[int, set[int]] = defaultdict(set)
        self.vars_by_vol_day: dict[tuple[int, int], list[int]] = defaultdict(list)
        for (v, s), var in ctx.x.items():
            slot = p.slots[s]
            self.var_by_site_day[(slot.site, slot.day)].append(var.index)
            self.vols_at_site[slot.site].add(v)
            self.vars_by_vol_day[(v, slot.day)].append(var.index)
        # Sites that share volunteers, to move people between neighbouring sites.
        self.neighbours: dict[int, list[int]] = defaultdict(list)
        sites = sorted(self.vols_at_site)
        for i, a in enumerate(sites):
            for b in sites[i + 1:]:
                if self.vols_at_site[a] & self.vols_at_site[b]:
                    self.neighbours[a].append(b)
                    self.neighbours[b].append(a)
        self.window = 4
        self.steps = self.improvements = 0

    # -- incumbent ---------------------------------------------------------------------
    def start(self, assignments: list[tuple[int, int]]) -> bool:
        """Take a roster as the incumbent: derive every variable's value from it."""
        chosen = set(assignments)
        model = self.ctx.model.clone()
        for key, var in self.ctx.x.items():
            val = 1 if key in chosen else 0
            dom = model.proto.variables[var.index].domain
            dom[0] = val
            dom[1] = val
        solver = self._solver(30.0, 1)
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return False
        self._accept(solver)
        return True

    def _accept(self, solver: cp_model.CpSolver) -> None:
        self.values = list(solver.response_proto.solution)
        self.objective = int(round(solver.objective_value))

    def assignments(self) -> list[tuple[int, int]]:
        return [k for k, var in self.ctx.x.items() if self.values[var.index]]

    def _solver(self, limit: float, workers: int) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, limit)
        solver.parameters.num_workers = workers
        # Small neighbourhoods close much sooner with the full linear relaxation.
        solver.parameters.linearization_level = 2
        solver.parameters.random_seed = self.rng.randrange(1 << 30)
        return solver

    # -- neighbourhoods ----------------------------------------------------------------
    def uncovered(self) -> list[int]:
        """Slots of the part whose head count or skills fall short in the incumbent."""
        p, vals = self.ctx.problem, self.values
        out = []
        for s in self.ctx.slots:
            slot = p.slots[s]
            people = [v for v, var in self.ctx.by_slot[s] if vals[var.index]]
            if len(people) < slot.min or any(
                    sum(1 for v in people if k in p.volunteers[v].skills) < n
                    for k, n in slot.requires):
                out.append(s)
        return out

    def neighbourhood(self) -> set[int]:
        """Variable indices to free: the people of one or two sites over a window."""
        p = self.ctx.problem
        short = self.uncovered()
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
        hi = min(p.days, lo + self.window)
        free: set[int] = set()
        people: set[int] = set()
        for s in sites:
            people |= self.vols_at_site[s]
        for d in range(lo, hi):
            for s in sites:
                free.update(self.var_by_site_day[(s, d)])
            for v in people:
                free.update(self.vars_by_vol_day[(v, d)])
        return free

    def step(self, limit: float) -> bool:
        """Re-optimise one neighbourhood; True if the incumbent improved."""
        if self.objective is None:
            return False
        free = self.neighbourhood()
        model = self.ctx.model.clone()
        vals = self.values
        for var in self.ctx.x.values():
            if var.index not in free:
                dom = model.proto.variables[var.index].domain
                dom[0] = vals[var.index]
                dom[1] = vals[var.index]
        hint = model.proto.solution_hint
        hint.vars.extend(range(len(vals)))
        hint.values.extend(vals)
        # Never accept worse; equal moves are allowed (they diversify the incumbent).
        model.add(self.ctx.objective() <= self.objective)
        solver = self._solver(limit, self.workers)
        status = solver.solve(model)
        self.steps += 1
        if status == cp_model.OPTIMAL:
            self.window = min(self.ctx.problem.days, self.window + 1)
        elif self.window > 2:
            self.window -= 1
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return False
        before = self.objective
        self._accept(solver)
        if self.objective < before:
            self.improvements += 1
            return True
        return False

    def run(self, deadline: float, step_limit: float = 2.0,
            on_improve: Callable[[int], None] | None = None) -> None:
        """Improve until the deadline (monotonic clock)."""
        while self.objective is not None:
            left = deadline - time.monotonic()
            if left < 0.2:
                return
            if self.step(min(step_limit, left)) and on_improve:
                on_improve(self.objective)
