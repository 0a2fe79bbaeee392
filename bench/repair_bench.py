"""Repair benchmark: a volunteer falls ill; minimal-change repair against re-solving.

    python bench/repair_bench.py [--seed S ...] [--districts 1] [--solve-time 30]
                                 [--time-limit 5] [--workers 2] [--repair-workers 1]
                                 [--shifts 8] [--today 3] [--save DIR]

For each seed: generate a district (one generated district has ~900 volunteers, the
issue's size; `--districts 4` gives a ~3600-volunteer city), solve it for `--solve-time` seconds to get the published
roster, pick (seeded) a volunteer with `--shifts` shifts from day `--today` on (or the
nearest count), and mark them absent from that day.  Then

- repair it (`solver.repair`, `--time-limit`), and
- re-solve the whole problem with the absence from scratch (`--solve-time`),

and print, for each: seconds, vacated shifts, changed assignments of other people (total
and per vacated shift), uncovered people/skills before and after, and hard violations
re-checked by the validator against the problem with the absence written in.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.problem import Problem, parse_problem  # noqa: E402
from solver.repair import Absence, repair  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.solve import solve  # noqa: E402
from solver.validate import check, parse_assignments  # noqa: E402

Row = tuple[str, str, str, str]


def rows(solution: dict[str, Any]) -> set[Row]:
    return {(a["volunteer"], a["date"], a["shift"], a["post"]) for a in solution["assignments"]}


def missing(solution: dict[str, Any]) -> int:
    return sum(u["missing"] for u in solution["unmet"])


def pick_absent(problem: Problem, published: dict[str, Any], today: str, shifts: int,
                rng: random.Random) -> tuple[str, int]:
    """A volunteer with `shifts` shifts from `today` on (or the nearest count), at random."""
    count: dict[str, int] = {}
    for v, d, _, _ in rows(published):
        if d >= today:
            count[v] = count.get(v, 0) + 1
    best = min(abs(n - shifts) for n in count.values())
    pool = sorted(v for v, n in count.items() if abs(n - shifts) == best)
    vid = rng.choice(pool)
    return vid, count[vid]


def with_absence(doc: dict[str, Any], vid: str, dates: list[str]) -> dict[str, Any]:
    """The problem document with the volunteer unavailable on `dates` (for re-solving and
    for checking every roster against the same rules)."""
    out = copy.deepcopy(doc)
    for v in out["volunteers"]:
        if v["id"] == vid:
            v["unavailable"] = list(v.get("unavailable") or []) + [{"date": d} for d in dates]
    return out


def others_changed(before: set[Row], after: set[Row], vid: str) -> int:
    """Assignments of people other than `vid` added or removed (a move counts twice)."""
    return sum(1 for r in before ^ after if r[0] != vid)


def save(folder: Path, seed: int, **docs: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / f"seed-{seed}-{name}.json").write_text(json.dumps(doc, ensure_ascii=False),
                                                         encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--districts", type=int, default=1)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--solve-time", type=float, default=30.0)
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repair-workers", type=int, default=1)
    ap.add_argument("--shifts", type=int, default=8)
    ap.add_argument("--today", type=int, default=3)
    ap.add_argument("--save", metavar="DIR", help="write problem, published and repaired "
                    "rosters there (seed-S-*.json), to look at the changes")
    args = ap.parse_args()

    print("| seed | volunteers | absent (future shifts) | method | seconds | vacated | "
          "other changes (moves as 1) | per vacated | other assignments +/- | "
          "uncovered before → after | hard violations | rings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes: list[str] = []
    for seed in args.seed:
        doc = generate(districts=args.districts, seed=seed, days=args.days)
        problem = parse_problem(doc)
        published = solve(problem, time_limit=args.solve_time, workers=args.workers, seed=seed)
        today = problem.iso(args.today)
        vid, n = pick_absent(problem, published, today, args.shifts, random.Random(seed))
        absent_days = [problem.iso(d) for d in range(args.today, problem.days)]
        judged = parse_problem(with_absence(doc, vid, absent_days))
        before = rows(published)
        head = f"| {seed} | {len(problem.volunteers)} | {vid} ({n}) "

        t0 = time.monotonic()
        fixed = repair(problem, published, [Absence(vid, today)], time_limit=args.time_limit,
                       workers=args.repair_workers, seed=seed)
        seconds = time.monotonic() - t0
        info = fixed["repair"]
        if args.save:
            save(Path(args.save), seed, doc=doc, published=published, repaired=fixed)
        hard = len(check(judged, parse_assignments(judged, fixed)).hard)
        per = info["changed_others"] / info["vacated"] if info["vacated"] else 0.0
        print(f"{head}| repair | {seconds:.1f} | {info['vacated']} | {info['changed_others']} "
              f"| {per:.2f} | {others_changed(before, rows(fixed), vid)} | "
              f"{missing(published)} → {missing(fixed)} | {hard} | {info['depth']} |",
              flush=True)
        notes += [f"seed {seed}: {u['reason']}" for u in info["uncovered"]]

        t0 = time.monotonic()
        fresh = solve(judged, time_limit=args.solve_time, workers=args.workers, seed=seed)
        seconds = time.monotonic() - t0
        hard = len(check(judged, parse_assignments(judged, fresh)).hard)
        changed = others_changed(before, rows(fresh), vid)
        print(f"{head}| re-solve from scratch | {seconds:.1f} | {info['vacated']} | – | "
              f"{changed / info['vacated'] if info['vacated'] else 0:.2f} (+/-) | {changed} | "
              f"{missing(published)} → {missing(fresh)} | {hard} | – |", flush=True)
    if notes:
        print("\nvacated shifts the repair left uncovered:")
        print("\n".join(f"- {n}" for n in notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
