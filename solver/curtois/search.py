"""Construction + parallel large-neighbourhood search for the Curtois & Qu benchmark.

Strategy
--------
1. *Construction*: employees are scheduled one at a time with a tiny CP-SAT model
   (that employee free, everybody else fixed).  Each employee's hard rules do not
   involve the others, so this always yields a hard-feasible roster, and the
   residual-cover objective makes it a decent one.  This matters on instances
   20–24 where a monolithic CP-SAT model finds no roster at all in minutes.
   Each employee's first schedule is found in two steps: the work/off pattern
   alone (days off, runs, weekends, number of working days), then shift types on
   that pattern.  On the 364-day instances the employee's whole model has a heavy
   tail (seconds to minutes); the two steps take about 0.15 s.  Where even that
   model is too large to improve in the seconds construction has per employee
   (instance 24), employees work one shift type each, on the days it is short.
   Ties are broken against weekends worked on one day only
   (:data:`CONSTRUCT_SPLIT_WEEKENDS`).
2. *Polish* (:mod:`solver.curtois.polish`): small moves and ejection chains,
   priced and checked in Python, thousands a second, until a pass over the costly
   cells finds none (at most :data:`POLISH_SHARE` of the time left).  On instance
   24 it takes the constructed roster from about 1.24 million to about 89,000 in
   its 160 s; the LNS alone needed ten minutes to reach 138,000.  It is also one of
   the LNS's operators.  Only on instances of at least :data:`POLISH_CELLS` days ×
   employees (21–24): on the smaller ones it took time from the LNS and ended worse.
3. *Column generation* (:mod:`solver.curtois.colgen`), once, on instances of at
   most :data:`COLGEN_CELLS` days × employees (fewer on short time limits) and
   :data:`COLGEN_STAFF` employees: an LP over whole schedules per employee, priced
   by each employee's own CP-SAT model against the cover duals; then, on rosters
   of :data:`FIX_CELLS` or more, CP-SAT on the whole roster with the cells fixed
   where the LP agrees on them, hinted with the LP (12 at 60 s: 4,040, its
   optimum, where the MIP found nothing);
   then a set-partitioning MIP over the schedules found.
   The LNS starts from its roster, in a basin the LNS does not reach on its own
   (instance 5: 1,143-1,145 at 60 s where about half the runs stopped at 1,236;
   19: 3,167 at 600 s where it ended at 3,361-3,583), and stops at its
   Lagrangian bound.  The LP's solution also aims the LNS's RINS steps
   (:func:`_rins_cells`): they free the cells where the roster and the LP disagree.
4. *LNS*: repeatedly free a rectangle "some employees × a window of days" and
   re-optimise it exactly with CP-SAT, hinted with the incumbent.  On horizons of
   over :data:`STAFF_WHOLE` days one shape frees one or a few employees on every
   day: their minutes and weekends are nearly at their limits, so the slack a
   change needs is often months away from it.  Employees are
   chosen randomly, around costly cover cells, around violated requests, or among
   employees with similar skills (they are the ones who can swap shifts).  The
   rectangle size adapts: it grows when CP-SAT proves sub-problems optimal quickly
   and shrinks when it times out.  Equal-cost moves are accepted to drift along
   plateaus; on horizons of :data:`SPLIT_WEEKENDS_FROM` days or more the drift is
   steered towards whole weekends (ties are broken against weekends worked on one
   day only, which waste a weekend day where weekends are the scarce resource).
   Where column generation on the whole roster is out of reach but the staff is
   small (20 and 22), once the LNS has slowed *window* steps join it, as long as
   they gain faster (:func:`_window_step`): column generation on
   :data:`WINDOW_DAYS` days of every employee, the rest of the roster fixed, then
   the LP-fixed solve of those days.
5. *Parallelism*: one LNS thread per worker, each sub-solve single-threaded with
   ``linearization_level=2`` (measured: far faster on these sub-models than the
   2-worker CP-SAT portfolio).  CP-SAT releases the GIL while solving.  Because
   every hard constraint concerns one employee only, a sub-solution can be merged
   into an incumbent that another thread changed meanwhile, provided its own
   employees' rows are untouched (checked with per-employee version counters);
   the objective change is recomputed exactly at merge time.

The returned roster is always re-checked with :mod:`solver.curtois.validate`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from .colgen import ColumnGeneration, Guide, Relaxation
from .incumbent import Incumbent
from .instance import OFF, Instance, Roster
from .model import InstanceData, SubModel, build_pattern_model, build_submodel
from .polish import polish
from .validate import Evaluation, evaluate

__all__ = ["SolveResult", "construct", "solve"]

LogFn = Callable[[str], None]

#: Seconds per LNS sub-solve.  Measured on instances 5 and 8 (60 s, 2 threads):
#: 0.5 s and 1 s limits gave more but shallower iterations and ended worse or equal;
#: the size adaptation keeps neighbourhoods solvable within this limit.
SUB_LIMIT = 2.0

#: Share of the time limit that construction spends improving the employees' first
#: schedules against the residual cover (at most 2 s each).  On instance 22 (600 s)
#: the improvement hardly matters: spending about 70 s or 100 s on it ended within
#: noise of each other (45585 and 46493).
CONSTRUCT_SHARE = 0.1

#: Construction breaks ties against weekends worked on one day only, as the LNS
#: does on long horizons (:data:`SPLIT_WEEKENDS_FROM`).  Where everyone ends at
#: the weekend limit a weekend worked on one day wastes the other, and each
#: employee's schedule is chosen against the cover alone, which rarely sees it.
#: Constructed rosters (seed 0): 13 at 7,721 with 21 split weekends against 8,903
#: with 60; 20 at 20,247 (45) against 28,093 (186); 22 at 193,064 against
#: 202,247; 23 at 268,329 against 280,119; 24 at 1,248,048 against 1,242,651.
#: 20 at 600 s then ended at 4,903, 4,848 and 4,988 (seeds 0-2; 5,070 and 5,196 on
#: seeds 0 and 2 in session 31).
CONSTRUCT_SPLIT_WEEKENDS = True

#: Longest share of the time left after construction for the first
#: :func:`~solver.curtois.polish.polish`, which stops earlier at a local optimum.
#: On 24 it runs to the end of its share, yet with a longer one it ends worse:
#: polish alone slows (at 0.6 it took 164 s more to gain 1,830, from 79,852 to
#: 78,023), where polish steps between the LNS's keep finding moves (after the
#: first polish, 9,000-13,000 of the LNS's 16,500-22,000).  600 s, seed 0, weekend
#: steps off: 0.15 at 63,891, 0.3 at 64,036; 0.6 (weekend steps on) at 71,678.
POLISH_SHARE = 0.3

#: Days × employees from which polish runs (first, and as an LNS operator).  On the
#: large instances it is what makes the LNS's start: 21–24 (18,200–54,600 cells) ended
#: lower with it (24: 1.24 million to 89,000 in its 160 s, where the LNS alone reached
#: 138,000 in ten minutes).  On the smaller ones the LNS covers a good share of the
#: roster each minute anyway, and polish took time from it and held the incumbent's
#: lock (600 s runs): 19 (3,360 cells) ended at 3,583 with it and 3,456 without on
#: seed 1 (3,537 with the first polish only), 3,561 and 3,361 on seed 0; 20 (9,100) at
#: 5,469 and 5,667 with it, 5,241 and 5,236 without; 13 (3,360) at 1,664 with it and
#: 1,530 without; 18 (1,848) at 4,865 and 4,891, within noise.
POLISH_CELLS = 15_000


@dataclass
class SolveResult:
    """Best roster found plus statistics."""

    roster: Roster
    objective: int
    evaluation: Evaluation
    seconds: float
    #: Proven lower bound, when the search proved one (else ``None``).
    bound: int | None = None
    iterations: int = 0
    #: (seconds, objective) at every improvement.
    history: list[tuple[float, int]] = field(default_factory=list)


class Clock:
    """Wall-clock budget."""

    def __init__(self, limit: float) -> None:
        self.start = time.monotonic()
        self.limit = limit

    def elapsed(self) -> float:
        """Seconds since start."""
        return time.monotonic() - self.start

    def left(self) -> float:
        """Seconds remaining (may be negative)."""
        return self.limit - self.elapsed()


def _solver(limit: float, seed: int, workers: int = 1) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = max(0.05, limit)
    s.parameters.num_workers = max(1, workers)
    s.parameters.random_seed = seed
    # The LP with cuts is what closes these sub-problems quickly (see module doc).
    s.parameters.linearization_level = 2
    return s


def _solve_feasible(
    model: cp_model.CpModel, rng: random.Random, workers: int, limit: float
) -> tuple[cp_model.CpSolver, Any]:
    """Solve ``model`` for any solution: the portfolio, no LP cuts."""
    solver = _solver(limit, rng.randrange(1 << 30), max(2, workers))
    solver.parameters.linearization_level = 1
    return solver, solver.solve(model)


def _count(cnt: list[list[int]], row: list[int]) -> None:
    for d, t in enumerate(row):
        if t != OFF:
            cnt[d][t] += 1


def _cell_costs(data: InstanceData, e: int, cnt: list[list[int]]) -> list[list[int]]:
    """``cost[d][t]``: change of the objective if employee ``e`` works ``t`` on day ``d``.

    Relative to a day off, with everybody else fixed (``cnt``: their cover counts).
    One employee adds at most one to a cover cell, so this is exact and linear.
    """
    cost = [[0] * data.S for _ in range(data.H)]
    for d in range(data.H):
        row = cost[d]
        for t in range(data.S):
            cov = data.cover[d][t]
            if cov is not None:
                req, wu, wo = cov
                row[t] = wo if cnt[d][t] >= req else -wu
        for s, w in data.on_req.get((e, d), ()):
            row[s] -= w  # a day off or another type breaks the request alike
        for s, w in data.off_req.get((e, d), ()):
            row[s] += w
    return cost


def _uniform_schedule(
    data: InstanceData,
    e: int,
    cnt: list[list[int]],
    rng: random.Random,
    workers: int,
    limit: float,
) -> list[int] | None:
    """A schedule working one shift type on every working day, or ``None``.

    The type is the one with the most under-cover left (``cnt``: the cover counts of
    the employees scheduled so far) among those that may follow themselves; its
    length and cap bound the number of working days exactly, so the pattern model
    is then exact, and its objective puts the working days where that type is
    still short.  No employee model is built: on instance 24 (32 types, 364 days)
    building it is most of the construction's time, and CP-SAT then needs over a
    second just to give its hint back.
    """
    cost = _cell_costs(data, e, cnt)
    short = [0] * data.S
    for d in range(data.H):
        for t, cov in enumerate(data.cover[d]):
            if cov is not None:
                short[t] += cov[1] * max(0, cov[0] - cnt[d][t])
    st = data.inst.staff[e]

    def fits(t: int) -> bool:
        # Some number of shifts of type t alone is within the minutes and the cap.
        fewest = -(-st.min_total_minutes // data.minutes[t])
        return fewest <= min(data.max_shifts[e][t], st.max_total_minutes // data.minutes[t])

    uniform = [t for t in data.allowed[e] if t not in data.banned_set[t] and fits(t)]
    uniform.sort(key=lambda t: -short[t])
    for t in uniform[:3]:
        model, work = build_pattern_model(data, e, shift=t)
        lits = {d: lit for d, lit in work.items() if not isinstance(lit, bool)}
        solver, status = _solve_feasible(model, rng, workers, 1.0)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            continue
        on = {d for d, lit in lits.items() if solver.boolean_value(lit)}
        # Then move the working days to where the type is short, from that pattern.
        for d, lit in lits.items():
            model.add_hint(lit, d in on)
        model.minimize(sum(cost[d][t] * lit for d, lit in lits.items()))
        solver = _solver(limit, rng.randrange(1 << 30), workers)
        if solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            on = {d for d, lit in lits.items() if solver.boolean_value(lit)}
        return [t if d in on else OFF for d in range(data.H)]
    return None


def _feasible_schedule(
    data: InstanceData,
    e: int,
    sub: SubModel,
    prev: list[int] | None,
    rng: random.Random,
    workers: int,
) -> list[int] | None:
    """One hard-feasible schedule for employee ``e``, free in ``sub``, or ``None``.

    First the work/off pattern alone, then shift types on that pattern; if the
    types do not fit, the whole model with the pattern as a hint.  Attempts of
    2, 6, 18, 54 and 162 s with new seeds, as the search's run times have a heavy
    tail.  ``prev``, a colleague's schedule with the same contract, is the hint.
    Raises ``RuntimeError`` when the employee has no feasible schedule.
    """
    # Feasibility only: CP-SAT's portfolio (>= 2 workers, no objective) finds a
    # schedule far faster than an optimising search.
    feas = sub.model.clone()
    feas.clear_objective()
    feas.clear_hints()
    by_day: dict[int, list[cp_model.IntVar]] = {}
    for (_, d, t), v in sub.x.items():
        by_day.setdefault(d, []).append(v)
        if prev is not None:
            feas.add_hint(v, prev[d] == t)
    pattern_model, work = build_pattern_model(data, e)
    if prev is not None:
        for d, lit in work.items():
            if not isinstance(lit, bool):
                pattern_model.add_hint(lit, prev[d] != OFF)
    for attempt in range(5):
        limit = 2.0 * (3**attempt)
        solver, status = _solve_feasible(pattern_model, rng, workers, limit)
        if status == cp_model.INFEASIBLE:
            raise RuntimeError(f"employee {data.inst.staff[e].id} has no feasible schedule")
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            continue
        days = {d: solver.boolean_value(v) for d, v in work.items() if not isinstance(v, bool)}
        typed = feas.clone()
        for d, vs in by_day.items():
            typed.add(sum(vs) == int(days.get(d, False)))
        solver, status = _solve_feasible(typed, rng, workers, limit)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            # The types do not fit this pattern: the whole model, hinted with it.
            hinted = feas.clone()
            hinted.clear_hints()
            for d, vs in by_day.items():
                if not days.get(d, False):
                    for v in vs:
                        hinted.add_hint(v, 0)
            solver, status = _solve_feasible(hinted, rng, workers, limit)
        if status == cp_model.INFEASIBLE:
            raise RuntimeError(f"employee {data.inst.staff[e].id} has no feasible schedule")
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            row = [OFF] * data.H
            for (_, d, t), v in sub.x.items():
                if solver.boolean_value(v):
                    row[d] = t
            return row
    return None


def construct(
    data: InstanceData,
    clock: Clock,
    rng: random.Random,
    workers: int = 2,
    log: LogFn | None = None,
) -> Roster:
    """Schedule employees one by one, each against the cover left by the others.

    Each employee gets a feasible schedule (:func:`_feasible_schedule`), then a few
    seconds of CP-SAT on their own model against the residual cover.  Once that
    model is too large to give anything back in those seconds, the remaining
    employees each work one shift type where it is still short
    (:func:`_uniform_schedule`), and the LNS does the rest.

    Raises ``RuntimeError`` if some employee has no feasible schedule at all (the
    instance is infeasible) or none is found in about four minutes.  Construction
    may overrun the time limit: a roster must be returned.
    """
    roster: Roster = [[OFF] * data.H for _ in range(data.E)]
    order = list(range(data.E))
    # Most constrained first (fewest allowed shift types), random tie-break, so the
    # flexible employees fill the remaining gaps.
    rng.shuffle(order)
    order.sort(key=lambda e: len(data.allowed[e]))
    similar: dict[tuple[int, ...], list[int]] = {}
    # The same few seconds for every employee's improvement, keeping most of the
    # budget for the LNS.  (A share of the time left per employee still to do would
    # sum to the share times ln E: half the budget on instance 24.)
    per = max(0.1, min(2.0, CONSTRUCT_SHARE * clock.left() / max(1, data.E)))
    improve = True
    cnt = [[0] * data.S for _ in range(data.H)]  # cover counts of the rows so far
    for e in order:
        row = None if improve else _uniform_schedule(data, e, cnt, rng, workers, per)
        if row is not None:
            roster[e] = row
            _count(cnt, row)
            continue
        sub = build_submodel(data, roster, [e], hint=False, split_weekends=CONSTRUCT_SPLIT_WEEKENDS)
        st = data.inst.staff[e]
        sig = (
            st.min_total_minutes,
            st.max_total_minutes,
            st.max_consecutive_shifts,
            st.min_consecutive_shifts,
            st.min_consecutive_days_off,
        )
        # A colleague with the same contract gives a nearly feasible hint, which
        # CP-SAT repairs much faster than it solves from scratch.
        row = _feasible_schedule(data, e, sub, similar.get(sig), rng, workers)
        if row is None:
            raise RuntimeError(f"no schedule found for employee {data.inst.staff[e].id}")
        similar[sig] = row
        roster[e] = row
        if improve:
            # Then improve the residual-cover objective from that schedule.
            for (_, d, t), v in sub.x.items():
                sub.model.add_hint(v, row[d] == t)
            solver = _solver(per, rng.randrange(1 << 30), workers)
            status = solver.solve(sub.model)
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                roster = sub.extract(solver, roster)
            # Not even the hinted schedule back within the time: the employees'
            # models are too large for it (instance 24: 0.4 s, 15,000 variables),
            # so leave the improving to the LNS, and the rest of the employees to
            # one shift type each where that fits, rather than spend the time for
            # nothing.
            improve = status != cp_model.UNKNOWN
        _count(cnt, roster[e])
    if log:
        log(f"{clock.elapsed():7.1f}s  construction done")
    return roster


def _pick_window(H: int, rng: random.Random, length: int, state: Incumbent) -> tuple[int, int]:
    if length >= H:
        return 0, H
    # Centre half of the windows on a costly cell so effort goes where the penalty is.
    if state.gaps and rng.random() < 0.5:
        day, _ = rng.choice(state.gaps)
        lo = min(max(0, day - rng.randrange(length)), H - length)
    else:
        lo = rng.randrange(H - length + 1)
    return lo, lo + length


def _pick_employees(
    data: InstanceData,
    rng: random.Random,
    k: int,
    lo: int,
    hi: int,
    state: Incumbent,
    how: str,
    guide: Guide | None = None,
) -> list[int]:
    E = data.E
    if k >= E:
        return list(range(E))
    chosen: set[int] = set()
    if how == "cover" and state.gaps:
        in_win = [g for g in state.gaps if lo <= g[0] < hi] or state.gaps
        for _ in range(k):
            day, s = rng.choice(in_win)
            cands = [e for e in range(E) if s in data.allowed[e] and e not in chosen]
            if cands:
                chosen.add(rng.choice(cands))
            if len(chosen) >= max(1, k // 2):
                break
    elif how == "requests":
        weights = [sum(state.req_cost[e][lo:hi]) for e in range(E)] if state.req_cost else [0] * E
        pool = [e for e in range(E) if weights[e] > 0]
        pool.sort(key=lambda e: -weights[e] * rng.random())
        chosen.update(pool[: max(1, k // 2)])
    elif how == "reduced" and guide is not None:
        # Half by their excess over the Lagrangian bound's schedules, drawn with
        # probability growing with it (Efraimidis-Spirakis keys).
        excess = [guide.excess(e, state.roster[e], sum(state.req_cost[e])) for e in range(E)]
        pool = [e for e in range(E) if excess[e] > 1e-6]
        pool.sort(key=lambda e: -(rng.random() ** (1.0 / excess[e])))
        chosen.update(pool[: max(1, k // 2)])
    elif how == "similar":
        base = set(data.allowed[rng.randrange(E)])

        def sim(e: int) -> float:
            a = set(data.allowed[e])
            return len(a & base) / max(1, len(a | base)) + 0.3 * rng.random()

        chosen.update(sorted(range(E), key=sim, reverse=True)[:k])
    rest = [e for e in range(E) if e not in chosen]
    rng.shuffle(rest)
    chosen.update(rest[: max(0, k - len(chosen))])
    return sorted(chosen)


def _rins_cells(
    data: InstanceData, state: Incumbent, relax: Relaxation, rng: random.Random, size: float
) -> tuple[list[int], int, int, list[tuple[int, int, int]]]:
    """A neighbourhood where the incumbent and the column generation's LP disagree.

    Frees every cell whose value has less than a random share (0.5-0.99) of the LP,
    and a random share (up to 0.3) of the others: at most ``size`` cells, those the
    LP agrees with least (if that leaves none, the ``size`` it agrees with least of
    all).  Returns the employees and days of the rectangle around them and the
    cells in it that stay as they are, as (employee, day, value).
    (Relaxation induced neighbourhood search, RINS, after Danna, Rothberg and Le
    Pape, 2005.)
    """
    theta, drop = rng.uniform(0.5, 0.99), rng.uniform(0.0, 0.3)
    keyed = [
        (relax.agreement(e, d, s), rng.random(), e, d)
        for e, row in enumerate(state.roster)
        for d, s in enumerate(row)
    ]
    # Where the LP agrees with every cell and none was drawn, the least agreed.
    keyed = [k for k in keyed if k[0] < theta or rng.random() < drop] or keyed
    keyed.sort()
    free = {(e, d) for _, _, e, d in keyed[: max(1, int(size))]}
    emps = sorted({e for e, _ in free})
    lo = min(d for _, d in free)
    hi = max(d for _, d in free) + 1
    keep = [(e, d, state.roster[e][d]) for e in emps for d in range(lo, hi) if (e, d) not in free]
    return emps, lo, hi, keep


def _weekend_days(
    data: InstanceData, rng: random.Random, size: float, state: Incumbent
) -> list[int]:
    """The days of a few weekends, each with its Friday and Monday: an LNS step
    frees them for every employee.

    One weekend short of cover and one over it (if any), and others at random up
    to ``size`` cells (two at least), so that employees' weekends can move from
    one to another across the horizon.  (On 20 every employee works their largest
    number of weekends, and every uncovered shift is on a weekend, while other
    weekend days have more people than they need.)  Reads ``state.gaps``: the
    state is refreshed, as each LNS step does first.
    """
    weekends = data.weekends
    short: set[int] = set()
    surplus: set[int] = set()
    for d, s in state.gaps:  # the costly cover cells, as of the last refresh
        if (k := data.weekend_of.get(d)) is not None:
            n = state.cnt[d][s]
            (short if state.cover_pen(d, s, n + 1) < state.cover_pen(d, s, n) else surplus).add(k)
    want = max(2, min(len(weekends), round(size / (4 * data.E))))
    chosen = {rng.choice(sorted(group)) for group in (short, surplus) if group}
    while len(chosen) < want:
        chosen.add(rng.randrange(len(weekends)))
    return sorted({d for k in chosen for d in data.long_weekend(k)})


def _keep(data: InstanceData, sub: SubModel, cells: list[tuple[int, int, int]]) -> None:
    """Fix each (employee, day, value) of ``cells`` in ``sub``."""
    for e, d, s in cells:
        for t in range(data.S):
            v = sub.x.get((e, d, t))
            if v is not None:
                sub.model.add(v == int(t == s))


def _keep_pattern(data: InstanceData, sub: SubModel, cells: list[tuple[int, int, bool]]) -> None:
    """Fix whether each (employee, day, works) of ``cells`` works in ``sub``, not
    the shift."""
    for e, d, works in cells:
        xs = [v for t in range(data.S) if (v := sub.x.get((e, d, t))) is not None]
        if works:
            sub.model.add_exactly_one(xs)
        else:
            for v in xs:
                sub.model.add(v == 0)


#: The RINS operator (:func:`_rins_cells`): cells where the incumbent and column
#: generation's LP disagree.  Only after column generation ran.
RINS = ("rins", "lp")

#: Neighbourhood operators: (shape, employee choice).  "window" frees (nearly) all
#: employees on a short window of days — lets CP-SAT re-balance cover across
#: people; "staff" frees a few employees on a long window — lets them restructure
#: their whole schedules; "horizon" frees one or a few employees on every day;
#: "weekend" frees everyone on a few weekends far apart (:data:`WEEKENDS_FROM`,
#: :data:`WEEKENDS_STAFF`).
#: "reduced" draws half the employees by their excess over the schedules of the
#: column generation's Lagrangian bound (:class:`~solver.curtois.colgen.Guide`),
#: so only after column generation ran.  On 15 (600 s, seed 0) it made the step
#: from 3,949 to 3,871 and the run ended at 3,851 (0.60 %; 3,952 without); seeds 1
#: and 2 ended at 3,950 and 3,853.
_OPS = (
    ("window", "random"),
    ("window", "cover"),
    ("staff", "random"),
    ("staff", "cover"),
    ("staff", "requests"),
    ("staff", "similar"),
    ("staff", "reduced"),
    ("horizon", "random"),
    ("horizon", "cover"),
    ("horizon", "requests"),
    ("horizon", "reduced"),
    ("weekend", "random"),
    ("polish", "moves"),
    RINS,
)

#: Horizons up to which "staff" already frees whole rows, so "horizon" is not used.
STAFF_WHOLE = 42

#: Horizons (days) from which the LNS has the "weekend" neighbourhood
#: (:func:`_weekend_days`): everyone on a few weekends across the horizon, with
#: their Fridays and Mondays.  On 20 and 22 every employee works their largest
#: number of weekends and all the under-cover is on weekends, so a weekend worked
#: has to move from another weekend, which the windows of days do not reach when
#: the two are months apart.  From one roster of 20 (4,952, 600 s), steps on five
#: weekends found a step of 101 (4,851) on about one in four tries, where the other
#: neighbourhoods rarely find one.  In the search (600 s, with and without): 22
#: seed 0 at 37,646 and 38,024, seed 1 at 38,525 and 38,947 (its steps the third
#: largest gain after polish and "horizon"); but 20 seed 0 at 4,988 and 4,879, seed
#: 1 at 4,956 and 4,952, so it is on for the 364-day instances only.
WEEKENDS_FROM = 364
#: ... with at most this many employees (22, not 23 or 24).  A step frees every
#: employee: on 23 (100 employees, 16 shift types) and 24 (150, 32) its steps found
#: one gain, of 1, in three runs, and the runs ended within their spread either
#: way (600 s, with and without: 23 seed 0 at 22,396 and 21,937, seed 1 at 23,230
#: and 23,470; 24 seed 0 at 66,134 and 64,036).  docs/solver.md has more.
WEEKENDS_STAFF = 60

#: Horizons (days) from which sub-models break ties against weekends worked on one
#: day only (``build_submodel(split_weekends=True)``).  On the long instances every
#: employee is at their weekend limit and the under-cover is on weekends, so a weekend
#: worked on one day wastes the other; at equal cost the search now drifts towards
#: whole weekends.  600 s, seed 0, without and with: 20: 5,163 and 5,072; 21: 21,630
#: and 21,563; 22: 39,744 and 36,566; 24: 67,026 and 65,957 (docs/solver.md has
#: more).  On instance 13 (28 days) it ended worse, 1,546 and 1,862; 14-19 are not
#: measured, so left out.
SPLIT_WEEKENDS_FROM = 182

#: Days × employees up to which column generation (:mod:`~solver.curtois.colgen`)
#: runs once after construction, for at most :data:`COLGEN_SHARE` of the time left,
#: then its integer master for at most :data:`COLGEN_IP_SHARE` (and
#: :data:`COLGEN_IP_MAX` seconds).  Its first version
#: (one column per employee a round) did not converge on 13 and 19 (3,360 cells) in
#: 150 s and stopped at 2,000.  Since pricing keeps every improving schedule and the
#: duals are smoothed, 19 converges in about 170 s (LP 3,147.5) and ended at 3,167
#: (0.57 %; 3,361-3,583 without), 18 at 4,465 (0.13 %; 4,570 with the first
#: version, 4,865-4,891 without) and 15 at 3,952 (3.24 %; 3,966 and about 4,100).  On
#: 13 the LP reaches 1,348.0, the best known, in 175 s, yet the roster ended at 1,766,
#: within its spread without (1,530-1,806): the integer master finds nothing there.
COLGEN_CELLS = 3_400
#: ... and up to this many days × employees per second of the time limit: 1,680 at
#: 60 s, so 1-12.  12 (1,680 cells) used to be left out at 60 s: the first version
#: took a quarter of the time and ended worse (4,953 and 4,837 on seeds 0-1, 4,607
#: and 4,411 without it), and as late as session 23 it ended at 5,008 (4,309
#: without).  Its LP now converges in 25-30 s at 4,040 and the LP-fixed solve
#: (:data:`FIX_CELLS`) makes a roster of it.
COLGEN_CELLS_PER_SECOND = 28
#: ... and with at most this many employees.  Each round prices every employee, and
#: the LP of many interchangeable employees ends fractional: on 13 (120 employees,
#: 3,360 cells) it took 175-290 s to reach 1,348, fractional for 117-118 of them,
#: and neither the integer master nor RINS made a roster of it: 600 s runs ended
#: at 1,766-2,281 with it (five runs, four versions of the search) and 1,530-1,806
#: without (1,559 and 1,766 on the current one, seeds 0-1).  12 (60 employees)
#: converges in 24 s.
COLGEN_STAFF = 60
#: Share of the time left that column generation may take.  On 19 (600 s, seeds 0-1,
#: noise 1) its LP converged at 3,147.5 after 329 and 308 s and the runs ended at
#: 3,162 and 3,159 (0.41 and 0.32 %); with 0.3 it stopped at 3,179-3,185 and the
#: runs ended at 3,170-3,225.  The others converge within 0.3 (15 and 18 in 86 and
#: 68 s at 600 s, 1-7 and 9-11 at 60 s), but for 8 at 60 s: it stopped at 17.6 s
#: (LP 1,296.8) and now converges in 23-28 s, and ends in its two modes as before
#: (1,303, 1,400 and 1,303 on seeds 0-2).
COLGEN_SHARE = 0.6
COLGEN_IP_SHARE = 0.15
#: Seconds the integer master may take at most.  At 60 s (about 8 s for the share)
#: its roster is the LNS's start and pays: instance 10 reached its optimum at 23 and
#: 44 s (seeds 0-1) with the share, at 56-57 s or not at all (4,632) with 1 s.  At
#: 600 s the share gave SCIP about 70 s on masters of 2,500-6,700 columns, whose
#: rosters (5,600-11,500) the LNS leaves behind in seconds anyway; with 10 s, seed
#: 0 unless stated: 15 ended at 3,845, 3,846 and 3,849 (seeds 0-2; 3,851, 3,950
#: and 3,853 with the share), 19 at 3,169 (3,167), 18 at 4,557 and 4,558 (seeds
#: 0-1; 4,464 and 4,558 with the share: it stops near 4,558 or finds 4,464-4,465
#: with either).
COLGEN_IP_MAX = 10.0
#: Share of the time left that :meth:`~solver.curtois.colgen.ColumnGeneration.dive`
#: may take after the LP, before the integer master.  Off: on 13 (600 s) it had not
#: finished in its 248 s and the run ended at 2,245 (1,766 without); on 8 and 9 at
#: 60 s see the issue notes.
DIVE_SHARE = 0.0

#: The "reduced" neighbourhoods aim by the duals of the Lagrangian bound only when
#: that bound is at least this share of the LP's value: far below, the duals are
#: poor.  On 13 (600 s, seed 0) column generation stopped with the LP at 1,738 and
#: the bound at -325; aiming by those duals the run ended at 2,012.
GUIDE_TIGHT = 0.95

#: Seconds of :func:`~solver.curtois.polish.polish` per "polish" step of the LNS.  It
#: holds the incumbent's lock meanwhile, so the other threads wait to merge.
POLISH_STEP = 1.0


#: Share of the LNS steps that are RINS steps, whatever the operators' rewards: its
#: steps are few but large (8, 60 s: 1,604 to 1,309 in three of them), so the
#: rewards' moving average does not keep it up.  With it, 60 s, seeds 0-1: 7 at
#: 1,057-1,058 (1,059-1,068 without), 8 at 1,302-1,312 and once 1,397
#: (1,304-1,426), 9 at its optimum on every run; 600 s, seed 0: 15 at 3,839
#: (3,845), 19 at 3,157 (3,167).  docs/solver.md has the rest.
RINS_SHARE = 0.3

#: Other vertices of the LP for RINS steps (:meth:`~.colgen.ColumnGeneration.perturbed`,
#: each column's cost raised by up to :data:`RINS_NOISE`); each step draws one of
#: them or the LP's own solution.  One vertex held RINS to one neighbourhood per size:
#: on 6 its roster agrees with it wherever it is integral.  60 s, seeds 0-2: 6 at
#: 1,950, its optimum, on all three (at 28, 60 and 24 s; 1,951-1,952 with one
#: vertex); 9 and 10 still at their optima.  (Before the gate below, which leaves
#: it out, 8 ended at 1,399 and 1,306.)  A noise of 3 rather than 1 brought 7 to its
#: optimum, 1,056, on seeds 0, 1 and 3 (at 40-46 s; 1,057 on seed 2), where noise 1
#: and noise 5 ended at 1,057-1,058 on every seed tried; 6 still reached its
#: optimum on seeds 0-2 (at 36, 15 and 39 s), and 5, 9, 10 and 11 theirs.
RINS_VERTICES = 32
RINS_NOISE = 3.0
#: ... for at most this share of the time left: on 19 (4,617 columns) the 32 took
#: 22 s, on 6-10 at 60 s 0.2-2.4 s.  Only once column generation converged: the
#: vertices of a master that has not are not the LP's.  On 19 (600 s, seed 0, master
#: stopped at 3,165.9) the run with them ended at 3,269 (3.81 %), the same code
#: without them at 3,175 (0.83 %).  (19 now converges: :data:`COLGEN_SHARE`.)
RINS_VERTEX_SHARE = 0.05

#: Once column generation converged, on rosters of at least :data:`FIX_CELLS` days
#: × employees, CP-SAT solves the whole roster (every worker) with each cell fixed
#: wherever one shift, or the day off, has at least a threshold of the LP's weight,
#: hinted with the LP's heaviest value of each cell, before the integer master
#: (:func:`_fixed_solve`): each of :data:`FIX_AGREEMENTS` in turn, with an equal
#: share of the time left, until the roster reaches the Lagrangian bound.  At most
#: :data:`FIX_SHARE` of the time left, and :data:`FIX_MAX` seconds.
#:
#: Session 30 (same day, same machine): the first version fixed only whether each
#: employee works (at 0.8, 0.85, 0.75), hinted with the incumbent (on 9-12 the
#: constructed roster, which the LP disagrees with nearly everywhere).  On six saved
#: LPs of 12 (6 s a threshold) it reached 4,756-6,351 at best, never 4,040, the
#: optimum; cells fixed at 0.7 with the LP's hint reached 4,040 on three, 4,141,
#: 4,943 and 5,243 on the others (best of 0.7, 0.75 and 0.6: 4,040 on three, 4,240,
#: 4,141 and 4,442); with the incumbent's hint, cells fixed reached 4,140-5,840.  On
#: 9: 439, the optimum, against 542; on 10 and 11 both reach the optimum, this one
#: in half the time.  In the search, 12 at 60 s (seeds 0-3) ended at 4,142, 4,041,
#: 4,347 and 4,140 against 4,460, 4,366, 4,564 and 4,607; 9 and 11 (seed 0) reach
#: their optimum at 18.8 and 16.3 s.  20's windows keep the first version
#: (:data:`WINDOW_FIX_AGREEMENTS`, where both are measured).  (In session 23,
#: on twelve LPs of 12 at 12 s each, the first version had reached 4,040 on seven
#: at 0.8.)
FIX_CELLS = 1_000
FIX_AGREEMENTS = (0.7, 0.75, 0.6)
FIX_SHARE = 0.75
FIX_MAX = 30.0


class _Adaptive:
    """Per-operator neighbourhood sizes and rewards (shared by all threads)."""

    def __init__(self, data: InstanceData, ops: tuple[tuple[str, str], ...] = _OPS) -> None:
        cells = data.H * data.E
        self.ops = ops
        self.size_max = float(min(cells, 4000))
        self.size = {
            "window": float(min(cells, 7 * data.E)),
            "staff": float(min(cells, 120)),
            "horizon": float(data.H),
            "rins": self.size_max / 2,
            "weekend": float(min(cells, 20 * data.E)),
        }
        self.size_min = {
            "window": float(min(cells, 2 * data.E)),
            "staff": 16.0,
            "horizon": float(data.H),
            "rins": float(min(cells, 2 * data.E)),
            "weekend": float(min(cells, 8 * data.E)),
        }
        # Smoothed improvement per second of each operator; optimistic start.
        self.reward = {op: 1000.0 for op in ops}

    def choose(self, rng: random.Random) -> tuple[str, str]:
        if RINS in self.ops and rng.random() < RINS_SHARE:
            return RINS
        if rng.random() < 0.25:
            return rng.choice(self.ops)
        total = sum(self.reward.values())
        x = rng.random() * total
        for op in self.ops:
            x -= self.reward[op]
            if x <= 0:
                return op
        return self.ops[-1]

    def update(
        self, op: tuple[str, str], gain: int, seconds: float, optimal: bool, limit: float
    ) -> None:
        self.reward[op] = 0.9 * self.reward[op] + 0.1 * (gain / max(0.05, seconds)) + 1e-3
        shape = op[0]
        if shape not in self.size:
            return
        if optimal and seconds < 0.5 * limit:
            self.size[shape] = min(self.size_max, self.size[shape] * 1.1)
        elif not optimal:
            self.size[shape] = max(self.size_min[shape], self.size[shape] / 1.15)


def _lns_worker(
    data: InstanceData,
    state: Incumbent,
    adapt: _Adaptive,
    clock: Clock,
    seed: int,
    target: int | None,
    stop: threading.Event,
    stats: dict[str, int],
    history: list[tuple[float, int]],
    log: LogFn | None,
    guide: Guide | None = None,
    relax: Sequence[Relaxation] = (),
    pause: threading.Event | None = None,
) -> None:
    rng = random.Random(seed)
    H, E = data.H, data.E
    sub_limit = SUB_LIMIT
    split = H >= SPLIT_WEEKENDS_FROM
    while not stop.is_set() and clock.left() > 0.05 and not (pause and pause.is_set()):
        with state.lock:
            if target is not None and state.obj <= target:
                stop.set()
                break
            state.refresh()
            op = adapt.choose(rng)
            shape, how = op
            if shape == "polish":
                # Single moves on the incumbent itself, under the lock.
                began = time.monotonic()
                gain = polish(data, state, rng, began + min(POLISH_STEP, clock.left()))
                stats["iterations"] += 1
                if gain:
                    history.append((clock.elapsed(), state.obj))
                    if log:
                        log(f"{clock.elapsed():7.1f}s  polish  obj {state.obj}")
                adapt.update(op, gain, time.monotonic() - began, True, sub_limit)
                continue
            size = adapt.size[shape]
            keep: list[tuple[int, int, int]] = []
            days: list[int] | None = None
            if shape == "rins":
                # The operator is on only with some LP solutions.
                emps, lo, hi, keep = _rins_cells(data, state, rng.choice(relax), rng, size)
            elif shape == "weekend":
                days = _weekend_days(data, rng, size, state)
                emps, lo, hi = list(range(E)), days[0], days[-1] + 1
            elif shape == "window":
                length = min(H, max(2, round(size / E + rng.uniform(-1, 1))))
                k = min(E, max(1, round(size / length)))
            elif shape == "horizon":
                length = H
                k = max(1, min(E, round(size / H + rng.uniform(-0.5, 0.5))))
            else:
                if H <= STAFF_WHOLE:
                    length = H
                else:
                    length = min(H, 7 * rng.randint(4, 8) + rng.randint(-3, 3))
                k = max(1, min(E, round(size / length)))
                if k == 1:
                    length = min(H, max(3, round(size)))
            if shape not in ("rins", "weekend"):
                lo, hi = _pick_window(H, rng, length, state)
                emps = _pick_employees(data, rng, k, lo, hi, state, how, guide)
            versions = {e: state.version[e] for e in emps}
            snapshot = [row[:] for row in state.roster]
        sub = build_submodel(data, snapshot, emps, lo, hi, split_weekends=split, days=days)
        _keep(data, sub, keep)
        limit = min(sub_limit, clock.left())
        solver = _solver(limit, rng.randrange(1 << 30))
        status = solver.solve(sub.model)
        with state.lock:
            stats["iterations"] += 1
            gain = 0
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                new = sub.extract(solver, snapshot)
                changes = [(e, d, new[e][d]) for e in emps for d in sub.free_days]
                delta = state.commit(changes, versions)
                if delta is not None and delta < 0:
                    gain = -delta
                    history.append((clock.elapsed(), state.obj))
                    if log:
                        log(
                            f"{clock.elapsed():7.1f}s  it {stats['iterations']:5d}  obj {state.obj}"
                            f"  ({shape}/{how} {len(emps)}x{hi - lo}, {solver.wall_time:.2f}s)"
                        )
            adapt.update(op, gain, solver.wall_time, status == cp_model.OPTIMAL, limit)
            whole = len(emps) == E and hi - lo == H and not keep and days is None
            if status == cp_model.OPTIMAL and whole:
                # The whole problem was solved to optimality: nothing left to do.
                stats["proven"] = 1
                stop.set()


def _colgen(
    data: InstanceData,
    state: Incumbent,
    clock: Clock,
    workers: int,
    log: LogFn | None,
) -> tuple[Incumbent, int | None, Guide | None, list[Relaxation]]:
    """Column generation from ``state``'s roster, then (on rosters of
    :data:`FIX_CELLS` or more, once it converged) :func:`_fixed_solve`, then its
    integer master unless that solve reached the bound.

    Returns the best roster as a new incumbent, the Lagrangian lower bound of
    column generation and its :class:`~solver.curtois.colgen.Guide` (both ``None``
    if no round of pricing finished in time), and the LP's solution and, if it
    converged, up to :data:`RINS_VERTICES` more of its vertices, as
    :class:`~solver.curtois.colgen.Relaxation` (none if the LP does not solve).
    """
    cg = ColumnGeneration(data, state.roster)
    converged = cg.run(time.monotonic() + COLGEN_SHARE * clock.left(), workers)
    if log:
        log(
            f"{clock.elapsed():7.1f}s  column generation LP {cg.value:.1f}"
            f" ({'converged' if converged else 'stopped'}), bound {cg.bound}, "
            f"{sum(len(c) for c in cg.columns)} columns"
        )
    if DIVE_SHARE > 0:
        dived = cg.dive(time.monotonic() + DIVE_SHARE * clock.left(), state.obj, workers)
        if dived is not None:
            obj = evaluate(data.inst, dived).objective
            if log:
                log(f"{clock.elapsed():7.1f}s  dive objective {obj}")
            if obj < state.obj:
                state = Incumbent(data, dived, obj)
    tight = cg.bound is not None and cg.bound >= GUIDE_TIGHT * cg.value
    guide = cg.guide() if tight else None
    relax = [cg.relaxation()]
    noise = random.Random(0)
    deadline = time.monotonic() + RINS_VERTEX_SHARE * clock.left()
    while converged and len(relax) <= RINS_VERTICES and time.monotonic() < deadline:
        relax.append(cg.perturbed(noise, RINS_NOISE))
    if log:
        log(f"{clock.elapsed():7.1f}s  {len(relax)} LP solutions for RINS")
    if converged and relax[0] is not None and data.E * data.H >= FIX_CELLS:
        limit = min(FIX_MAX, FIX_SHARE * clock.left())
        state = _fixed_solve(data, state, relax[0], cg.bound, limit, workers, log, clock)
    if cg.bound is None or state.obj > cg.bound:
        limit = min(COLGEN_IP_MAX, COLGEN_IP_SHARE * clock.left())
        roster, obj = cg.integer(state.roster, state.obj, limit)
        if obj < state.obj:
            if log:
                log(f"{clock.elapsed():7.1f}s  integer master objective {obj}")
            state = Incumbent(data, roster, obj)
    return state, cg.bound, guide, [r for r in relax if r is not None]


class _StopAt(cp_model.CpSolverSolutionCallback):
    """Stops CP-SAT once its objective reaches ``at``."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def on_solution_callback(self) -> None:
        if self.objective_value <= self.at:
            self.stop_search()


