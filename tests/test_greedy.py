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


def _parts_from(doc: dict[str, Any], roster: list[tuple[int, int]] | None = None) -> Any:
    """The problem, rules and parts of `doc`, each part given its share of `roster`
    (default: the greedy's, seed 0), as `solve` does before the search."""
    import sys

    module = sys.modules["solver.solve"]  # `solver.solve` the name is the function
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    parts = module.decompose(p, pairs)
    start = greedy(p, rules, pairs, seed=0) if roster is None else roster
    module._attribute(p, parts, check(p, start, rules))
    return module, p, rules, parts


def test_a_part_constructed_far_above_its_bound_is_constructed_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    # One street whose start roster is empty (everything uncovered): far above its bound.
    doc = make_problem(days=3, volunteers=[volunteer(f"v{i}") for i in range(3)],
                       demand=[demand("p1", "M", 1, 1), demand("p1", "A", 1, 1)],
                       rules=[{"type": "balance", "weight": 1}])
    module, p, rules, parts = _parts_from(doc, roster=[])
    monkeypatch.setattr(module, "WHOLE_MODEL_PAIRS", 0)  # the tiny part counts as large
    [part] = parts
    assert part.objective == 6 * p.coverage_weight
    module._restart_far_parts(p, rules, parts, seed=0, deadline=time.monotonic() + 30)
    again = check(p, part.assignments, rules)
    # Six shifts spread over three people: 3 × 2², the bound (kept for the search) too.
    assert again.ok and part.objective == again.objective == 12
    assert part.bound == 12


def test_a_part_constructed_close_to_its_bound_is_left_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    doc = make_problem(days=3, volunteers=[volunteer(f"v{i}") for i in range(3)],
                       demand=[demand("p1", "M", 1, 1), demand("p1", "A", 1, 1)])
    module, p, rules, parts = _parts_from(doc)
    monkeypatch.setattr(module, "WHOLE_MODEL_PAIRS", 0)
    calls: list[object] = []

    def counted(*args: object, **kw: object) -> list[tuple[int, int]]:
        calls.append(kw.get("seed"))
        return []

    monkeypatch.setattr(module, "greedy", counted)
    before = (parts[0].assignments, parts[0].objective)
    module._restart_far_parts(p, rules, parts, seed=0, deadline=time.monotonic() + 30)
    assert calls == [] and (parts[0].assignments, parts[0].objective) == before
