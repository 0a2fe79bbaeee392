"""The rule catalogue: one class per rule type (see `catalogue`)."""

from solver.rules.base import Roster, Rule, Text, Violation
from solver.rules.catalogue import IMPLICIT, LISTED, instantiate

#: Rule types that may appear in a problem's `rules[]`.
RULE_TYPES = LISTED

__all__ = ["IMPLICIT", "LISTED", "RULE_TYPES", "Roster", "Rule", "Text", "Violation",
           "instantiate"]