def _fixed_solve(
    data: InstanceData,
    state: Incumbent,
    relax: Relaxation,
    bound: int | None,
    limit: float,
    workers: int,
    log: LogFn | None,
    clock: Clock,
    lo: int = 0,
    hi: int | None = None,
    days: Collection[int] | None = None,
    cells: bool = True,
) -> Incumbent:
    """The roster's days ``lo..hi-1`` (all by default, or only those of ``days``)
    re-solved with the cells fixed where the LP nearly agrees, from the LP's roster;
    with ``cells`` false (windows: :data:`WINDOW_FIX_AGREEMENTS`), with only who
    works when fixed, from the incumbent.

    Each cell where one shift, or the day off, has at least the first of
    :data:`FIX_AGREEMENTS` of the LP's weight is fixed to it; CP-SAT (``workers``
    threads) solves the rest, hinted with the LP's heaviest value of every cell,
    until it reaches ``bound`` or its share of ``limit`` seconds has passed; then
    again with the next threshold, each of those left getting an equal share of the
    time left.  Stops once the roster reaches ``bound``.  Returns the best roster as
    an incumbent.  The hint need not be a roster (the LP's is not); the incumbent
    is not the hint, as it disagrees with the LP wherever the LP is better.

    Without ``cells``, whether each employee works each day (not the shift) is
    fixed wherever working, or the day off, has the threshold, and the incumbent
    is the hint.  On 20's windows (session 26) that did better than fixing the
    pattern only where the roster also agrees with the LP (RINS): from rosters at
    4,959 and 5,194, on nine 56-day windows, it ended at or below RINS on all nine
    and below it on six.
    """
    deadline = time.monotonic() + limit
    hi = data.H if hi is None else hi
    thresholds = FIX_AGREEMENTS if cells else WINDOW_FIX_AGREEMENTS
    top = [[relax.heaviest(e, d)[0] for d in range(data.H)] for e in range(data.E)] if cells else []
    for i, agreement in enumerate(thresholds):
        left = deadline - time.monotonic()
        if left <= 0 or (bound is not None and state.obj <= bound):
            break
        sub = build_submodel(data, state.roster, range(data.E), lo, hi, hint=not cells, days=days)
        if cells:
            keep = [(e, d, s) for e, d, s in relax.cells(agreement) if sub.is_free(d)]
            _keep(data, sub, keep)
            for (e, d, s), v in sub.x.items():
                sub.model.add_hint(v, top[e][d] == s)
            fixed = len(keep)
        else:
            pattern = [(e, d, w) for e, d, w in relax.pattern(agreement) if sub.is_free(d)]
            _keep_pattern(data, sub, pattern)
            fixed = len(pattern)
        solver = _solver(left / (len(thresholds) - i), 0, workers)
        # The sub-model's objective is the roster's, less the terms it leaves out.
        at = -math.inf if bound is None else bound - state.obj + sub.incumbent_value
        status = solver.solve(sub.model, _StopAt(at))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            roster = sub.extract(solver, state.roster)
            obj = evaluate(data.inst, roster).objective
            if log:
                log(
                    f"{clock.elapsed():7.1f}s  LP-fixed solve ({fixed} of"
                    f" {data.E * len(sub.free_days)} {'cells' if cells else 'days'} fixed"
                    f" at {agreement}) objective {obj}"
                )
            if obj < state.obj:
                state = Incumbent(data, roster, obj)
    return state


