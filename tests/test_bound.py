"""The cheap lower bounds: valid against brute force, tight where they should be."""

from __future__ import annotations

import pytest

from solver.bound import balance_bound, flow_coverage_bound, head_balance_bound, joint_lp_bound
from solver.greedy import eligible_pairs
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.solve import WHOLE_MODEL_PAIRS, decompose, part_bound
from tests.fixtures.problems import demand, make_problem, recheck, site, solve_doc, volunteer
from tests.test_solver import brute_force, tiny_problem


@pytest.mark.parametrize("seed", range(30))
def test_part_bounds_never_exceed_the_optimum(seed: int) -> None:
    doc = tiny_problem(seed)
    best = brute_force(doc)
    assert best is not None
    p = parse_problem(doc)
    rules = instantiate(p)
    parts = decompose(p, eligible_pairs(p, rules))
    # With the optimum itself as the incumbent, the bound is at its tightest.
    assert sum(part_bound(p, rules, part, best) for part in parts) <= best
    # The joint LP holds the min-cost flow's constraints and more, each cost term at
    # least as high, and stays below the optimum.
    lps = [joint_lp_bound(p, rules, part.slots, part.pairs) for part in parts]
    assert all(lp >= head_balance_bound(p, rules, part.volunteers, part.slots, part.pairs)
               for lp, part in zip(lps, parts, strict=True))
    assert sum(lps) <= best


def hotel(days: int = 7, people: int = 3, weekly: int = 5) -> dict:
    """Security on every shift of a week, `people` guards who may work 5 shifts a week."""
    return make_problem(
        days=days, sites=[site("h", "hotel", ["sec"])],
        demand=[demand("sec", sh, 1, 1, {"security": 1}) for sh in ("M", "A", "N")],
        volunteers=[volunteer(f"g{i}", skills=["security"]) for i in range(people)],
        rules=[{"type": "max_shifts_per_week", "count": weekly}])


def test_flow_bound_counts_scarce_skills() -> None:
    p = parse_problem(hotel())
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    # 21 shifts need a guard; 3 guards × 5 shifts a week = 15: 6 short, both as head
    # count and as the security requirement.
    assert flow_coverage_bound(p, rules, [s.index for s in p.slots], pairs) == (6, 6)


def test_flow_bound_sees_one_shift_a_day() -> None:
    p = parse_problem(hotel(days=2, people=2, weekly=7))
    rules = instantiate(p)
    # 6 shifts in 2 days; 2 guards, one shift a day each: 4 coverable.
    heads, skills = flow_coverage_bound(p, rules, [s.index for s in p.slots],
                                        eligible_pairs(p, rules))
    assert (heads, skills) == (2, 2)


def test_flow_bound_is_zero_when_supply_suffices() -> None:
    p = parse_problem(hotel(people=5))
    rules = instantiate(p)
    assert flow_coverage_bound(p, rules, [s.index for s in p.slots],
                               eligible_pairs(p, rules)) == (0, 0)


def test_balance_bound_water_fills_under_caps() -> None:
    doc = make_problem(days=5, volunteers=[volunteer("a", max_shifts=2), "b", "c"],
                       rules=[{"type": "balance", "weight": 3}])
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    vols = [v.index for v in p.volunteers]
    # 9 shifts: a is capped at 2, the other 7 split 4 + 3: 4 + 16 + 9 = 29, weight 3.
    assert balance_bound(p, rules, vols, pairs, 9) == 3 * 29
    # More work than the caps allow: everyone at their cap (2, 5, 5 days).
    assert balance_bound(p, rules, vols, pairs, 100) == 3 * (4 + 25 + 25)
    assert balance_bound(p, rules, vols, pairs, 0) == 0


def test_lns_path_reports_a_valid_bound() -> None:
    # A part above the whole-model size goes to LNS; its bound comes from flow + balance.
    posts = ["sec", "med", "log"]
    doc = make_problem(
        days=14, sites=[site("h", "hotel", posts)],
        demand=[demand(post, sh, 2, 2, {"security": 1} if post == "sec" else {})
                for post in posts for sh in ("M", "A", "N")],
        volunteers=[volunteer(f"g{i}", skills=["security"] if i < 4 else [], max_shifts=9)
                    for i in range(40)],
        rules=[{"type": "min_rest_hours", "hours": 12},
               {"type": "max_shifts_per_week", "count": 5}, {"type": "balance", "weight": 1}])
    p = parse_problem(doc)
    rules = instantiate(p)
    [part] = decompose(p, eligible_pairs(p, rules))
    assert len(part.pairs) > WHOLE_MODEL_PAIRS
    sol = solve_doc(doc, time_limit=6, workers=1)
    assert recheck(doc, sol).ok
    # 252 shifts need people; 40 × 9 = 360 possible but security is short: 4 guards can
    # give at most 4 × 9 = 36 of the 42 security places, so at least 6 stay open.
    heads, skills = flow_coverage_bound(p, rules, [s.index for s in p.slots],
                                        eligible_pairs(p, rules))
    assert skills == 6
    assert 6 * 1000 <= sol["bound"] <= sol["objective"]


