"""CP-SAT model of the Curtois & Qu benchmark, built for any rectangle of free cells.

The same builder serves three purposes:

* the full model (every employee free on every day),
* the per-employee construction (one employee free, the others fixed), and
* large-neighbourhood search (a few employees free on a window of days).

Cells outside the free rectangle are *constants* taken from the incumbent roster,
so constraints are simplified in Python before they reach CP-SAT: clauses with a
true constant literal are dropped, windows that cannot be violated are skipped,
and only constraints that touch a free cell are emitted.  That keeps LNS
sub-models small even on the 364-day × 150-employee instance.

Encodings (stronger than a naive model):

* a day's shift variables are only created for shift types the employee may
  work at all (MaxShifts > 0), is not on a day off, and that are compatible with
  fixed neighbouring days (banned successions);
* banned successions are one at-most-one per (day, shift):
  ``x[d,s] + sum_{t banned after s} x[d+1,t] <= 1``;
* min consecutive shifts / days off are forbidden-pattern clauses
  ``0 1^L 0`` (resp. ``1 0^L 1``) for every short length ``L`` — exactly the
  published rule, boundary runs exempt;
* max consecutive shifts is a sliding-window sum.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ortools.sat.python import cp_model

from .instance import OFF, Instance, Roster, Staff

__all__ = ["InstanceData", "SubModel", "build_pattern_model", "build_submodel"]

#: A day's "works" literal for one employee: a CP-SAT Boolean, or a constant.
Lit = cp_model.IntVar | bool


class InstanceData:
    """Pre-computed lookup tables for fast sub-model construction."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        H, S = inst.horizon, inst.num_shifts
        self.H = H
        self.S = S
        self.E = inst.num_staff
        self.minutes = [s.minutes for s in inst.shifts]
        self.banned: list[list[int]] = [inst.banned_successors(s) for s in range(S)]
        self.banned_set: list[frozenset[int]] = [frozenset(b) for b in self.banned]
        # Shift types each employee may work at all.
        self.allowed: list[list[int]] = [
            [s for s in range(S) if inst.max_shifts(e, s) > 0] for e in range(self.E)
        ]
        #: Employees who may work each shift type.
        self.by_type: list[list[int]] = [
            [e for e in range(self.E) if s in self.allowed[e]] for s in range(S)
        ]
        self.max_shifts: list[list[int]] = [
            [min(inst.max_shifts(e, s), H) for s in range(S)] for e in range(self.E)
        ]
        self.on_req: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for r in inst.on_requests:
            self.on_req.setdefault((r.employee, r.day), []).append((r.shift, r.weight))
        self.off_req: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for r in inst.off_requests:
            self.off_req.setdefault((r.employee, r.day), []).append((r.shift, r.weight))
        # cover[d][s] = (requirement, weight_under, weight_over); summed if repeated.
        self.cover: list[list[tuple[int, int, int] | None]] = [[None] * S for _ in range(H)]
        for c in inst.cover:
            self.cover[c.day][c.shift] = (c.requirement, c.weight_under, c.weight_over)
        #: Heaviest weight of a missing person.
        self.max_under = max((c.weight_under for c in inst.cover), default=0)
        self.weekends = inst.weekends()
        self.weekend_of: dict[int, int] = {}
        for k, (sat, sun) in enumerate(self.weekends):
            self.weekend_of[sat] = k
            self.weekend_of[sun] = k
        # A cell with a request or in a shift type with weighted cover: used by heuristics.
        self.request_weight = [[0] * H for _ in range(self.E)]
        for r in inst.on_requests + inst.off_requests:
            self.request_weight[r.employee][r.day] += r.weight

    def long_weekend(self, k: int) -> range:
        """Weekend ``k``'s days with its Friday and Monday (within the horizon)."""
        sat, sun = self.weekends[k]
        return range(sat - 1, min(sun + 2, self.H))

    def cell_cost(self, e: int, d: int, s: int) -> int:
        """Request cost of employee ``e`` working ``s`` (or ``OFF``) on day ``d``."""
        c = 0
        for t, w in self.on_req.get((e, d), ()):
            if s != t:
                c += w
        for t, w in self.off_req.get((e, d), ()):
            if s == t:
                c += w
        return c


