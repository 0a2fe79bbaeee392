"""Bounds of the parts that hold a closed-loop site (hotels), against what rosters reach.

    python bench/loop_bound.py [--districts 1] [--seed 0] [--problem FILE] [--mixed-only]
                               [--min-pairs N] [--lns S] [--mip S]

For every part (`decompose`) with a closed-loop site: its eligible pairs, the *pool*
(people eligible both at a closed site and elsewhere: the ones the closed loop binds),
the flow bounds (`part_bound` without the LP: the bound before `joint_lp_bound`) and the
LP bound, each with its seconds, and the greedy roster's objective by rule.  With
`--lns S`, the objective after S seconds of LNS on that part alone (one CP-SAT worker).
With `--mip S`, the least shortage (people + skills) under *every* hard rule (rest, runs,
the closed loop with a side per person, caps), by SCIP within S seconds, with its proven
bound: when it equals the LP's shortage, the rest of the gap is the roster's.  The
machine load is printed: CPU-bound figures are noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from city_bench import load  # noqa: E402

from solver.bound import daily_and_weekly_caps, joint_lp_bound  # noqa: E402
from solver.greedy import eligible_pairs, greedy  # noqa: E402
from solver.problem import Problem, load_problem, parse_problem  # noqa: E402
from solver.rules import Rule, instantiate  # noqa: E402
from solver.rules.catalogue import ClosedLoop, MaxConsecutiveDays, MinRestHours  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.search import PartSearch  # noqa: E402
from solver.solve import Part, _attribute, decompose, part_bound  # noqa: E402
from solver.validate import check  # noqa: E402


def least_shortage(problem: Problem, rules: list[Rule], part: Part, closed: frozenset[int],
                   seconds: float) -> str:
    """Fewest missing people and skills under every hard rule the generator uses (SCIP).

    Hard rules only (soft costs are tens against 1000 a person); `min_shifts` left out.
    Returns "best/proven bound".
    """
    from ortools.linear_solver import pywraplp

    mip = pywraplp.Solver.CreateSolver("SCIP")
    one_a_day, weekly = daily_and_weekly_caps(problem, rules)
    rest = max((r.p["hours"] for r in rules if isinstance(r, MinRestHours) and r.hard),
               default=0) * 60
    run = min((r.p["days"] for r in rules if isinstance(r, MaxConsecutiveDays) and r.hard),
              default=None)
    x = {k: mip.BoolVar("") for k in part.pairs}
    slots = problem.slots
    cell: dict[tuple[int, int, int], list] = defaultdict(list)  # type: ignore[type-arg]
    groups: dict[tuple[object, ...], list] = defaultdict(list)  # type: ignore[type-arg]
    by_slot: dict[int, list[int]] = defaultdict(list)
    for (v, s), var in x.items():
        sl = slots[s]
        cell[(v, sl.day, sl.shift)].append(var)
        groups[("day", v, sl.day)].append(var)
        groups[("week", v, problem.week(sl.day))].append(var)
        groups[("all", v)].append(var)
        by_slot[s].append(v)
    for key, vs in groups.items():
        v = int(key[1])  # type: ignore[call-overload]
        cap = {"day": 1 if v in one_a_day else len(problem.shifts),
               "week": weekly.get(v, len(vs)),
               "all": problem.volunteers[v].max_shifts or len(vs)}[str(key[0])]
        mip.Add(sum(vs) <= cap)
    for (v, d, a), xs in cell.items():
        mip.Add(sum(xs) <= 1)
        for (w, d2, b), ys in cell.items():
            if w == v and d <= d2 <= d + 1 and (d2, b) > (d, a) and (
                    problem.begins(d2, b) - problem.ends(d, a) < rest):
                mip.Add(sum(xs) + sum(ys) <= 1)
    people = {v for v, _ in part.pairs}
    if run is not None:
        for v in people:
            for d in range(problem.days - run):
                mip.Add(sum(var for k in range(d, d + run + 1)
                            for var in groups.get(("day", v, k), [])) <= run)
    for v in people:  # the closed loop: a side per person who could be on both
        mine = [(s, var) for (w, s), var in x.items() if w == v]
        if {slots[s].site in closed for s, _ in mine} == {True, False}:
            side = mip.BoolVar("")
            for s, var in mine:
                mip.Add(var <= (side if slots[s].site in closed else 1 - side))
    short = []
    for s in part.slots:
        sl = slots[s]
        who = by_slot.get(s, [])
        mip.Add(sum(x[(v, s)] for v in who) <= sl.max)
        for skill, need in (("", sl.min), *sl.requires):
            if need > 0:
                m = mip.NumVar(0, need, "")
                mip.Add(m + sum(x[(v, s)] for v in who if not skill
                                or skill in problem.volunteers[v].skills) >= need)
                short.append(m)
    mip.Minimize(sum(short))
    mip.SetTimeLimit(int(seconds * 1000))
    mip.Solve()
    return f"{mip.Objective().Value():.0f}/{mip.Objective().BestBound():.0f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--districts", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--problem", help="a roster-problem/1 file instead of a generated one")
    ap.add_argument("--mixed-only", action="store_true", help="only parts with a pool")
    ap.add_argument("--min-pairs", type=int, default=0)
    ap.add_argument("--lns", type=float, default=0.0, help="seconds of LNS per part")
    ap.add_argument("--mip", type=float, default=0.0, help="seconds of SCIP per part")
    args = ap.parse_args()

    problem = (load_problem(args.problem) if args.problem else
               parse_problem(generate(districts=args.districts, seed=args.seed, days=args.days)))
    rules = instantiate(problem)
    closed = frozenset().union(*(r.closed for r in rules if isinstance(r, ClosedLoop)))
    pairs = eligible_pairs(problem, rules)
    parts = decompose(problem, pairs)
    report = check(problem, greedy(problem, rules, pairs, seed=args.seed), rules)
    _attribute(problem, parts, report)
    owner = {v: i for i, p in enumerate(parts) for v in p.volunteers}
    slot_owner = {s: i for i, p in enumerate(parts) for s in p.slots}
    per_part: dict[int, Counter[str]] = {i: Counter() for i in range(len(parts))}
    for bad in report.violations:
        if bad.volunteer is not None:
            per_part[owner[problem.volunteer_by_id[bad.volunteer].index]][
                bad.rule.split("#")[0]] += bad.cost
        elif bad.slot is not None:
            per_part[slot_owner[bad.slot]][bad.rule.split("#")[0]] += bad.cost
    what = args.problem or f"{args.districts} district(s), seed {args.seed}"
    print(f"# {what}: {len(parts)} parts  [{load()}]")
    print("| part | pairs | people | sites (closed) | pool | flows | s | LP | s | greedy | "
          "greedy by rule | LNS | least shortage (MIP) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    slots = problem.slots
    for i, part in enumerate(parts):
        sites = {slots[s].site for s in part.slots}
        if not sites & closed or len(part.pairs) < args.min_pairs:
            continue
        where: dict[int, set[bool]] = {}
        for v, s in part.pairs:
            where.setdefault(v, set()).add(slots[s].site in closed)
        pool = sum(1 for w in where.values() if len(w) == 2)
        if args.mixed_only and not pool:
            continue
        t0 = time.monotonic()
        flows = part_bound(problem, rules, part, part.objective, lp=False)  # before the LP
        t1 = time.monotonic()
        lp = joint_lp_bound(problem, rules, part.slots, part.pairs)
        t2 = time.monotonic()
        lns = mip = ""
        if args.lns > 0:
            search = PartSearch(problem, rules, part.pairs, args.seed + i)
            search.start(part.assignments, part.objective)
            end = time.monotonic() + args.lns
            while time.monotonic() < end - 0.2 and search.objective > max(flows, lp):
                search.step(min(1.0, end - time.monotonic()))
            lns = str(search.objective)
        if args.mip > 0:
            mip = least_shortage(problem, rules, part, closed, args.mip)
        by_rule = " ".join(f"{k}={c}" for k, c in per_part[i].most_common())
        print(f"| {i} | {len(part.pairs)} | {len(part.volunteers)} | {len(sites)} "
              f"({len(sites & closed)}) | {pool} | {flows} | {t1 - t0:.2f} | {lp} | "
              f"{t2 - t1:.2f} | {part.objective} | {by_rule} | {lns} | {mip} |", flush=True)
    print(f"[{load()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
