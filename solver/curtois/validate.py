"""Independent roster checker for the Curtois & Qu benchmark (no CP-SAT).

Deliberately written as a straightforward transcription of the published rules so
that it can be used to cross-check the solver's model: it lists every hard-constraint
violation in plain words and recomputes the objective from scratch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .instance import OFF, Instance

__all__ = ["Evaluation", "evaluate", "objective", "runs"]


@dataclass
class Evaluation:
    """Result of checking a roster: hard violations and the objective breakdown."""

    violations: list[str] = field(default_factory=list)
    on_requests: int = 0
    off_requests: int = 0
    under: int = 0
    over: int = 0

    @property
    def objective(self) -> int:
        """Total soft penalty."""
        return self.on_requests + self.off_requests + self.under + self.over

    @property
    def feasible(self) -> bool:
        """True when no hard constraint is violated."""
        return not self.violations

    def summary(self) -> str:
        """One-line human-readable breakdown."""
        return (
            f"objective={self.objective} (on={self.on_requests} off={self.off_requests} "
            f"under={self.under} over={self.over}) hard_violations={len(self.violations)}"
        )


def runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """Maximal runs of True in ``flags`` as (first_day, length)."""
    out: list[tuple[int, int]] = []
    start = -1
    for d, f in enumerate(flags):
        if f and start < 0:
            start = d
        elif not f and start >= 0:
            out.append((start, d - start))
            start = -1
    if start >= 0:
        out.append((start, len(flags) - start))
    return out


def evaluate(inst: Instance, roster: Sequence[Sequence[int]]) -> Evaluation:
    """Check every hard constraint and compute the soft objective of ``roster``."""
    ev = Evaluation()
    H = inst.horizon
    if len(roster) != inst.num_staff:
        ev.violations.append(f"roster has {len(roster)} rows, instance has {inst.num_staff} staff")
        return ev
    for e, row in enumerate(roster):
        if len(row) != H:
            ev.violations.append(f"{inst.staff[e].id}: {len(row)} days instead of {H}")
        if any(not (s == OFF or 0 <= s < inst.num_shifts) for s in row):
            ev.violations.append(f"{inst.staff[e].id}: invalid shift index in roster")
    if ev.violations:
        return ev

    for e, row in enumerate(roster):
        st = inst.staff[e]
        who = st.id
        # At most one shift a day holds by construction (one cell per day).
        # Days off.
        for d in sorted(inst.days_off[e]):
            if row[d] != OFF:
                ev.violations.append(f"{who}: works {inst.shifts[row[d]].id} on day-off {d}")
        # Banned successions.
        for d in range(H - 1):
            a, b = row[d], row[d + 1]
            if a != OFF and b != OFF and inst.shifts[b].id in inst.shifts[a].cannot_follow:
                ev.violations.append(
                    f"{who}: {inst.shifts[b].id} on day {d + 1} cannot follow "
                    f"{inst.shifts[a].id} on day {d}"
                )
        # Max shifts per type.
        for s, sh in enumerate(inst.shifts):
            n = sum(1 for x in row if x == s)
            limit = st.max_shifts.get(sh.id, H)
            if n > limit:
                ev.violations.append(f"{who}: {n} {sh.id} shifts > max {limit}")
        # Total minutes.
        minutes = sum(inst.shifts[x].minutes for x in row if x != OFF)
        if minutes > st.max_total_minutes:
            ev.violations.append(f"{who}: {minutes} minutes > max {st.max_total_minutes}")
        if minutes < st.min_total_minutes:
            ev.violations.append(f"{who}: {minutes} minutes < min {st.min_total_minutes}")
        # Consecutive work / days off.
        work = [x != OFF for x in row]
        for start, length in runs(work):
            if length > st.max_consecutive_shifts:
                ev.violations.append(
                    f"{who}: {length} consecutive shifts from day {start} "
                    f"> max {st.max_consecutive_shifts}"
                )
            touches_edge = start == 0 or start + length == H
            if length < st.min_consecutive_shifts and not touches_edge:
                ev.violations.append(
                    f"{who}: {length} consecutive shifts from day {start} "
                    f"< min {st.min_consecutive_shifts}"
                )
        for start, length in runs([not w for w in work]):
            touches_edge = start == 0 or start + length == H
            if length < st.min_consecutive_days_off and not touches_edge:
                ev.violations.append(
                    f"{who}: {length} consecutive days off from day {start} "
                    f"< min {st.min_consecutive_days_off}"
                )
        # Weekends.
        worked = sum(1 for sat, sun in inst.weekends() if work[sat] or work[sun])
        if worked > st.max_weekends:
            ev.violations.append(f"{who}: {worked} weekends worked > max {st.max_weekends}")

    for r in inst.on_requests:
        if roster[r.employee][r.day] != r.shift:
            ev.on_requests += r.weight
    for r in inst.off_requests:
        if roster[r.employee][r.day] == r.shift:
            ev.off_requests += r.weight
    for c in inst.cover:
        n = sum(1 for row in roster if row[c.day] == c.shift)
        if n < c.requirement:
            ev.under += (c.requirement - n) * c.weight_under
        elif n > c.requirement:
            ev.over += (n - c.requirement) * c.weight_over
    return ev


def objective(inst: Instance, roster: Sequence[Sequence[int]]) -> int:
    """Soft objective only (no feasibility check beyond shape)."""
    return evaluate(inst, roster).objective
