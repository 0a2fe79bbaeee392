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
  employee's) with a linear objective.  Every schedule CP-SAT meets on the way
  with a negative reduced cost joins the master, not only its last;
- the duals priced are smoothed (Wentges) towards the best seen so far, and each
  round's pricing bounds give a *Lagrangian* lower bound on every roster, valid
  before the LP converges.  Once it meets the LP's value the LP is proven;
- the LP's solution, cell by cell (:class:`Relaxation`), tells the LNS where a
  roster and the LP disagree; with the columns' costs perturbed
  (:meth:`ColumnGeneration.perturbed`), so do other vertices of the LP;
- on a *window* (``lo`` and ``hi``) only those days are priced and every column
  keeps the roster's other days: column generation as one step of the LNS, on
  instances too long for it on the whole roster;
- a *dive* (:meth:`ColumnGeneration.dive`) fixes the cells the LP agrees on and
  re-prices until the LP is integral, and an integer *master* (SCIP, hinted with
  the incumbent, whose rows are columns) picks one column per employee.

Measured from the same constructed rosters (2 workers), against the first version
(one column per employee per round, no smoothing): instance 5 converges in 2.5 s
(6-8 s before), 8, 9 and 10 in 7-13 s (not in 16 s), 12 in 24 s at 4,040, its
optimum, 15 and 18 in 86 and 68 s (not in 150 s).  The pricing takes about 20 ms
an employee on instance 5 and 200 ms on 18 (84 days).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from .instance import OFF, Roster
from .model import InstanceData, SubModel, build_submodel
from .validate import evaluate

__all__ = ["ColumnGeneration", "Guide", "Relaxation"]

LogFn = Callable[[str], None]

#: Reduced costs are scaled by this and rounded for CP-SAT's integer objective.
SCALE = 1000
#: Longest pricing solve of one employee, in seconds.
PRICE_LIMIT = 2.0
#: :meth:`ColumnGeneration.dive` fixes the cells with at least this share of the LP.
DIVE_FIX = 0.99
#: Wentges smoothing: pricing uses this share of the best duals so far (the
#: *centre*, of highest Lagrangian bound) plus the rest of the LP's.
SMOOTHING = 0.5


@dataclass
class Pricing:
    """One employee's pricing: schedules found (best last) and a lower bound on
    ``cost - duals worked`` over all their schedules; ``proven`` if optimal."""

    rows: list[list[int]]
    lower: float
    proven: bool


class _Rows(cp_model.CpSolverSolutionCallback):
    """Collects every schedule CP-SAT finds while pricing (each improving)."""

    def __init__(self, sub: SubModel, base: Sequence[int]) -> None:
        super().__init__()
        self.sub = sub
        # The employee's row with the free days off: what the model does not choose.
        self.base = [OFF if sub.is_free(d) else s for d, s in enumerate(base)]
        self.rows: list[list[int]] = []

    def on_solution_callback(self) -> None:
        row = self.base[:]
        for (_, d, s), v in self.sub.x.items():
            if self.boolean_value(v):
                row[d] = s
        self.rows.append(row)


def _worked(duals: dict[tuple[int, int], float], row: Sequence[int]) -> float:
    """Sum of the cover duals of the cells ``row`` works."""
    return sum(duals.get((d, t), 0.0) for d, t in enumerate(row) if t != OFF)


@dataclass
class Guide:
    """Where a roster is furthest from the column generation's Lagrangian bound.

    At duals ``duals`` an employee's schedule has the reduced cost ``request cost -
    duals worked``; the bound counts each employee at their least.  A roster's
    objective minus the bound is the sum of each employee's *excess* over ``best``
    (the least reduced cost among their columns) plus a non-negative term per cover
    cell, so the employees of largest excess are where the roster can gain.
    """

    duals: dict[tuple[int, int], float]
    best: list[float]

    def excess(self, e: int, row: Sequence[int], cost: int) -> float:
        """Employee ``e``'s reduced cost on ``row`` (of request cost ``cost``) above
        their best, at least 0."""
        return max(0.0, cost - _worked(self.duals, row) - self.best[e])


