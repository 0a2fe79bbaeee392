"""Cheap lower bounds on a part's objective.

CP-SAT's own bound on a whole district stays far below the optimum (its LP relaxation
lets people be half at two posts).  The two terms that dominate a district's cost have
combinatorial bounds instead, each computed in well under a second:

- uncovered demand: a max-flow per site and requirement (`flow_coverage_bound`);
- balance: the work that must be done, spread as evenly as caps allow (`balance_bound`);
- both together, with every requirement of a slot at once, by LP (`joint_lp_bound`,
  about a second on a street): the flows count one skilled person at two posts.

An earlier version solved a relaxation per site with CP-SAT (valid too: each cost term is
superadditive over sites); on a district its big sites did not close in seconds, and the
flow bound was as tight on the scarce ones.
"""

from __future__ import annotations

import math
from collections import defaultdict

from solver.problem import Problem
from solver.rules import Rule
from solver.rules.catalogue import OneShiftPerDay


def daily_and_weekly_caps(problem: Problem, rules: list[Rule]
                          ) -> tuple[set[int], dict[int, int]]:
    """Who may work only one shift a day (hard), and each one's hard weekly cap."""
    from solver.rules.catalogue import MaxShiftsPerWeek

    vols = problem.volunteers
    one_a_day = {v.index for v in vols
                 if any(isinstance(r, OneShiftPerDay) and r.hard and r.applies(v) for r in rules)}
    weekly: dict[int, int] = {}
    for r in rules:
        if isinstance(r, MaxShiftsPerWeek) and r.hard:
            for vol in vols:
                if r.applies(vol):
                    weekly[vol.index] = min(weekly.get(vol.index, 10**6), r.limit)
    return one_a_day, weekly


def flow_coverage_bound(problem: Problem, rules: list[Rule], slots: list[int],
                        pairs: dict[tuple[int, int], None]) -> tuple[int, int]:
    """Uncovered demand no roster can avoid: (head-count units, skill units), by max-flow.

    For each requirement (head count, or one skill), people flow to the (site, date,
    shift) cells that need them: at most one cell a day, within their weekly and total
    caps, only where they are eligible.  Rest rules and closed loops are ignored, so the
    flow is at least what any roster covers, and demand minus flow a lower bound on what
    stays uncovered.  Each requirement's shortage is its own cost term, so the bounds add
    up.  One flow per requirement over all sites at once: people shared by a checkpoint
    and a testing point are counted once, not at both.
    """
    from ortools.graph.python import max_flow

    vols = problem.volunteers
    one_a_day, weekly = daily_and_weekly_caps(problem, rules)
    who: dict[int, list[int]] = defaultdict(list)
    for v, s in pairs:
        who[s].append(v)
    Cell = tuple[int, int, int]  # site, day, shift
    needs: dict[str | None, dict[Cell, int]] = defaultdict(lambda: defaultdict(int))
    for s in slots:
        slot = problem.slots[s]
        needs[None][(slot.site, slot.day, slot.shift)] += slot.min
        for tag, n in slot.requires:
            needs[tag][(slot.site, slot.day, slot.shift)] += n
    heads = skills = 0
    for skill, cells in needs.items():
        demand = sum(cells.values())
        if not demand:
            continue
        graph = max_flow.SimpleMaxFlow()
        ids: dict[tuple[object, ...], int] = {}

        def node(key: tuple[object, ...], ids: dict[tuple[object, ...], int] = ids) -> int:
            return ids.setdefault(key, len(ids) + 2)  # 0 source, 1 sink

        for cell, n in cells.items():
            if n > 0:
                graph.add_arc_with_capacity(node(("cell", cell)), 1, n)
        edges: set[tuple[int, int, Cell]] = set()
        for s in slots:
            slot = problem.slots[s]
            cell = (slot.site, slot.day, slot.shift)
            if cells.get(cell, 0) <= 0:
                continue
            for v in who[s]:
                if skill is None or skill in vols[v].skills:
                    edges.add((v, slot.day, cell))
        days = {(v, day) for v, day, _ in edges}
        weeks = {(v, problem.week(day)) for v, day in days}
        for v, day, cell in edges:
            graph.add_arc_with_capacity(node(("vd", v, day)), node(("cell", cell)), 1)
        for v, day in days:
            cap = 1 if v in one_a_day else len(problem.shifts)
            graph.add_arc_with_capacity(node(("vw", v, problem.week(day))),
                                        node(("vd", v, day)), cap)
        for v, week in weeks:
            graph.add_arc_with_capacity(node(("v", v)), node(("vw", v, week)),
                                        weekly.get(v, 7 * len(problem.shifts)))
        for v in {v for v, _ in weeks}:
            most = vols[v].max_shifts
            graph.add_arc_with_capacity(0, node(("v", v)), 10**6 if most is None else most)
        covered = graph.optimal_flow() if graph.solve(0, 1) == graph.OPTIMAL else demand
        if skill is None:
            heads += demand - covered
        else:
            skills += demand - covered
    return heads, skills


