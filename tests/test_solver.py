"""The solver end to end: validity, optimality against brute force, infeasibility,
explanations, progress, the greedy baseline and decomposition."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.greedy import eligible_pairs, greedy
from solver.problem import SITE_KINDS, load_problem, parse_problem
from solver.rules import instantiate
from solver.solve import Progress, solution_document, solve
from solver.validate import check
from tests.fixtures.problems import (
    SHIFTS,
    demand,
    make_problem,
    model_objective,
    preference,
    recheck,
    shared_dir,
    shift,
    site,
    solve_doc,
    volunteer,
)

CJK = re.compile(r"[\u4e00-\u9fff]")
SKILLS = ("party", "medical")


# ---------------------------------------------------------------------------------------
# Random small problems
# ---------------------------------------------------------------------------------------


@st.composite
def problem_docs(draw: st.DrawFn) -> dict[str, Any]:
    """2-4 days, 1-3 sites, 2-8 volunteers; overnight shifts, skills, absences, scarce
    supply, cheap or dear coverage and a random mix of hard and soft rules."""
    days = draw(st.integers(2, 4))
    shifts = list(SHIFTS)
    if draw(st.booleans()):
        begin, end = draw(st.integers(18, 23)), draw(st.integers(1, 8))
        shifts.append(shift("L", f"{begin:02d}:00", f"{end:02d}:30"))
    shift_ids = [s["id"] for s in shifts]
    sites = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(SITE_KINDS))
        sites.append(site(f"s{i}", kind, [f"s{i}p{j}" for j in range(draw(st.integers(1, 2)))]))
    dem = []
    for post in [p["id"] for s in sites for p in s["posts"]]:
        for sh in draw(st.lists(st.sampled_from(shift_ids), min_size=1, max_size=2, unique=True)):
            lo = draw(st.integers(0, 2))
            hi = lo + draw(st.integers(0, 1))
            req = {k: draw(st.integers(1, hi)) for k in SKILLS if hi and draw(st.booleans())}
            dates = draw(st.none() | st.lists(st.integers(0, days - 1), min_size=1, unique=True))
            dem.append(demand(post, sh, lo, hi, req, dates))
    vols = []
    for i in range(draw(st.integers(2, 8))):
        skills = draw(st.lists(st.sampled_from((*SKILLS, "senior")), unique=True, max_size=2))
        allowed = draw(st.none() | st.lists(st.sampled_from([s["id"] for s in sites]),
                                            min_size=1, unique=True))
        absent = draw(st.lists(st.tuples(st.integers(0, days - 1),
                                         st.none() | st.sampled_from(shift_ids)), max_size=3))
        prefs = [preference(d, want=w, shift=sh, weight=wt) for d, w, sh, wt in draw(st.lists(
            st.tuples(st.integers(0, days - 1), st.booleans(), st.none() | st.sampled_from(shift_ids),
                      st.integers(1, 9)), max_size=2))]
        vols.append(volunteer(f"v{i}", skills=skills, sites=allowed, unavailable=absent,
                              preferences=prefs,
                              max_shifts=draw(st.none() | st.integers(0, 4))))

    def weight() -> dict[str, int]:
        return draw(st.sampled_from([{}, {"weight": 1}, {"weight": 5}, {"weight": 30}]))

    candidates = [
        {"type": "one_shift_per_day", **draw(st.sampled_from([{}, {"weight": 2}]))},
        {"type": "min_rest_hours", "hours": draw(st.integers(0, 16)), **weight()},
        {"type": "max_consecutive_days", "days": draw(st.integers(1, 3)), **weight()},
        {"type": "max_shifts_per_week", "count": draw(st.integers(0, 4)), **weight()},
        {"type": "max_shift_per_week", "shift": draw(st.sampled_from(shift_ids)),
         "count": draw(st.integers(0, 2)), **weight(),
         **draw(st.sampled_from([{}, {"applies_to": "senior"}]))},
        {"type": "closed_loop", **draw(st.sampled_from([
            {"site_kinds": ["hotel", "building"]}, {"sites": [sites[0]["id"]]}])), **weight()},
        {"type": "balance", "weight": draw(st.integers(1, 3))},
    ]
    rules = [r for r in candidates if draw(st.booleans())]
    return make_problem(days=days, shifts=shifts, sites=sites, demand=dem, volunteers=vols,
                        rules=rules, coverage_weight=draw(st.sampled_from([1, 7, 50, 1000])))


def shortfalls(doc: dict[str, Any], sol: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    """Uncovered requirements computed from the documents alone (not the rule catalogue)."""
    start = parse_problem(doc)
    skills = {v["id"]: set(v["skills"]) for v in doc["volunteers"]}
    on: dict[tuple[str, str, str], list[str]] = {}
    for a in sol["assignments"]:
        on.setdefault((a["post"], a["shift"], a["date"]), []).append(a["volunteer"])
    out: Counter[tuple[Any, ...]] = Counter()
    for e in doc["demand"]:
        dates = e["dates"] if e["dates"] is not None else [start.iso(d) for d in range(start.days)]
        for d in dates:
            people = on.get((e["post"], e["shift"], d), [])
            if len(people) < e["min"]:
                out[(e["post"], d, e["shift"], None, e["min"] - len(people))] += 1
            for skill, need in (e.get("requires") or {}).items():
                have = sum(1 for v in people if skill in skills[v])
                if have < need:
                    out[(e["post"], d, e["shift"], skill, need - have)] += 1
    return out


PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(problem_docs())
def test_solver_output_is_valid_and_consistent(doc: dict[str, Any]) -> None:
    sol = solve_doc(doc, time_limit=3, workers=1)
    assert sol["format"] == "roster-solution/1"
    assert sol["status"] in ("OPTIMAL", "FEASIBLE")  # no min_shifts: never infeasible
    rep = recheck(doc, sol)
    assert rep.ok, [v.message.en for v in rep.hard]
    assert sol["objective"] == rep.objective
    assert sol["penalties"] == rep.penalties()
    assert sol["bound"] <= sol["objective"]
    if sol["status"] == "OPTIMAL":
        assert sol["bound"] == sol["objective"]
    keys = [(a["volunteer"], a["post"], a["shift"], a["date"]) for a in sol["assignments"]]
    assert len(keys) == len(set(keys))
    unmet = Counter((u["post"], u["date"], u["shift"], u["skill"], u["missing"])
                    for u in sol["unmet"])
    assert unmet == shortfalls(doc, sol)
    for u in sol["unmet"]:
        assert CJK.search(u["reason"]) and u["reason_en"] and not CJK.search(
            u["reason_en"].split(":")[-1])


@PROPERTY
@given(problem_docs(), st.randoms(use_true_random=False))
def test_model_objective_equals_validator_objective(doc: dict[str, Any], rng: random.Random
                                                    ) -> None:
    """Fixing the model to any roster gives the validator's objective (or no solution)."""
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = list(eligible_pairs(p, rules))
    for density in (0.1, 0.3):
        roster = [k for k in pairs if rng.random() < density]
        rep = check(p, roster, rules)
        got = model_objective(p, roster)
        assert got == (rep.objective if rep.ok else None), [v.message.en for v in rep.violations]


