"""The rule catalogue: each rule binds when it should, and only then.

For every rule: the validator reports a violation with the right units and cost (hard or
soft), and the solver respects it (no hard violation, soft ones traded off against the
cost of leaving demand uncovered); where it does not bind, nothing is reported and the
solver uses the freedom.  Expected objectives are worked out by hand in the comments.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from solver.greedy import eligible_pairs, unary
from solver.problem import ProblemError, parse_problem
from solver.rules import IMPLICIT, LISTED, instantiate
from solver.validate import Report, check
from tests.fixtures.problems import (
    check_rows,
    date,
    demand,
    make_problem,
    model_objective,
    preference,
    recheck,
    rows_of,
    shift,
    site,
    solve_doc,
    volunteer,
)

CJK = re.compile(r"[\u4e00-\u9fff]")
W = 1000  # the default coverage weight: one missing person


def viol(report: Report, rtype: str) -> list[Any]:
    return [v for v in report.violations if v.rule.split("#")[0] == rtype]


def solved(doc: dict[str, Any], objective: int, **kw: Any) -> dict[str, Any]:
    """Solve, check the roster independently, and compare with the hand-computed optimum."""
    sol = solve_doc(doc, **kw)
    assert sol["status"] == "OPTIMAL", sol["status"]
    rep = recheck(doc, sol)
    assert rep.ok, [v.message.en for v in rep.hard]
    assert sol["objective"] == rep.objective  # recomputed by the validator
    assert sol["objective"] == objective, (sol["objective"], sol["assignments"])
    assert sol["bound"] == objective
    assert sum(p["cost"] for p in sol["penalties"]) == objective
    return sol


def n_assigned(sol: dict[str, Any]) -> int:
    return len(sol["assignments"])


# ---------------------------------------------------------------------------------------
# one_shift_per_day
# ---------------------------------------------------------------------------------------


def two_shift_day(volunteers: list[Any], rules: list[dict[str, Any]] | None = None,
                  **kw: Any) -> dict[str, Any]:
    return make_problem(days=1, demand=[demand("p1", "M"), demand("p1", "A")],
                        volunteers=volunteers, rules=rules, **kw)


@pytest.mark.parametrize("rules, key", [(None, "one_shift_per_day"),
                                        ([{"type": "one_shift_per_day"}], "one_shift_per_day#0")])
def test_one_shift_per_day_hard_binds(rules: Any, key: str) -> None:
    doc = two_shift_day(["v1"], rules)
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 0, "A", "p1")])
    [v] = viol(rep, "one_shift_per_day")
    assert (v.rule, v.hard, v.units, v.cost, v.volunteer) == (key, True, 1, 0, "v1")
    assert not rep.ok and rep.objective == 0
    # one person, two shifts on one date: one of them stays empty = 1 × 1000
    sol = solved(doc, 1 * W)
    assert n_assigned(sol) == 1


def test_one_shift_per_day_does_not_bind_across_dates_or_with_enough_people() -> None:
    doc = two_shift_day(["v1", "v2"])
    assert check_rows(doc, [("v1", 0, "M", "p1"), ("v2", 0, "A", "p1")]).violations == []
    sol = solved(doc, 0)
    assert {a["volunteer"] for a in sol["assignments"]} == {"v1", "v2"}
    # A of 04-04 (16-24) and N of 04-05 (00-08) start on different dates
    doc = make_problem(days=2, demand=[demand("p1", "A", dates=[0]), demand("p1", "N", dates=[1])],
                       volunteers=["v1"])
    assert check_rows(doc, [("v1", 0, "A", "p1"), ("v1", 1, "N", "p1")]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_one_shift_per_day_soft_costs_weight_per_extra_shift() -> None:
    rules = [{"type": "one_shift_per_day", "weight": 5}]
    doc = make_problem(days=1, demand=[demand("p1", s) for s in "MAN"], volunteers=["v1"],
                       rules=rules)
    rep = check_rows(doc, [("v1", 0, s, "p1") for s in "NMA"])
    [v] = viol(rep, "one_shift_per_day")
    # three shifts on one date: 2 units × 5
    assert (v.hard, v.units, v.cost) == (False, 2, 10)
    assert rep.ok and rep.objective == 10
    # 10 for working all three beats 1000 for each empty shift
    sol = solved(doc, 10)
    assert n_assigned(sol) == 3
    assert sol["penalties"] == [{"rule": "one_shift_per_day#0", "cost": 10}]


def test_one_shift_per_day_soft_trades_off_against_cheap_coverage() -> None:
    # weight 5 > coverage_weight 3: leave the second shift empty, cost 3
    doc = two_shift_day(["v1"], [{"type": "one_shift_per_day", "weight": 5}], coverage_weight=3)
    assert n_assigned(solved(doc, 3)) == 1


def test_one_shift_per_day_with_applies_to_keeps_others_hard() -> None:
    doc = two_shift_day(["v1"], [{"type": "one_shift_per_day", "weight": 5,
                                  "applies_to": "senior"}])
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 0, "A", "p1")])
    assert [v.hard for v in viol(rep, "one_shift_per_day")] == [True]


# ---------------------------------------------------------------------------------------
# min_rest_hours
# ---------------------------------------------------------------------------------------


def evening_then_morning(hours: int, weight: int | None = None, **kw: Any) -> dict[str, Any]:
    """A of 04-04 ends 24:00, M of 04-05 starts 08:00: exactly 8 hours of rest."""
    rule: dict[str, Any] = {"type": "min_rest_hours", "hours": hours}
    if weight is not None:
        rule["weight"] = weight
    return make_problem(days=2, demand=[demand("p1", "A", dates=[0]), demand("p1", "M", dates=[1])],
                        volunteers=["v1"], rules=[rule], **kw)


ROWS_A_THEN_M = [("v1", 0, "A", "p1"), ("v1", 1, "M", "p1")]


def test_min_rest_hours_hard_binds() -> None:
    doc = evening_then_morning(12)
    [v] = viol(check_rows(doc, ROWS_A_THEN_M), "min_rest_hours")
    assert (v.rule, v.hard, v.units, v.cost) == ("min_rest_hours#0", True, 1, 0)
    assert n_assigned(solved(doc, 1 * W)) == 1


def test_min_rest_hours_exactly_enough_does_not_bind() -> None:
    doc = evening_then_morning(8)
    assert check_rows(doc, ROWS_A_THEN_M).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_min_rest_hours_soft() -> None:
    doc = evening_then_morning(12, weight=7)
    [v] = viol(check_rows(doc, ROWS_A_THEN_M), "min_rest_hours")
    assert (v.hard, v.units, v.cost) == (False, 1, 7)
    assert n_assigned(solved(doc, 7)) == 2  # 7 < 1000
    # 7 > coverage_weight 5: rather leave one shift empty
    assert n_assigned(solved(evening_then_morning(12, weight=7, coverage_weight=5), 5)) == 1


def test_min_rest_hours_counts_each_pair_too_close() -> None:
    # M 04-04, M 04-05, M 04-06 with 24 h rest: gaps of 16 h twice -> 2 units
    doc = make_problem(days=3, volunteers=["v1"],
                       rules=[{"type": "min_rest_hours", "hours": 24, "weight": 2}])
    [*vs] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]), "min_rest_hours")
    assert sum(v.units for v in vs) == 2 and sum(v.cost for v in vs) == 4
    assert n_assigned(solved(doc, 4)) == 3


def test_min_rest_hours_longer_than_three_days() -> None:
    # M shifts k days apart rest 24k - 8 h; >= 100 h needs k >= 5, so in 5 days only one
    # of the five M shifts can be worked: 4 × 1000
    doc = make_problem(days=5, volunteers=["v1"], rules=[{"type": "min_rest_hours", "hours": 100}])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 4, "M", "p1")]), "min_rest_hours")
    assert v.hard
    assert n_assigned(solved(doc, 4 * W)) == 1


# ---------------------------------------------------------------------------------------
# max_consecutive_days
# ---------------------------------------------------------------------------------------


def mornings(days: int, rule: dict[str, Any], volunteers: Any = None, **kw: Any
             ) -> dict[str, Any]:
    return make_problem(days=days, volunteers=volunteers or ["v1"], rules=[rule], **kw)


def test_max_consecutive_days_hard_binds() -> None:
    doc = mornings(3, {"type": "max_consecutive_days", "days": 2})
    [v] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]), "max_consecutive_days")
    assert (v.hard, v.units) == (True, 1)
    assert n_assigned(solved(doc, 1 * W)) == 2


def test_max_consecutive_days_does_not_bind() -> None:
    doc = mornings(3, {"type": "max_consecutive_days", "days": 3})
    assert check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]).violations == []
    assert n_assigned(solved(doc, 0)) == 3
    # runs of two separated by a free day never exceed 2
    doc = mornings(5, {"type": "max_consecutive_days", "days": 2})
    rep = check_rows(doc, [("v1", d, "M", "p1") for d in (0, 1, 3, 4)])
    assert viol(rep, "max_consecutive_days") == [] and rep.objective == 1 * W
    # 5 mornings, runs of at most 2: the best is 4 shifts (days 0,1,3,4): one empty
    assert n_assigned(solved(doc, 1 * W)) == 4


def test_max_consecutive_days_soft_counts_days_over_the_run() -> None:
    doc = mornings(5, {"type": "max_consecutive_days", "days": 2, "weight": 4})
    [v] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(5)]), "max_consecutive_days")
    # a run of 5 with a limit of 2: 3 units × 4
    assert (v.hard, v.units, v.cost) == (False, 3, 12)
    assert n_assigned(solved(doc, 12)) == 5


def test_max_consecutive_days_counts_start_dates_of_overnight_shifts() -> None:
    # A of 04-04 runs into 04-05 but counts only for 04-04: A d0 + M d1 is a run of 2
    doc = make_problem(days=2, demand=[demand("p1", "A", dates=[0]), demand("p1", "M", dates=[1])],
                       volunteers=["v1"], rules=[{"type": "max_consecutive_days", "days": 1}])
    [v] = viol(check_rows(doc, ROWS_A_THEN_M), "max_consecutive_days")
    assert v.units == 1


# ---------------------------------------------------------------------------------------
# max_shifts_per_week
# ---------------------------------------------------------------------------------------


def test_max_shifts_per_week_hard_binds() -> None:
    doc = mornings(3, {"type": "max_shifts_per_week", "count": 2})
    [v] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]), "max_shifts_per_week")
    assert (v.hard, v.units) == (True, 1)
    assert n_assigned(solved(doc, 1 * W)) == 2


def test_max_shifts_per_week_does_not_bind() -> None:
    doc = mornings(3, {"type": "max_shifts_per_week", "count": 3})
    assert check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]).violations == []
    assert n_assigned(solved(doc, 0)) == 3


def test_max_shifts_per_week_soft() -> None:
    doc = mornings(3, {"type": "max_shifts_per_week", "count": 2, "weight": 3})
    [v] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]), "max_shifts_per_week")
    assert (v.hard, v.units, v.cost) == (False, 1, 3)
    assert n_assigned(solved(doc, 3)) == 3


def test_max_shifts_per_week_blocks_from_start_and_short_last_week() -> None:
    doc = mornings(8, {"type": "max_shifts_per_week", "count": 1})
    # days 6 and 7 are in different 7-day blocks (04-04..04-10, then 04-11 alone)
    rep = check_rows(doc, [("v1", 6, "M", "p1"), ("v1", 7, "M", "p1")])
    assert rep.ok and viol(rep, "max_shifts_per_week") == []
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 6, "M", "p1")]),
               "max_shifts_per_week")
    assert v.units == 1
    # one shift in each of the two weeks, 6 of the 8 mornings empty
    sol = solved(doc, 6 * W)
    assert sorted(a["date"] >= date(7) for a in sol["assignments"]) == [False, True]


# ---------------------------------------------------------------------------------------
# max_shift_per_week
# ---------------------------------------------------------------------------------------


def nights(days: int, rule: dict[str, Any], volunteers: Any = None, shift_id: str = "N"
           ) -> dict[str, Any]:
    return make_problem(days=days, demand=[demand("p1", shift_id)],
                        volunteers=volunteers or ["v1"], rules=[rule])


def test_max_shift_per_week_hard_binds() -> None:
    doc = nights(2, {"type": "max_shift_per_week", "shift": "N", "count": 1})
    [v] = viol(check_rows(doc, [("v1", d, "N", "p1") for d in range(2)]), "max_shift_per_week")
    assert (v.hard, v.units) == (True, 1)
    assert n_assigned(solved(doc, 1 * W)) == 1


def test_max_shift_per_week_counts_only_its_shift() -> None:
    doc = nights(2, {"type": "max_shift_per_week", "shift": "N", "count": 1}, shift_id="M")
    assert check_rows(doc, [("v1", d, "M", "p1") for d in range(2)]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_max_shift_per_week_soft() -> None:
    doc = nights(3, {"type": "max_shift_per_week", "shift": "N", "count": 1, "weight": 2})
    [v] = viol(check_rows(doc, [("v1", d, "N", "p1") for d in range(3)]), "max_shift_per_week")
    assert (v.hard, v.units, v.cost) == (False, 2, 4)
    assert n_assigned(solved(doc, 4)) == 3


NO_NIGHTS_FOR_SENIORS = {"type": "max_shift_per_week", "shift": "N", "count": 0,
                         "applies_to": "senior"}


def test_max_shift_per_week_applies_to_binds_only_tagged_volunteers() -> None:
    senior = volunteer("old", skills=["senior"])
    doc = nights(1, NO_NIGHTS_FOR_SENIORS, volunteers=[senior])
    [v] = viol(check_rows(doc, [("old", 0, "N", "p1")]), "max_shift_per_week")
    assert (v.hard, v.units, v.volunteer) == (True, 1, "old")
    assert n_assigned(solved(doc, 1 * W)) == 0
    doc = nights(1, NO_NIGHTS_FOR_SENIORS, volunteers=[senior, volunteer("young")])
    assert check_rows(doc, [("young", 0, "N", "p1")]).violations == []
    sol = solved(doc, 0)
    assert rows_of(sol) == {("young", date(0), "N", "p1")}


def test_only_a_hard_weekly_cap_of_zero_takes_pairs_away() -> None:
    # Eligibility asks only the rules that may forbid a pair (millions of calls on a city):
    # a hard cap of 0 does, a cap above 0 or a soft one never does.
    senior = volunteer("old", skills=["senior"])
    for rule, filters in ((NO_NIGHTS_FOR_SENIORS, True),
                          (dict(NO_NIGHTS_FOR_SENIORS, count=1), False),
                          (dict(NO_NIGHTS_FOR_SENIORS, weight=6), False)):
        p = parse_problem(nights(1, rule, volunteers=[senior, volunteer("young")]))
        rules = instantiate(p)
        [cap] = [r for r in rules if r.type == "max_shift_per_week"]
        assert cap.filters() is filters
        assert cap in unary(rules) if filters else cap not in unary(rules)
        who = {p.volunteers[v].id for v, _ in eligible_pairs(p, rules)}
        assert who == ({"young"} if filters else {"old", "young"})


def test_max_shift_per_week_applies_to_soft() -> None:
    rule = dict(NO_NIGHTS_FOR_SENIORS, count=1, weight=6)
    doc = nights(2, rule, volunteers=[volunteer("old", skills=["senior"]), volunteer("young")])
    # the young volunteer works both nights for free; old would cost 6 on the second
    rep = check_rows(doc, [("old", 0, "N", "p1"), ("old", 1, "N", "p1")])
    assert [(v.units, v.cost) for v in viol(rep, "max_shift_per_week")] == [(1, 6)]
    assert check_rows(doc, [("young", 0, "N", "p1"), ("young", 1, "N", "p1")]).violations == []
    solved(doc, 0)


# ---------------------------------------------------------------------------------------
# closed_loop
# ---------------------------------------------------------------------------------------


LOOP_SITES = [site("h", "hotel", ["h-a", "h-b"]), site("c", "checkpoint", ["c-p"]),
              site("c2", "checkpoint", ["c2-p"])]


def two_sites(first: str, second: str, rule: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """`first` on 04-04 M, `second` on 04-05 M, one volunteer."""
    return make_problem(days=2, sites=LOOP_SITES, volunteers=["v1"], rules=[rule],
                        demand=[demand(first, "M", dates=[0]), demand(second, "M", dates=[1])],
                        **kw)


@pytest.mark.parametrize("rule, first, second", [
    ({"type": "closed_loop", "site_kinds": ["hotel"]}, "h-a", "c-p"),
    ({"type": "closed_loop", "sites": ["c"]}, "c2-p", "c-p"),
])
def test_closed_loop_hard_binds(rule: dict[str, Any], first: str, second: str) -> None:
    doc = two_sites(first, second, rule)
    [v] = viol(check_rows(doc, [("v1", 0, "M", first), ("v1", 1, "M", second)]), "closed_loop")
    assert (v.hard, v.units, v.volunteer) == (True, 1, "v1")
    assert n_assigned(solved(doc, 1 * W)) == 1


@pytest.mark.parametrize("rule, first, second", [
    ({"type": "closed_loop", "site_kinds": ["hotel"]}, "c-p", "c2-p"),  # no hotel involved
    ({"type": "closed_loop", "site_kinds": ["hotel"]}, "h-a", "h-b"),  # same hotel, two posts
    ({"type": "closed_loop", "sites": ["h"]}, "c-p", "c2-p"),
])
def test_closed_loop_does_not_bind(rule: dict[str, Any], first: str, second: str) -> None:
    doc = two_sites(first, second, rule)
    assert check_rows(doc, [("v1", 0, "M", first), ("v1", 1, "M", second)]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_closed_loop_soft_counts_pairs_with_a_closed_site() -> None:
    rule = {"type": "closed_loop", "site_kinds": ["hotel"], "weight": 9}
    doc = make_problem(days=3, sites=LOOP_SITES, volunteers=["v1"], rules=[rule],
                       demand=[demand("h-a", "M", dates=[0]), demand("c-p", "M", dates=[1]),
                               demand("c2-p", "M", dates=[2])])
    rep = check_rows(doc, [("v1", 0, "M", "h-a"), ("v1", 1, "M", "c-p"), ("v1", 2, "M", "c2-p")])
    # (hotel, c) and (hotel, c2) break the loop; (c, c2) does not: 2 units × 9
    vs = viol(rep, "closed_loop")
    assert [(v.hard, v.units, v.cost) for v in vs] == [(False, 1, 9)] * 2
    assert n_assigned(solved(doc, 18)) == 3


# ---------------------------------------------------------------------------------------
# balance
# ---------------------------------------------------------------------------------------


BALANCE = {"type": "balance", "weight": 1}


def test_balance_costs_squares() -> None:
    doc = mornings(2, BALANCE, volunteers=["v1", "v2"])
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1")])
    [v] = viol(rep, "balance")
    assert (v.hard, v.units, v.cost) == (False, 4, 4)  # 2²
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v2", 1, "M", "p1")])
    assert rep.objective == 2  # 1² + 1²
    # spread: 1 + 1 = 2 instead of 2² = 4
    sol = solved(doc, 2)
    assert {a["volunteer"] for a in sol["assignments"]} == {"v1", "v2"}


def test_balance_trades_off_against_coverage() -> None:
    # one volunteer, 3 mornings, coverage_weight 2: k shifts cost k² + 2 (3 - k)
    # k = 0: 6, k = 1: 5, k = 2: 6, k = 3: 9 -> one shift, objective 5
    doc = mornings(3, BALANCE, coverage_weight=2)
    assert n_assigned(solved(doc, 5)) == 1


def test_balance_absent_does_not_bind() -> None:
    doc = make_problem(days=2, volunteers=["v1", "v2"])
    assert check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1")]).violations == []
    solved(doc, 0)


def test_balance_applies_to_tagged_volunteers_only() -> None:
    rule = dict(BALANCE, applies_to="party")
    doc = mornings(2, rule, volunteers=[volunteer("v1", skills=["party"]), volunteer("v2")])
    assert check_rows(doc, [("v2", 0, "M", "p1"), ("v2", 1, "M", "p1")]).violations == []
    assert check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1")]).objective == 4
    sol = solved(doc, 0)
    assert {a["volunteer"] for a in sol["assignments"]} == {"v2"}


def test_balance_is_soft_only() -> None:
    with pytest.raises(ProblemError, match=r"^rules\[0\]\.weight: balance is soft only"):
        parse_problem(make_problem(rules=[{"type": "balance"}]))


# ---------------------------------------------------------------------------------------
# implicit: availability, allowed sites, no overlap
# ---------------------------------------------------------------------------------------


def test_availability_whole_day() -> None:
    doc = make_problem(days=2, volunteers=[volunteer("v1", unavailable=[(0, None)])])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1")]), "availability")
    assert (v.rule, v.hard, v.units) == ("availability", True, 1)
    assert check_rows(doc, [("v1", 1, "M", "p1")]).ok
    sol = solved(doc, 1 * W)
    assert rows_of(sol) == {("v1", date(1), "M", "p1")}


def test_availability_single_shift() -> None:
    doc = two_shift_day([volunteer("v1", unavailable=[(0, "M")]), "v2"])
    assert viol(check_rows(doc, [("v1", 0, "M", "p1")]), "availability")
    assert check_rows(doc, [("v1", 0, "A", "p1"), ("v2", 0, "M", "p1")]).violations == []
    sol = solved(doc, 0)
    assert rows_of(sol) == {("v1", date(0), "A", "p1"), ("v2", date(0), "M", "p1")}


def test_allowed_sites() -> None:
    sites = [site("s1", posts=["p1"]), site("s2", posts=["p2"])]
    doc = make_problem(sites=sites, demand=[demand("p1", "M")],
                       volunteers=[volunteer("v1", sites=["s2"])])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1")]), "allowed_sites")
    assert (v.hard, v.units) == (True, 1)
    assert n_assigned(solved(doc, 1 * W)) == 0
    doc = make_problem(sites=sites, demand=[demand("p2", "M")],
                       volunteers=[volunteer("v1", sites=["s2"])])
    assert check_rows(doc, [("v1", 0, "M", "p2")]).violations == []
    assert n_assigned(solved(doc, 0)) == 1


OVERNIGHT = [shift("L", "22:00", "06:00"), shift("N", "00:00", "08:00"), shift("M", "08:00", "16:00")]


def test_no_overlap_overnight_into_next_day() -> None:
    # L of 04-04 runs 22:00-06:00 into 04-05, N of 04-05 runs 00:00-08:00: they overlap,
    # although they start on different dates (one_shift_per_day is not broken)
    doc = make_problem(days=2, shifts=OVERNIGHT, volunteers=["v1"],
                       demand=[demand("p1", "L", dates=[0]), demand("p1", "N", dates=[1])])
    rep = check_rows(doc, [("v1", 0, "L", "p1"), ("v1", 1, "N", "p1")])
    [v] = viol(rep, "no_overlap")
    assert (v.hard, v.units) == (True, 1)
    assert viol(rep, "one_shift_per_day") == []
    assert n_assigned(solved(doc, 1 * W)) == 1


def test_no_overlap_does_not_bind_back_to_back() -> None:
    # L of 04-04 ends 06:00 on 04-05, M of 04-05 starts 08:00
    doc = make_problem(days=2, shifts=OVERNIGHT, volunteers=["v1"],
                       demand=[demand("p1", "L", dates=[0]), demand("p1", "M", dates=[1])])
    assert check_rows(doc, [("v1", 0, "L", "p1"), ("v1", 1, "M", "p1")]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_no_overlap_one_post_at_a_time_even_with_soft_one_shift_per_day() -> None:
    doc = make_problem(sites=[site("s1", posts=["p1", "p2"])], volunteers=["v1"],
                       demand=[demand("p1", "M"), demand("p2", "M")],
                       rules=[{"type": "one_shift_per_day", "weight": 1}])
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 0, "M", "p2")])
    assert [(v.hard, v.units) for v in viol(rep, "no_overlap")] == [(True, 1)]
    assert n_assigned(solved(doc, 1 * W)) == 1


# ---------------------------------------------------------------------------------------
# implicit: personal limits, demand max, coverage
# ---------------------------------------------------------------------------------------


def test_max_shifts_binds() -> None:
    doc = make_problem(days=3, volunteers=[volunteer("v1", max_shifts=1)])
    [v] = viol(check_rows(doc, [("v1", d, "M", "p1") for d in range(3)]), "max_shifts")
    assert (v.hard, v.units) == (True, 2)  # 3 shifts, max 1
    assert n_assigned(solved(doc, 2 * W)) == 1


def test_max_shifts_zero_and_not_binding() -> None:
    doc = make_problem(days=2, volunteers=[volunteer("v1", max_shifts=0)])
    assert n_assigned(solved(doc, 2 * W)) == 0
    doc = make_problem(days=2, volunteers=[volunteer("v1", max_shifts=5)])
    assert check_rows(doc, [("v1", d, "M", "p1") for d in range(2)]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_min_shifts_binds() -> None:
    doc = make_problem(days=2, volunteers=[volunteer("v1", min_shifts=2), "v2"])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1"), ("v2", 1, "M", "p1")]), "min_shifts")
    assert (v.hard, v.units, v.volunteer) == (True, 1, "v1")
    sol = solved(doc, 0)
    assert {a["volunteer"] for a in sol["assignments"]} == {"v1"}


def test_min_shifts_beats_balance() -> None:
    # without min_shifts balance spreads 1² + 1² = 2; v1 must work both: 2² = 4
    doc = make_problem(days=2, volunteers=[volunteer("v1", min_shifts=2), "v2"], rules=[BALANCE])
    sol = solved(doc, 4)
    assert {a["volunteer"] for a in sol["assignments"]} == {"v1"}


def test_min_shifts_beats_a_preference() -> None:
    # nobody is needed (min 0, max 1) and v1 does not want to work, but must work once:
    # the only valid roster costs the preference weight, 5
    pref = preference(0, want=False, weight=5)
    doc = make_problem(demand=[demand("p1", "M", min=0, max=1)],
                       volunteers=[volunteer("v1", min_shifts=1, preferences=[pref])])
    assert n_assigned(solved(doc, 5)) == 1


def test_min_shifts_not_binding() -> None:
    doc = make_problem(days=2, volunteers=[volunteer("v1", min_shifts=1), "v2"])
    assert check_rows(doc, [("v1", 0, "M", "p1"), ("v2", 1, "M", "p1")]).violations == []
    assert n_assigned(solved(doc, 0)) == 2


def test_demand_max_binds() -> None:
    # all three want to work 04-04; only two places: one wish unmet, cost 1
    vols = [volunteer(f"v{i}", preferences=[preference(0, want=True)]) for i in (1, 2, 3)]
    doc = make_problem(demand=[demand("p1", "M", min=1, max=2)], volunteers=vols)
    rep = check_rows(doc, [(f"v{i}", 0, "M", "p1") for i in (1, 2, 3)])
    [v] = viol(rep, "demand_max")
    assert (v.hard, v.units) == (True, 1)
    assert n_assigned(solved(doc, 1)) == 2


def test_demand_max_does_not_bind() -> None:
    vols = [volunteer(f"v{i}", preferences=[preference(0, want=True)]) for i in (1, 2, 3)]
    doc = make_problem(demand=[demand("p1", "M", min=1, max=3)], volunteers=vols)
    assert check_rows(doc, [(f"v{i}", 0, "M", "p1") for i in (1, 2, 3)]).violations == []
    assert n_assigned(solved(doc, 0)) == 3


def test_nobody_where_no_demand_asks() -> None:
    doc = make_problem(demand=[demand("p1", "M")])
    with pytest.raises(ProblemError, match=r"^assignments\[1\]: no demand asks for p1 A"):
        check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 0, "A", "p1")])
    doc = make_problem(demand=[demand("p1", "M", min=0, max=0)], volunteers=["v1"])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1")]), "demand_max")
    assert v.hard
    assert n_assigned(solved(doc, 0)) == 0


def test_duplicate_assignment_is_hard() -> None:
    doc = make_problem(demand=[demand("p1", "M", min=2)])
    rep = check_rows(doc, [("v1", 0, "M", "p1"), ("v1", 0, "M", "p1")])
    assert [v.rule for v in rep.hard].count("duplicate") == 1


def test_coverage_counts_missing_people_and_skills() -> None:
    doc = make_problem(demand=[demand("p1", "M", min=2, requires={"party": 1, "medical": 1})],
                       volunteers=["b", "c"])
    rep = check_rows(doc, [("b", 0, "M", "p1")])
    cov = viol(rep, "coverage")
    # one person short, no Party member, no medic: 3 × 1000
    assert [(v.hard, v.units, v.cost) for v in cov] == [(False, 1, W)] * 3
    assert rep.objective == 3 * W
    assert any("党员" in v.message.zh for v in cov) and any("医护" in v.message.zh for v in cov)
    # nobody has the skills: 2 people on duty, party and medical missing = 2 × 1000
    sol = solved(doc, 2 * W)
    assert n_assigned(sol) == 2
    assert {(u["skill"], u["missing"]) for u in sol["unmet"]} == {("party", 1), ("medical", 1)}


def test_requires_one_person_counts_for_two_skills() -> None:
    both = volunteer("a", skills=["party", "medical"])
    doc = make_problem(demand=[demand("p1", "M", min=2, requires={"party": 1, "medical": 1})],
                       volunteers=[both, "b", "c"])
    assert check_rows(doc, [("a", 0, "M", "p1"), ("b", 0, "M", "p1")]).violations == []
    sol = solved(doc, 0)
    assert "a" in {x["volunteer"] for x in sol["assignments"]} and sol["unmet"] == []


def test_requires_two_of_a_skill() -> None:
    doc = make_problem(demand=[demand("p1", "M", min=2, requires={"medical": 2})],
                       volunteers=[volunteer("a", skills=["medical"]), "b"])
    [v] = viol(check_rows(doc, [("a", 0, "M", "p1"), ("b", 0, "M", "p1")]), "coverage")
    assert (v.units, v.cost) == (1, W)
    solved(doc, 1 * W)


# ---------------------------------------------------------------------------------------
# implicit: preferences
# ---------------------------------------------------------------------------------------


TWO_POSTS = [site("s1", posts=["p1", "p2"])]


def test_preference_want_with_shift_and_post() -> None:
    pref = preference(0, want=True, shift="M", post="p2", weight=5)
    doc = make_problem(sites=TWO_POSTS, demand=[demand("p1", "M"), demand("p2", "M")],
                       volunteers=[volunteer("v1", preferences=[pref]), "v2"])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1"), ("v2", 0, "M", "p2")]), "preferences")
    assert (v.hard, v.units, v.cost, v.volunteer) == (False, 1, 5, "v1")
    assert check_rows(doc, [("v1", 0, "M", "p2"), ("v2", 0, "M", "p1")]).violations == []
    sol = solved(doc, 0)
    assert ("v1", date(0), "M", "p2") in rows_of(sol)


def test_preference_want_that_cannot_be_met_costs_its_weight() -> None:
    # v1 wants an A shift; nobody asks for one: the wish costs 4 whatever the roster
    doc = make_problem(volunteers=[volunteer("v1", preferences=[
        preference(0, want=True, shift="A", weight=4)])])
    assert [v.cost for v in viol(check_rows(doc, []), "preferences")] == [4]
    solved(doc, 4)


def test_preference_want_false() -> None:
    pref = preference(0, want=False, shift="M", weight=3)
    doc = make_problem(volunteers=[volunteer("v1", preferences=[pref]), "v2"])
    [v] = viol(check_rows(doc, [("v1", 0, "M", "p1")]), "preferences")
    assert (v.hard, v.units, v.cost) == (False, 1, 3)
    assert rows_of(solved(doc, 0)) == {("v2", date(0), "M", "p1")}
    # alone, v1 still works (3 < 1000) ...
    doc = make_problem(volunteers=[volunteer("v1", preferences=[pref])])
    assert n_assigned(solved(doc, 3)) == 1
    # ... unless an empty post is cheaper than the unwanted shift
    doc = make_problem(volunteers=[volunteer("v1", preferences=[pref])], coverage_weight=2)
    assert n_assigned(solved(doc, 2)) == 0


def test_preference_does_not_match_other_shift_or_post() -> None:
    prefs = [preference(0, want=False, shift="A", weight=3),
             preference(0, want=False, post="p2", weight=3)]
    doc = make_problem(sites=TWO_POSTS, demand=[demand("p1", "M")],
                       volunteers=[volunteer("v1", preferences=prefs)])
    assert check_rows(doc, [("v1", 0, "M", "p1")]).violations == []
    solved(doc, 0)


# ---------------------------------------------------------------------------------------
# model and validator agree; texts
# ---------------------------------------------------------------------------------------


ALL_SOFT = [
    {"type": "one_shift_per_day", "weight": 3},
    {"type": "min_rest_hours", "hours": 12, "weight": 2},
    {"type": "max_consecutive_days", "days": 1, "weight": 5},
    {"type": "max_shifts_per_week", "count": 2, "weight": 7},
    {"type": "max_shift_per_week", "shift": "N", "count": 0, "weight": 4, "applies_to": "senior"},
    {"type": "closed_loop", "site_kinds": ["hotel"], "weight": 11},
    {"type": "balance", "weight": 1},
]


def rich_problem() -> dict[str, Any]:
    sites = [site("h", "hotel", ["h-p"]), site("c", "checkpoint", ["c-p", "c-q"])]
    dem = [demand("h-p", "N", min=1, max=2, requires={"medical": 1}),
           demand("c-p", "M", min=1), demand("c-q", "A", min=1, max=2, dates=[0, 2])]
    vols = [volunteer("v1", skills=["senior", "medical"], preferences=[
                preference(1, want=True, shift="A", weight=2)]),
            volunteer("v2", skills=["party"], unavailable=[(1, None)]),
            volunteer("v3", sites=["c"], max_shifts=4,
                      preferences=[preference(0, want=False, post="c-p", weight=6)])]
    return make_problem(days=3, sites=sites, demand=dem, volunteers=vols, rules=ALL_SOFT,
                        coverage_weight=20)


def test_model_and_validator_agree_on_every_roster_of_a_rich_problem() -> None:
    import random

    doc = rich_problem()
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = list(eligible_pairs(p, rules))
    rng = random.Random(7)
    valid = 0
    for i in range(60):
        density = (0.15, 0.3, 0.5)[i % 3]
        roster = [k for k in pairs if rng.random() < density]
        rep = check(p, roster, rules)
        got = model_objective(p, roster)
        if rep.ok:
            valid += 1
            assert got == rep.objective, ([v.message.en for v in rep.violations], got)
        else:
            assert got is None, [v.message.en for v in rep.hard]
    assert valid >= 10  # both branches are exercised


def test_solver_objective_is_the_validators_on_a_rich_problem() -> None:
    doc = rich_problem()
    sol = solve_doc(doc, time_limit=5)
    rep = recheck(doc, sol)
    assert rep.ok
    assert sol["objective"] == rep.objective
    assert sol["penalties"] == rep.penalties()
    assert sol["bound"] <= sol["objective"]


def test_rules_explain_themselves_in_zh_and_en() -> None:
    doc = rich_problem()
    doc["rules"] += [{"type": "one_shift_per_day"}, {"type": "closed_loop", "sites": ["c"]},
                     {"type": "max_shift_per_week", "shift": "N", "count": 0}]
    p = parse_problem(doc)
    rules = instantiate(p)
    assert {r.type for r in rules} == set(LISTED) | {cls.type for cls in IMPLICIT}
    for r in rules:
        for text in (r.title, r.describe(), r.blocks()):
            assert CJK.search(text.zh), (r.key, text)
            assert text.en and not CJK.search(text.en), (r.key, text)
            assert text.get("zh") == text.zh and text.get("en") == text.en


def test_violation_messages_in_zh_and_en() -> None:
    doc = rich_problem()
    for r in doc["rules"]:
        r.pop("weight", None)
    doc["rules"] = [r for r in doc["rules"] if r["type"] != "balance"]
    rows = [("v1", d, s, post) for d in range(3) for s, post in
            (("N", "h-p"), ("M", "c-p"), ("A", "c-q"))
            if not (s == "A" and d == 1)] + [("v2", 1, "M", "c-p")]
    rep = check_rows(doc, rows)
    kinds = {v.rule.split("#")[0] for v in rep.violations}
    assert {"availability", "one_shift_per_day", "min_rest_hours", "max_consecutive_days",
            "max_shifts_per_week", "max_shift_per_week", "closed_loop", "preferences",
            "demand_max"} <= kinds
    for v in rep.violations:
        assert CJK.search(v.message.zh) and v.message.en, v
        d = v.as_dict()
        assert d["message"] == v.message.zh and d["message_en"] == v.message.en
