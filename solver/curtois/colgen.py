"""Column generation for the Curtois & Qu benchmark: whole schedules per employee.

The LNS changes a few employees at a time.  Some rosters of the small instances sit
in a basin it does not leave: on instance 5 about half the runs stop at 1,236 (the
optimum is 1,143), where moving one misplaced shift means re-planning many whole
schedules at once.  Column generation looks at the roster the other way round, as a
choice of one whole schedule (a *column*) per employee:

- the *master* LP (GLOP) picks a convex combination of each employee's columns so
  as to minimise request costs plus the cost of cover under and over;
- *pricing* asks, per employee, for the schedule of least reduced cost against the
  LP's cover duals: the employee's own CP-SAT model (every hard rule is one
  employee's) with a linear objective.  Columns of negative reduced cost join the
  master, until none is left: the LP is then solved over every schedule there is,
  and its value (when every pricing was proven optimal) a lower bound;
- an integer *master* (CP-SAT, hinted with the incumbent, whose rows are columns)
  then picks one column per employee.

On instance 5 it converges in a few seconds (LP 1,140.6) and the integer master
gives 1,146-1,147 from any starting roster.  Its pricing takes about 20 ms an
employee there and 200 ms on instance 18 (84 days), where it had not converged
after 150 s; the search therefore uses it only on small instances
(:data:`~solver.curtois.search.COLGEN_CELLS`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from .instance import OFF, Roster
from .model import InstanceData, SubModel, build_submodel
from .validate import evaluate

__all__ = ["ColumnGeneration"]

#: Reduced costs are scaled by this and rounded for CP-SAT's integer objective.
SCALE = 1000
#: Longest pricing solve of one employee, in seconds.
PRICE_LIMIT = 2.0


def _cover_rows(
    data: InstanceData, solver: pywraplp.Solver
) -> dict[tuple[int, int], pywraplp.Constraint]:
    """Per (day, shift) with cover: workers + under - over == requirement, the slacks
    priced in ``solver``'s objective (made a minimisation); columns add the workers."""
    objective = solver.Objective()
    objective.SetMinimization()
    rows = {}
    for d in range(data.H):
        for t in range(data.S):
            cov = data.cover[d][t]
            if cov is None:
                continue
            req, wu, wo = cov
            row = solver.Constraint(req, req)
            under = solver.NumVar(0, solver.infinity(), "")
            over = solver.NumVar(0, solver.infinity(), "")
            row.SetCoefficient(under, 1)
            row.SetCoefficient(over, -1)
            objective.SetCoefficient(under, wu)
            objective.SetCoefficient(over, wo)
            rows[(d, t)] = row
    return rows


