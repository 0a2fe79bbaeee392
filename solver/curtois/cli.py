"""Command-line entry points for the Curtois & Qu benchmark (called by the main CLI)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from .instance import CurtoisFormatError, parse_instance, write_roster
from .search import solve

__all__ = ["best_known", "run_bench", "run_curtois", "shared_dir"]


def shared_dir() -> Path:
    """The shared data folder: ``$BASTION_SHARED`` or ``shared/`` beside the repository."""
    env = os.environ.get("BASTION_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared"


def best_known(bench_dir: Path | None = None) -> dict[str, tuple[int, int, bool]]:
    """Map instance name -> (best_lb, best_ub, proven_optimal) from ``best-known.csv``."""
    path = (bench_dir or shared_dir() / "bench" / "curtois") / "best-known.csv"
    out: dict[str, tuple[int, int, bool]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines[1:]:
        f = line.strip().split(",")
        if len(f) >= 7:
            out[f[0]] = (int(f[4]), int(f[5]), f[6].strip() == "yes")
    return out


def run_curtois(
    instance_path: str, output: str | None, time_limit: float, workers: int, seed: int
) -> int:
    """Solve one instance, optionally write the roster TSV; return the exit code.

    Prints objective, bound (if proven), breakdown and seconds.  Exit codes: 0 on
    success, 2 on an unreadable/malformed instance or when no roster is found.
    """
    try:
        inst = parse_instance(instance_path)
    except CurtoisFormatError as exc:
        print(f"error: malformed instance: {exc}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        res = solve(inst, time_limit=time_limit, workers=workers, seed=seed)
    except RuntimeError as exc:
        print(f"error: {inst.name}: {exc}", file=sys.stderr)
        return 2
    secs = time.monotonic() - t0
    if output:
        write_roster(output, res.roster, inst)
    ev = res.evaluation
    bound = str(res.bound) if res.bound is not None else "n/a"
    print(f"instance: {inst.name}")
    print(f"objective: {res.objective}")
    print(f"bound: {bound}")
    print(
        f"breakdown: on-requests={ev.on_requests} off-requests={ev.off_requests} "
        f"under={ev.under} over={ev.over}"
    )
    print(f"hard violations: {len(ev.violations)}")
    print(f"seconds: {secs:.1f}")
    return 0


def _instance_number(name: str) -> int | None:
    m = re.fullmatch(r"(?:instance)?(\d+)", name.strip(), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def run_bench(
    instances: list[str] | None, time_limit: float | None, workers: int, output_md: str | None
) -> int:
    """Run the benchmark and print a markdown table (optionally also written to a file).

    ``instances`` are names like ``"Instance3"`` or numbers (default: all 24).  The
    default time limit is 60 s for instances 1–12 and 600 s for 13–24.
    """
    bench = shared_dir() / "bench" / "curtois"
    known = best_known(bench)
    names = instances or [f"Instance{n}" for n in range(1, 25)]
    rows: list[str] = [
        "| instance | objective | best known | gap % | seconds | time limit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    print(rows[0])
    print(rows[1])
    status = 0
    for raw in names:
        num = _instance_number(raw)
        if num is None:
            print(f"error: not an instance name: {raw!r}", file=sys.stderr)
            return 2
        name = f"Instance{num}"
        limit = time_limit if time_limit is not None else (60.0 if num <= 12 else 600.0)
        try:
            inst = parse_instance(bench / "instances" / f"{name}.txt")
        except CurtoisFormatError as exc:
            print(f"error: malformed instance: {exc}", file=sys.stderr)
            return 2
        best = known.get(name, (0, 0, False))[1] or None
        t0 = time.monotonic()
        try:
            res = solve(inst, time_limit=limit, workers=workers, seed=0, target=best)
            obj = str(res.objective)
            gap = f"{100.0 * (res.objective - best) / best:.2f}" if best else "n/a"
        except RuntimeError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            obj, gap, status = "none", "n/a", 1
        secs = time.monotonic() - t0
        row = f"| {name} | {obj} | {best if best else 'n/a'} | {gap} | {secs:.1f} | {limit:g} |"
        rows.append(row)
        print(row, flush=True)
    if output_md:
        Path(output_md).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return status
