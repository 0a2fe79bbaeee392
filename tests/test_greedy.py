"""The day-by-day greedy fill (`solver.greedy`): which requirement goes first, and whom a
slot with little room takes."""

from __future__ import annotations

from typing import Any

import pytest

from solver.greedy import eligible_pairs, greedy
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.validate import check
from tests.fixtures.problems import demand, make_problem, volunteer


def greedy_rows(doc: dict[str, Any], seed: int = 0) -> tuple[set[tuple[str, int, str]], int]:
    """The greedy roster of `doc` as (volunteer, day, shift) rows, and its shortfall."""
    p = parse_problem(doc)
    rules = instantiate(p)
    roster = greedy(p, rules, eligible_pairs(p, rules), seed=seed)
    report = check(p, roster, rules)
    assert report.ok
    short = sum(v.units for v in report.violations if v.rule == "coverage")
    return {(p.volunteers[v].id, p.slots[s].day, p.shifts[p.slots[s].shift].id)
            for v, s in roster}, short


@pytest.mark.parametrize("seed", range(6))
def test_a_one_place_slot_needing_two_skills_takes_the_one_person_with_both(seed: int) -> None:
    # A night with room for one: a medic who is a Party member.  Three Party members and
    # three medics have one skill each; whoever of them took the place would leave the
    # other skill uncovered with no room left.
    doc = make_problem(
        demand=[demand("p1", "N", 1, 1, {"medical": 1, "party": 1})],
        volunteers=[*(volunteer(f"p{i}", skills=["party"]) for i in range(3)),
                    *(volunteer(f"m{i}", skills=["medical"]) for i in range(3)),
                    volunteer("both", skills=["medical", "party"])])
    rows, short = greedy_rows(doc, seed)
    assert (rows, short) == ({("both", 0, "N")}, 0)


def test_one_skill_is_still_better_than_none_when_nobody_has_both() -> None:
    doc = make_problem(
        demand=[demand("p1", "N", 1, 1, {"medical": 1, "party": 1})],
        volunteers=[volunteer("p", skills=["party"]), volunteer("m", skills=["medical"])])
    rows, short = greedy_rows(doc)
    assert len(rows) == 1 and short == 1  # one skill short, the head count met


def test_a_night_after_a_late_shift_goes_first_to_the_one_who_rested() -> None:
    # Day 0: a late shift (A, until midnight).  Day 1: a late shift and a night (from
    # midnight).  Whoever worked A on day 0 may work A again on day 1 but not the night
    # (no 12 h rest), so the night must go to the other person first, though the A slot
    # comes first in the demand and the other person is the less loaded.
    doc = make_problem(
        days=2, rules=[{"type": "one_shift_per_day"}, {"type": "min_rest_hours", "hours": 12}],
        demand=[demand("p1", "A", 1, 1, dates=[0, 1]), demand("p1", "N", 1, 1, dates=[1])],
        volunteers=["x", "y"])
    rows, short = greedy_rows(doc)
    assert short == 0
    (first,) = {v for v, d, _ in rows if d == 0}
    (other,) = {"x", "y"} - {first}
    assert rows == {(first, 0, "A"), (first, 1, "A"), (other, 1, "N")}
