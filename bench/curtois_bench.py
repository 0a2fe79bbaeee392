"""Developer benchmark: python bench/curtois_bench.py N [time_limit] [workers] [seed]."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.curtois.instance import parse_instance  # noqa: E402
from solver.curtois.search import solve  # noqa: E402

BEST = {}
for line in Path("/work/shared/bench/curtois/best-known.csv").read_text().splitlines()[1:]:
    f = line.split(",")
    BEST[f[0]] = int(f[5])

n = sys.argv[1]
tl = float(sys.argv[2]) if len(sys.argv) > 2 else 60
w = int(sys.argv[3]) if len(sys.argv) > 3 else 2
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
inst = parse_instance(f"/work/shared/bench/curtois/instances/Instance{n}.txt")
t = time.time()
best = BEST[f"Instance{n}"]
r = solve(inst, tl, w, seed, log=lambda s: print(s, flush=True), target=best)
print(
    f"Instance{n} obj {r.objective} best {best} gap {100 * (r.objective - best) / best:.2f}% "
    f"t {time.time() - t:.1f}s it {r.iterations}"
)
