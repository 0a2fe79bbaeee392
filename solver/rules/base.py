"""The contract every rule type fulfils.

A rule is one small, named unit that

1. narrows eligibility (`eligible`) when it is hard and unary, so the model only has
   variables for (volunteer, slot) pairs that could ever be assigned;
2. adds itself to the CP-SAT model (`add`), hard or soft, scoped by `applies_to`;
3. checks a finished roster without any model (`check`), reporting each violation;
4. explains itself and what it blocks in Chinese and English (`describe`, `blocks`).

The validator is nothing but every rule's `check`, so a roster is never trusted because
the model that produced it said so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from solver.i18n import Text
from solver.problem import Problem, ProblemError, RuleSpec, Slot, Volunteer

if TYPE_CHECKING:
    from solver.model import ModelContext

# A volunteer's work in a roster: (day, shift, slot index), sorted by start time.
Item = tuple[int, int, int]


@dataclass
class Violation:
    """One breach of one rule in a finished roster."""

    rule: str  # the rule's key: its type, with the index for listed rules
    hard: bool
    units: int
    cost: int
    message: Text
    volunteer: str | None = None
    slot: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "hard": self.hard, "units": self.units, "cost": self.cost,
                "volunteer": self.volunteer, "message": self.message.zh,
                "message_en": self.message.en}


@dataclass
class Roster:
    """A finished roster, indexed for checking: who works which slot."""

    problem: Problem
    assignments: list[tuple[int, int]]  # (volunteer index, slot index)
    by_volunteer: dict[int, list[Item]] = field(init=False)
    by_slot: dict[int, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_volunteer = {}
        self.by_slot = {}
        slots = self.problem.slots
        for v, s in self.assignments:
            sl = slots[s]
            self.by_volunteer.setdefault(v, []).append((sl.day, sl.shift, s))
            self.by_slot.setdefault(s, []).append(v)
        for items in self.by_volunteer.values():
            items.sort(key=lambda it: (self.problem.begins(it[0], it[1]), it[2]))


class Rule:
    """Base class of the catalogue. Subclasses set `type`, `title` and override hooks."""

    type: ClassVar[str]
    title: ClassVar[Text]
    #: parameter name -> "int" | "shift" | "site_kinds" | "sites" (validated by `validate`)
    params: ClassVar[Mapping[str, str]] = {}
    optional: ClassVar[frozenset[str]] = frozenset()
    soft_only: ClassVar[bool] = False
    #: volunteer-scoped rules are checked per volunteer and can tell why one is blocked
    per_volunteer: ClassVar[bool] = True
    #: broken by too little work, so only a whole roster can be judged by it
    demanding: ClassVar[bool] = False

    def __init__(self, problem: Problem, spec: RuleSpec | None = None) -> None:
        self.problem = problem
        self.spec = spec
        self.weight: int | None = None if spec is None else spec.weight
        self.applies_to: str | None = None if spec is None else spec.applies_to
        self.p: dict[str, Any] = {} if spec is None else dict(spec.params)

    # -- identity ----------------------------------------------------------------
    @property
    def key(self) -> str:
        return self.type if self.spec is None else f"{self.type}#{self.spec.index}"

    @property
    def hard(self) -> bool:
        return self.weight is None

    def applies(self, v: Volunteer) -> bool:
        return self.applies_to is None or self.applies_to in v.skills

    def members(self) -> Iterable[Volunteer]:
        return (v for v in self.problem.volunteers if self.applies(v))

    # -- validation of the rule's own parameters ----------------------------------
    @classmethod
    def validate(cls, spec: RuleSpec, shift_ix: Mapping[str, int],
                 site_ix: Mapping[str, int]) -> None:
        if cls.soft_only and spec.weight is None:
            raise ProblemError(f"{spec.path}.weight", f"{cls.type} is soft only: give it a weight")
        for name, kind in cls.params.items():
            path = f"{spec.path}.{name}"
            if name not in spec.params:
                if name in cls.optional:
                    continue
                raise ProblemError(path, f"{cls.type} needs parameter {name!r}")
            val = spec.params[name]
            if kind == "int":
                if isinstance(val, bool) or not isinstance(val, int) or not 0 <= val <= 10**6:
                    raise ProblemError(path, f"expected a whole number >= 0, got {val!r}")
            elif kind == "shift":
                if not isinstance(val, str) or val not in shift_ix:
                    raise ProblemError(path, f"unknown shift {val!r}")
            elif kind in ("site_kinds", "sites"):
                if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
                    raise ProblemError(path, "expected a list of strings")
                if kind == "sites":
                    for k, x in enumerate(val):
                        if x not in site_ix:
                            raise ProblemError(f"{path}[{k}]", f"unknown site {x!r}")

    # -- hooks ---------------------------------------------------------------------
    def eligible(self, v: Volunteer, slot: Slot) -> bool:
        """False when this rule alone, hard, forbids the volunteer from ever taking slot."""
        return True

    def filters(self) -> bool:
        """Whether `eligible` may say False at all: eligibility then asks this rule about
        every (volunteer, slot) pair, which on a city is millions of calls."""
        return type(self).eligible is not Rule.eligible

    def add(self, m: ModelContext) -> None:
        """Add the rule's constraints or penalty terms to the CP-SAT model."""
        raise NotImplementedError

    def check(self, roster: Roster) -> list[Violation]:
        """Every violation of this rule in a finished roster."""
        out: list[Violation] = []
        for vol in self.problem.volunteers:
            if self.applies(vol):
                out.extend(self.check_volunteer(vol, roster.by_volunteer.get(vol.index, [])))
        return out

    def check_volunteer(self, v: Volunteer, items: list[Item]) -> list[Violation]:
        """Violations in one volunteer's sorted work list (volunteer-scoped rules)."""
        return []

    def describe(self) -> Text:
        """The rule as a coordinator would say it."""
        return self.title

    def blocks(self) -> Text:
        """A short phrase for an unmet-slot reason: why a candidate could not be used."""
        return self.title

    # -- helpers for subclasses ----------------------------------------------------
    def violation(self, units: int, zh: str, en: str, volunteer: Volunteer | None = None,
                  slot: int | None = None) -> Violation:
        cost = 0 if self.hard else units * (self.weight or 0)
        return Violation(self.key, self.hard, units, cost, Text(zh, en),
                         None if volunteer is None else volunteer.id, slot)

    def when(self, day: int, shift: int | None = None) -> Text:
        d = self.problem.date(day)
        if shift is None:
            return Text(f"{d.month}月{d.day}日", d.isoformat())
        sh = self.problem.shifts[shift]
        return Text(f"{d.month}月{d.day}日{sh.name}", f"{d.isoformat()} {sh.id}")

    def who(self, v: Volunteer) -> str:
        return f"{v.name}({v.id})"