@dataclass
class Relaxation:
    """The master LP's roster: each employee's share of each shift on each day.

    ``share[e][d]`` maps a shift (or ``OFF``) to the total weight of employee ``e``'s
    columns working it on day ``d``.  Where a roster's cell has a share near 1 the LP
    agrees with it; the LNS frees the cells where it does not (:meth:`agreement`).
    """

    share: list[list[dict[int, float]]]

    def agreement(self, e: int, d: int, s: int) -> float:
        """The LP's share of employee ``e`` working ``s`` (or ``OFF``) on day ``d``."""
        return self.share[e][d].get(s, 0.0)

    def pattern(self, agreement: float) -> list[tuple[int, int, bool]]:
        """Every cell where working (any shift) or the day off has at least
        ``agreement`` of the LP's weight, as (employee, day, works)."""
        out = []
        for e, cells in enumerate(self.share):
            for d, cell in enumerate(cells):
                off = cell.get(OFF, 0.0)
                if off >= agreement:
                    out.append((e, d, False))
                elif sum(cell.values()) - off >= agreement:
                    out.append((e, d, True))
        return out

    def heaviest(self, e: int, d: int) -> tuple[int, float]:
        """The shift (or ``OFF``) of most weight for employee ``e`` on day ``d``, and
        its share."""
        return max(self.share[e][d].items(), key=lambda item: item[1])

    def cells(self, agreement: float) -> list[tuple[int, int, int]]:
        """Every cell where one shift (or the day off) has at least ``agreement`` of
        the LP's weight, as (employee, day, shift or ``OFF``)."""
        out = []
        for e, days in enumerate(self.share):
            for d in range(len(days)):
                s, x = self.heaviest(e, d)
                if x >= agreement:
                    out.append((e, d, s))
        return out

    def schedule(self, e: int) -> list[int] | None:
        """Employee ``e``'s schedule if the LP gives them a whole one, else ``None``."""
        row = []
        for d in range(len(self.share[e])):
            s, x = self.heaviest(e, d)
            if x < 1 - 1e-6:
                return None
            row.append(s)
        return row


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
    """Master LP over the columns found so far, and one pricing model per employee.

    Pricing chooses days ``lo..hi-1`` (all by default), or only those of ``days``
    there; every column keeps ``roster``'s other days, so the LP, its bound and its
    solution are those of the free days with the rest of the roster fixed.
    """

    def __init__(
        self,
        data: InstanceData,
        roster: Roster,
        lo: int = 0,
        hi: int | None = None,
        days: Collection[int] | None = None,
    ) -> None:
        self.data = data
        #: Days ``lo..hi-1`` (or those of ``days``) are priced; every column keeps
        #: ``roster``'s other days.
        self.lo, self.hi = lo, data.H if hi is None else hi
        self.days = None if days is None else frozenset(days)
        self.base = [list(r) for r in roster]
        lp = pywraplp.Solver.CreateSolver("GLOP")
        if lp is None:  # pragma: no cover - GLOP ships with OR-Tools
            raise RuntimeError("OR-Tools was built without GLOP")
        self.lp = lp
        self.objective = lp.Objective()
        #: Cover rows: (day, shift) -> count + under - over == requirement.
        self.cover = _cover_rows(data, lp)
        #: (day, shift) -> (requirement, weight under, weight over) of each cover row.
        self._need = {
            (d, t): cov
            for d, days in enumerate(data.cover)
            for t, cov in enumerate(days)
            if cov is not None
        }
        #: One schedule per employee: sum of their columns' weights == 1.
        self.convex = [lp.Constraint(1, 1) for _ in range(data.E)]
        self.columns: list[list[tuple[list[int], pywraplp.Variable]]] = [[] for _ in range(data.E)]
        self._seen: list[set[tuple[int, ...]]] = [set() for _ in range(data.E)]
        self._pricing: list[SubModel | None] = [None] * data.E
        #: Value of the LP at the last round, and whether it is a proven lower bound.
        self.value = float("inf")
        self.converged = False
        #: Best Lagrangian lower bound so far (every roster costs at least this),
        #: and the duals that gave it.
        self.lower = -float("inf")
        self._centre: dict[tuple[int, int], float] | None = None
        self._misprice = False
        self.smoothing = SMOOTHING
        self.rounds = 0
        #: Cells fixed by :meth:`dive`: (employee, day) -> shift or OFF.
        self.fixed: dict[tuple[int, int], int] = {}
        for e, r in enumerate(roster):
            self.add(e, r)

    @property
    def bound(self) -> int | None:
        """Lower bound on every roster's objective, ``None`` before the first round.

        The Lagrangian bound of the best duals priced: valid whether or not the LP
        has converged (then it meets the LP's value, up to the pricing's rounding).
        """
        if self.lower == -float("inf"):
            return None
        return math.ceil(self.lower - 1e-6)

    def request_cost(self, e: int, row: Sequence[int]) -> int:
        """Cost of employee ``e``'s requests broken by ``row``."""
        return sum(self.data.cell_cost(e, d, s) for d, s in enumerate(row))

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

    def _submodel(self, e: int) -> SubModel:
        """Employee ``e``'s pricing model (built on first use)."""
        sub = self._pricing[e]
        if sub is None:
            sub = build_submodel(
                self.data, self.base, [e], self.lo, self.hi, hint=False, days=self.days
            )
            self._pricing[e] = sub
        return sub

    def _price(
        self,
        e: int,
        duals: dict[tuple[int, int], float],
        hint: Sequence[int],
        seed: int,
        limit: float = PRICE_LIMIT,
    ) -> Pricing:
        """Employee ``e``'s schedules found against ``duals``, best last.

        With a lower bound on ``min(cost - duals worked)`` over all of ``e``'s
        schedules: CP-SAT's bound on its scaled objective when it ran (rounding
        allowed for), else the trivial one of every cell at its cheapest.
        """
        data = self.data
        sub = self._submodel(e)
        m = sub.model
        m.clear_objective()
        m.clear_hints()
        # cost(row) - duals worked == constant + sum of the cells' coefficients; the
        # constant holds the fixed days' part and the free days' on-requests.
        base = self.base[e]
        free = sub.free_days
        constant: float = sum(w for d in free for _, w in data.on_req.get((e, d), ()))
        for d in range(data.H):
            if not sub.is_free(d):
                constant += data.cell_cost(e, d, base[d]) - duals.get((d, base[d]), 0.0)
        terms = []
        cheapest = [0.0] * data.H
        for (_, d, s), v in sub.x.items():
            c = -duals.get((d, s), 0.0)
            for s2, w in data.on_req.get((e, d), ()):
                c -= w if s2 == s else 0
            for s2, w in data.off_req.get((e, d), ()):
                c += w if s2 == s else 0
            cheapest[d] = min(cheapest[d], c)
            terms.append(round(c * SCALE) * v)
            m.add_hint(v, hint[d] == s)
        trivial = constant + sum(cheapest)
        if limit <= 0:
            return Pricing([], trivial, False)
        m.minimize(sum(terms))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, min(PRICE_LIMIT, limit))
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = seed
        solver.parameters.linearization_level = 2
        found = _Rows(sub, base)
        status = solver.solve(m, found)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return Pricing([], trivial, False)
        slack = len(free) * 0.5 / SCALE  # per free day, one term rounded
        lower = max(trivial, constant + solver.best_objective_bound / SCALE - slack)
        return Pricing(found.rows, lower, status == cp_model.OPTIMAL)

    def solve_lp(self) -> bool:
        """Solve the master LP; False if GLOP fails even without presolve."""
        if self.lp.Solve() == pywraplp.Solver.OPTIMAL:
            return True
        # GLOP's presolve can end ABNORMAL on a master with many columns bounded to
        # zero (seen while diving on instance 18); without it the same LP solves.
        self.lp.SetSolverSpecificParametersAsString("use_preprocessing:false")
        try:
            return self.lp.Solve() == pywraplp.Solver.OPTIMAL
        finally:
            self.lp.SetSolverSpecificParametersAsString("")

    def _duals(self) -> tuple[dict[tuple[int, int], float], list[float]]:
        """The LP's cover duals (clipped to the slacks' prices) and convexity duals."""
        duals = {}
        for k, row in self.cover.items():
            _, wu, wo = self._need[k]
            duals[k] = min(wu, max(-wo, row.dual_value()))
        return duals, [row.dual_value() for row in self.convex]

    def round(self, pool: ThreadPoolExecutor, deadline: float) -> int:
        """Solve the LP, price every employee, add the improving columns.

        Pricing is against the LP's duals smoothed towards the centre
        (:data:`SMOOTHING`); after a round that added nothing (a *mispricing*),
        against the LP's own.  Every schedule CP-SAT finds on the way that has a
        negative reduced cost at the LP's duals joins.  Each round's pricing bounds
        give a Lagrangian lower bound; the best is :attr:`lower`.  Returns how many
        columns were added; :attr:`converged` is set once the bound meets the LP,
        or once no column joins at the LP's own duals with every pricing proven.
        """
        if not self.solve_lp():
            return 0
        self.rounds += 1
        self.value = self.objective.Value()
        lp_duals, mu = self._duals()
        duals = lp_duals
        if self._centre is not None and not self._misprice and self.smoothing > 0:
            a = self.smoothing
            duals = {k: a * self._centre[k] + (1 - a) * v for k, v in lp_duals.items()}
        # Each employee's heaviest column in the LP: the pricing's hint.
        hints = [max(cols, key=lambda c: c[1].solution_value())[0] for cols in self.columns]

        def price(e: int) -> Pricing:
            return self._price(e, duals, hints[e], e, deadline - time.monotonic())

        added = 0
        proven = True
        lower = sum(self._need[k][0] * v for k, v in duals.items())
        for e, found in enumerate(pool.map(price, range(self.data.E))):
            lower += found.lower
            proven = proven and found.proven
            for row in found.rows:
                reduced = self.request_cost(e, row) - _worked(lp_duals, row) - mu[e]
                if reduced < -1e-6 and self.add(e, row):
                    added += 1
        if lower > self.lower and not self.fixed:  # a dive's bounds hold for its fixes only
            self.lower, self._centre = lower, duals
        self._misprice = added == 0 and duals is not lp_duals
        # At the LP's own duals, pricing proven optimal for everyone and no column
        # added: the LP is solved, up to the pricing's rounding (half a unit of
        # ``SCALE`` per free day and employee), which may leave the bound that much below it.
        self.converged = math.ceil(self.lower - 1e-6) >= math.ceil(self.value - 1e-6) or (
            added == 0 and duals is lp_duals and (proven or self.lower >= self.value - 1e-3)
        )
        return added

    def run(self, deadline: float, workers: int = 2, log: LogFn | None = None) -> bool:
        """Rounds until the LP's value is proven or ``deadline``; True if proven."""
        start = time.monotonic()
        with ThreadPoolExecutor(max(1, workers)) as pool:
            while time.monotonic() < deadline:
                added = self.round(pool, deadline)
                if log:
                    log(
                        f"round {self.rounds} {time.monotonic() - start:.1f}s LP {self.value:.1f}"
                        f" lower {self.lower:.1f} added {added}"
                    )
                if self.converged or (not added and not self._misprice):
                    break
        return self.converged

    def _fix(self, e: int, d: int, s: int) -> None:
        """Employee ``e`` works ``s`` (or is OFF) on day ``d``: in pricing and LP."""
        self.fixed[(e, d)] = s
        sub = self._submodel(e)
        for (_, d2, t), v in sub.x.items():
            if d2 == d:
                sub.model.add(v == int(t == s))
        for row, v in self.columns[e]:
            if row[d] != s:
                v.SetUb(0)

    def dive(self, deadline: float, cutoff: float, workers: int = 2) -> Roster | None:
        """A roster by diving: fix cells the LP (nearly) agrees on, re-price, repeat.

        Each step fixes every cell whose share of the LP's columns is at least
        :data:`DIVE_FIX`, or else the working cell of largest share, then runs pricing
        rounds at the LP's duals until none adds a column.  Ends with the roster when
        the LP is integral; ``None`` at ``deadline`` or once the LP reaches
        ``cutoff`` (it can only rise).  Fixing constrains the pricing models for
        good: call it last, before :meth:`integer` (whose pool gains the columns).
        """
        self.smoothing = 0.0
        while time.monotonic() < deadline:
            if not self.solve_lp() or self.objective.Value() >= cutoff:
                return None
            relax = self._relaxation()
            whole = [relax.schedule(e) for e in range(self.data.E)]
            if all(row is not None for row in whole):
                return [row for row in whole if row is not None]
            free = [
                (x, (e, d, t))
                for e, days in enumerate(relax.share)
                for d, cell in enumerate(days)
                for t, x in cell.items()
                if (e, d) not in self.fixed
            ]
            fixes = [k for x, k in free if x >= DIVE_FIX]
            if not fixes:
                top = max(((x, k) for x, k in free if k[2] != OFF), default=None)
                if top is None:  # pragma: no cover - distinct columns differ in a shift
                    return None
                fixes = [top[1]]
            for e, d, t in fixes:
                self._fix(e, d, t)
            with ThreadPoolExecutor(max(1, workers)) as pool:
                while time.monotonic() < deadline and self.round(pool, deadline):
                    pass
        return None

    def relaxation(self) -> Relaxation | None:
        """The master LP's solution by cell (:class:`Relaxation`); ``None`` if the LP
        does not solve."""
        return self._relaxation() if self.solve_lp() else None

    def perturbed(self, rng: random.Random, noise: float) -> Relaxation | None:
        """The LP's solution with each column's cost raised by a random amount below
        ``noise``: another vertex of the LP, optimal or nearly, where it has several.
        The master's own costs are put back.  ``None`` if the LP does not solve."""
        costs = [(v, self.objective.GetCoefficient(v)) for cols in self.columns for _, v in cols]
        for v, cost in costs:
            self.objective.SetCoefficient(v, cost + noise * rng.random())
        try:
            return self._relaxation() if self.solve_lp() else None
        finally:
            for v, cost in costs:
                self.objective.SetCoefficient(v, cost)

    def _relaxation(self) -> Relaxation:
        """:class:`Relaxation` of the LP as last solved."""
        share: list[list[dict[int, float]]] = [
            [{} for _ in range(self.data.H)] for _ in range(self.data.E)
        ]
        for e, cols in enumerate(self.columns):
            for row, v in cols:
                x = v.solution_value()
                if x > 1e-9:
                    for d, s in enumerate(row):
                        share[e][d][s] = share[e][d].get(s, 0.0) + x
        return Relaxation(share)

    def guide(self) -> Guide | None:
        """The duals of the best Lagrangian bound, for the LNS to aim by (:class:`Guide`);
        ``None`` before a round has given a bound."""
        duals = self._centre
        if duals is None:
            return None
        best = [
            min(self.request_cost(e, row) - _worked(duals, row) for row, _ in cols)
            for e, cols in enumerate(self.columns)
        ]
        return Guide(dict(duals), best)

    def integer(self, incumbent: Roster, incumbent_obj: int, limit: float) -> tuple[Roster, int]:
        """The best choice of one column per employee within ``limit`` seconds.

        A set-partitioning MIP, solved by SCIP: on instance 5 it proves its optimum in
        about 2 s, where CP-SAT (10 s) ended at 1,144-1,263 from the same columns.
        ``incumbent``'s rows (of objective ``incumbent_obj``) are columns, and the
        better of it and the LP rounded (each employee's heaviest column) is the hint;
        that roster is returned when SCIP finds nothing better in time (on instance
        13, 64 s, it found nothing at all).
        Returns the roster and its objective.
        """
        data = self.data
        self.solve_lp()
        rounded = [max(cols, key=lambda c: c[1].solution_value())[0] for cols in self.columns]
        best = incumbent_obj
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
