"""Print the size, calibration and designed shortages of generated scenarios, with timings.

    .venv/bin/python bench/scenario_stats.py [--seed N] [--districts 1 44]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver import scenario  # noqa: E402


def report(districts: int, seed: int) -> None:
    gc.collect()
    t0 = time.perf_counter()
    doc = scenario.generate(districts=districts, seed=seed)
    t1 = time.perf_counter()
    stats = scenario.summarize(doc)
    t2 = time.perf_counter()
    size = len(json.dumps(doc, ensure_ascii=False).encode())
    t3 = time.perf_counter()

    print(f"== {districts} district(s), seed {seed}: {doc['name']}")
    print(f"generate {t1 - t0:.2f} s, summarize {t2 - t1:.2f} s, "
          f"json {t3 - t2:.2f} s ({size / 1e6:.1f} MB)")
    kinds = ", ".join(f"{k} {n}" for k, n in stats["sites_by_kind"].items())
    print(f"sites {stats['sites']} ({kinds}), posts {stats['posts']}, "
          f"demand entries {stats['demand_entries']}, volunteers {stats['volunteers']} "
          f"({stats['hotel_only_volunteers']} hotel-only)")
    print(f"demand person-shifts: min {stats['demand_min']}, max {stats['demand_max']}; "
          f"supply estimate {stats['supply']}; load {stats['load']:.3f}")
    shares = ", ".join(f"{t} {n / stats['volunteers']:.1%}" for t, n in stats["tags"].items())
    print(f"tags: {shares}")
    print("skill demand (person-shifts): "
          + ", ".join(f"{k} {v}" for k, v in stats["skill_demand"].items()))
    short: Counter[str] = Counter()
    sites: Counter[str] = Counter()
    for s in stats["shortages"]:
        key = f"{s['kind']}/{s['skill'] or 'anyone'}"
        short[key] += s["missing"]
        sites[key] += 1
    print(f"guaranteed unmet (lower bound) {stats['guaranteed_missing']} person-shifts "
          f"= {stats['guaranteed_missing'] / stats['demand_min']:.2%} of demand:")
    for key, missing in short.most_common():
        print(f"  {key:22} {missing:6} at {sites[key]} site(s)")
    if districts == 1:
        for s in stats["shortages"]:
            dates = ", ".join(str(d) for d in s["dates"])
            print(f"    {s['site']:14} {s['skill'] or 'anyone':9} missing {s['missing']:3}"
                  f"  short on day(s) [{dates}]")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--districts", type=int, nargs="+", default=[1, 44])
    args = parser.parse_args()
    for n in args.districts:
        report(n, args.seed)


if __name__ == "__main__":
    main()
