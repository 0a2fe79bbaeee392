"""LNS benchmark that does not depend on the machine's load.

    python bench/lns_bench.py [--seed S] [--rounds R] [--steps K] [--dtime T]

Wall-clock figures on a shared machine vary by a third from run to run, more than most
changes to the search.  Here every large part of a generated district gets R rounds of
K LNS steps, each CP-SAT call limited by deterministic time (T) rather than seconds, so
the same code gives the same objectives on a busy machine and a quiet one.  Prints the
whole problem's objective after each round (small parts stay at their greedy cost), the
proven bound, steps, improving steps and the seconds it took (those do vary with load).

CP-SAT counts little of its presolve in deterministic time, so a change that only makes
presolve faster shows in wall-clock runs (`district_bench.py`), not here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.greedy import eligible_pairs, greedy  # noqa: E402
from solver.problem import parse_problem  # noqa: E402
from solver.rules import instantiate  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.search import PartSearch  # noqa: E402
from solver.solve import WHOLE_MODEL_PAIRS, _attribute, decompose, part_bound  # noqa: E402
from solver.validate import check  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="LNS steps per part and round")
    ap.add_argument("--dtime", type=float, default=0.2,
                    help="CP-SAT deterministic time per step")
    args = ap.parse_args()

    problem = parse_problem(generate(districts=1, seed=args.seed, days=args.days))
    rules = instantiate(problem)
    pairs = eligible_pairs(problem, rules)
    parts = decompose(problem, pairs)
    _attribute(problem, parts, check(problem, greedy(problem, rules, pairs, seed=args.seed),
                                     rules))
    searches: list[PartSearch] = []
    fixed = bound = 0
    for i, part in enumerate(parts):
        bound += part_bound(problem, rules, part, part.objective)
        if len(part.pairs) <= WHOLE_MODEL_PAIRS:
            fixed += part.objective
            continue
        search = PartSearch(problem, rules, part.pairs, args.seed + i)
        search.start(part.assignments, part.objective)
        search.deterministic = args.dtime
        searches.append(search)
    print(f"district seed {args.seed}: {len(searches)} LNS parts, greedy "
          f"{fixed + sum(s.objective for s in searches)}, bound {bound}, load "
          f"{os.getloadavg()[0]:.1f}")
    t0 = time.monotonic()
    for r in range(args.rounds):
        for search in searches:
            for _ in range(args.steps):
                search.step(60.0)
        total = fixed + sum(s.objective for s in searches)
        print(f"round {r + 1}: objective {total} ({100 * (total - bound) / total:.1f}% above "
              f"bound), steps {sum(s.steps for s in searches)}, improving "
              f"{sum(s.improvements for s in searches)}, {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