def test_head_balance_flow_prices_shortage_against_balance() -> None:
    from solver.bound import head_balance_bound

    def bound(coverage_weight: int) -> int:
        doc = make_problem(days=4, volunteers=["a", "b"], coverage_weight=coverage_weight,
                           rules=[{"type": "balance", "weight": 1}])
        p = parse_problem(doc)
        rules = instantiate(p)
        pairs = eligible_pairs(p, rules)
        return head_balance_bound(p, rules, [v.index for v in p.volunteers],
                                  [s.index for s in p.slots], pairs)

    # One person a day for 4 days, two people: 2 shifts each costs 2² + 2² = 8.
    assert bound(1000) == 8
    # A missing person costing 2: covering all four costs 1+3+1+3 = 8, three 1+1+3 + 2 = 7,
    # two 1+1 + 2+2 = 6 (a second shift, at 3, costs more than leaving the slot open).
    assert bound(2) == 6


def party_member_at_two_posts() -> dict:
    """Post a needs a Party member, post b anyone; p (Party) may work either, q only a.

    Each requirement alone is coverable (p at a for the Party flow, p at b and q at a for
    the head-count flow), but p cannot be at both: one unit stays short.
    """
    return make_problem(
        sites=[site("a", posts=["ap"]), site("b", posts=["bp"])],
        demand=[demand("ap", "M", 1, 1, {"party": 1}), demand("bp", "M", 1, 1)],
        volunteers=[volunteer("p", skills=["party"]), volunteer("q", sites=["a"])],
        rules=[{"type": "balance", "weight": 1}])


def test_joint_lp_counts_a_party_member_once() -> None:
    doc = party_member_at_two_posts()
    best = brute_force(doc)
    assert best == 1000 + 1  # p at a, b empty (p at b and q at a: 1000 + 2)
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    slots = [s.index for s in p.slots]
    vols = [v.index for v in p.volunteers]
    assert flow_coverage_bound(p, rules, slots, pairs) == (0, 0)
    assert head_balance_bound(p, rules, vols, slots, pairs) == 2
    assert joint_lp_bound(p, rules, slots, pairs) == best
    [part] = decompose(p, pairs)
    assert part_bound(p, rules, part, best) == best


def test_a_part_that_stalls_above_its_flow_bound_gets_the_joint_lp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = sys.modules["solver.solve"]  # `solver.solve` the name is the function
    monkeypatch.setattr(module, "WHOLE_MODEL_PAIRS", 0)  # the tiny part goes to LNS
    solved: list[int] = []
    real = module.joint_lp_bound

    def counted(*args: object, **kw: object) -> int:
        solved.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "joint_lp_bound", counted)
    # The flows leave 2 of the optimum's 1001 bounded; no search can close it.
    doc = party_member_at_two_posts()
    sol = solve_doc(doc, time_limit=20, workers=1)
    assert recheck(doc, sol).ok
    # Slices that gain nothing above a 2-point bound: the LP is solved once, in a slice,
    # proves the roster optimal and ends the search.
    assert solved == [1]
    assert sol["status"] == "OPTIMAL" and sol["bound"] == sol["objective"] == 1001


@pytest.mark.parametrize("seed", range(5))
def test_a_parts_flows_are_solved_once_and_its_bound_still_follows_the_incumbent(
        monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    # The flows do not depend on the incumbent; the separate bound (shortage at most
    # incumbent / coverage weight) does, so a cached part gives what a fresh one gives.
    import sys

    module = sys.modules["solver.solve"]
    doc = tiny_problem(seed)
    best = brute_force(doc)
    assert best is not None
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = eligible_pairs(p, rules)
    calls: list[str] = []
    for name in ("flow_coverage_bound", "head_balance_bound"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=real, _n=name: calls.append(_n) or _f(*a))
    cached = decompose(p, pairs)
    for incumbent in (10 * best + 5000, best):
        fresh = decompose(p, pairs)
        assert [part_bound(p, rules, c, incumbent, lp=False) for c in cached] == [
            part_bound(p, rules, f, incumbent, lp=False) for f in fresh]
    # Twice per part for the fresh ones (two rounds), once for the cached ones.
    assert len(calls) == 2 * 3 * len(cached)