class ColumnGeneration:
    """Master LP over the columns found so far, and one pricing model per employee."""

    def __init__(self, data: InstanceData, roster: Roster) -> None:
        self.data = data
        lp = pywraplp.Solver.CreateSolver("GLOP")
        if lp is None:  # pragma: no cover - GLOP ships with OR-Tools
            raise RuntimeError("OR-Tools was built without GLOP")
        self.lp = lp
        self.objective = lp.Objective()
        #: Cover rows: (day, shift) -> count + under - over == requirement.
        self.cover = _cover_rows(data, lp)
        #: One schedule per employee: sum of their columns' weights == 1.
        self.convex = [lp.Constraint(1, 1) for _ in range(data.E)]
        self.columns: list[list[tuple[list[int], pywraplp.Variable]]] = [[] for _ in range(data.E)]
        self._seen: list[set[tuple[int, ...]]] = [set() for _ in range(data.E)]
        self._pricing: list[SubModel | None] = [None] * data.E
        #: Value of the LP at the last round, and whether it is a proven lower bound.
        self.value = float("inf")
        self.converged = False
        for e, r in enumerate(roster):
            self.add(e, r)

    @property
    def bound(self) -> int | None:
        """Lower bound on every roster's objective once converged, else ``None``.

        Pricing rounds each cell's reduced cost to 1/:data:`SCALE`, so a column
        it missed is at most half of that a day below zero, per employee.
        """
        if not self.converged:
            return None
        slack = self.data.E * self.data.H * 0.5 / SCALE
        return math.ceil(self.value - slack - 1e-6)

    def request_cost(self, e: int, row: Sequence[int]) -> int:
        """Cost of employee ``e``'s requests broken by ``row``."""
        data = self.data
        c = 0
        for d in range(data.H):
            for s, w in data.on_req.get((e, d), ()):
                c += w if row[d] != s else 0
            for s, w in data.off_req.get((e, d), ()):
                c += w if row[d] == s else 0
        return c

    def add(self, e: int, row: Sequence[int]) -> bool:
        """Add ``row`` as a column of employee ``e``; False if it is there already."""
        key = tuple(row)
        if key in self._seen[e]:
            return False
        self._seen[e].add(key)
        v = self.lp.NumVar(0, self.lp.infinity(), "")
        self.objective.SetCoefficient(v, self.request_cost(e, row))
        self.convex[e].SetCoefficient(v, 1)
        for d, t in enumerate(row):
            if t != OFF and (d, t) in self.cover:
                self.cover[(d, t)].SetCoefficient(v, 1)
        self.columns[e].append((list(row), v))
        return True

    def _price(
        self,
        e: int,
        duals: dict[tuple[int, int], float],
        hint: Sequence[int],
        seed: int,
        limit: float = PRICE_LIMIT,
    ) -> tuple[list[int], bool] | None:
        """Employee ``e``'s schedule of least reduced cost (and whether proven)."""
        data = self.data
        sub = self._pricing[e]
        if sub is None:
            sub = build_submodel(data, [[OFF] * data.H] * data.E, [e], hint=False)
            self._pricing[e] = sub
        m = sub.model
        m.clear_objective()
        m.clear_hints()
        terms = []
        for (_, d, s), v in sub.x.items():
            c = -duals.get((d, s), 0.0)
            for s2, w in data.on_req.get((e, d), ()):
                c -= w if s2 == s else 0
            for s2, w in data.off_req.get((e, d), ()):
                c += w if s2 == s else 0
            terms.append(round(c * SCALE) * v)
            m.add_hint(v, hint[d] == s)
        m.minimize(sum(terms))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, min(PRICE_LIMIT, limit))
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = seed
        solver.parameters.linearization_level = 2
        status = solver.solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        row = [OFF] * data.H
        for (_, d, s), v in sub.x.items():
            if solver.boolean_value(v):
                row[d] = s
        return row, status == cp_model.OPTIMAL

    def round(self, pool: ThreadPoolExecutor, deadline: float) -> int:
        """Solve the LP, price every employee, add the improving columns.

        Returns how many columns were added (0: the LP is optimal over all schedules,
        if every pricing was proven).  Pricing stops at ``deadline``.
        """
        self.lp.Solve()
        self.value = self.objective.Value()
        duals = {k: row.dual_value() for k, row in self.cover.items()}
        mu = [row.dual_value() for row in self.convex]
        # Each employee's heaviest column in the LP: the pricing's hint.
        hints = [max(cols, key=lambda c: c[1].solution_value())[0] for cols in self.columns]
        lock = threading.Lock()
        proven = [True]

        def price(e: int) -> list[int] | None:
            left = deadline - time.monotonic()
            if left <= 0:
                with lock:
                    proven[0] = False
                return None
            found = self._price(e, duals, hints[e], e, left)
            if found is None or not found[1]:
                with lock:
                    proven[0] = False
            if found is None:
                return None
            row = found[0]
            worked = sum(duals.get((d, t), 0.0) for d, t in enumerate(row) if t != OFF)
            return row if self.request_cost(e, row) - worked - mu[e] < -1e-6 else None

        added = 0
        for e, row in enumerate(pool.map(price, range(self.data.E))):
            if row is not None and self.add(e, row):
                added += 1
        self.converged = added == 0 and proven[0]
        return added

    def run(self, deadline: float, workers: int = 2) -> bool:
        """Rounds until no column improves the LP or ``deadline``; True if converged."""
        with ThreadPoolExecutor(max(1, workers)) as pool:
            while time.monotonic() < deadline:
                if not self.round(pool, deadline):
                    break
        return self.converged

    def integer(self, incumbent: Roster, limit: float) -> tuple[Roster, int]:
        """The best choice of one column per employee within ``limit`` seconds.

        A set-partitioning MIP, solved by SCIP: on instance 5 it proves its optimum in
        about 2 s, where CP-SAT (10 s) ended at 1,144-1,263 from the same columns.
        ``incumbent``'s rows are columns and the better of it and the LP rounded (each
        employee's heaviest column) is the hint; that roster is returned when SCIP
        finds nothing better in time (on instance 13, 64 s, it found nothing at all).
        Returns the roster and its objective.
        """
        data = self.data
        self.lp.Solve()
        rounded = [max(cols, key=lambda c: c[1].solution_value())[0] for cols in self.columns]
        best = evaluate(data.inst, incumbent).objective
        if (value := evaluate(data.inst, rounded).objective) < best:
            incumbent, best = rounded, value
        for e, r in enumerate(incumbent):
            self.add(e, r)
        mip = pywraplp.Solver.CreateSolver("SCIP")
        if mip is None:  # pragma: no cover - SCIP ships with OR-Tools
            raise RuntimeError("OR-Tools was built without SCIP")
        mip.SetTimeLimit(max(50, int(1000 * limit)))
        objective = mip.Objective()
        cover = _cover_rows(data, mip)
        chosen: list[list[pywraplp.Variable]] = []
        hint: list[tuple[pywraplp.Variable, float]] = []
        for e, cols in enumerate(self.columns):
            one = mip.Constraint(1, 1)
            bs = []
            for row, _ in cols:
                b = mip.BoolVar("")
                bs.append(b)
                one.SetCoefficient(b, 1)
                objective.SetCoefficient(b, self.request_cost(e, row))
                for d, t in enumerate(row):
                    if t != OFF and (d, t) in cover:
                        cover[(d, t)].SetCoefficient(b, 1)
                hint.append((b, 1.0 if row == incumbent[e] else 0.0))
            chosen.append(bs)
        mip.SetHint([b for b, _ in hint], [v for _, v in hint])
        if mip.Solve() not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return incumbent, best
        roster = [
            next(row for (row, _), b in zip(cols, bs, strict=True) if b.solution_value() > 0.5)
            for cols, bs in zip(self.columns, chosen, strict=True)
        ]
        value = evaluate(data.inst, roster).objective
        return (roster, value) if value < best else (incumbent, best)
