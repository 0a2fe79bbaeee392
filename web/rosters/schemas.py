"""JSON shapes of the rosters pages: the solve run polled by the progress bar."""

from __future__ import annotations

from typing import Any

from scheduler.models import ACTIVE_RUN_STATUSES, SolveRun


def run_json(run: SolveRun) -> dict[str, Any]:
    """A solve run as the progress bar reads it; from the database, so it survives reloads."""
    active = run.status in ACTIVE_RUN_STATUSES
    elapsed = run.elapsed
    percent = 100.0 if not active else (
        min(99.0, 100.0 * elapsed / run.time_limit) if elapsed and run.time_limit else 0.0)
    return {
        "id": run.id, "roster": run.roster_id, "status": run.status, "active": active,
        "solver_status": run.solver_status, "objective": run.objective, "bound": run.bound,
        "coverage": run.coverage,
        "coverage_percent": None if run.coverage is None else round(100 * run.coverage, 1),
        "elapsed": None if elapsed is None else round(elapsed, 1),
        "time_limit": run.time_limit, "percent": round(percent, 1),
        "version": (run.progress or {}).get("version"), "error": run.error,
    }
