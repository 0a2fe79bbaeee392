"""Rule settings: change the parameters and weights of a roster's rules, validated.

A change is checked the way the solver will read it: the roster's problem document with
the new rules goes through `solver.problem.parse_problem`, so a bad value is refused with
the solver's own message naming the place (``rules[2].hours: …``) and nothing changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from scheduler import audit, problems
from scheduler.models import Roster, Rule
from solver.problem import ProblemError, parse_problem


class RuleSettingsError(ValueError):
    """A rule change the solver would not accept; `errors` maps "rules[i].field" to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def roster_rules(session: Session, roster_id: int) -> list[Rule]:
    roster = session.get(Roster, roster_id)
    if roster is None:
        raise LookupError(f"no roster {roster_id}")
    return list(roster.rule_set.rules) if roster.rule_set else []


def update_rules(session: Session, roster_id: int, changes: dict[int, dict[str, Any]],
                 actor: str) -> list[Rule]:
    """Apply `changes` ({rule position: {"weight": int | None, param: value}}) to a roster.

    A weight of None makes a rule hard. Unknown positions or parameters, and values the
    solver refuses, raise `RuleSettingsError` listing each; nothing is changed then.
    """
    rules = {r.position: r for r in roster_rules(session, roster_id)}
    errors: dict[str, str] = {}
    new_docs: dict[int, dict[str, Any]] = {}
    for position, change in changes.items():
        rule = rules.get(position)
        if rule is None:
            errors[f"rules[{position}]"] = "no such rule"
            continue
        params = dict(rule.params or {})
        for key, value in change.items():
            if key != "weight" and key not in params:
                errors[f"rules[{position}].{key}"] = "not a parameter of this rule"
            elif key != "weight":
                params[key] = value
        weight = change.get("weight", rule.weight)
        if weight is not None and (not isinstance(weight, int) or weight < 0):
            errors[f"rules[{position}].weight"] = "must be a whole number ≥ 0"
        new_docs[position] = {"params": params, "weight": weight}
    if errors:
        raise RuleSettingsError(errors)
    doc = problems.roster_problem(session, roster_id)
    for position, new in new_docs.items():
        index = sorted(rules).index(position)
        rule_doc: dict[str, Any] = {"type": rules[position].type, **new["params"]}
        if new["weight"] is not None:
            rule_doc["weight"] = new["weight"]
        if rules[position].applies_to is not None:
            rule_doc["applies_to"] = rules[position].applies_to
        doc["rules"][index] = rule_doc
    try:
        parse_problem(doc)
    except ProblemError as exc:
        raise RuleSettingsError({exc.path or "rules": str(exc)}) from None
    for position, new in new_docs.items():
        rule = rules[position]
        before = {"params": rule.params, "weight": rule.weight}
        if before == new:
            continue
        rule.params, rule.weight = new["params"], new["weight"]
        audit.record(session, actor, "rule.update", "rule", rule.id, before=before, after=new)
    session.flush()
    return [rules[p] for p in sorted(rules)]