# ---------------------------------------------------------------------------------------
# Brute force
# ---------------------------------------------------------------------------------------


def tiny_problem(seed: int) -> dict[str, Any]:
    """At most 12 (volunteer, slot) pairs in all, with a random set of rules."""
    rng = random.Random(seed)
    days = rng.randint(1, 2)
    shifts = list(SHIFTS) + ([shift("L", "22:00", "06:00")] if rng.random() < 0.4 else [])
    ids = [s["id"] for s in shifts]
    sites = [site("h", "hotel", ["hp"]), site("c", "checkpoint", ["cp"])]
    nvol = rng.randint(2, 3)
    nslots = rng.randint(2, 12 // nvol)
    cells = rng.sample([(post, sh, d) for post in ("hp", "cp") for sh in ids for d in range(days)],
                       k=min(nslots, 2 * len(ids) * days))
    dem = []
    for post, sh, d in cells:
        lo = rng.randint(0, 2)
        hi = max(1, lo + rng.randint(0, 1))
        req = {"medical": 1} if rng.random() < 0.4 else {}
        dem.append(demand(post, sh, lo, hi, req, [d]))
    vols = [volunteer(f"v{i}", skills=rng.sample(["medical", "senior"], rng.randint(0, 2)),
                      sites=rng.choice([None, None, ["c"]]),
                      unavailable=[(0, rng.choice([None, "M"]))] if rng.random() < 0.2 else [],
                      max_shifts=rng.choice([None, None, 1, 2]),
                      preferences=[preference(rng.randint(0, days - 1), want=rng.random() < 0.5,
                                              shift=rng.choice([None, *ids]),
                                              weight=rng.randint(1, 9))]
                      if rng.random() < 0.5 else [])
            for i in range(nvol)]

    def w() -> dict[str, int]:
        return rng.choice([{}, {"weight": rng.randint(1, 40)}])

    pool = [{"type": "one_shift_per_day", "weight": rng.randint(1, 40)},
            {"type": "min_rest_hours", "hours": rng.choice([8, 12, 16]), **w()},
            {"type": "max_consecutive_days", "days": 1, **w()},
            {"type": "max_shifts_per_week", "count": rng.randint(1, 2), **w()},
            {"type": "max_shift_per_week", "shift": rng.choice(ids), "count": rng.randint(0, 1),
             **w(), **rng.choice([{}, {"applies_to": "senior"}])},
            {"type": "closed_loop", "site_kinds": ["hotel"], **w()},
            {"type": "balance", "weight": rng.randint(1, 3)}]
    rules = [r for r in pool if rng.random() < 0.45]
    return make_problem(days=days, shifts=shifts, sites=sites, demand=dem, volunteers=vols,
                        rules=rules, coverage_weight=rng.choice([3, 10, 1000]))


def brute_force(doc: dict[str, Any]) -> int | None:
    """The least objective over every valid roster (all subsets of volunteer × slot)."""
    p = parse_problem(doc)
    rules = instantiate(p)
    pairs = [(v.index, s.index) for v in p.volunteers for s in p.slots]
    assert len(pairs) <= 12
    best = None
    for r in range(len(pairs) + 1):
        for roster in itertools.combinations(pairs, r):
            rep = check(p, list(roster), rules)
            if rep.ok and (best is None or rep.objective < best):
                best = rep.objective
    return best


@pytest.mark.parametrize("seed", range(20))
def test_solver_matches_brute_force(seed: int) -> None:
    doc = tiny_problem(seed)
    best = brute_force(doc)
    assert best is not None  # the empty roster is always valid without min_shifts
    sol = solve_doc(doc, time_limit=5, workers=1)
    assert sol["status"] == "OPTIMAL"
    assert sol["objective"] == best, json.dumps(doc, ensure_ascii=False)
    assert sol["bound"] == best
    assert recheck(doc, sol).ok


# ---------------------------------------------------------------------------------------
# Infeasible rosters
# ---------------------------------------------------------------------------------------


def infeasible(doc: dict[str, Any]) -> list[dict[str, Any]]:
    sol = solve_doc(doc, time_limit=3)
    assert sol["status"] == "INFEASIBLE"
    assert sol["objective"] is None and sol["assignments"] == []
    assert sol["conflicts"]
    for c in sol["conflicts"]:
        assert CJK.search(c["reason"]) and c["volunteer"] in c["reason_en"]
    return sol["conflicts"]


def test_min_shifts_longer_than_the_horizon_is_infeasible() -> None:
    # 2 days with one M shift each: at most 2 shifts for min_shifts 3
    [c] = infeasible(make_problem(days=2, volunteers=[volunteer("v1", min_shifts=3), "v2"]))
    assert (c["volunteer"], c["min_shifts"], c["achievable"]) == ("v1", 3, 2)
    assert "min_shifts" in c["rules"]


def test_min_shifts_blocked_by_unavailability() -> None:
    vol = volunteer("v1", min_shifts=2, unavailable=[(0, None), (1, None)])
    [c] = infeasible(make_problem(days=3, volunteers=[vol]))
    assert (c["volunteer"], c["achievable"]) == ("v1", 1)
    assert "availability" in c["rules"]


def test_min_shifts_blocked_by_a_listed_rule_names_it() -> None:
    doc = make_problem(days=3, demand=[demand("p1", "M"), demand("p1", "A")],
                       volunteers=[volunteer("v1", min_shifts=3), "v2"],
                       rules=[{"type": "max_shifts_per_week", "count": 2}])
    [c] = infeasible(doc)
    assert c["achievable"] == 2
    assert "max_shifts_per_week#0" in c["rules"]
    assert "每周班次至多 2 个" in c["reason"]


def test_min_shifts_blocked_by_one_shift_per_day() -> None:
    doc = make_problem(days=2, demand=[demand("p1", "M"), demand("p1", "A")],
                       volunteers=[volunteer("v1", min_shifts=3)])
    [c] = infeasible(doc)
    assert c["achievable"] == 2 and "one_shift_per_day" in c["rules"]


def test_min_shifts_competing_for_the_same_places() -> None:
    # one place in all; both must work once
    doc = make_problem(volunteers=[volunteer("v1", min_shifts=1), volunteer("v2", min_shifts=1)])
    conflicts = infeasible(doc)
    assert {c["volunteer"] for c in conflicts} <= {"v1", "v2"} and conflicts
    for c in conflicts:
        assert c["achievable"] == 1 and "demand_max" in c["rules"]


# ---------------------------------------------------------------------------------------
# Explanations of unmet demand
# ---------------------------------------------------------------------------------------


def test_unmet_medical_because_the_only_medic_is_unavailable() -> None:
    doc = make_problem(demand=[demand("p1", "M", min=2, requires={"medical": 1})],
                       volunteers=[volunteer("doc", skills=["medical"], unavailable=[(0, None)]),
                                   "v2", "v3"])
    sol = solve_doc(doc)
    [u] = sol["unmet"]
    assert (u["post"], u["date"], u["shift"], u["skill"], u["missing"]) == (
        "p1", "2022-04-04", "M", "medical", 1)
    assert "医护" in u["reason"] and "不可用" in u["reason"]
    assert not CJK.search(u["reason_en"].split(":", 1)[1])
    assert "medical" in u["reason_en"] and "unavailable" in u["reason_en"]
    assert sol["objective"] == 1000


def test_unmet_when_nobody_may_work_at_the_site() -> None:
    doc = make_problem(sites=[site("s1", posts=["p1"]), site("s2", posts=["p2"])],
                       demand=[demand("p1", "M")], volunteers=[volunteer("v1", sites=["s2"])])
    [u] = solve_doc(doc)["unmet"]
    assert u["skill"] is None and "没有可在此站点服务的人员" in u["reason"]
    assert "no people may work at this site" in u["reason_en"]


def test_unmet_reason_names_rest_rule() -> None:
    doc = make_problem(days=2, demand=[demand("p1", "A", dates=[0]), demand("p1", "M", dates=[1])],
                       volunteers=["v1"], rules=[{"type": "min_rest_hours", "hours": 12}])
    [u] = solve_doc(doc)["unmet"]
    assert "休息不足 12 小时" in u["reason"] and "less than 12 h rest" in u["reason_en"]


# ---------------------------------------------------------------------------------------
# Progress, greedy, decomposition
# ---------------------------------------------------------------------------------------


def test_progress_reports_objective_bound_and_time() -> None:
    doc = make_problem(days=4, demand=[demand("p1", "M"), demand("p1", "A", min=2)],
                       volunteers=[volunteer(f"v{i}", preferences=[preference(i % 4, want=False)])
                                   for i in range(5)],
                       rules=[{"type": "balance", "weight": 1},
                              {"type": "min_rest_hours", "hours": 12, "weight": 3}])
    seen: list[Progress] = []
    sol = solve_doc(doc, time_limit=5, workers=1, progress=seen.append)
    assert seen
    for p in seen:
        assert isinstance(p.objective, int) and isinstance(p.bound, int)
        assert p.bound <= p.objective and p.seconds >= 0
        assert 0 <= p.part < p.parts
    assert [p.objective for p in seen] == sorted((p.objective for p in seen), reverse=True)
    assert seen[-1].objective >= sol["objective"]


@pytest.fixture(scope="module")
def yuhua() -> Any:
    return load_problem(shared_dir() / "examples" / "yuhua-small.json")


def test_greedy_never_breaks_a_hard_rule_on_the_example(yuhua: Any) -> None:
    rules = instantiate(yuhua)
    roster = greedy(yuhua, rules)
    assert roster
    rep = check(yuhua, roster, rules)
    assert rep.ok, [v.message.en for v in rep.hard[:5]]


@pytest.mark.slow
def test_solver_beats_or_equals_greedy_on_the_example(yuhua: Any) -> None:
    rules = instantiate(yuhua)
    base = solution_document(yuhua, rules, greedy(yuhua, rules), "FEASIBLE", 0, 0.0)
    sol = solve(yuhua, time_limit=10, workers=2)
    assert sol["status"] in ("OPTIMAL", "FEASIBLE")
    rep = check(yuhua, [(yuhua.volunteer_by_id[a["volunteer"]].index,
                         yuhua.slot_at[(yuhua.post_by_id[a["post"]].index,
                                        yuhua.shift_by_id[a["shift"]].index,
                                        yuhua.day_of(a["date"]))])
                        for a in sol["assignments"]])
    assert rep.ok and rep.objective == sol["objective"]
    assert sol["bound"] <= sol["objective"] <= base["objective"]


def two_streets(shared: bool = False) -> dict[str, Any]:
    sites = [site("s1", posts=["p1"]), site("s2", posts=["p2"])]
    vols = [volunteer("a1", sites=["s1"]), volunteer("a2", sites=["s1"]),
            volunteer("b1", sites=["s2"]), volunteer("b2", sites=["s2"] + (["s1"] if shared else []),
                                                      preferences=[preference(0, want=False, weight=2)])]
    return make_problem(days=2, sites=sites, volunteers=vols,
                        demand=[demand("p1", "M", min=2), demand("p2", "M", min=2, max=3)],
                        rules=[{"type": "balance", "weight": 1}])


def test_two_independent_streets_are_two_parts() -> None:
    sol = solve_doc(two_streets())
    assert sol["parts"] == 2
    assert sol["status"] == "OPTIMAL"
    # street 1: a1, a2 both mornings: 2 × 2² = 8; street 2 the same, and b2 keeps
    # 04-04 M (min 2 of 2 people) against their wish: 8 + 2
    assert sol["objective"] == 8 + 8 + 2
    assert recheck(two_streets(), sol).ok


def test_a_shared_volunteer_joins_the_streets() -> None:
    assert solve_doc(two_streets(shared=True))["parts"] == 1


def test_a_site_nobody_may_serve_is_pooled_separately() -> None:
    doc = two_streets()
    doc["sites"].append(site("s3", posts=["p3"]))
    doc["demand"].append(demand("p3", "N"))
    sol = solve_doc(doc)
    # the two streets plus one pooled part without choices; 2 × 1000 for p3
    assert sol["parts"] == 3 and sol["objective"] == 18 + 2000


def test_an_error_in_a_solver_thread_reaches_the_caller() -> None:
    from solver.problem import parse_problem

    doc = make_problem(days=2, volunteers=["v1", "v2"])

    def boom(_: object) -> None:
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        solve(parse_problem(doc), time_limit=2, workers=2, progress=boom)
