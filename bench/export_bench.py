"""Export the demo district's roster: seconds, file size and queries of each export.

    .venv/bin/python bench/export_bench.py [--days D] [--seed S] [--url DATABASE_URL] [--out DIR]

Loads the generated demo district (as `flask bastion demo` does) into a fresh SQLite
database (or the empty, migrated database at --url), stores the day-by-day greedy roster
as a draft version (the solver's own baseline; a CP-SAT run would only add minutes), and
times `roster_workbook`, `service_hours_xlsx` and `service_hours_csv`. With --out the
files are written there to look at.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler import exports, problems  # noqa: E402
from scheduler.db import make_engine, sessionmaker_for, upgrade  # noqa: E402
from solver.greedy import greedy  # noqa: E402
from solver.problem import parse_problem  # noqa: E402
from solver.rules import instantiate  # noqa: E402
from solver.scenario import generate  # noqa: E402
from solver.solve import solution_document  # noqa: E402


def _greedy_solution(doc: dict[str, Any]) -> dict[str, Any]:
    problem = parse_problem(doc)
    rules = instantiate(problem)
    return solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)


def run(url: str, days: int, seed: int, out: Path | None) -> None:
    engine = make_engine(url)
    doc = generate(seed=seed, days=days)
    started = time.perf_counter()
    with sessionmaker_for(engine)() as session, session.begin():
        roster = problems.load_problem(session, doc, actor="bench")
        roster_id = roster.id
        solution = _greedy_solution(doc)
        version = problems.store_solution(session, roster_id, solution, actor="bench",
                                          allow_hard_violations=True)
        assignments = len(solution["assignments"])
        print(f"demo district seed {seed}, {days} days: {len(doc['volunteers'])} volunteers, "
              f"{len(doc['sites'])} sites, {assignments} assignments, "
              f"{len(version.unmet)} unmet entries (greedy) — loaded and stored in "
              f"{time.perf_counter() - started:.1f} s")

    queries = [0]
    event.listen(engine, "before_cursor_execute", lambda *_a: queries.__setitem__(
        0, queries[0] + 1))
    jobs: list[tuple[str, str, Callable[..., bytes]]] = [
        ("roster workbook", "roster.xlsx", exports.roster_workbook),
        ("service hours XLSX", "hours.xlsx", exports.service_hours_xlsx),
        ("service hours CSV", "hours.csv", exports.service_hours_csv),
    ]
    print()
    print("| export | seconds | bytes | queries |")
    print("|---|---|---|---|")
    for label, filename, export in jobs:
        with sessionmaker_for(engine)() as session:  # a cold session, as a request has
            queries[0] = 0
            t0 = time.perf_counter()
            data = export(session, roster_id)
            seconds = time.perf_counter() - t0
        print(f"| {label} | {seconds:.2f} | {len(data):,} | {queries[0]} |")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / filename).write_bytes(data)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", default=None, help="an empty database (default: temporary SQLite)")
    ap.add_argument("--out", type=Path, default=None, help="write the exported files here")
    args = ap.parse_args()
    if args.url:
        upgrade(args.url)
        run(args.url, args.days, args.seed, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        upgrade(url)
        run(url, args.days, args.seed, args.out)


if __name__ == "__main__":
    main()
