"""One Curtois & Qu instance, with the search's log: N [time_limit] [workers] [seed].

    .venv/bin/python bench/curtois_bench.py 8 60 2 0

Prints each improvement, then the objective against the best known (from the shared
benchmark data, `$BASTION_SHARED` or shared/ beside the repository), the gap, the seconds
and the LNS iterations. The search stops early once it reaches the best known.
`python -m solver bench` runs all instances and prints the table.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.curtois.cli import best_known, shared_dir  # noqa: E402
from solver.curtois.instance import parse_instance  # noqa: E402
from solver.curtois.search import solve  # noqa: E402

n = sys.argv[1]
tl = float(sys.argv[2]) if len(sys.argv) > 2 else 60
w = int(sys.argv[3]) if len(sys.argv) > 3 else 2
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
inst = parse_instance(shared_dir() / "bench" / "curtois" / "instances" / f"Instance{n}.txt")
best = best_known()[f"Instance{n}"][1]
t = time.time()
r = solve(inst, tl, w, seed, log=lambda s: print(s, flush=True), target=best)
print(
    f"Instance{n} obj {r.objective} best {best} gap {100 * (r.objective - best) / best:.2f}% "
    f"t {time.time() - t:.1f}s it {r.iterations}"
)