@dataclass
class SubModel:
    """A built sub-model plus what is needed to read back and score its solution."""

    model: cp_model.CpModel
    employees: list[int]
    lo: int
    hi: int
    #: x[(e, d, s)] — employee e works shift s on day d (free cells only).
    x: dict[tuple[int, int, int], cp_model.IntVar] = field(default_factory=dict)
    #: The free days, if only some of ``lo..hi-1`` (else all of them).
    days: frozenset[int] | None = None
    #: Objective value of the incumbent restricted to this sub-model's terms.
    incumbent_value: int = 0
    feasible_hint: bool = True

    @cached_property
    def free_days(self) -> Sequence[int]:
        """The free days, in order (worked out once: steps read them per employee)."""
        return range(self.lo, self.hi) if self.days is None else sorted(self.days)

    def is_free(self, d: int) -> bool:
        """Whether day ``d`` is free."""
        return self.lo <= d < self.hi if self.days is None else d in self.days

    def extract(self, solver: cp_model.CpSolver, roster: Roster) -> Roster:
        """Return a copy of ``roster`` with the free cells replaced by the solution."""
        new = [row[:] for row in roster]
        days = self.free_days
        for e in self.employees:
            for d in days:
                new[e][d] = OFF
        for (e, d, s), var in self.x.items():
            if solver.boolean_value(var):
                new[e][d] = s
        return new


_State = tuple[bool, int, bool]  # (working, run length so far, run started on day 0)


def _successors(st: Staff, state: _State | None) -> list[_State]:
    """States reachable on the next day from ``state`` (None = before day 0)."""
    K = st.max_consecutive_shifts
    C = st.min_consecutive_shifts
    Mo = max(1, st.min_consecutive_days_off)
    if state is None:
        # Runs starting on day 0 are exempt from the minimum-length rules.
        return [(True, 1, True), (False, 1, True)]
    working, length, exempt = state
    out: list[_State] = []
    if working:
        if length < K:
            out.append((True, length + 1, exempt))
        if exempt or length >= C:
            out.append((False, 1, False))
    elif exempt:
        # Length of an exempt off run does not matter; keep one state.
        out.append((False, 1, True))
        out.append((True, 1, False))
    else:
        out.append((False, min(length + 1, Mo), False))
        if length >= Mo:
            out.append((True, 1, False))
    return out


def _initial_state(st: Staff, row: Sequence[int], lo: int) -> _State | None:
    """State of the run containing day ``lo - 1`` in the (fixed) prefix of ``row``."""
    if lo == 0:
        return None
    status = row[lo - 1] != OFF
    j = lo - 1
    while j > 0 and (row[j - 1] != OFF) == status:
        j -= 1
    length = lo - j
    exempt = j == 0
    if status:
        return (True, min(length, st.max_consecutive_shifts), exempt)
    if exempt:
        return (False, 1, True)
    return (False, min(length, max(1, st.min_consecutive_days_off)), False)