#: Column generation on a window of :data:`WINDOW_DAYS` days, every other day of
#: the roster fixed, then the LP-fixed solve of that window (:func:`_window_step`):
#: an LNS step on every employee at once, for instances where column generation on
#: the whole roster is out of reach, with at most :data:`COLGEN_STAFF` employees
#: and two windows' days or more (20 and 22).  On 20 (600 s, seed 0) the LNS ended
#: at 4,948, and 28-day windows at 0, 28, 56 and 84 then gained 3 in all (their
#: LPs converged in about 4 s each, 1-6 below the roster): it is optimal for every
#: month.  56-day windows from the same roster (LPs in 20-23 s, fixed solves of
#: 30 s): 4,948, 4,944, 4,840, 4,832, 4,824 (1.15 %) at 0, 63, 126 and 28.  In the
#: search (600 s, seeds 0-2) 20 ended at 4,856, 4,934 and 4,867 (4,948 and 4,993
#: without windows on seeds 0-1); docs/solver.md has the earlier versions.
WINDOW_DAYS = 56
#: Seconds of column generation per window at most (at most half the time left) ...
WINDOW_CG_MAX = 40.0
#: ... and of its LP-fixed solve ...
WINDOW_FIX_MAX = 30.0
#: ... which fixes whether each employee works each day where the LP has at least
#: each of these shares in turn, and is hinted with the incumbent (an LNS roster):
#: the LP-fixed solve of the whole roster (:data:`FIX_AGREEMENTS`) fixes cells and
#: is hinted with the LP.  Same day, 20 seed 1 (600 s): with the pattern the
#: windows reached their LP on five of six, and the run ended at 4,860 (1.91 %);
#: with cells, one window's solve at 0.7 proved 5,529 optimal, 202 above its LP,
#: and the run ended at 5,087 (its LNS was slower too).  From a roster at 5,087,
#: though, cells reached the LP of days 0-55 and 84-139 in 2 s, the pattern nothing
#: in 30 s.
WINDOW_FIX_AGREEMENTS = (0.8, 0.85, 0.75)
#: Windows start once the LNS has slowed: when its gain over the last
#: :data:`WINDOW_SPAN` of the time limit, kept up for the rest of the time, would be
#: under :data:`WINDOW_PRIOR` of the objective.  From then on they go by pace
#: (:class:`_Windows`): window steps follow each other while their gain a second,
#: over all of them, beats the LNS's in its last spell; otherwise the LNS runs a
#: spell until its own pace falls below theirs.  One window's gain does not tell
#: the next one's (on 20: 4, 104, 8 and 8 in a sweep), hence the pace over all.
#: From one roster of 20 at 300 s (5,119), 300 s of windows alone ended at 4,876,
#: 300 s of the LNS alone at 4,961; from one at 150 s (5,875) windows alone were at
#: 5,201 after 340 s, where the LNS is usually at about 5,000-5,100 by then: early
#: on the LNS is faster.  On 22 the first window came at 540 s at 3 % and did not
#: converge (the run ended at 39,457); a window that gains nothing leaves the LNS
#: the rest of the time.
WINDOW_SPAN = 0.1
WINDOW_PRIOR = 0.03
#: An LNS spell between windows lasts at most this many times the last window
#: step, however fast it goes: one window whose LP-fixed solve found nothing (on
#: 20, seed 1: 5,815-5,394 from a roster at 5,198, its LP at 5,181) would
#: otherwise leave the LNS the rest of the time.
WINDOW_SPELL_MAX = 3.0
#: Seconds between the checks whether a window is due.
WINDOW_POLL = 1.0