def balance_bound(problem: Problem, rules: list[Rule], volunteers: list[int],
                  pairs: dict[tuple[int, int], None], work: int) -> int:
    """Least balance cost of `work` shifts spread over the part's volunteers.

    Σ c² under Σ c = work and each person's cap is smallest when the work is spread as
    evenly as the caps allow (water-filling); rosters may only do worse.
    """
    from solver.rules.catalogue import Balance

    weight = sum(r.weight or 0 for r in rules if isinstance(r, Balance) and r.applies_to is None)
    if weight <= 0 or work <= 0:
        return 0
    one_a_day, weekly = daily_and_weekly_caps(problem, rules)
    reach: dict[int, dict[int, set[tuple[int, int]]]] = defaultdict(lambda: defaultdict(set))
    for v, s in pairs:
        slot = problem.slots[s]
        reach[v][problem.week(slot.day)].add(
            (slot.day, 0 if v in one_a_day else slot.shift))
    caps = []
    for v in volunteers:
        # Each week: what they could reach (one shift a day), within the weekly cap.
        cap = sum(min(len(cells), weekly.get(v, len(cells))) for cells in reach[v].values())
        most = problem.volunteers[v].max_shifts
        if most is not None:
            cap = min(cap, most)
        if cap > 0:
            caps.append(cap)
    if sum(caps) <= work:
        return weight * sum(c * c for c in caps)
    # Raise a common level until the work fits; people capped below it stay at their cap.
    caps.sort()
    left, n, cost = work, len(caps), 0
    for i, cap in enumerate(caps):
        level = left / (n - i)
        if cap <= level:
            cost += cap * cap
            left -= cap
            continue
        base, extra = divmod(left, n - i)
        cost += (n - i - extra) * base * base + extra * (base + 1) ** 2
        break
    return weight * cost