def _sequence_network(
    m: cp_model.CpModel,
    st: Staff,
    row: Sequence[int],
    lo: int,
    hi: int,
    H: int,
    work: dict[int, Lit],
    hint_values: dict[cp_model.IntVar, int],
) -> None:
    """Encode max/min consecutive shifts and min days off as a flow in a layered DAG.

    Nodes are (working?, run length, exempt?) per day; one unit of flow walks the
    horizon, so the LP relaxation of the sequence rules alone is integral — much
    stronger than window sums and forbidden-pattern clauses.  The network starts
    at the state implied by the fixed prefix and stops at the first status change
    inside the fixed suffix (after it every run is entirely fixed and feasible).
    """
    end = H - 1
    for p in range(hi + 1, H):
        if (row[p] != OFF) != (row[p - 1] != OFF):
            end = p
            break
    init = _initial_state(st, row, lo)
    # in_arcs[state] / out_arcs[state] for the current layer.
    cur_out: dict[_State | None, list[cp_model.IntVar]] = {init: []}
    cur_in: dict[_State | None, list[cp_model.IntVar]] = {init: []}
    # Incumbent path, for the hint.
    path_state: _State | None = init
    first = True
    for d in range(lo, end + 1):
        if d in work:
            v = work[d]
            allowed_status: tuple[bool, ...] = (v,) if isinstance(v, bool) else (True, False)
        else:
            allowed_status = (row[d] != OFF,)
        nxt_in: dict[_State | None, list[cp_model.IntVar]] = {}
        inc_next: _State | None = None
        for prev in cur_in:
            if not first and not cur_in[prev]:
                continue
            for new in _successors(st, prev):
                if new[0] not in allowed_status:
                    continue
                a = m.new_bool_var("")
                cur_out.setdefault(prev, []).append(a)
                nxt_in.setdefault(new, []).append(a)
                on_path = prev == path_state and new[0] == (row[d] != OFF)
                hint_values[a] = 1 if on_path else 0
                if on_path:
                    inc_next = new
        if first:
            m.add(sum(cur_out.get(init, [])) == 1)
            first = False
        else:
            for state, ins in cur_in.items():
                m.add(sum(ins) == sum(cur_out.get(state, [])))
        if d in work and not isinstance(work[d], bool):
            m.add(
                sum(a for state, arcs in nxt_in.items() if state and state[0] for a in arcs)
                == work[d]
            )
        path_state = inc_next
        cur_in = nxt_in
        cur_out = {}


def _sequence_clauses(
    m: cp_model.CpModel,
    st: Staff,
    wk: Callable[[int], Lit],
    lo: int,
    hi: int,
    H: int,
) -> bool:
    """Encode the consecutive-days rules as windows and forbidden-pattern clauses.

    ``wk(d)`` is day ``d``'s "works" literal or constant; only constraints touching
    days ``lo..hi-1`` are emitted.  Returns false when a fully fixed pattern is
    already violated (the model is then infeasible).
    """
    ok = True
    # Max consecutive shifts K: every window of K+1 days has a day off.
    K = st.max_consecutive_shifts
    for i in range(max(0, lo - K), min(hi, H - K)):
        lits = [wk(d) for d in range(i, i + K + 1)]
        fixed_on = sum(1 for v in lits if v is True)
        var = [v for v in lits if not isinstance(v, bool)]
        if var and fixed_on + len(var) > K:
            m.add(sum(var) <= K - fixed_on)

    # Min consecutive shifts / days off: forbid a short run bounded on both sides.
    for minlen, on in (
        (st.min_consecutive_shifts, True),
        (st.min_consecutive_days_off, False),
    ):
        for L in range(1, minlen):
            for d in range(max(1, lo - L), min(hi + 1, H - L)):
                # Pattern: day d-1 != on, days d..d+L-1 == on, day d+L != on.
                clause: list[Any] = []
                satisfied = False
                for day, want_on in (
                    (d - 1, not on),
                    *((t, on) for t in range(d, d + L)),
                    (d + L, not on),
                ):
                    # Clause literal is "cell differs from the pattern".
                    cell = wk(day)
                    lit_true_when_work = not want_on
                    if isinstance(cell, bool):
                        if cell == lit_true_when_work:
                            satisfied = True
                            break
                    else:
                        clause.append(cell if lit_true_when_work else cell.negated())
                if satisfied:
                    continue
                if not clause:
                    ok = False
                m.add_bool_or(clause)  # empty when fully fixed and violated: infeasible
    return ok


def _weekend_limit(
    m: cp_model.CpModel,
    data: InstanceData,
    st: Staff,
    wk: Callable[[int], Lit],
    row: Sequence[int] | None = None,
    hint_values: dict[cp_model.IntVar, int] | None = None,
) -> None:
    """At most ``st.max_weekends`` weekends with a shift on Saturday or Sunday.

    With ``row`` and ``hint_values``, the new weekend literals are hinted from ``row``.
    """
    fixed_we = 0
    we_vars: list[Any] = []
    for sat, sun in data.weekends:
        a, b = wk(sat), wk(sun)
        if a is True or b is True:
            fixed_we += 1
            continue
        lits = [v for v in (a, b) if not isinstance(v, bool)]
        if not lits:
            continue
        if len(lits) == 1:
            we_vars.append(lits[0])
            continue
        wv = m.new_bool_var(f"we{sat}")
        for lit in lits:
            m.add_implication(lit, wv)
        if row is not None and hint_values is not None:
            hint_values[wv] = 1 if (row[sat] != OFF or row[sun] != OFF) else 0
        we_vars.append(wv)
    cap_we = st.max_weekends - fixed_we
    if len(we_vars) > cap_we:
        m.add(sum(we_vars) <= cap_we)