def _window_step(
    data: InstanceData,
    state: Incumbent,
    clock: Clock,
    workers: int,
    log: LogFn | None,
    lo: int,
    hi: int,
) -> Incumbent:
    """Column generation on days ``lo..hi-1`` with the rest of the roster fixed,
    then, if its LP converged below the roster, :func:`_fixed_solve` of those days
    until the roster reaches the LP.  Returns the best roster as an incumbent."""
    cg = ColumnGeneration(data, state.roster, lo, hi)
    converged = cg.run(time.monotonic() + min(WINDOW_CG_MAX, clock.left() / 2), workers)
    if log:
        log(
            f"{clock.elapsed():7.1f}s  window {lo}-{hi}: LP {cg.value:.1f}"
            f" ({'converged' if converged else 'stopped'}), bound {cg.bound}"
        )
    if not converged or cg.bound is None:
        return state
    # No roster of this window beats the converged LP: stop there.
    at = max(cg.bound, math.ceil(cg.value - 1e-6))
    if at >= state.obj or (relax := cg.relaxation()) is None:
        return state
    limit = min(WINDOW_FIX_MAX, clock.left())
    return _fixed_solve(data, state, relax, at, limit, workers, log, clock, lo, hi, cells=False)


def _objective_at(history: list[tuple[float, int]], seconds: float, now: int) -> int:
    """The objective at ``seconds`` by ``history`` (its (seconds, objective)
    improvements), or ``now`` if none had come by then."""
    return next((o for t, o in reversed(history) if t <= seconds), now)