def head_balance_bound(problem: Problem, rules: list[Rule], volunteers: list[int],
                       slots: list[int], pairs: dict[tuple[int, int], None]) -> int:
    """Least cost of head-count shortage and balance together, by min-cost flow.

    People flow to the (site, date, shift) cells that need them, as in
    `flow_coverage_bound`, but across all sites at once, each person's k-th shift costing
    (2k − 1) × the balance weight (so a person's total costs k², the balance term) and
    each person missing below `min` costing the coverage weight.  A roster, cut down to at
    most `min` people per slot, is such a flow costing no more than the roster's own
    shortage and balance; the flow ignores rest, runs, sites' closed loops and skills, so
    its optimum bounds those two terms from below.
    """
    from ortools.graph.python import min_cost_flow

    from solver.rules.catalogue import Balance

    weight = sum(r.weight or 0 for r in rules if isinstance(r, Balance) and r.applies_to is None)
    cw = problem.coverage_weight
    one_a_day, weekly = daily_and_weekly_caps(problem, rules)
    cells: dict[tuple[int, int, int], int] = defaultdict(int)
    for s in slots:
        slot = problem.slots[s]
        cells[(slot.site, slot.day, slot.shift)] += slot.min
    need = sum(cells.values())
    if need == 0:
        return 0
    graph = min_cost_flow.SimpleMinCostFlow()
    ids: dict[tuple[object, ...], int] = {}

    def node(key: tuple[object, ...]) -> int:
        return ids.setdefault(key, len(ids) + 2)  # 0 source, 1 sink

    edges = {(v, problem.slots[s].day, (problem.slots[s].site, problem.slots[s].day,
                                         problem.slots[s].shift)) for v, s in pairs
             if problem.slots[s].min > 0}
    days = {(v, d) for v, d, _ in edges}
    weeks = {(v, problem.week(d)) for v, d in days}
    people = {v for v, _ in weeks}
    for v, d, cell in edges:
        graph.add_arc_with_capacity_and_unit_cost(node(("vd", v, d)), node(("c", cell)), 1, 0)
    for v, d in days:
        cap = 1 if v in one_a_day else len(problem.shifts)
        graph.add_arc_with_capacity_and_unit_cost(node(("vw", v, problem.week(d))),
                                                  node(("vd", v, d)), cap, 0)
    for v, w in weeks:
        graph.add_arc_with_capacity_and_unit_cost(node(("v", v)), node(("vw", v, w)),
                                                  weekly.get(v, 7 * len(problem.shifts)), 0)
    for v in people:
        most = problem.volunteers[v].max_shifts
        cap = min(most if most is not None else need, need)
        # Unit arcs of rising cost make the person's total cost convex: k shifts cost k².
        for k in range(1, cap + 1):
            graph.add_arc_with_capacity_and_unit_cost(0, node(("v", v)), 1, weight * (2 * k - 1))
    for cell, n in cells.items():
        graph.add_arc_with_capacity_and_unit_cost(node(("c", cell)), 1, n, 0)
    graph.add_arc_with_capacity_and_unit_cost(0, 1, need, cw)  # the people missing
    graph.set_node_supply(0, need)
    graph.set_node_supply(1, -need)
    if graph.solve() != graph.OPTIMAL:
        return 0
    return int(graph.optimal_cost())


