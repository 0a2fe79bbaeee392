"""The CP-SAT model of one roster problem (or of one independent part of it).

Variables exist only for eligible (volunteer, slot) pairs.  Rules reach the model through
`ModelContext`, which offers the derived literals they share (works on a day and shift,
works on a day, works at a site) and collects penalty terms per rule so the objective can
be broken down the same way the validator breaks it down.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from solver.problem import Problem
from solver.rules.base import Rule

Lit = cp_model.IntVar


@dataclass
class ModelContext:
    problem: Problem
    rules: list[Rule]
    volunteers: list[int]  # the volunteers of this part
    slots: list[int]  # the slots of this part
    pairs: dict[tuple[int, int], None]  # eligible (volunteer, slot) pairs, ordered
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    x: dict[tuple[int, int], Lit] = field(default_factory=dict)
    costs: list[tuple[str, int, cp_model.LinearExprT]] = field(default_factory=list)
    #: assumption literal index -> volunteer whose `min_shifts` it enforces
    assumptions: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_vol: dict[int, list[tuple[int, Lit]]] = defaultdict(list)
        self.by_slot: dict[int, list[tuple[int, Lit]]] = defaultdict(list)
        self._ds: dict[int, dict[tuple[int, int], list[Lit]]] = defaultdict(
            lambda: defaultdict(list))
        slots = self.problem.slots
        for v, s in self.pairs:
            var = self.model.new_bool_var(f"x{v}_{s}")
            self.x[(v, s)] = var
            self.by_vol[v].append((s, var))
            self.by_slot[s].append((v, var))
            self._ds[v][(slots[s].day, slots[s].shift)].append(var)
        self._work: dict[tuple[int, int, int], Lit] = {}
        self._day: dict[tuple[int, int], Lit | None] = {}
        self._site: dict[tuple[int, int], Lit | None] = {}

    # -- derived literals ------------------------------------------------------------
    def shifts_of(self, v: int) -> list[tuple[int, int]]:
        """The (day, shift) pairs volunteer v could work, in time order."""
        return sorted(self._ds[v], key=lambda k: self.problem.begins(*k))

    def cells(self, v: int) -> dict[tuple[int, int], list[Lit]]:
        """Volunteer v's assignment variables by (day, shift) (one per post they may take)."""
        return self._ds[v]

    def work(self, v: int, day: int, shift: int) -> Lit | None:
        """True iff v works some post on (day, shift); None if v never can.

        The no-overlap rule makes the sum over posts at most one, so a sum is a literal.
        """
        key = (v, day, shift)
        if key in self._work:
            return self._work[key]
        xs = self._ds[v].get((day, shift))
        if not xs:
            return None
        if len(xs) == 1:
            lit = xs[0]
        else:
            lit = self.model.new_bool_var(f"w{v}_{day}_{shift}")
            self.model.add(lit == sum(xs))
        self._work[key] = lit
        return lit

    def works_on(self, v: int, day: int) -> Lit | None:
        """True iff v works any shift starting on `day`."""
        key = (v, day)
        if key in self._day:
            return self._day[key]
        lits = [w for sh in range(len(self.problem.shifts))
                if (w := self.work(v, day, sh)) is not None]
        self._day[key] = lit = self.any_of(lits, f"d{v}_{day}")
        return lit

    def works_at(self, v: int, site: int) -> Lit | None:
        """True iff v works at least once at `site` in the horizon."""
        key = (v, site)
        if key in self._site:
            return self._site[key]
        slots = self.problem.slots
        xs = [var for s, var in self.by_vol[v] if slots[s].site == site]
        self._site[key] = lit = self.any_of(xs, f"s{v}_{site}")
        return lit

    def any_of(self, lits: list[Lit], name: str) -> Lit | None:
        """A literal true iff one of `lits` is (None for none, the literal itself for one)."""
        if len(lits) <= 1:
            return lits[0] if lits else None
        lit = self.model.new_bool_var(name)
        self.model.add_max_equality(lit, lits)
        return lit

    def forbid_pair(self, rule: Rule, a: Lit, b: Lit, name: str) -> None:
        """Not both `a` and `b`: hard, or one unit of the rule's weight when both hold."""
        if rule.hard:
            self.model.add_bool_or([a.Not(), b.Not()])
        else:
            both = self.model.new_bool_var(name)
            self.model.add(both >= a + b - 1)
            self.penalise(rule.key, rule.weight or 0, both)

    def count(self, v: int, shifts: Iterable[tuple[int, int]] | None = None
              ) -> cp_model.LinearExprT:
        """Number of shifts v works, optionally among the given (day, shift) pairs."""
        if shifts is None:
            return sum(var for _, var in self.by_vol[v])
        keys = set(shifts)
        return sum(var for k, xs in self._ds[v].items() if k in keys for var in xs)

    def sites_of(self, v: int) -> set[int]:
        slots = self.problem.slots
        return {slots[s].site for s, _ in self.by_vol[v]}

    # -- objective -------------------------------------------------------------------
    def penalise(self, rule: str, weight: int, expr: cp_model.LinearExprT) -> None:
        if weight:
            self.costs.append((rule, weight, expr))

    def excess(self, name: str, expr: cp_model.LinearExprT, limit: int, upper: int) -> Lit:
        """A non-negative integer variable at least `expr - limit` (minimised away)."""
        var = self.model.new_int_var(0, max(0, upper - limit), name)
        self.model.add(var >= expr - limit)
        return var

    def objective(self) -> cp_model.LinearExprT:
        return sum(w * e for _, w, e in self.costs)

    def finish(self) -> None:
        self.model.minimize(self.objective())


def build(problem: Problem, rules: Sequence[Rule], volunteers: list[int], slots: list[int],
          pairs: dict[tuple[int, int], None]) -> ModelContext:
    """Build the model of one part: every rule adds itself.

    Volunteer-scoped rules cover `volunteers`; slot-scoped ones cover `slots`.  A pair of
    someone not in `volunteers` still counts on its slot (an LNS step's fixed neighbours).
    """
    ctx = ModelContext(problem, list(rules), volunteers, slots, pairs)
    for rule in rules:
        rule.add(ctx)
    ctx.finish()
    return ctx