class _Windows:
    """Which window comes next, and whether it is due (:data:`WINDOW_DAYS`).

    The windows sweep the horizon in steps of half a window from a random one.
    Once the first has run, windows and the LNS go on by their pace: window steps
    follow each other while their gain a second (over all of them) beats the
    LNS's in its last spell; else a spell of the LNS runs, at least as long as the
    last step, until its own pace falls below the windows' or it has run
    :data:`WINDOW_SPELL_MAX` times as long.
    """

    def __init__(self, data: InstanceData, clock: Clock, rng: random.Random) -> None:
        H, W = data.H, WINDOW_DAYS
        self.starts = sorted({*range(0, H - W + 1, W // 2), H - W})
        self.next = rng.randrange(len(self.starts))
        self.clock = clock
        self.span = WINDOW_SPAN * clock.limit
        #: Seconds of the last window step; ``None`` before the first.
        self.last: float | None = None
        #: The windows' gain and seconds, over all steps so far.
        self.gain = 0
        self.seconds = 0.0
        #: The LNS's gain a second in its last spell (over the span before the first window).
        self.lns_pace = 0.0

    def window(self) -> tuple[int, int]:
        """The next window's days, as (lo, hi)."""
        lo = self.starts[self.next]
        self.next = (self.next + 1) % len(self.starts)
        return lo, lo + WINDOW_DAYS

    def pace(self) -> float:
        """The windows' gain a second so far."""
        return self.gain / self.seconds if self.seconds > 0 else 0.0

    def due(self, history: list[tuple[float, int]], since: float, obj: int) -> bool:
        """Whether a window is due after a spell of the LNS that began at ``since``
        (seconds), ``history`` holding its (seconds, objective) improvements.

        Notes the LNS's pace so far in :attr:`lns_pace`, for :meth:`again`.
        """
        now = self.clock.elapsed()
        if self.clock.left() < self.span:
            return False
        spell = now - since
        if self.last is None:
            if spell < self.span:
                return False
            before = _objective_at(history, now - self.span, obj)
            self.lns_pace = (before - obj) / self.span
            return (before - obj) * self.clock.left() < WINDOW_PRIOR * obj * self.span
        if spell < self.last:
            return False
        start = _objective_at(history, since, obj)
        self.lns_pace = (start - obj) / spell
        return self.lns_pace < self.pace() or spell >= WINDOW_SPELL_MAX * self.last

    def again(self) -> bool:
        """Whether the next window follows the last at once, without a spell of the
        LNS between: the windows have gained faster than the LNS's last spell."""
        return (
            self.last is not None and self.clock.left() >= self.span and self.pace() > self.lns_pace
        )

    def record(self, seconds: float, gain: int) -> None:
        """A window step took ``seconds`` and gained ``gain``."""
        self.last = seconds
        self.seconds += seconds
        self.gain += gain


def solve(
    inst: Instance,
    time_limit: float = 60.0,
    workers: int = 2,
    seed: int = 0,
    log: LogFn | None = None,
    target: int | None = None,
) -> SolveResult:
    """Find a good hard-feasible roster within ``time_limit`` seconds.

    ``workers`` LNS threads run in parallel.  ``target`` (e.g. a known optimum)
    stops the search early once reached.  Raises ``RuntimeError`` when no feasible
    roster can be found.
    """
    clock = Clock(time_limit)
    rng = random.Random(seed)
    data = InstanceData(inst)
    roster = construct(data, clock, rng, workers, log)
    ev = evaluate(inst, roster)
    if not ev.feasible:  # pragma: no cover - model and checker disagree: a bug
        raise RuntimeError("constructed roster is infeasible: " + "; ".join(ev.violations[:3]))
    state = Incumbent(data, roster, ev.objective)
    if log:
        log(f"{clock.elapsed():7.1f}s  constructed objective {state.obj}")
    ops: tuple[tuple[str, str], ...] = _OPS
    if data.H <= STAFF_WHOLE:
        ops = tuple(op for op in ops if op[0] != "horizon")
    if data.H < WEEKENDS_FROM or data.E > WEEKENDS_STAFF:
        ops = tuple(op for op in ops if op[0] != "weekend")
    if data.H * data.E >= POLISH_CELLS:
        # The single moves first: thousands a second where an LNS step takes a second.
        polish(data, state, rng, time.monotonic() + POLISH_SHARE * clock.left())
        if log:
            log(f"{clock.elapsed():7.1f}s  polished objective {state.obj}")
    else:
        ops = tuple(op for op in ops if op[0] != "polish")
    bound = guide = None
    relax: list[Relaxation] = []
    cells = min(COLGEN_CELLS, COLGEN_CELLS_PER_SECOND * time_limit)
    whole = data.H * data.E <= cells
    if whole and data.E <= COLGEN_STAFF:
        state, bound, guide, relax = _colgen(data, state, clock, workers, log)
        if bound is not None:
            # Reaching the Lagrangian bound proves the roster optimal: stop there.
            target = bound if target is None else max(target, bound)
    if guide is None:
        ops = tuple(op for op in ops if op[1] != "reduced")
    if not relax:
        ops = tuple(op for op in ops if op[0] != "rins")
    adapt = _Adaptive(data, ops)
    history = [(clock.elapsed(), state.obj)]
    stop = threading.Event()
    stats = {"iterations": 0, "proven": 0}
    windows = None
    if not whole and data.E <= COLGEN_STAFF and data.H >= 2 * WINDOW_DAYS:
        windows = _Windows(data, clock, rng)
    pause = threading.Event()
    while True:
        if windows is None or not windows.again():
            # A spell of the LNS, until it ends or a window is due.
            since = clock.elapsed()
            threads = [
                threading.Thread(
                    target=_lns_worker,
                    args=(data, state, adapt, clock, rng.randrange(1 << 30), target, stop, stats),
                    kwargs=dict(history=history, log=log, guide=guide, relax=relax, pause=pause),
                    daemon=True,
                )
                for _ in range(max(1, workers))
            ]
            for t in threads:
                t.start()
            while True:
                if windows is not None and not pause.is_set():
                    with state.lock:
                        if windows.due(history, since, state.obj):
                            pause.set()
                if not (alive := [t for t in threads if t.is_alive()]):
                    break
                alive[0].join(WINDOW_POLL)
            if stop.is_set() or windows is None or not pause.is_set():
                break
            pause.clear()
        began, before = time.monotonic(), state.obj
        state = _window_step(data, state, clock, workers, log, *windows.window())
        windows.record(time.monotonic() - began, before - state.obj)
        if state.obj < before:
            history.append((clock.elapsed(), state.obj))

    final = evaluate(inst, state.roster)
    if not final.feasible or final.objective != state.obj:  # pragma: no cover - a bug
        raise RuntimeError(
            f"internal error: tracked objective {state.obj}, checker says {final.summary()}"
        )
    return SolveResult(
        roster=state.roster,
        objective=final.objective,
        evaluation=final,
        seconds=clock.elapsed(),
        bound=state.obj if stats["proven"] else bound,
        iterations=stats["iterations"],
        history=history,
    )