def _split_weekends(
    m: cp_model.CpModel,
    data: InstanceData,
    days_off: Collection[int],
    wk: Callable[[int], Lit],
    row: Sequence[int],
    terms: list[tuple[cp_model.IntVar, int]],
    hint_values: dict[cp_model.IntVar, int],
) -> tuple[int, int]:
    """Add to ``terms`` one per weekend worked on one day only (fixed days off aside).

    Returns the constant part (weekends split whatever the free cells) and how many
    of the others ``row`` splits: the most the free cells can take off.
    """
    const = split_now = 0
    for sat, sun in data.weekends:
        if sat in days_off or sun in days_off:
            continue
        a, b = wk(sat), wk(sun)
        if isinstance(a, bool):
            a, b = b, a
        if isinstance(a, bool):
            const += a != b
            continue
        split_in_row = (row[sat] != OFF) != (row[sun] != OFF)
        split_now += split_in_row
        if isinstance(b, bool):
            # One day only iff the free day differs from the fixed one.
            if b:
                const += 1
                terms.append((a, -1))
            else:
                terms.append((a, 1))
        else:
            split = m.new_bool_var(f"split{sat}")
            m.add_bool_or([split, a.Not(), b])  # a and not b -> split
            m.add_bool_or([split, a, b.Not()])  # b and not a -> split
            hint_values[split] = int(split_in_row)
            terms.append((split, 1))
    return const, split_now


def build_pattern_model(
    data: InstanceData, e: int, shift: int | None = None
) -> tuple[cp_model.CpModel, dict[int, Lit]]:
    """Employee ``e``'s work/off pattern alone: which days they work, not which shift.

    Holds the rules that only depend on the pattern (days off, consecutive days,
    weekends) and the bounds the other rules put on the number of working days
    (total minutes with the shortest and longest allowed shift, the sum of the
    per-type caps).  Every feasible schedule has a feasible pattern; the converse
    needs shift types that fit (banned successions, caps), which the caller checks.
    On the 364-day instances this model is ten times smaller than the employee's
    full one, and CP-SAT solves it in well under a second.

    With ``shift``, the pattern is for working that one shift type on every working
    day: its length and cap bound the number of working days exactly, so (when the
    type may follow itself) every accepted pattern is a feasible schedule.
    """
    m = cp_model.CpModel()
    st = data.inst.staff[e]
    allowed = data.allowed[e] if shift is None else [shift]
    work: dict[int, Lit] = {}
    for d in range(data.H):
        work[d] = False if d in data.inst.days_off[e] or not allowed else m.new_bool_var(f"w{d}")
    if allowed:
        days = [v for v in work.values() if not isinstance(v, bool)]
        shortest = min(data.minutes[s] for s in allowed)
        longest = max(data.minutes[s] for s in allowed)
        m.add(shortest * sum(days) <= st.max_total_minutes)
        m.add(longest * sum(days) >= st.min_total_minutes)
        m.add(sum(days) <= sum(data.max_shifts[e][s] for s in allowed))
    elif st.min_total_minutes > 0:
        m.add_bool_or([])
    _sequence_clauses(m, st, work.__getitem__, 0, data.H, data.H)
    _weekend_limit(m, data, st, work.__getitem__)
    return m, work


