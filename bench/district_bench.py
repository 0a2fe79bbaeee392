"""District benchmark: the solver against the day-by-day greedy baseline.

    python bench/district_bench.py [--seed S] [--days D] [--time-limit S] [--workers W]

Prints a markdown table: objective, proven bound and the gap to it, uncovered people and
skills, hard violations (re-checked by the validator), seconds and peak memory (RSS).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.greedy import greedy  # noqa: E402
from solver.problem import parse_problem  # noqa: E402
from solver.rules import instantiate  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.solve import solution_document, solve  # noqa: E402
from solver.validate import check, parse_assignments  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def row(name: str, problem, sol: dict, seconds: float) -> str:  # type: ignore[no-untyped-def]
    report = check(problem, parse_assignments(problem, sol))
    people = sum(u["missing"] for u in sol["unmet"] if u["skill"] is None)
    skills = sum(u["missing"] for u in sol["unmet"] if u["skill"] is not None)
    bound = sol["bound"]
    gap = 100.0 * (report.objective - bound) / report.objective if report.objective else 0.0
    return (f"| {name} | {report.objective} | {bound} | {gap:.1f}% | {people} | {skills} | "
            f"{len(report.hard)} | {seconds:.1f} | {peak_mb():.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--districts", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    problem = parse_problem(generate(districts=args.districts, seed=args.seed, days=args.days))
    print(f"district seed {args.seed}: {len(problem.sites)} sites, {len(problem.volunteers)} "
          f"volunteers, {len(problem.slots)} slots, {sum(s.min for s in problem.slots)} "
          f"person-shifts demanded, {args.days} days")
    print()
    print("| method | objective | bound | gap to bound | uncovered people | uncovered skills "
          "| hard violations | seconds | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    t0 = time.monotonic()
    rules = instantiate(problem)
    base = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
    print(row("greedy (scarcest skill first)", problem, base, time.monotonic() - t0), flush=True)
    t0 = time.monotonic()
    sol = solve(problem, time_limit=args.time_limit, workers=args.workers, seed=args.seed)
    print(row(f"solver ({args.time_limit:.0f} s, {args.workers} workers)", problem, sol,
              time.monotonic() - t0))
    print()
    print("penalties:", ", ".join(f"{p['rule']}={p['cost']}" for p in sol["penalties"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
