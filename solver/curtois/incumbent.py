"""The incumbent roster shared by the search threads, with its cover counts and objective."""

from __future__ import annotations

import threading

from .instance import OFF, Roster
from .model import InstanceData

__all__ = ["Incumbent"]


class Incumbent:
    """Shared incumbent: roster, cover counts, objective, per-employee versions."""

    def __init__(self, data: InstanceData, roster: Roster, obj: int) -> None:
        self.data = data
        #: Request cost of employee ``e`` working ``s`` (or ``OFF``) on day ``d``.
        self.cell_cost = data.cell_cost
        self.roster = roster
        self.obj = obj
        self.lock = threading.Lock()
        self.version = [0] * data.E
        self.cnt = [[0] * data.S for _ in range(data.H)]
        for row in roster:
            for day, s in enumerate(row):
                if s != OFF:
                    self.cnt[day][s] += 1
        self.dirty = True
        self.gaps: list[tuple[int, int]] = []
        self.req_cost: list[list[int]] = []

    def cover_pen(self, d: int, s: int, n: int) -> int:
        """Cover cost of ``n`` people on shift ``s`` on day ``d``."""
        cov = self.data.cover[d][s]
        if cov is None:
            return 0
        req, wu, wo = cov
        return wu * max(0, req - n) + wo * max(0, n - req)

    def commit(self, changes: list[tuple[int, int, int]], versions: dict[int, int]) -> int | None:
        """Apply ``changes`` (e, d, new shift) if still valid and not worse.

        ``versions`` holds the version of each employee's row the changes were made
        from.  Only the employees whose cells change must still be at it: every hard
        rule is one employee's, and cover is counted afresh here, so another
        thread's commit to the others since does not matter.  (Checking every
        employee of the neighbourhood rejected most steps on all employees at once
        while another thread committed anywhere.)  Returns the objective change, or
        ``None`` when rejected.  Caller holds the lock.
        """
        real = [(e, d, s) for e, d, s in changes if self.roster[e][d] != s]
        changed = {e for e, _, _ in real}
        if not real or any(self.version[e] != versions[e] for e in changed):
            return None
        delta = 0
        touched: dict[tuple[int, int], int] = {}
        for e, d, s in real:
            old = self.roster[e][d]
            delta += self.cell_cost(e, d, s) - self.cell_cost(e, d, old)
            if old != OFF:
                touched[(d, old)] = touched.get((d, old), 0) - 1
            touched[(d, s)] = touched.get((d, s), 0) + 1
        for (d, s), k in touched.items():
            if s == OFF:
                continue
            n = self.cnt[d][s]
            delta += self.cover_pen(d, s, n + k) - self.cover_pen(d, s, n)
        if delta > 0:
            return None
        for e, d, s in real:
            self.put(e, d, s)
        for e in changed:
            self.version[e] += 1
        self.obj += delta
        self.dirty = True
        return delta

    def put(self, e: int, d: int, s: int) -> None:
        """Set employee ``e``'s cell on day ``d`` to ``s``, keeping the cover counts.

        Leaves the objective, the versions and the cost maps to the caller.
        """
        old = self.roster[e][d]
        if old != OFF:
            self.cnt[d][old] -= 1
        if s != OFF:
            self.cnt[d][s] += 1
        self.roster[e][d] = s
        self.dirty = True

    def refresh(self) -> None:
        """Recompute the cost maps used by the neighbourhood heuristics."""
        if not self.dirty:
            return
        d = self.data
        self.gaps = [
            (day, s)
            for day in range(d.H)
            for s in range(d.S)
            if self.cover_pen(day, s, self.cnt[day][s])
        ]
        self.req_cost = [[0] * d.H for _ in range(d.E)]
        for r in d.inst.on_requests:
            if self.roster[r.employee][r.day] != r.shift:
                self.req_cost[r.employee][r.day] += r.weight
        for r in d.inst.off_requests:
            if self.roster[r.employee][r.day] == r.shift:
                self.req_cost[r.employee][r.day] += r.weight
        self.dirty = False
