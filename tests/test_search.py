"""The LNS keeps an exact account of the objective and never breaks a hard rule."""

from __future__ import annotations

from solver.greedy import eligible_pairs, greedy
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.scenario import generate
from solver.search import PartSearch
from solver.validate import check


def test_steps_track_the_validator_objective() -> None:
    # A 5-day district: big enough for real moves, small enough for a unit test.
    problem = parse_problem(generate(districts=1, seed=3, days=5))
    rules = instantiate(problem)
    pairs = eligible_pairs(problem, rules)
    start = greedy(problem, rules, pairs)
    first = check(problem, start, rules)
    assert first.ok
    search = PartSearch(problem, rules, pairs, seed=1)
    search.start(start, first.objective)
    improved = 0
    # Steps until a few have improved: how many that takes depends on the machine's load,
    # what every step must keep does not.
    for _ in range(40):
        improved += search.step(2.0)
        report = check(problem, search.assignments(), rules)
        assert report.ok, [v.message.en for v in report.hard[:3]]
        assert search.objective == report.objective
        if improved >= 3:
            break
    assert improved >= 3
    assert search.objective < first.objective