def joint_lp_bound(problem: Problem, rules: list[Rule], slots: list[int],
                   pairs: dict[tuple[int, int], None], seconds: float = 5.0) -> int:
    """Least cost of shortage (head counts and skills together) and balance, by LP.

    The flows above bound each requirement on its own, so one Party member or medic may
    count for a head-count flow at one post and for a skill flow at another; on a street
    whose posts need Party leads and medics every shift, those flows find no unavoidable
    shortage where every roster misses a dozen people.  Here one linear programme holds
    them together: each person at most once a day (or once a shift), within weekly and
    personal caps, `max` per slot; each slot's missing head count and missing skills
    cost the coverage weight; the k-th shift of a person (2k − 1) × the balance weight.
    Rest, runs, closed loops, preferences and `min_shifts` are left out, and the LP
    relaxes integrality, so its optimum is below any roster's objective.

    The bound is not the LP solver's floating-point objective but a Lagrangian bound
    recomputed from its duals (valid for any multipliers of the right sign: each
    variable then sits at the better end of its box), rounded up with a margin; so
    the duals of an LP stopped at `seconds` still give a valid, if weaker, bound.
    """
    from ortools.linear_solver import pywraplp

    from solver.rules.catalogue import Balance

    weight = sum(r.weight or 0 for r in rules if isinstance(r, Balance) and r.applies_to is None)
    cw = problem.coverage_weight
    if cw == 0 and weight == 0:
        return 0
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None:
        return 0
    vols = problem.volunteers
    one_a_day, weekly = daily_and_weekly_caps(problem, rules)
    # Columns: (lower, upper, cost); rows: (lower, upper, [(column, coefficient)]).
    cols: list[tuple[float, float, float]] = []
    rows: list[tuple[float, float, list[tuple[int, float]]]] = []
    x: dict[tuple[int, int], int] = {}
    # Each person's columns: by (day, shift or 0 for one a day), by week, in all.
    groups: dict[tuple[str, int, int, int], list[int]] = defaultdict(list)
    cells: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # v -> week -> n
    for v, s in pairs:
        slot = problem.slots[s]
        x[(v, s)] = j = len(cols)
        cols.append((0.0, 1.0, 0.0))
        cell = ("cell", v, slot.day, 0 if v in one_a_day else slot.shift)
        if cell not in groups:
            cells[v][problem.week(slot.day)] += 1
        groups[cell].append(j)
        groups[("week", v, problem.week(slot.day), 0)].append(j)
        groups[("person", v, 0, 0)].append(j)
    inf = math.inf
    for (kind, v, *_), js in groups.items():
        if kind == "cell":
            cap = 1.0
        elif kind == "week":
            cap = float(weekly.get(v, len(js)))
        else:
            most = vols[v].max_shifts
            cap = float(len(js) if most is None else most)
            if weight > 0:
                # count = Σ_k y_k, the k-th step costing (2k − 1): the LP fills them in
                # order.  No more steps than shifts the person could work at all.
                reach = sum(min(weekly.get(v, n), n) for n in cells[v].values())
                steps = list(range(len(cols), len(cols) + min(reach, int(cap))))
                cols.extend((0.0, 1.0, float(weight * (2 * k + 1))) for k in range(len(steps)))
                rows.append((0.0, 0.0, [(j, 1.0) for j in js] + [(j, -1.0) for j in steps]))
        if cap < len(js):
            rows.append((-inf, cap, [(j, 1.0) for j in js]))
    by_slot: dict[int, list[int]] = defaultdict(list)
    for v, s in pairs:
        by_slot[s].append(v)
    for s in slots:
        slot = problem.slots[s]
        who = by_slot.get(s, [])
        if len(who) > slot.max:
            rows.append((-inf, float(slot.max), [(x[(v, s)], 1.0) for v in who]))
        for skill, need in (("", slot.min), *slot.requires):
            if need <= 0:
                continue
            # missing + Σ people (with the skill) >= need
            short = len(cols)
            cols.append((0.0, float(need), float(cw)))
            rows.append((float(need), inf, [(short, 1.0)] + [
                (x[(v, s)], 1.0) for v in who if not skill or skill in vols[v].skills]))
    var = [lp.NumVar(lo, hi, "") for lo, hi, _ in cols]
    objective = lp.Objective()
    for j, (_, _, c) in enumerate(cols):
        if c:
            objective.SetCoefficient(var[j], c)
    objective.SetMinimization()
    cons = []
    for lo, hi, terms in rows:
        row = lp.RowConstraint(lo, hi, "")
        for j, a in terms:
            row.SetCoefficient(var[j], a)
        cons.append(row)
    lp.SetTimeLimit(int(seconds * 1000))
    if lp.Solve() not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return 0
    # Lagrangian bound: Σ_r y_r·(the row's bound on y_r's side) + Σ_j min over x_j's box of
    # its reduced cost d_j·x_j, valid whatever the (float) duals are, once signs are fixed.
    reduced = [c for _, _, c in cols]
    bound = 0.0
    for (lo, hi, terms), row in zip(rows, cons, strict=True):
        y = row.dual_value()
        if y == 0 or y > 0 and lo == -inf or y < 0 and hi == inf:
            continue  # nothing, or the wrong sign for a one-sided row: use 0
        bound += y * (lo if y > 0 else hi)
        for j, a in terms:
            reduced[j] -= y * a
    for (lo, hi, _), d in zip(cols, reduced, strict=True):
        bound += min(d * lo, d * hi)
    if not math.isfinite(bound):
        return 0
    return max(0, math.ceil(bound - 1e-6 * max(1.0, abs(bound))))
