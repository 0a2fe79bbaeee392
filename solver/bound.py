"""Lower bounds from a relaxation by site.

Split the slots by site and solve each site's slots alone, with every volunteer who may
work there.  Any roster, cut down to one site, is a valid roster of that site's problem
(every hard rule only forbids), and each cost term is superadditive over such pieces:
uncovered demand belongs to one site, a square of a sum is at least the sum of squares,
and a weekly excess or a too-short rest counted within one site is counted in the whole
too.  Wishes and `min_shifts` are left out (a wish can be met at one site and missed at
another).  So the sum of the sites' optimal costs, or of their proven bounds, bounds the
whole part from below, and each site is small enough for CP-SAT to close quickly.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from ortools.sat.python import cp_model

from solver.model import build
from solver.problem import Problem
from solver.rules import Rule
from solver.rules.catalogue import OneShiftPerDay


def site_relaxation_bound(problem: Problem, rules: list[Rule], slots: list[int],
                          pairs: dict[tuple[int, int], None], deadline: float
                          ) -> tuple[int, list[list[tuple[int, int]]]]:
    """A lower bound on the cost of the part made of `slots` and `pairs` (0 if none).

    Also returns each site's best roster, scarcest site first: pieces of a good roster
    that a construction can stitch together.
    """
    if any(isinstance(r, OneShiftPerDay) and not r.hard for r in rules):
        # With two shifts a day allowed, a run of days could be counted at two sites.
        return 0, []
    by_site: dict[int, list[int]] = defaultdict(list)
    for s in slots:
        by_site[problem.slots[s].site].append(s)
    site_pairs: dict[int, dict[tuple[int, int], None]] = defaultdict(dict)
    for v, s in pairs:
        site_pairs[problem.slots[s].site][(v, s)] = None
    # Largest sites first: they carry most of the bound, and get time while there is some.
    order = sorted(by_site, key=lambda site: -len(site_pairs[site]))
    total = 0
    weight = {site: len(site_pairs[site]) + len(by_site[site]) for site in order}
    remaining = sum(weight.values())
    pieces: list[tuple[float, list[tuple[int, int]]]] = []
    for site in order:
        left = deadline - time.monotonic()
        share = max(0.2, left * weight[site] / max(1, remaining))
        remaining -= weight[site]
        sp = site_pairs[site]
        vols = sorted({v for v, _ in sp})
        ctx = build(problem, rules, vols, by_site[site], sp, relaxed=True)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = share
        # One worker with the full linear relaxation (what CP-SAT's "max_lp" worker
        # does) closes a single site in a second or two where default workers stall.
        solver.parameters.num_workers = 1
        solver.parameters.linearization_level = 2
        status = solver.solve(ctx.model)
        found = solver.best_objective_bound
        if status != cp_model.INFEASIBLE and math.isfinite(found):
            total += max(0, math.ceil(found - 1e-6))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            chosen = [k for k, var in ctx.x.items() if solver.boolean_value(var)]
            pieces.append((solver.objective_value / max(1, len(chosen)), chosen))
    pieces.sort(key=lambda p: -p[0])
    return total, [p[1] for p in pieces]
