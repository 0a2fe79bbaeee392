"""Column generation for the Curtois & Qu benchmark (solver/curtois/colgen.py)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from solver.curtois import colgen, search
from solver.curtois.colgen import SCALE, ColumnGeneration, Guide, Relaxation
from solver.curtois.incumbent import Incumbent
from solver.curtois.instance import OFF, Instance, Roster, parse_instance
from solver.curtois.model import InstanceData, build_submodel
from solver.curtois.search import Clock, construct, solve
from solver.curtois.validate import evaluate
from tests.test_curtois import BENCH, make_instance, needs_data, row

# Two employees, two shift types, five days: the cover wants one early and one late
# person most days, A asks for late shifts and B is off on day 2, so the best roster
# is a trade-off no single employee's change reaches from the start used below.
TWO: dict[str, Any] = dict(
    horizon=5,
    shifts="E,480,\nL,480,E",
    staff="A,,2400,960,3,1,1,9\nB,,2400,960,3,1,1,9",
    days_off="B,2",
    on="A,3,L,4\nA,4,L,4",
    off="B,0,E,3",
    cover="\n".join(f"{d},{s},1,100,1" for d in range(5) for s in "EL"),
)


def _two() -> tuple[Instance, InstanceData, Roster]:
    """TWO, its data and a start roster: A works every early shift, B every late."""
    inst = make_instance(**TWO)
    return inst, InstanceData(inst), [row(inst, "EE.EE"), row(inst, "LL.LL")]


def _rows(inst: Instance, e: int) -> list[list[int]]:
    """Every schedule employee ``e`` may work on their own (the validator's word)."""
    out = []
    choices = [OFF, *range(inst.num_shifts)]
    for cells in itertools.product(choices, repeat=inst.horizon):
        roster = [[OFF] * inst.horizon for _ in range(inst.num_staff)]
        roster[e] = list(cells)
        ev = evaluate(inst, roster)
        if not any(v.startswith(inst.staff[e].id) for v in ev.violations):
            out.append(list(cells))
    return out


def _optimum(inst: Instance) -> int:
    rows = [_rows(inst, e) for e in range(inst.num_staff)]
    return min(evaluate(inst, list(r)).objective for r in itertools.product(*rows))


def test_rows_helper_reads_the_validator() -> None:
    inst = make_instance(**TWO)
    rows = _rows(inst, 1)
    assert row(inst, "EE.LL") in rows
    assert row(inst, "EEL..") not in rows  # B is off on day 2
    assert row(inst, "LE...") not in rows  # E cannot follow L
    assert row(inst, "E....") not in rows  # under B's 960 minutes


def _reduced(cg: ColumnGeneration, e: int, r: list[int], duals: dict[Any, float]) -> float:
    """``cost - duals worked`` of employee ``e`` working ``r``."""
    return cg.request_cost(e, r) - sum(duals[(d, t)] for d, t in enumerate(r) if t != OFF)


DUALS = {(d, t): (37 * d + 11 * t) % 23 - 9.5 for d in range(5) for t in range(2)}


def test_pricing_finds_the_schedule_of_least_reduced_cost() -> None:
    inst = make_instance(**TWO)
    data = InstanceData(inst)
    cg = ColumnGeneration(data, [[OFF] * 5, [OFF] * 5])
    for e in range(2):
        found = cg._price(e, DUALS, [OFF] * 5, 0)
        assert found.proven and found.rows
        feasible = _rows(inst, e)
        best = min(_reduced(cg, e, r, DUALS) for r in feasible)
        # Every schedule met on the way is one of the employee's, the last the best;
        # the bound is below it by at most the rounding of the scaled costs.
        assert all(r in feasible for r in found.rows)
        assert _reduced(cg, e, found.rows[-1], DUALS) == pytest.approx(best)
        assert best - 5 * 0.5 / SCALE <= found.lower <= best + 1e-9


def test_pricing_without_time_gives_the_trivial_bound() -> None:
    inst = make_instance(**TWO)
    cg = ColumnGeneration(InstanceData(inst), [[OFF] * 5, [OFF] * 5])
    found = cg._price(0, DUALS, [OFF] * 5, 0, limit=0)
    assert found.rows == [] and not found.proven
    # Each day at its cheapest cell, with no rule: below every schedule.
    assert found.lower <= min(_reduced(cg, 0, r, DUALS) for r in _rows(inst, 0))


def test_lagrangian_bound_holds_in_every_round() -> None:
    inst, data, start = _two()
    optimum = _optimum(inst)
    cg = ColumnGeneration(data, start)
    assert cg.bound is None and cg.guide() is None
    bounds = []
    with ThreadPoolExecutor(2) as pool:
        while not cg.converged:
            # A round adds columns, or finds none at smoothed duals (the next
            # prices at the LP's own), or proves the LP.
            added = cg.round(pool, time.monotonic() + 10)
            assert added or cg._misprice or cg.converged
            assert cg.bound is not None and cg.bound <= optimum
            bounds.append(cg.bound)
    # It only rises, starts far below (the start's duals are poor) and ends tight.
    assert bounds == sorted(bounds) and bounds[0] < bounds[-1] == optimum


def test_lp_is_solved_once_every_pricing_is_proven_at_its_own_duals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, start = _two()
    # Reduced costs in whole units: each employee's pricing bound may lie up to
    # H * 0.5 below their optimum, so the Lagrangian bound ends below the LP.
    monkeypatch.setattr(colgen, "SCALE", 1)
    cg = ColumnGeneration(data, start)
    assert cg.run(time.monotonic() + 20, workers=2)
    assert cg.value == _optimum(inst)  # this LP is integral
    assert cg.bound is not None and cg.bound < cg.value
    # Not proven when a pricing was not solved to optimality.
    price = ColumnGeneration._price

    def unproven(self: ColumnGeneration, *args: Any, **kwargs: Any) -> Any:
        found = price(self, *args, **kwargs)
        found.proven = False
        return found

    monkeypatch.setattr(ColumnGeneration, "_price", unproven)
    cg = ColumnGeneration(data, start)
    assert not cg.run(time.monotonic() + 20, workers=2)
    assert cg.value == _optimum(inst)


def test_master_lp_retries_without_presolve_when_glop_fails() -> None:
    inst = make_instance(**TWO)
    cg = ColumnGeneration(InstanceData(inst), [row(inst, "EE.EE"), row(inst, "LL.LL")])
    real = cg.lp
    calls: list[str] = []

    class Failing:
        """GLOP as seen diving on instance 18: ABNORMAL until presolve is off."""

        params = ""

        def SetSolverSpecificParametersAsString(self, text: str) -> None:  # noqa: N802
            self.params = text
            real.SetSolverSpecificParametersAsString(text)

        def Solve(self) -> int:  # noqa: N802
            calls.append(self.params)
            if self.params != "use_preprocessing:false":
                return pywraplp.Solver.ABNORMAL
            return real.Solve()

    cg.lp = Failing()  # type: ignore[assignment]
    assert cg.solve_lp()
    assert calls == ["", "use_preprocessing:false"]
    assert (
        cg.objective.Value() == evaluate(inst, [row(inst, "EE.EE"), row(inst, "LL.LL")]).objective
    )
    # Presolve is back on afterwards: the next solve tries it first again.
    assert cg.solve_lp()
    assert calls == ["", "use_preprocessing:false"] * 2


# Found by a search over small random instances: the converged LP here is half of
# each of two schedules for both employees, so a dive has something to fix.
FRACTIONAL: dict[str, Any] = dict(
    horizon=5,
    shifts="E,480,\nL,480,E",
    staff="A,,2400,1440,3,1,1,9\nB,,2400,960,3,1,1,9",
    on="A,1,L,2\nA,2,E,3",
    cover="\n".join(
        f"{d},{s},1,100,{1 if (d, s) in ((1, 'E'), (1, 'L'), (2, 'L')) else 50}"
        for d in range(5)
        for s in "EL"
    ),
)


def test_dive_gives_a_feasible_roster_at_or_above_the_bound() -> None:
    inst = make_instance(**FRACTIONAL)
    data = InstanceData(inst)
    cg = ColumnGeneration(data, [[OFF] * 5, [OFF] * 5])
    cg.run(time.monotonic() + 30, workers=2)
    bound = cg.bound
    assert bound is not None
    assert cg.solve_lp()
    assert max(v.solution_value() for _, v in cg.columns[0]) < 0.99  # fractional
    roster = cg.dive(time.monotonic() + 30, float("inf"), workers=2)
    assert roster is not None
    ev = evaluate(inst, roster)
    assert ev.feasible and bound <= _optimum(inst) <= ev.objective
    # Every cell the dive fixed is in the roster, and new pricing keeps to them.
    assert cg.fixed and all(roster[e][d] == t for (e, d), t in cg.fixed.items())
    for e in range(2):
        for r in cg._price(e, DUALS, roster[e], 0).rows:
            assert all(r[d] == t for (e2, d), t in cg.fixed.items() if e2 == e)
    # The dive's restricted LPs bound only their own fixes: the bound is left alone.
    assert cg.bound == bound


def test_dive_stops_at_the_cutoff() -> None:
    inst = make_instance(**TWO)
    cg = ColumnGeneration(InstanceData(inst), [row(inst, "EE.EE"), row(inst, "LL.LL")])
    cg.run(time.monotonic() + 30, workers=2)
    assert cg.dive(time.monotonic() + 30, cg.value - 1, workers=2) is None
    assert cg.fixed == {}


def test_lp_bound_and_integer_master_against_brute_force() -> None:
    inst, data, start = _two()
    first = evaluate(inst, start)
    assert first.feasible
    optimum = _optimum(inst)
    assert optimum < first.objective
    cg = ColumnGeneration(data, start)
    assert cg.run(time.monotonic() + 30, workers=2)
    assert cg.value <= optimum + 1e-6
    roster, obj = cg.integer(start, first.objective, 10.0)
    ev = evaluate(inst, roster)
    assert ev.feasible and ev.objective == obj
    # Every schedule a priced column could improve on is in the pool: here that
    # reaches the optimum, far below the start.
    assert obj == optimum


def test_integer_master_is_never_worse_than_the_incumbent() -> None:
    inst, data, start = _two()
    cg = ColumnGeneration(data, start)  # no pricing: the start is the only column
    objective = evaluate(inst, start).objective
    assert cg.integer(start, objective, 5.0) == (start, objective)


def test_search_uses_column_generation_up_to_colgen_cells_and_staff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst = make_instance(**TWO)
    made: list[int] = []

    class Spy(ColumnGeneration):
        def __init__(self, *args: object) -> None:
            made.append(1)
            super().__init__(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(search, "ColumnGeneration", Spy)
    monkeypatch.setattr(search, "COLGEN_CELLS", 2 * 5 - 1)
    solve(inst, time_limit=1.0, workers=1, seed=0)
    assert made == []
    monkeypatch.setattr(search, "COLGEN_CELLS", 2 * 5)
    solve(inst, time_limit=1.0, workers=1, seed=0)
    assert made == [1]
    # Within the cells, but more employees than COLGEN_STAFF: none.
    monkeypatch.setattr(search, "COLGEN_STAFF", 1)
    solve(inst, time_limit=1.0, workers=1, seed=0)
    assert made == [1]
    monkeypatch.setattr(search, "COLGEN_STAFF", 2)
    solve(inst, time_limit=1.0, workers=1, seed=0)
    assert made == [1, 1]


def test_colgen_step_gives_the_master_roster_and_the_lp_bound() -> None:
    inst, data, start = _two()
    state = Incumbent(data, start, evaluate(inst, start).objective)
    new, bound, guide, relax = search._colgen(data, state, Clock(20.0), 2, None)
    optimum = _optimum(inst)
    assert new.obj == evaluate(inst, new.roster).objective == optimum < state.obj
    assert bound is not None and bound <= optimum
    assert guide is not None and set(guide.duals) == {(d, t) for d in range(5) for t in range(2)}
    # The LP's solution and its perturbed vertices (a tiny LP: all of them in time).
    assert len(relax) == 1 + search.RINS_VERTICES
    assert all(len(r.share) == 2 and len(r.share[0]) == 5 for r in relax)


def test_colgen_step_makes_vertices_of_a_converged_lp_within_their_share_of_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, start = _two()
    monkeypatch.setattr(search, "RINS_VERTEX_SHARE", 0.0)
    fixed_solves: list[float] = []
    real = search._fixed_solve

    def spy(*args: Any) -> Incumbent:
        fixed_solves.append(args[4])
        return real(*args)

    monkeypatch.setattr(search, "_fixed_solve", spy)
    state = Incumbent(data, start, evaluate(inst, start).objective)
    # TWO's 10 cells are below FIX_CELLS: no LP-fixed solve.
    *_, relax = search._colgen(data, state, Clock(20.0), 2, None)
    assert len(relax) == 1 and not fixed_solves  # the LP's own solution only
    # At FIX_CELLS, the LP-fixed solve within its share of the time left ...
    monkeypatch.setattr(search, "FIX_CELLS", 10)
    *_, relax = search._colgen(data, state, Clock(20.0), 2, None)
    assert len(fixed_solves) == 1
    assert search.FIX_SHARE * 19 < fixed_solves[0] <= search.FIX_SHARE * 20
    # ... and up to FIX_MAX.
    search._colgen(data, state, Clock(1000.0), 2, None)
    assert fixed_solves[1] == search.FIX_MAX < search.FIX_SHARE * 999
    # Time enough, but column generation did not converge: its master's vertices
    # are not the LP's, nor are its cells worth fixing.
    monkeypatch.setattr(search, "RINS_VERTEX_SHARE", 0.05)
    monkeypatch.setattr(ColumnGeneration, "run", lambda self, deadline, workers: False)
    *_, relax = search._colgen(data, state, Clock(20.0), 2, None)
    assert len(relax) == 1 and len(fixed_solves) == 2


def test_integer_master_takes_its_share_up_to_colgen_ip_max(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, start = _two()
    limits: list[float] = []
    integer = ColumnGeneration.integer

    def spy(self: ColumnGeneration, roster: Any, obj: int, limit: float) -> Any:
        limits.append(limit)
        return integer(self, roster, obj, limit)

    monkeypatch.setattr(ColumnGeneration, "integer", spy)
    # The LP-fixed solve (were TWO big enough) would reach the optimum first and
    # skip the master.
    monkeypatch.setattr(search, "FIX_CELLS", 11)
    for seconds in (20.0, 1000.0):
        state = Incumbent(data, start, evaluate(inst, start).objective)
        new, _, _, _ = search._colgen(data, state, Clock(seconds), 2, None)
        assert new.obj == _optimum(inst)
    # The share of what is left of 20 s (column generation takes well under a
    # second here), and the cap where that share of 1,000 s would be far above it.
    share = search.COLGEN_IP_SHARE
    assert share * 19 < limits[0] <= share * 20 < search.COLGEN_IP_MAX == limits[1]
    assert share * 999 > search.COLGEN_IP_MAX


def _excess(guide: Guide, cg: ColumnGeneration, e: int, r: list[int]) -> float:
    return guide.excess(e, r, cg.request_cost(e, r))


def test_guide_splits_the_gap_to_its_bound_by_employee() -> None:
    inst = make_instance(**TWO)
    data = InstanceData(inst)
    cg = ColumnGeneration(data, [row(inst, "EE.EE"), row(inst, "LL.LL")])
    assert cg.run(time.monotonic() + 20, workers=2)
    guide = cg.guide()
    assert guide is not None and guide.duals == cg._centre
    # Each employee's best is their least reduced cost among their columns ...
    for e, cols in enumerate(cg.columns):
        rcs = [_reduced(cg, e, r, guide.duals) for r, _ in cols]
        assert guide.best[e] == pytest.approx(min(rcs))
        assert min(_excess(guide, cg, e, r) for r, _ in cols) == pytest.approx(0)
    # ... so, at those duals, every roster made of columns costs the duals' value
    # (sum of requirement x dual, plus each best) plus its employees' excesses plus
    # a non-negative term per cover cell: the excesses never exceed the difference.
    base = sum(data.cover[d][t][0] * v for (d, t), v in guide.duals.items()) + sum(guide.best)
    # The bound counted each employee's pricing optimum, which joined as a column,
    # less the pricing's rounding slack.
    assert cg.lower <= base <= cg.lower + 5 * 0.5 / SCALE + 1e-9
    for r0, _ in cg.columns[0]:
        for r1, _ in cg.columns[1]:
            excess = _excess(guide, cg, 0, r0) + _excess(guide, cg, 1, r1)
            assert excess >= 0
            assert evaluate(inst, [r0, r1]).objective - base >= excess - 1e-6
    worst = max(cg.columns[0], key=lambda c: _excess(guide, cg, 0, c[0]))[0]
    assert _excess(guide, cg, 0, worst) > 0


def test_search_aims_by_the_guide_only_after_column_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst = make_instance(**TWO)
    hows: list[set[str]] = []
    guides: list[object] = []

    class Spy(search._Adaptive):
        def __init__(self, data: InstanceData, ops: tuple[tuple[str, str], ...]) -> None:
            hows.append({how for _, how in ops})
            super().__init__(data, ops)

    def pick(*args: Any) -> list[int]:
        guides.append(args[-1])
        return search_pick(*args)

    search_pick = search._pick_employees
    monkeypatch.setattr(search, "_Adaptive", Spy)
    monkeypatch.setattr(search, "_pick_employees", pick)
    monkeypatch.setattr(search, "COLGEN_CELLS", 2 * 5 - 1)
    solve(inst, time_limit=0.5, workers=1, seed=0)
    assert "reduced" not in hows[-1] and guides and set(guides) == {None}
    guides.clear()
    monkeypatch.setattr(search, "COLGEN_CELLS", 2 * 5)
    # Construction and the integer master would reach the optimum and leave the LNS
    # nothing to do.
    start = [row(inst, "EE.EE"), row(inst, "LL.LL")]
    monkeypatch.setattr(search, "construct", lambda *args, **kwargs: [r[:] for r in start])
    monkeypatch.setattr(ColumnGeneration, "integer", lambda self, r, obj, limit: (r, obj))
    result = solve(inst, time_limit=2.0, workers=1, seed=0)
    assert "reduced" in hows[-1]
    assert guides and all(isinstance(g, Guide) for g in guides)
    assert result.objective == result.bound == _optimum(inst)
    # Nor when the bound is too far below the LP for its duals to be worth aiming by.
    guides.clear()
    monkeypatch.setattr(search, "GUIDE_TIGHT", 1.01)
    result = solve(inst, time_limit=2.0, workers=1, seed=0)
    assert "reduced" not in hows[-1] and guides and set(guides) == {None}
    assert result.objective == result.bound == _optimum(inst)


def test_reduced_neighbourhood_picks_the_employees_of_largest_excess() -> None:
    inst, data, start = _two()
    state = Incumbent(data, start, evaluate(inst, start).objective)
    duals = {(d, t): 0.0 for d in range(5) for t in range(2)}
    # A's schedule costs 8 (two late requests broken), their best; B's costs 0, 3
    # above a best of -3.
    guide = Guide(duals, [8.0, -3.0])
    state.refresh()
    assert sum(state.req_cost[0]) == 8 and sum(state.req_cost[1]) == 0
    assert guide.excess(0, start[0], 8) == 0 and guide.excess(1, start[1], 0) == 3
    for seed in range(20):
        rng = random.Random(seed)
        assert search._pick_employees(data, rng, 1, 0, 5, state, "reduced", guide) == [1]


@needs_data
def test_lp_of_instance5_is_just_below_its_optimum() -> None:
    inst = parse_instance(BENCH / "instances" / "Instance5.txt")
    data = InstanceData(inst)
    start = construct(data, Clock(0.0), random.Random(0), workers=1)
    cg = ColumnGeneration(data, start)
    assert cg.run(time.monotonic() + 60, workers=2)
    # The published optimum is 1,143: the LP over every schedule is a bound on it,
    # and a tight one (1,140.6 when measured).
    assert 0.99 * 1143 < cg.value <= 1143


def test_search_stops_at_the_lp_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = make_instance(**TWO)
    targets: list[int | None] = []
    real = search._lns_worker

    def spy(*args: Any, **kwargs: Any) -> None:
        targets.append(args[5])
        real(*args, **kwargs)

    monkeypatch.setattr(search, "_lns_worker", spy)
    res = solve(inst, time_limit=5.0, workers=1, seed=0)
    # Column generation converges here; the LNS is told to stop at the LP's bound,
    # which is the optimum on this instance.
    assert targets == [res.bound] and res.bound == _optimum(inst) == res.objective
    targets.clear()
    solve(inst, time_limit=5.0, workers=1, seed=0, target=res.bound - 10)
    assert targets == [res.bound]


def test_relaxation_is_the_lp_by_cell() -> None:
    inst, data, start = _two()
    cg = ColumnGeneration(data, start)
    # One column per employee: the LP is that roster, cell by cell.
    relax = cg.relaxation()
    assert relax is not None
    for e in range(2):
        for d in range(5):
            assert relax.share[e][d] == {start[e][d]: pytest.approx(1.0)}
            assert relax.agreement(e, d, start[e][d]) == pytest.approx(1.0)
            assert relax.agreement(e, d, 1 - start[e][d] if start[e][d] != OFF else 0) == 0
        assert relax.schedule(e) == start[e]
    # After pricing each cell's shares are a convex combination: they sum to one.
    assert cg.run(time.monotonic() + 20, workers=2)
    relax = cg.relaxation()
    assert relax is not None
    for e in range(2):
        for d in range(5):
            assert sum(relax.share[e][d].values()) == pytest.approx(1.0)
            assert all(0 < x <= 1 + 1e-9 for x in relax.share[e][d].values())
        # A whole schedule exactly where no cell of the employee's is split.
        split = any(max(cell.values()) < 1 - 1e-6 for cell in relax.share[e])
        assert (relax.schedule(e) is None) is split


def test_perturbed_costs_give_the_lps_other_vertices() -> None:
    # One employee works one of two days, each needed once and asked for: either
    # column costs 103, so either is an optimal vertex of the LP.
    inst = make_instance(
        horizon=2,
        staff="A,D=2,480,480,2,1,1,9",
        on="A,0,D,3\nA,1,D,3",
        cover="0,D,1,100,1\n1,D,1,100,1",
    )
    data = InstanceData(inst)
    cg = ColumnGeneration(data, [row(inst, "D.")])
    assert cg.add(0, row(inst, ".D"))
    plain = cg.relaxation()
    assert plain is not None and cg.objective.Value() == pytest.approx(103)
    rng = random.Random(0)
    seen = set()
    for _ in range(20):
        relax = cg.perturbed(rng, 1.0)
        assert relax is not None
        schedule = relax.schedule(0)
        assert schedule is not None  # a vertex: one whole column
        seen.add(tuple(schedule))
    assert seen == {tuple(row(inst, "D.")), tuple(row(inst, ".D"))}
    # The master's own costs are back.
    assert cg.relaxation() is not None and cg.objective.Value() == pytest.approx(103)
    assert [cg.objective.GetCoefficient(v) for _, v in cg.columns[0]] == [3, 3]


def _two_state() -> tuple[Instance, InstanceData, Incumbent, Relaxation]:
    """TWO at a roster that differs from the LP's (a single-column LP) on 3 cells."""
    inst = make_instance(**TWO)
    data = InstanceData(inst)
    lp = [row(inst, "EE.EE"), row(inst, "LL.LL")]
    relax = ColumnGeneration(data, lp).relaxation()
    assert relax is not None
    roster = [row(inst, "LL.EE"), row(inst, "LL.L.")]
    return inst, data, Incumbent(data, roster, evaluate(inst, roster).objective), relax


def test_rins_frees_the_cells_the_lp_disagrees_with() -> None:
    _, data, state, relax = _two_state()
    differ = {(0, 0), (0, 1), (1, 4)}
    for seed in range(30):
        rng = random.Random(seed)
        emps, lo, hi, keep = search._rins_cells(data, state, relax, rng, 10)
        kept = {(e, d) for e, d, _ in keep}
        free = {(e, d) for e in emps for d in range(lo, hi)} - kept
        # Every disagreeing cell is free (its share, 0, is below any threshold) ...
        assert differ <= free
        # ... the kept ones stay at the incumbent's value, inside the rectangle.
        assert all(s == state.roster[e][d] and lo <= d < hi for e, d, s in keep)
        # With room for one free cell, it is one of them.
        emps, lo, hi, keep = search._rins_cells(data, state, relax, rng, 1)
        assert len(emps) == 1 and hi - lo == 1 and not keep and (emps[0], lo) in differ


def test_kept_cells_bind_in_the_sub_model() -> None:
    inst, data, state, _ = _two_state()
    everything = [(e, d, state.roster[e][d]) for e in range(2) for d in range(5)]
    for keep, better in (([], True), (everything, False)):
        sub = build_submodel(data, state.roster, [0, 1], 0, 5)
        search._keep(data, sub, keep)
        solver = search._solver(5.0, 0)
        assert solver.solve(sub.model) == cp_model.OPTIMAL
        new = sub.extract(solver, state.roster)
        assert (evaluate(inst, new).objective < state.obj) is better
        assert better or new == state.roster


def test_rins_steps_with_kept_cells_prove_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kept cells make even an all-employees, all-days rectangle a neighbourhood:
    # solving it to optimality proves nothing about the whole roster.
    inst, data, state, relax = _two_state()
    steps: list[tuple[bool, bool]] = []  # (whole rectangle, some cell kept)
    real = search._keep

    def spy(data: InstanceData, sub: Any, cells: list[tuple[int, int, int]]) -> None:
        steps.append((len(sub.employees) == 2 and sub.hi - sub.lo == 5, bool(cells)))
        real(data, sub, cells)

    monkeypatch.setattr(search, "_keep", spy)
    adapt = search._Adaptive(data, (search.RINS,))
    stats = {"iterations": 0, "proven": 0}
    args = (data, state, adapt, Clock(1.0), 0, None, threading.Event(), stats, [], None)
    search._lns_worker(*args, None, [relax])  # type: ignore[arg-type]
    assert (True, True) in steps
    # It stops early only after a step that freed every cell, at the optimum.
    if stats["proven"]:
        assert steps[-1] == (True, False) and state.obj == _optimum(inst)
    else:
        assert stats["iterations"] == len(steps) > 20


def _split_relaxation(
    inst: Instance, lp: Roster, shares: dict[tuple[int, int], float]
) -> Relaxation:
    """The roster ``lp`` as an LP solution, with cell (e, d) given only ``shares[(e, d)]``
    of its value (the rest of its weight on the day off, or on shift 0 if it is off)."""
    share: list[list[dict[int, float]]] = []
    for e, r in enumerate(lp):
        share.append([])
        for d, s in enumerate(r):
            x = shares.get((e, d), 1.0)
            cell = {s: x}
            if x < 1:
                cell[OFF if s != OFF else 0] = 1 - x
            share[-1].append(cell)
    return Relaxation(share)


def test_relaxation_cells_are_where_one_shift_or_the_day_off_has_the_share() -> None:
    inst = make_instance(**TWO)
    e_, l_ = inst.shift_index["E"], inst.shift_index["L"]
    # Day 0: works 0.9, split over two shifts; day 1: off 0.8; day 2: works L 0.6.
    relax = Relaxation([[{e_: 0.5, l_: 0.4, OFF: 0.1}, {OFF: 0.8, e_: 0.2}, {l_: 0.6, OFF: 0.4}]])
    assert relax.heaviest(0, 0) == (e_, 0.5)
    assert relax.cells(0.8) == [(0, 1, OFF)]
    assert relax.cells(0.6) == [(0, 1, OFF), (0, 2, l_)]
    assert relax.cells(0.5) == [(0, 0, e_), (0, 1, OFF), (0, 2, l_)]


def _sure_from_day_2() -> tuple[Instance, InstanceData, Incumbent, Roster, Relaxation]:
    """TWO at :func:`_two_state`'s roster, and an LP of roster ``lp`` sure of nothing
    on days 0-1 and of everything else at 0.75 or more."""
    inst, data, state, _ = _two_state()
    lp = [row(inst, "EE.EE"), row(inst, "LL.LL")]
    shares = {(e, d): 0.5 for e in range(2) for d in (0, 1)} | {(0, 3): 0.75, (1, 4): 0.95}
    return inst, data, state, lp, _split_relaxation(inst, lp, shares)


def test_lp_fixed_solve_keeps_the_cells_the_lp_is_sure_of_and_solves_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, state, lp, relax = _sure_from_day_2()
    monkeypatch.setattr(search, "FIX_AGREEMENTS", (0.7,))
    new = search._fixed_solve(data, state, relax, None, 10.0, 2, None, Clock(10.0))
    # Days 2-4 of both, as the LP has them (0.75 and 0.95 included) ...
    fixed = [(e, d, lp[e][d]) for e in range(2) for d in (2, 3, 4)]
    assert relax.cells(0.7) == fixed
    assert all(new.roster[e][d] == s for e, d, s in fixed)
    # ... even where A requests L, on days 3-4: the shift is fixed too.
    assert new.roster[0][3:] == row(inst, "EE")
    # The best roster with those cells (brute force), or the incumbent if that is
    # better.
    rows = [
        [r for r in _rows(inst, e) if all(r[d] == s for e2, d, s in fixed if e2 == e)]
        for e in range(2)
    ]
    best = min(evaluate(inst, list(r)).objective for r in itertools.product(*rows))
    assert new.obj == evaluate(inst, new.roster).objective == min(best, state.obj)
    assert best < state.obj  # so the solve found it


def test_relaxation_pattern_is_where_working_or_off_has_the_share() -> None:
    inst = make_instance(**TWO)
    e_, l_ = inst.shift_index["E"], inst.shift_index["L"]
    # Day 0: works 0.9, split over two shifts; day 1: off 0.8; day 2: works 0.6.
    relax = Relaxation([[{e_: 0.5, l_: 0.4, OFF: 0.1}, {OFF: 0.8, e_: 0.2}, {l_: 0.6, OFF: 0.4}]])
    assert relax.pattern(0.8) == [(0, 0, True), (0, 1, False)]
    assert relax.pattern(0.85) == [(0, 0, True)]
    assert relax.pattern(0.6) == [(0, 0, True), (0, 1, False), (0, 2, True)]


def test_kept_pattern_fixes_who_works_not_the_shift() -> None:
    inst, data, state, _ = _two_state()
    # A works days 0-1 and is off on day 2; B is off on day 0.
    pattern = [(0, 0, True), (0, 1, True), (0, 2, False), (1, 0, False)]
    sub = build_submodel(data, state.roster, [0, 1], 0, 5)
    search._keep_pattern(data, sub, pattern)
    solver = search._solver(5.0, 0)
    assert solver.solve(sub.model) == cp_model.OPTIMAL
    new = sub.extract(solver, state.roster)
    assert all((new[e][d] != OFF) is works for e, d, works in pattern)
    # The best roster with that pattern, whichever shifts it takes (brute force).
    rows = [
        [r for r in _rows(inst, e) if all((r[d] != OFF) is w for e2, d, w in pattern if e2 == e)]
        for e in range(2)
    ]
    best = min(evaluate(inst, list(r)).objective for r in itertools.product(*rows))
    assert evaluate(inst, new).objective == best


def test_window_lp_fixed_solve_keeps_who_the_lp_has_working_and_solves_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, state, lp, relax = _sure_from_day_2()
    monkeypatch.setattr(search, "WINDOW_FIX_AGREEMENTS", (0.7,))
    new = search._fixed_solve(data, state, relax, None, 10.0, 2, None, Clock(10.0), cells=False)
    # Days 2-4 of both: whether the LP works them (0.75 and 0.95 included).
    fixed = [(e, d, lp[e][d] != OFF) for e in range(2) for d in (2, 3, 4)]
    assert relax.pattern(0.7) == fixed
    assert all((new.roster[e][d] != OFF) is works for e, d, works in fixed)
    # The best roster with that pattern (brute force), or the incumbent if that is
    # better.
    rows = [
        [r for r in _rows(inst, e) if all((r[d] != OFF) is w for e2, d, w in fixed if e2 == e)]
        for e in range(2)
    ]
    best = min(evaluate(inst, list(r)).objective for r in itertools.product(*rows))
    assert new.obj == evaluate(inst, new.roster).objective == min(best, state.obj)
    assert best < state.obj  # so the solve found it
    # A's requests for L on days 3-4 are met, where the LP had E: the shift is free.
    assert new.roster[0][3:] == row(inst, "LL")


def test_lp_fixed_solve_tries_each_threshold_in_turn_until_it_reaches_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, state, _ = _two_state()
    lp = [row(inst, "EE.EE"), row(inst, "LL.LL")]
    relax = _split_relaxation(inst, lp, {(0, 0): 0.75, (0, 1): 0.85, (1, 4): 0.95})
    monkeypatch.setattr(search, "FIX_AGREEMENTS", (0.8, 0.9, 0.7))
    fixed_counts: list[int] = []
    limits: list[float] = []
    real_keep, real_solver = search._keep, search._solver

    def spy(data: InstanceData, sub: Any, cells: list[tuple[int, int, int]]) -> None:
        fixed_counts.append(len(cells))
        real_keep(data, sub, cells)

    def timed(limit: float, seed: int, workers: int = 1) -> cp_model.CpSolver:
        limits.append(limit)
        return real_solver(limit, seed, workers)

    monkeypatch.setattr(search, "_keep", spy)
    monkeypatch.setattr(search, "_solver", timed)
    # No bound: every threshold gets its turn, in the order given, each an equal
    # share of the time left (these solves take milliseconds).
    search._fixed_solve(data, state, relax, None, 9.0, 2, None, Clock(10.0))
    assert fixed_counts == [9, 8, 10]
    assert limits == pytest.approx([3.0, 4.5, 9.0], abs=0.2)
    # At a bound the first solve reaches (the LP's roster has the cells it fixes),
    # it stops there.
    fixed_counts.clear()
    bound = evaluate(inst, lp).objective
    state = _two_state()[2]
    assert bound < state.obj
    done = search._fixed_solve(data, state, relax, bound, 10.0, 2, None, Clock(10.0))
    assert done.obj <= bound and fixed_counts == [9]


def _window_optimum(
    inst: Instance, start: Roster, lo: int, hi: int, days: set[int] | None = None
) -> int:
    """The best roster that keeps ``start`` outside days ``lo..hi-1``, or outside
    ``days`` if given (brute force)."""
    free = set(range(lo, hi)) if days is None else days
    rows = [
        [r for r in _rows(inst, e) if all(r[d] == start[e][d] for d in range(5) if d not in free)]
        for e in range(inst.num_staff)
    ]
    return min(evaluate(inst, list(r)).objective for r in itertools.product(*rows))


def _converges_to(cg: ColumnGeneration, optimum: int) -> None:
    """Rounds until ``cg`` converges, its Lagrangian bound at most ``optimum`` (the
    best roster of its free days) every round, its LP and bound there at the end."""
    with ThreadPoolExecutor(2) as pool:
        while not cg.converged:
            added = cg.round(pool, time.monotonic() + 10)
            assert added or cg._misprice or cg.converged
            assert cg.bound is not None and cg.bound <= optimum
    assert cg.bound == optimum
    assert cg.value == pytest.approx(optimum)


@pytest.mark.parametrize("lo, hi", [(2, 5), (1, 4)])
def test_window_columns_keep_the_other_days_and_bound_the_window(lo: int, hi: int) -> None:
    inst, data, start = _two()
    optimum = _window_optimum(inst, start, lo, hi)
    cg = ColumnGeneration(data, start, lo, hi)
    _converges_to(cg, optimum)
    for e, cols in enumerate(cg.columns):
        assert len(cols) > 1  # pricing found schedules besides the start's
        assert all(r[:lo] == start[e][:lo] and r[hi:] == start[e][hi:] for r, _ in cols)


# Days 3-4 with day 0 or day 1 hold a gain (208 to 200); days 0, 2 and 4 none.
@pytest.mark.parametrize("days, gain", [({0, 3, 4}, 8), ({1, 3, 4}, 8), ({0, 2, 4}, 0)])
def test_columns_on_some_days_keep_the_others_and_bound_those_days(
    days: set[int], gain: int
) -> None:
    inst, data, start = _two()
    optimum = _window_optimum(inst, start, 0, 5, days)
    assert optimum == evaluate(inst, start).objective - gain
    cg = ColumnGeneration(data, start, days=days)
    assert list(cg._submodel(0).free_days) == sorted(days)
    _converges_to(cg, optimum)
    for e, cols in enumerate(cg.columns):
        assert all(r[d] == start[e][d] for r, _ in cols for d in range(5) if d not in days)
    # The LP-fixed solve of those days reaches their optimum and keeps the others.
    state = Incumbent(data, start, evaluate(inst, start).objective)
    relax = cg.relaxation()
    assert relax is not None
    new = search._fixed_solve(data, state, relax, cg.bound, 10.0, 2, None, Clock(10.0), days=days)
    assert new.obj == evaluate(inst, new.roster).objective == optimum
    assert all(new.roster[e][d] == start[e][d] for e in range(2) for d in range(5) if d not in days)


def test_window_step_reaches_the_window_optimum_and_keeps_the_other_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, start = _two()
    state = Incumbent(data, start, evaluate(inst, start).objective)
    # Its LP-fixed solve fixes who works when only (WINDOW_FIX_AGREEMENTS).
    kept: list[str] = []
    real_keep, real_pattern = search._keep, search._keep_pattern
    monkeypatch.setattr(search, "_keep", lambda *a: kept.append("cells") or real_keep(*a))
    monkeypatch.setattr(
        search, "_keep_pattern", lambda *a: kept.append("pattern") or real_pattern(*a)
    )
    # Days 2-4 hold a gain (208 to 200); days 1-3 none, and the step keeps the roster.
    assert _window_optimum(inst, start, 2, 5) < state.obj == _window_optimum(inst, start, 1, 4)
    same = search._window_step(data, state, Clock(20.0), 2, None, 1, 4)
    assert same is state
    new = search._window_step(data, state, Clock(20.0), 2, None, 2, 5)
    assert new.obj == evaluate(inst, new.roster).objective == _window_optimum(inst, start, 2, 5)
    assert [r[:2] for r in new.roster] == [r[:2] for r in start]
    assert kept and set(kept) == {"pattern"}


class _FakeClock:
    """A clock at ``now`` seconds of ``limit``."""

    def __init__(self, limit: float) -> None:
        self.limit, self.now = limit, 0.0

    def elapsed(self) -> float:
        return self.now

    def left(self) -> float:
        return self.limit - self.now


def test_windows_sweep_the_horizon_and_are_due_when_the_lns_slows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(search, "WINDOW_PRIOR", 0.03)
    data = InstanceData(make_instance(horizon=182))
    clock = _FakeClock(600.0)
    windows = search._Windows(data, clock, random.Random(0))  # type: ignore[arg-type]
    assert windows.starts == [0, 28, 56, 84, 112, 126]
    sweep = [windows.window() for _ in range(7)]
    assert sorted(sweep[:6]) == [(lo, lo + 56) for lo in windows.starts]
    assert sweep[6] == sweep[0]
    # The span is 60 s.  The first window is due once the LNS's gain over the
    # span, kept up for the time left, would be under 3 % of the objective.
    clock.now = 300.0  # 3 % of 5,000 over the 300 s left: 0.5 a second
    history = [(0.0, 9_000), (200.0, 5_000)]
    assert not windows.due(history, 0.0, 4_960)  # 40 in 60 s
    assert not windows.due(history, 250.0, 4_980)  # the LNS started 50 s ago
    assert windows.due(history, 0.0, 4_980)  # 20 in 60 s
    assert windows.lns_pace == pytest.approx(20 / 60)
    # The first window took 50 s and gained 50: faster than the LNS, so the next
    # one follows at once; and the next, while over all of them they stay faster.
    windows.record(50.0, 50)
    history.append((350.0, 4_930))
    assert windows.pace() == 1.0 and windows.again()
    windows.record(50.0, 0)
    assert windows.pace() == 0.5 and windows.again()
    windows.record(60.0, 0)  # 50 in 160 s, under the LNS's 20 in 60 s
    assert not windows.again()
    # Then a spell of the LNS, at least as long as the last step, until its pace
    # falls below the windows'.
    clock.now = 480.0
    assert not windows.due(history, 450.0, 4_925)  # 30 s into the spell
    clock.now = 510.0
    assert not windows.due(history, 450.0, 4_880)  # 50 in 60 s
    assert windows.due(history, 450.0, 4_925)  # 5 in 60 s
    assert windows.lns_pace < windows.pace()
    # However fast the LNS, a window is due after three times the last step.
    clock.now = 450.0 + 179.0 - 150.0  # a spell that began at 300 s
    assert not windows.due(history, 300.0, 4_700)
    clock.now = 480.0
    assert windows.due(history, 300.0, 4_700) and windows.lns_pace > windows.pace()
    # Never in the last span of the time limit, not even right after a window.
    windows.record(10.0, 500)
    assert windows.pace() > windows.lns_pace
    clock.now = 545.0
    assert not windows.due(history, 400.0, 4_000) and not windows.again()


def test_lns_worker_stops_when_paused() -> None:
    inst, data, start = _two()
    state = Incumbent(data, start, evaluate(inst, start).objective)
    stats = {"iterations": 0, "proven": 0}
    pause = threading.Event()
    pause.set()
    args = (data, state, search._Adaptive(data), Clock(5.0), 0, None, threading.Event(), stats)
    search._lns_worker(*args, [], None, pause=pause)
    assert stats["iterations"] == 0
    pause.clear()
    search._lns_worker(*args, [], None, pause=pause)  # runs until it proves the optimum
    assert stats["iterations"] > 0 and stats["proven"] == 1


def test_search_pauses_the_lns_for_a_window_when_one_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, data, start = _two()
    monkeypatch.setattr(search, "construct", lambda *a: [r[:] for r in start])
    monkeypatch.setattr(search, "WINDOW_DAYS", 2)  # at most half the 5 days
    monkeypatch.setattr(search, "COLGEN_CELLS", 0)  # no column generation on the whole
    monkeypatch.setattr(search, "WINDOW_POLL", 0.01)
    monkeypatch.setattr(search._Windows, "window", lambda self: (2, 5))
    # A window is due at the first check only.
    checks: list[int] = []

    def due(self: Any, *args: Any) -> bool:
        checks.append(1)
        return len(checks) == 1

    monkeypatch.setattr(search._Windows, "due", due)
    # No window before the LNS's first spell; after the first window a second
    # follows at once, then the LNS again.
    follows = [False, True, False]
    monkeypatch.setattr(search._Windows, "again", lambda self: follows.pop(0))
    # LNS workers that do nothing but note whether they were paused.
    spells: list[bool] = []

    def worker(*args: Any, pause: threading.Event, **kwargs: Any) -> None:
        time.sleep(0.05)
        spells.append(pause.is_set())

    monkeypatch.setattr(search, "_lns_worker", worker)
    steps: list[tuple[int, int]] = []
    real = search._window_step

    def spy(*args: Any) -> Incumbent:
        steps.append(args[-2:])
        return real(*args)

    monkeypatch.setattr(search, "_window_step", spy)
    result = solve(inst, time_limit=5.0, workers=2, seed=0)
    # Two workers paused, two windows (days 2-4: 208 to 200, then no gain), two
    # more workers.
    assert spells == [True, True, False, False] and steps == [(2, 5), (2, 5)]
    assert result.objective == evaluate(inst, result.roster).objective == 200
    # With more employees than COLGEN_STAFF, no windows.
    monkeypatch.setattr(search, "COLGEN_STAFF", 1)
    checks.clear()
    spells.clear()
    solve(inst, time_limit=1.0, workers=2, seed=0)
    assert checks == [] and spells == [False, False]
