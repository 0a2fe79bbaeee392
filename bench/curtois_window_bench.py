"""Column generation on some days of a Curtois & Qu roster, the rest fixed.

    .venv/bin/python bench/curtois_window_bench.py 20 ROSTER.tsv weekends [cg_s] [fix_s] [-o OUT.tsv]

DAYS is ``lo-hi`` (days lo..hi-1), ``weekends`` (every weekend with its Friday and
Monday) or both joined by ``+`` (``weekends+56-112``).  Prints the roster's
objective, each pricing round, the LP's value and Lagrangian bound on those days
(no roster that changes only them does better than the bound), then, if the LP is
below the roster, the LP-fixed solve of those days (:func:`search._fixed_solve`)
and the roster it reaches, written to OUT.tsv if given.  This is what tells
whether a stalled roster has anything left on a set of days: the search's window
steps (:func:`search._window_step`) are the same two stages.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.curtois import search  # noqa: E402
from solver.curtois.cli import shared_dir  # noqa: E402
from solver.curtois.colgen import ColumnGeneration  # noqa: E402
from solver.curtois.incumbent import Incumbent  # noqa: E402
from solver.curtois.instance import parse_instance, read_roster, write_roster  # noqa: E402
from solver.curtois.model import InstanceData  # noqa: E402
from solver.curtois.validate import evaluate  # noqa: E402


def free_days(data: InstanceData, spec: str) -> list[int]:
    """The days ``spec`` names (see the module's docstring)."""
    days: set[int] = set()
    for part in spec.split("+"):
        if part == "weekends":
            days |= {d for k in range(len(data.weekends)) for d in data.long_weekend(k)}
        else:
            lo, hi = (int(x) for x in part.split("-"))
            days |= set(range(lo, hi))
    return sorted(days)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", help="instance number, e.g. 20")
    ap.add_argument("roster", help="ROSTER.tsv, as `python -m solver curtois` writes it")
    ap.add_argument("days", help="lo-hi, weekends, or both joined by +")
    ap.add_argument("cg_seconds", nargs="?", type=float, default=120.0)
    ap.add_argument("fix_seconds", nargs="?", type=float, default=60.0)
    ap.add_argument("-o", "--output", help="write the roster reached here")
    args = ap.parse_args()
    path = shared_dir() / "bench" / "curtois" / "instances" / f"Instance{args.instance}.txt"
    inst = parse_instance(path)
    data = InstanceData(inst)
    roster = read_roster(args.roster, inst)
    state = Incumbent(data, roster, evaluate(inst, roster).objective)
    days = free_days(data, args.days)
    print(f"Instance{args.instance} roster {state.obj}, {len(days)} free days", flush=True)
    began = time.monotonic()
    cg = ColumnGeneration(data, roster, days=days)
    converged = cg.run(began + args.cg_seconds, 2, log=lambda s: print(" ", s, flush=True))
    print(
        f"LP {cg.value:.1f} ({'converged' if converged else 'stopped'}) bound {cg.bound}"
        f" in {time.monotonic() - began:.0f}s",
        flush=True,
    )
    at = max(cg.bound or 0, math.ceil(cg.value - 1e-6))
    if args.fix_seconds > 0 and at < state.obj and (relax := cg.relaxation()) is not None:
        clock = search.Clock(args.fix_seconds)
        state = search._fixed_solve(
            data, state, relax, at, args.fix_seconds, 2, print, clock, days=days, cells=False
        )
        print(f"LP-fixed solve: roster {state.obj}", flush=True)
    if args.output:
        write_roster(args.output, state.roster, inst)


if __name__ == "__main__":
    main()