def build_submodel(
    data: InstanceData,
    roster: Sequence[Sequence[int]],
    employees: Iterable[int],
    lo: int = 0,
    hi: int | None = None,
    *,
    hint: bool = True,
    count_others: bool = True,
    sequence: str = "clauses",
    split_weekends: bool = False,
    days: Collection[int] | None = None,
) -> SubModel:
    """Build the model where ``employees`` are free on days ``lo..hi-1``, or only
    on those of ``days`` (which must lie there) if given.

    Every other cell is fixed to its value in ``roster``.  When ``hint`` is true the
    incumbent values are given to CP-SAT as a solution hint.  ``count_others=False``
    ignores the fixed employees' contribution to cover (unused by the solver, kept
    for experiments).  The objective only contains terms that depend on free cells;
    :attr:`SubModel.incumbent_value` is the value of those terms for ``roster``, so
    the full objective changes by ``solution_value - incumbent_value``.

    ``sequence`` selects the encoding of the consecutive-days rules: ``"clauses"``
    (sliding windows and forbidden patterns; fastest with CP-SAT's
    ``linearization_level=2`` in our measurements), ``"flow"`` (a per-employee
    layered network whose LP is integral for these rules alone) or ``"both"``.

    ``split_weekends`` breaks ties against weekends worked on one day only: the
    objective becomes a scale times the true one plus one per such weekend of a free
    employee (where neither day is a fixed day off).  The scale is one more than the
    count the free cells can take off, so no truly worse solution can win;
    :attr:`SubModel.incumbent_value` stays in true units.
    """
    H, S = data.H, data.S
    if hi is None:
        hi = H
    emps = sorted(set(employees))
    free_set = set(emps)
    m = cp_model.CpModel()
    sub = SubModel(m, emps, lo, hi, days=None if days is None else frozenset(days))
    free_days = sub.free_days
    is_free = sub.is_free
    fixed_days = [d for d in range(H) if not is_free(d)]  # the same for every employee
    x = sub.x
    obj_terms: list[tuple[cp_model.IntVar, int]] = []
    obj_const = 0
    shaping: list[tuple[cp_model.IntVar, int]] = []  # split weekends, in their own units
    shaping_const = split_now = 0
    hint_values: dict[cp_model.IntVar, int] = {}
    inc_value = 0
    inst = data.inst

    # work[e][d]: either a BoolVar (free, could work), or a Python bool constant.
    for e in emps:
        row = roster[e]
        st = inst.staff[e]
        days_off = inst.days_off[e]
        allowed = data.allowed[e]
        work: dict[int, Lit] = {}
        xs: dict[int, dict[int, cp_model.IntVar]] = {}
        for d in free_days:
            cand: list[int] = [] if d in days_off else list(allowed)
            # Fixed neighbours prune the banned successions right away.
            if cand and d - 1 >= 0 and not is_free(d - 1) and row[d - 1] != OFF:
                bad = data.banned_set[row[d - 1]]
                cand = [s for s in cand if s not in bad]
            if cand and d + 1 < H and not is_free(d + 1) and row[d + 1] != OFF:
                nxt = row[d + 1]
                cand = [s for s in cand if nxt not in data.banned_set[s]]
            day_x: dict[int, cp_model.IntVar] = {}
            for s in cand:
                v = m.new_bool_var("")
                day_x[s] = v
                x[(e, d, s)] = v
                hint_values[v] = 1 if row[d] == s else 0
            xs[d] = day_x
            if not day_x:
                work[d] = False
            elif len(day_x) == 1:
                work[d] = next(iter(day_x.values()))
            else:
                w = m.new_bool_var(f"w{e}_{d}")
                m.add(cp_model.LinearExpr.sum(list(day_x.values())) == w)
                work[d] = w
                hint_values[w] = 1 if row[d] != OFF else 0

        def wk(d: int, row: Sequence[int] = row, work: dict[int, Lit] = work) -> Lit:
            return work[d] if d in work else row[d] != OFF

        # Banned successions between two free days.
        banned = {s: [t for t in data.banned[s] if t in allowed] for s in allowed}
        for d in free_days:
            if (tomorrow := xs.get(d + 1)) is None:
                continue
            for s, v in xs[d].items():
                if after := [tomorrow[t] for t in banned[s] if t in tomorrow]:
                    m.add_at_most_one([v, *after])

        # Max shifts per type and total minutes: subtract the fixed part of the row.
        fixed_count = [0] * S
        fixed_minutes = 0
        for d in fixed_days:
            if row[d] != OFF:
                fixed_count[row[d]] += 1
                fixed_minutes += data.minutes[row[d]]
        for s in allowed:
            vars_s = [xs[d][s] for d in free_days if s in xs[d]]
            cap = data.max_shifts[e][s] - fixed_count[s]
            if len(vars_s) > cap:
                m.add(cp_model.LinearExpr.sum(vars_s) <= cap)
        minute_vars = [v for d in free_days for v in xs[d].values()]
        minutes = [data.minutes[s] for d in free_days for s in xs[d]]
        m.add_linear_constraint(
            cp_model.LinearExpr.weighted_sum(minute_vars, minutes),
            st.min_total_minutes - fixed_minutes,
            st.max_total_minutes - fixed_minutes,
        )

        if sequence in ("flow", "both"):
            _sequence_network(m, st, row, lo, hi, H, work, hint_values)
        if sequence in ("clauses", "both"):
            if not _sequence_clauses(m, st, wk, lo, hi, H):
                sub.feasible_hint = False
        _weekend_limit(m, data, st, wk, row, hint_values)
        if split_weekends:
            const, now = _split_weekends(m, data, days_off, wk, row, shaping, hint_values)
            shaping_const += const
            split_now += now

        # Requests on free cells.
        for d in free_days:
            for s, wgt in data.on_req.get((e, d), ()):
                xv = xs[d].get(s)
                inc_value += wgt if row[d] != s else 0
                obj_const += wgt
                if xv is not None:
                    obj_terms.append((xv, -wgt))
            for s, wgt in data.off_req.get((e, d), ()):
                xv = xs[d].get(s)
                inc_value += wgt if row[d] == s else 0
                if xv is not None:
                    obj_terms.append((xv, wgt))

    # Cover for every (day, shift) where some free variable exists.
    for d in free_days:
        fixed = [0] * S
        if count_others:
            for e2 in range(data.E):
                if e2 not in free_set:
                    s2 = roster[e2][d]
                    if s2 != OFF:
                        fixed[s2] += 1
        old = fixed[:]
        for e in emps:
            if roster[e][d] != OFF:
                old[roster[e][d]] += 1
        for s in range(S):
            cov = data.cover[d][s]
            if cov is None:
                continue
            vs = [x[(e, d, s)] for e in emps if (e, d, s) in x]
            if not vs:
                continue
            req, wu, wo = cov
            inc_value += wu * max(0, req - old[s]) + wo * max(0, old[s] - req)
            need = req - fixed[s]
            # count = fixed + sum(vs); under - over = req - count.
            if need <= 0:
                # Already covered by fixed staff: every free worker is over-cover.
                obj_const += wo * (-need)
                for v in vs:
                    obj_terms.append((v, wo))
                continue
            u = m.new_int_var(0, need, f"u{d}_{s}")
            o = m.new_int_var(0, max(0, len(vs) - need), f"o{d}_{s}")
            m.add(cp_model.LinearExpr.sum(vs) + u - o == need)
            cnt_old = old[s] - fixed[s]
            hint_values[u] = max(0, need - cnt_old)
            hint_values[o] = max(0, cnt_old - need)
            if wu:
                obj_terms.append((u, wu))
            if wo:
                obj_terms.append((o, wo))

    # Above what the tie-break can gain, so no truly worse solution can win (1, with
    # no tie-break terms, without split_weekends).
    scale = split_now + 1
    m.minimize(
        scale * (cp_model.LinearExpr.weighted_sum(*_split(obj_terms)) + obj_const)
        + cp_model.LinearExpr.weighted_sum(*_split(shaping))
        + shaping_const
    )
    sub.incumbent_value = inc_value
    if hint:
        # In bulk: add_hint one variable at a time took a tenth of a build on 24.
        h = m.model_proto.solution_hint
        h.vars.extend([v.index for v in hint_values])
        h.values.extend(hint_values.values())
    return sub


def _split(
    terms: list[tuple[cp_model.IntVar, int]],
) -> tuple[list[cp_model.IntVar], list[int]]:
    """``terms``' variables and coefficients, for ``LinearExpr.weighted_sum``."""
    return [v for v, _ in terms], [c for _, c in terms]
