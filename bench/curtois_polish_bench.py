"""Polish alone on one constructed Curtois & Qu roster: N [seconds] [seeds].

    .venv/bin/python bench/curtois_polish_bench.py 23 60 3

Full 600 s runs of the search vary by several per cent from run to run (instance 22
gave 36,566 and 38,802 with the same code and seed on two days), more than most changes
to polish.  Here the roster is constructed once (seed 0, construction's share of a
600 s run), then :func:`~solver.curtois.polish.polish` runs on a copy of it for the
given seconds with each seed 0 .. seeds-1.  Prints the constructed objective, then per
seed the objective, the seconds polish took (less than asked when it reached a local
optimum) and the validator's breakdown, then the mean.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.curtois.cli import shared_dir  # noqa: E402
from solver.curtois.incumbent import Incumbent  # noqa: E402
from solver.curtois.instance import parse_instance  # noqa: E402
from solver.curtois.model import InstanceData  # noqa: E402
from solver.curtois.polish import polish  # noqa: E402
from solver.curtois.search import Clock, construct  # noqa: E402
from solver.curtois.validate import evaluate  # noqa: E402

n = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
inst = parse_instance(shared_dir() / "bench" / "curtois" / "instances" / f"Instance{n}.txt")
data = InstanceData(inst)
start = construct(data, Clock(600), random.Random(0), workers=2)
first = evaluate(inst, start).objective
print(f"Instance{n} constructed {first}", flush=True)
results = []
for seed in range(seeds):
    state = Incumbent(data, [r[:] for r in start], first)
    t = time.monotonic()
    polish(data, state, random.Random(seed), t + seconds)
    ev = evaluate(inst, state.roster)
    if not ev.feasible or ev.objective != state.obj:
        sys.exit(f"seed {seed}: polish broke the roster: {ev.summary()}, tracked {state.obj}")
    results.append(ev.objective)
    print(
        f"seed {seed} obj {ev.objective} t {time.monotonic() - t:.1f}s {ev.summary()}", flush=True
    )
print(f"Instance{n} mean {sum(results) / len(results):.0f} over {seeds} seeds")
