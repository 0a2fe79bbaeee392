"""City benchmark: a generated city split into independent parts, solved in N processes.

    python bench/city_bench.py [--districts 44] [--days 14] [--seed S]
                               [--time-limit 540] [--jobs 2 1] [--database URL|sqlite]

Prints the time to generate and to build (parse) the problem, how it splits (parts,
sub-problems and their sizes), then for each `--jobs` value: a line per sub-problem as it
ends (its gap; "went on" when it went on with time the others left), wall time,
objective, proven bound and gap, the gap of each sub-problem (worst and median),
uncovered people and skills, hard violations (re-checked here by the validator), and
peak memory (RSS) of the worker processes and of this process.  With `--database`, the
city is then loaded into that (empty) database, the first roster stored as a draft and
published, each timed (`sqlite`: a new SQLite file in a temporary folder).  The machine
load (`uptime`) is printed next to each figure: on a shared machine CPU-bound figures are
noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.parts import GROUP_PAIRS, PartProgress, solve_parallel, split  # noqa: E402
from solver.problem import Problem, parse_problem  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.validate import check, parse_assignments  # noqa: E402


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gap(objective: int | None, bound: int | None) -> float:
    if not objective:
        return 0.0
    return 100.0 * (objective - (bound or 0)) / objective


def describe_split(problem: Problem, jobs: int) -> None:
    t0 = time.monotonic()
    subs = split(problem, min_groups=2 * jobs)
    sizes = [s.size for s in subs]
    print(f"split: {sum(s.parts for s in subs)} independent parts in {len(subs)} "
          f"sub-problems of about {GROUP_PAIRS} eligible pairs; sizes (pairs + slots) "
          f"largest {max(sizes)}, median {statistics.median(sizes):.0f}, smallest "
          f"{min(sizes)}; volunteers per sub-problem {min(s.volunteers for s in subs)}-"
          f"{max(s.volunteers for s in subs)}  [{time.monotonic() - t0:.1f} s, {load()}]",
          flush=True)


def database_figures(url: str, doc: dict[str, Any], solution: dict[str, Any]) -> None:
    """Time loading the city, storing its roster as a draft and publishing it."""
    from scheduler.db import make_engine, session_scope, upgrade
    from scheduler.problems import load_problem, store_solution
    from scheduler.rosters import publish

    if url == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='city-bench-')}/city.sqlite3"
    upgrade(url)
    engine = make_engine(url)
    print(f"\n## database {url.split('@')[-1]}", flush=True)
    t0 = time.monotonic()
    with session_scope(engine) as session:
        roster_id = load_problem(session, doc, actor="city-bench").id
    t1 = time.monotonic()
    print(f"load the city (sites, posts, volunteers, demand, rules) {t1 - t0:.1f} s  "
          f"[{load()}]", flush=True)
    with session_scope(engine) as session:
        number = store_solution(session, roster_id, solution, actor="city-bench").number
    t2 = time.monotonic()
    print(f"store the roster as a draft (re-checked) {t2 - t1:.1f} s  [{load()}]", flush=True)
    with session_scope(engine) as session:
        publish(session, roster_id, number, None, "city-bench")
    t3 = time.monotonic()
    print(f"publish it {t3 - t2:.1f} s  [{load()}]", flush=True)
    engine.dispose()


def run(problem: Problem, jobs: int, time_limit: float, seed: int) -> dict[str, Any]:
    seen: list[PartProgress] = []

    def progress(p: PartProgress) -> None:
        seen.append(p)
        again = " went on" if p.extended else ""
        if p.error:
            print(f"  [{p.seconds:6.1f}s] #{p.index}{again} FAILED: {p.error}", flush=True)
        else:
            print(f"  [{p.seconds:6.1f}s] #{p.index}{again} {gap(p.objective, p.bound):.1f}%",
                  flush=True)

    print(f"\n## --jobs {jobs}, time limit {time_limit:.0f} s  (start: {load()})", flush=True)
    t0 = time.monotonic()
    sol = solve_parallel(problem, time_limit=time_limit, jobs=jobs, workers=1, seed=seed,
                         progress=progress)
    wall = time.monotonic() - t0
    # a sub-problem that went on with the time others left (`extended`) reports twice
    first = {p.index: p for p in seen if p.error is None and not p.extended}
    done = list({p.index: p for p in seen if p.error is None}.values())
    again = [p for p in seen if p.error is None and p.extended]
    gaps = sorted(gap(p.objective, p.bound) for p in done)
    t1 = time.monotonic()
    report = check(problem, parse_assignments(problem, sol))
    recheck = time.monotonic() - t1
    people = sum(u["missing"] for u in sol["unmet"] if u["skill"] is None)
    skills = sum(u["missing"] for u in sol["unmet"] if u["skill"] is not None)
    print(f"wall {wall:.1f} s ({load()} at the end); status {sol['status']}")
    print(f"objective {sol['objective']}  bound {sol['bound']}  gap "
          f"{gap(sol['objective'], sol['bound']):.1f}%")
    print(f"gap per sub-problem: worst {gaps[-1]:.1f}%, median {statistics.median(gaps):.1f}%, "
          f"best {gaps[0]:.1f}%  ({len(done)} sub-problems, "
          f"{sum(1 for g in gaps if g <= 5.0)} within 5%)")
    above = sorted(((g, p.index) for p in done if (g := gap(p.objective, p.bound)) > 5.0),
                   reverse=True)
    if above:  # by their index in `split`, to solve one again alone
        print("above 5%: " + ", ".join(f"#{i} {g:.1f}%" for g, i in above))
    if again:
        print(f"went on with the time left: {len(again)} sub-problems, " + ", ".join(
            f"#{p.index} {gap(first[p.index].objective, first[p.index].bound):.1f}%"
            f"→{gap(p.objective, p.bound):.1f}%" for p in again))
    print(f"uncovered people {people}, uncovered skills {skills}, assignments "
          f"{len(sol['assignments'])}")
    print(f"hard violations (re-checked) {len(report.hard)}; validator objective "
          f"{report.objective} [{recheck:.1f} s]")
    print(f"peak RSS: worker processes max {max(p.peak_mb for p in done):.0f} MB, "
          f"this process {peak_mb():.0f} MB (cumulative over the runs)")
    print("penalties: " + ", ".join(f"{p['rule']}={p['cost']}" for p in sol["penalties"]),
          flush=True)
    return sol


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--districts", type=int, default=44)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=540.0)
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--database", help="an empty database URL, or sqlite for a new file")
    args = ap.parse_args()

    print(f"# City benchmark: {args.districts} districts, {args.days} days, seed {args.seed}")
    t0 = time.monotonic()
    doc = generate(districts=args.districts, seed=args.seed, days=args.days)
    t1 = time.monotonic()
    problem = parse_problem(doc)
    t2 = time.monotonic()
    print(f"generate {t1 - t0:.1f} s, build (parse) {t2 - t1:.1f} s  [{load()}]")
    print(f"{len(problem.sites)} sites, {len(problem.volunteers)} volunteers, "
          f"{len(problem.slots)} slots, {sum(s.min for s in problem.slots)} person-shifts "
          f"demanded; peak RSS {peak_mb():.0f} MB", flush=True)
    describe_split(problem, max(args.jobs))
    solutions = [run(problem, jobs, args.time_limit, args.seed) for jobs in args.jobs]
    if args.database:
        database_figures(args.database, doc, solutions[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
