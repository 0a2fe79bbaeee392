"""The chains that close the greedy's gaps (`solver.fill`): each kind of chain where it
applies, where it must not, and on random problems never a worse or broken roster."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from hypothesis import given

import solver.solve  # noqa: F401  (loads the module that `sys.modules` names below)
from solver.fill import fill_gaps
from solver.greedy import eligible_pairs, greedy
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.validate import Report, check
from tests.fixtures.problems import demand, make_problem, preference, site, volunteer
from tests.test_solver import PROPERTY, problem_docs


def filled(doc: dict[str, Any], start: list[tuple[str, int, str]]
           ) -> tuple[set[tuple[str, int, str]], int, int]:
    """Fill the roster `start` (volunteer, day, post; shift M) of `doc`: the rows after,
    and the coverage shortfall before and after, both rosters checked valid."""
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    vol = {v.id: v.index for v in p.volunteers}
    slot = {(p.posts[s.post].id, s.day): s.index for s in p.slots}
    roster = [(vol[v], slot[(post, d)]) for v, d, post in start]
    before = check(p, roster, rules)
    assert before.ok
    after_pairs = fill_gaps(p, rules, pairs, roster)
    after = check(p, after_pairs, rules)
    assert after.ok, [v.message.en for v in after.hard]
    assert after.objective <= before.objective
    rows = {(p.volunteers[v].id, p.slots[s].day, p.posts[p.slots[s].post].id)
            for v, s in after_pairs}
    return rows, _short(before), _short(after)


def _short(report: Report) -> int:
    return sum(v.units for v in report.violations if v.rule == "coverage")


def two_posts(**kw: Any) -> dict[str, Any]:
    return make_problem(sites=[site("s1", posts=["a", "b"])], **kw)


def test_a_party_member_swaps_in_and_the_one_they_replace_takes_their_post() -> None:
    # Post a needs a Party member and is full; the Party member works post b, which needs
    # anyone: they change places.
    doc = two_posts(demand=[demand("a", "M", 1, 1, {"party": 1}), demand("b", "M", 1, 1)],
                    volunteers=[volunteer("p", skills=["party"]), volunteer("w")])
    rows, before, after = filled(doc, [("w", 0, "a"), ("p", 0, "b")])
    assert (before, after) == (1, 0)
    assert rows == {("p", 0, "a"), ("w", 0, "b")}


def test_someone_at_their_cap_moves_to_the_gap_and_another_takes_their_shift() -> None:
    # Day 1 is uncovered; the only one who can come there worked day 0 and may work one
    # shift in all; `b` cannot work day 1 but can take day 0.
    doc = make_problem(days=2, volunteers=[
        volunteer("a", max_shifts=1), volunteer("b", unavailable=[(1, None)])],
        demand=[demand("p1", "M", 1, 1)])
    rows, before, after = filled(doc, [("a", 0, "p1")])
    assert (before, after) == (1, 0)
    assert rows == {("b", 0, "p1"), ("a", 1, "p1")}


def test_no_chain_when_nobody_can_take_the_shift_left_behind() -> None:
    # As above, but `b` cannot work day 0 either: moving `a` would only move the gap.
    doc = make_problem(days=2, volunteers=[
        volunteer("a", max_shifts=1), volunteer("b", unavailable=[(0, None), (1, None)])],
        demand=[demand("p1", "M", 1, 1)])
    rows, before, after = filled(doc, [("a", 0, "p1")])
    assert (before, after) == (1, 1)
    assert rows == {("a", 0, "p1")}


def test_no_chain_when_the_soft_cost_outweighs_the_coverage() -> None:
    # The swap of the first test would cover the Party requirement, worth 1, but `w`
    # asked (weight 9) not to work post b.
    vols = [volunteer("p", skills=["party"]),
            volunteer("w", preferences=[preference(0, want=False, post="b", weight=9)])]
    dem = [demand("a", "M", 1, 1, {"party": 1}), demand("b", "M", 1, 1)]
    rows, before, after = filled(two_posts(demand=dem, volunteers=vols, coverage_weight=1),
                                 [("w", 0, "a"), ("p", 0, "b")])
    assert (before, after) == (1, 1)
    assert rows == {("w", 0, "a"), ("p", 0, "b")}
    # Worth it at the default weight.
    rows, before, after = filled(two_posts(demand=dem, volunteers=vols),
                                 [("w", 0, "a"), ("p", 0, "b")])
    assert (before, after) == (1, 0)


def test_nobody_is_taken_below_their_min_shifts() -> None:
    # `w` is replaced by the Party member at a full post, with nowhere else to go; with
    # min_shifts 1 that would leave them short, so post a stays without a Party member.
    dem = [demand("a", "M", 1, 1, {"party": 1})]
    rows, before, after = filled(two_posts(demand=dem, volunteers=[
        volunteer("p", skills=["party"]), volunteer("w", min_shifts=1)]), [("w", 0, "a")])
    assert (before, after) == (1, 1)
    rows, before, after = filled(two_posts(demand=dem, volunteers=[
        volunteer("p", skills=["party"]), volunteer("w")]), [("w", 0, "a")])
    assert rows == {("p", 0, "a")}


@PROPERTY
@given(problem_docs())
def test_filling_never_breaks_a_rule_nor_raises_the_objective(doc: dict[str, Any]) -> None:
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    start = greedy(p, rules, pairs)
    before = check(p, start, rules)
    after = check(p, fill_gaps(p, rules, pairs, start), rules)
    assert after.ok or not before.ok, [v.message.en for v in after.hard]
    assert after.objective <= before.objective
    assert _short(after) <= _short(before)


def test_the_chains_get_their_share_of_time_however_long_the_greedy_took(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # On a slow machine the greedy alone can outlast the chains' share of the time limit;
    # their deadline counts from when they start, or they would be skipped.
    module = sys.modules["solver.solve"]  # `solver.solve` itself names the function
    real_greedy, real_fill = module.greedy, module.fill_gaps
    calls: list[tuple[float, float]] = []

    def slow_greedy(*args: Any, **kwargs: Any) -> list[tuple[int, int]]:
        roster = real_greedy(*args, **kwargs)
        time.sleep(0.3)  # beyond FILL_SHARE of the 1 s limit
        return roster

    def timed_fill(*args: Any, deadline: float, **kwargs: Any) -> list[tuple[int, int]]:
        calls.append((time.monotonic(), deadline))
        return real_fill(*args, deadline=deadline, **kwargs)

    monkeypatch.setattr(module, "greedy", slow_greedy)
    monkeypatch.setattr(module, "fill_gaps", timed_fill)
    doc = two_posts(demand=[demand("a", "M")], volunteers=[volunteer("v1")])
    module.solve(doc, time_limit=1.0, workers=1)
    started, deadline = calls[0]
    assert deadline - started == pytest.approx(module.FILL_SHARE * 1.0, abs=0.05)
