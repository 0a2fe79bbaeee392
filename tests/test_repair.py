"""Minimal-change repair: who fills a vacated shift, chains only when needed, the past
stays, hard rules hold, gaps keep their reasons; manual edits checked; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from solver import Absence, ProblemError, check_change, repair
from solver.greedy import greedy
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.solve import solution_document
from solver.validate import check, parse_assignments
from tests.fixtures.problems import (
    assign,
    date,
    demand,
    make_problem,
    preference,
    rows_of,
    site,
    volunteer,
)
from tests.test_solver import problem_docs

ROOT = Path(__file__).resolve().parents[1]
REST = {"type": "min_rest_hours", "hours": 12}


def others(sol: dict[str, Any]) -> list[dict[str, Any]]:
    """The changes to people other than the absent ones' vacated shifts."""
    assert sol["repair"]["changed_others"] == sum(
        1 for c in sol["changes"] if not (c["action"] == "removed" and c["reason_en"].endswith(
            "the shift is vacated")))
    return [c for c in sol["changes"] if not c["reason_en"].endswith("the shift is vacated")]


def two_posts() -> dict[str, Any]:
    """Two checkpoint posts p1 (needs a medic) and p2, the M shift of two days."""
    return make_problem(
        days=2, sites=[site("s1", posts=["p1", "p2"])],
        demand=[demand("p1", "M", requires={"medical": 1}), demand("p2", "M")],
        volunteers=[volunteer("v1", skills=["medical"]), volunteer("v2", skills=["medical"]),
                    "v3"],
        rules=[{"type": "balance", "weight": 1}])


# ---------------------------------------------------------------------------------------
# Who fills the gap
# ---------------------------------------------------------------------------------------


def test_a_free_volunteer_fills_the_vacated_shift_and_nobody_else_moves() -> None:
    doc = make_problem(days=2, sites=[site("s1", posts=["p1", "p2"])],
                       demand=[demand("p1", "M"), demand("p2", "M")],
                       volunteers=["v1", "v2", "v3"])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1"),
                             ("v2", 0, "M", "p2"), ("v2", 1, "M", "p2")])
    sol = repair(doc, published, [Absence("v1", date(1))], time_limit=5, workers=1)
    assert rows_of(sol) == {("v1", date(0), "M", "p1"), ("v3", date(1), "M", "p1"),
                            ("v2", date(0), "M", "p2"), ("v2", date(1), "M", "p2")}
    [added] = others(sol)
    assert (added["volunteer"], added["action"], added["replaces"]) == ("v3", "added", "v1")
    assert "顶替 v1(v1)" in added["reason"] and "replacing v1" in added["reason_en"]
    assert sol["repair"]["vacated"] == 1 and sol["repair"]["changed_others"] == 1
    assert sol["unmet"] == [] and sol["repair"]["uncovered"] == []


def test_a_chain_move_is_used_when_nobody_free_can_take_the_shift() -> None:
    # Only v2 is a medic besides the absent v1, and v2 works p2: v2 moves to p1 and the
    # free v3 takes p2 over.
    doc = two_posts()
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1"),
                             ("v2", 0, "M", "p2"), ("v2", 1, "M", "p2")])
    sol = repair(doc, published, [Absence("v1", date(1), date(1))], time_limit=5, workers=1)
    assert rows_of(sol) == {("v1", date(0), "M", "p1"), ("v2", date(1), "M", "p1"),
                            ("v2", date(0), "M", "p2"), ("v3", date(1), "M", "p2")}
    changes = {c["volunteer"]: c for c in others(sol)}
    assert set(changes) == {"v2", "v3"}
    assert changes["v2"]["action"] == "moved" and changes["v2"]["replaces"] == "v1"
    assert changes["v2"]["from"] == {"date": date(1), "shift": "M", "post": "p2"}
    assert changes["v3"]["action"] == "added" and changes["v3"]["replaces"] == "v2"
    assert changes["v3"]["covers_for"] == "v1"
    assert sol["unmet"] == []


def test_no_chain_move_when_a_free_volunteer_can_fill_in() -> None:
    # The same, with a free medic v4: one change instead of a chain, although moving v2
    # and adding v3 would spread the work as evenly.
    doc = two_posts()
    doc["volunteers"].append(volunteer("v4", skills=["medical"]))
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1"),
                             ("v2", 0, "M", "p2"), ("v2", 1, "M", "p2")])
    sol = repair(doc, published, [Absence("v1", date(1), date(1))], time_limit=5, workers=1)
    assert [(c["volunteer"], c["action"], c["post"]) for c in others(sol)] == [
        ("v4", "added", "p1")]


@pytest.mark.parametrize("fill_gaps", [False, True])
def test_old_gaps_stay_unless_asked_to_fill_them(fill_gaps: bool) -> None:
    # v4, the other medic, moves to cover v1; p2 already lacked one of its two people.
    # Someone free takes v4's place on p2; a second free person would fill the old gap,
    # which only --fill-gaps allows.
    doc = two_posts()
    doc["demand"][1]["min"] = 2
    doc["volunteers"][1]["skills"] = []  # v2: not a medic any more; v4 is
    doc["volunteers"].append(volunteer("v4", skills=["medical"]))
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1"),
                             ("v4", 0, "M", "p2"), ("v4", 1, "M", "p2")])
    sol = repair(doc, published, [Absence("v1", date(1), date(1))], time_limit=5, workers=1,
                 fill_gaps=fill_gaps)
    assert ("v4", date(1), "M", "p1") in rows_of(sol)
    on_p2 = {r[0] for r in rows_of(sol) if r[1:] == (date(1), "M", "p2")}
    assert len(on_p2) == (2 if fill_gaps else 1) and on_p2 <= {"v2", "v3"}
    gap_fills = [c for c in others(sol) if c["action"] == "added" and c["replaces"] is None]
    assert len(gap_fills) == (1 if fill_gaps else 0)


def test_the_past_before_frozen_before_never_changes() -> None:
    # Day 0 has a gap v3 could fill; v1 is absent on days 0-2, but day 0 is frozen, so
    # v1 keeps day 0 and the gap stays; only days 1-2 are refilled.
    doc = make_problem(days=3, sites=[site("s1", posts=["p1", "p2"])],
                       demand=[demand("p1", "M"), demand("p2", "M", dates=[0])],
                       volunteers=["v1", "v2", "v3"])
    published = assign(doc, [("v1", d, "M", "p1") for d in range(3)])
    sol = repair(doc, published, [Absence("v1", date(0), date(2))],
                 frozen_before=date(1), time_limit=5, workers=1)
    day0 = {r for r in rows_of(sol) if r[1] == date(0)}
    assert day0 == {("v1", date(0), "M", "p1")}
    assert {r[0] for r in rows_of(sol) if r[1] != date(0)} <= {"v2", "v3"}
    assert [(u["post"], u["date"]) for u in sol["unmet"]] == [("p2", date(0))]
    assert sol["repair"]["frozen_before"] == date(1)
    assert sol["repair"]["absences"] == [{"volunteer": "v1", "from": date(1), "to": date(2)}]


def test_by_default_what_happened_before_the_absence_stands() -> None:
    # Without frozen_before, the first absent date is the frozen line: the day-0 gap
    # (fillable by v3, 1000 against one change) is left alone.
    doc = make_problem(days=2, sites=[site("s1", posts=["p1", "p2"])],
                       demand=[demand("p1", "M"), demand("p2", "M", dates=[0])],
                       volunteers=["v1", "v2", "v3"])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1")])
    sol = repair(doc, published, [Absence("v1", date(1))], time_limit=5, workers=1)
    assert {r for r in rows_of(sol) if r[1] == date(0)} == {("v1", date(0), "M", "p1")}
    assert sol["repair"]["frozen_before"] == date(1)


def blocked_district(with_free: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """v1 (absent) works p1 M on day 1.  v2 has no rest before it (A the evening before),
    v3 is unavailable, v4 works the closed-loop hotel, v5 already works p2 that day (and
    nobody could take p2 over if v5 moved: v2 cannot work that evening); v6, when
    present, is free."""
    vols = ["v1", volunteer("v2", unavailable=[(1, "A")]),
            volunteer("v3", unavailable=[(1, None)]), "v4", "v5"]
    if with_free:
        vols.append("v6")
    doc = make_problem(
        days=2, sites=[site("s1", posts=["p1", "p2"]), site("h", "hotel", ["h-care"])],
        demand=[demand("p1", "M", dates=[1]), demand("p1", "A", dates=[0]),
                demand("p2", "A", dates=[1]), demand("h-care", "M", dates=[0])],
        volunteers=vols,
        rules=[REST, {"type": "closed_loop", "site_kinds": ["hotel"]}])
    published = assign(doc, [("v1", 1, "M", "p1"), ("v2", 0, "A", "p1"),
                             ("v4", 0, "M", "h-care"), ("v5", 1, "A", "p2")])
    return doc, published


def test_every_hard_rule_holds_and_only_the_free_volunteer_is_used() -> None:
    doc, published = blocked_district(with_free=True)
    sol = repair(doc, published, [Absence("v1", date(1))], time_limit=5, workers=1)
    assert [(c["volunteer"], c["action"]) for c in others(sol)] == [("v6", "added")]
    p = parse_problem(doc)
    report = check(p, parse_assignments(p, sol))
    assert report.ok, [v.message.en for v in report.hard]
    assert sol["unmet"] == []


def test_a_shift_nobody_can_take_stays_unmet_with_its_reason() -> None:
    doc, published = blocked_district(with_free=False)
    sol = repair(doc, published, [Absence("v1", date(1))], time_limit=5, workers=1)
    assert rows_of(sol) == rows_of(published) - {("v1", date(1), "M", "p1")}
    [gap] = sol["repair"]["uncovered"]
    assert (gap["post"], gap["date"], gap["shift"], gap["missing"]) == ("p1", date(1), "M", 1)
    # Each candidate is named by the rule that stops them, the absent one included.
    for why in ("不可用", "休息不足", "闭环", "当天已排其他班次"):
        assert why in gap["reason"], gap["reason"]
    assert "unavailable" in gap["reason_en"]
    assert gap in sol["unmet"]
    assert others(sol) == []


def test_a_published_roster_that_breaks_a_hard_rule_is_refused_by_name() -> None:
    doc = make_problem(days=2, volunteers=["v1", "v2"], rules=[REST])
    bad = assign(doc, [("v1", 0, "M", "p1"), ("v2", 0, "M", "p1"), ("v2", 1, "M", "p1")])
    doc["demand"][0]["max"] = 1
    with pytest.raises(ProblemError, match=r"^solution: .*demand_max"):
        repair(doc, bad, [Absence("v1", date(1))], time_limit=2, workers=1)


@pytest.mark.parametrize(("absence", "path"), [
    (Absence("nobody"), "absences[0].volunteer"),
    (Absence("v1", "2022-04-31"), "absences[0].from"),
    (Absence("v1", None, "2023-01-01"), "absences[0].to"),
    (Absence("v1", date(1), date(0)), "absences[0].to"),
])
def test_bad_absences_name_their_place(absence: Absence, path: str) -> None:
    doc = make_problem(days=2)
    with pytest.raises(ProblemError) as err:
        repair(doc, assign(doc, []), [absence], time_limit=1)
    assert err.value.path == path


# ---------------------------------------------------------------------------------------
# Manual edits
# ---------------------------------------------------------------------------------------


def test_check_change_blocks_a_hard_breach_with_its_reason() -> None:
    doc = make_problem(days=2, demand=[demand("p1", "M"), demand("p1", "A")],
                       volunteers=["v1", "v2"], rules=[REST])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v2", 0, "A", "p1")])
    found = check_change(doc, published, {"action": "added", "volunteer": "v1",
                                          "date": date(0), "shift": "A", "post": "p1"})
    hard = [v for v in found if v["hard"]]
    assert {v["rule"] for v in hard} >= {"one_shift_per_day", "demand_max"}
    assert any("排了 2 个班次" in v["message"] for v in hard)


def test_check_change_shows_soft_breaches_with_what_they_cost() -> None:
    doc = make_problem(days=2, volunteers=["v1", volunteer("v2", preferences=[
        preference(1, want=False, weight=4)])], rules=[REST])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1")])
    # Moving v1's day-1 shift to v2 is allowed but goes against v2's wish.
    found = check_change(doc, published, {"action": "added", "volunteer": "v2",
                                          "date": date(1), "shift": "M", "post": "p1"})
    assert [(v["rule"], v["hard"]) for v in found] == [("demand_max", True),
                                                        ("preferences", False)]
    found = check_change(doc, published, {"action": "removed", "volunteer": "v1",
                                          "date": date(1), "shift": "M", "post": "p1"})
    [gap] = found
    assert (gap["rule"], gap["hard"], gap["cost_change"]) == ("coverage", False, 1000)
    assert "缺 1 名人员" in gap["message"]


def test_check_change_of_a_move_and_of_a_change_that_does_not_fit() -> None:
    doc = make_problem(days=2, demand=[demand("p1", "M"), demand("p1", "N")],
                       volunteers=["v1", "v2"], rules=[REST])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v2", 1, "M", "p1")])
    # v2 moves from M to the night (00:00-08:00) of day 1: no rule against it, but M is
    # left empty.
    found = check_change(doc, published, {
        "action": "moved", "volunteer": "v2", "date": date(1), "shift": "N", "post": "p1",
        "from": {"date": date(1), "shift": "M", "post": "p1"}})
    assert [v["rule"] for v in found if v["hard"]] == []
    assert any(v["rule"] == "coverage" for v in found)  # day-1 M is now empty
    with pytest.raises(ProblemError, match=r"^change\.from: "):
        check_change(doc, published, {
            "action": "moved", "volunteer": "v1", "date": date(1), "shift": "N", "post": "p1",
            "from": {"date": date(1), "shift": "M", "post": "p1"}})
    with pytest.raises(ProblemError, match=r"^change\.volunteer: unknown volunteer"):
        check_change(doc, published, {"action": "added", "volunteer": "x", "date": date(0),
                                      "shift": "M", "post": "p1"})
    with pytest.raises(ProblemError, match=r"^change\.action: "):
        check_change(doc, published, {"action": "swap"})


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "solver", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_cli_repair_writes_the_roster_with_its_changes(tmp_path: Path) -> None:
    doc = make_problem(days=2, sites=[site("s1", posts=["p1", "p2"])],
                       demand=[demand("p1", "M"), demand("p2", "M")],
                       volunteers=["v1", "v2", "v3"])
    published = assign(doc, [("v1", 0, "M", "p1"), ("v1", 1, "M", "p1"),
                             ("v2", 0, "M", "p2"), ("v2", 1, "M", "p2")])
    (tmp_path / "p.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(published), encoding="utf-8")
    out = tmp_path / "new.json"
    res = run("repair", str(tmp_path / "p.json"), str(tmp_path / "s.json"),
              "--absent", f"v1:{date(1)}", "-o", str(out), "--time-limit", "3", "--workers", "1")
    assert res.returncode == 0, res.stderr
    new = json.loads(out.read_text(encoding="utf-8"))
    assert new["format"] == "roster-solution/1"
    assert [(c["volunteer"], c["action"], c["date"]) for c in new["changes"]] == [
        ("v1", "removed", date(1)), ("v3", "added", date(1))]
    assert "顶替 v1(v1)" in res.stdout
    res = run("check", str(tmp_path / "p.json"), str(out))
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--absent", "nobody"], "error: --absent nobody: unknown volunteer 'nobody'"),
    (["--absent", "v1:2022-4-5"], "error: --absent v1:2022-4-5: invalid date '2022-4-5'"),
    (["--absent", "v1:2022-05-01"], "error: --absent v1:2022-05-01: date 2022-05-01 is outside"),
    (["--absent", "v1", "--frozen-before", "2021-01-01"], "error: frozen_before: date 2021-01-01"),
])
def test_cli_repair_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str],
                                                    message: str) -> None:
    doc = make_problem(days=2)
    (tmp_path / "p.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(assign(doc, [("v1", 0, "M", "p1")])),
                                     encoding="utf-8")
    res = run("repair", str(tmp_path / "p.json"), str(tmp_path / "s.json"), *args,
              "-o", str(tmp_path / "new.json"), "--time-limit", "1")
    assert res.returncode == 2
    assert res.stderr.startswith(message), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_cli_repair_refuses_a_solution_of_another_problem(tmp_path: Path) -> None:
    doc = make_problem(days=2)
    (tmp_path / "p.json").write_text(json.dumps(doc), encoding="utf-8")
    other = assign(doc, [("v1", 0, "M", "elsewhere")])
    (tmp_path / "s.json").write_text(json.dumps(other), encoding="utf-8")
    res = run("repair", str(tmp_path / "p.json"), str(tmp_path / "s.json"),
              "--absent", "v1", "--time-limit", "1")
    assert res.returncode == 2
    assert res.stderr.strip() == "error: assignments[0].post: unknown post 'elsewhere'"


# ---------------------------------------------------------------------------------------
# Property: on random small problems, hard rules hold and the past stays
# ---------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problem_docs(), st.data())
def test_repair_keeps_hard_rules_and_the_past(doc: dict[str, Any], data: st.DataObject) -> None:
    doc["coverage_weight"] = 1000  # repairs are about coverage: changes must pay
    p = parse_problem(doc)
    rules = instantiate(p)
    roster = greedy(p, rules)
    assume(roster and check(p, roster, rules).ok)  # greedy cannot always meet min_shifts
    published = solution_document(p, rules, roster, "FEASIBLE", 0, 0.0)
    absent = data.draw(st.sampled_from(sorted({a["volunteer"] for a in published["assignments"]})))
    first = data.draw(st.integers(0, p.days - 1))
    last = data.draw(st.integers(first, p.days - 1))
    frozen = data.draw(st.none() | st.integers(0, p.days - 1))
    sol = repair(doc, published, [Absence(absent, p.iso(first), p.iso(last))],
                 frozen_before=None if frozen is None else p.iso(frozen),
                 time_limit=1, workers=1)
    line = p.iso(first if frozen is None else frozen)
    before, after = rows_of(published), rows_of(sol)
    # The past never changes.
    assert {r for r in after if r[1] < line} == {r for r in before if r[1] < line}
    # The absent volunteer does not work in the unfrozen part of their window.
    assert not [r for r in after if r[0] == absent and max(line, p.iso(first)) <= r[1]
                <= p.iso(last)]
    # No hard rule of the problem is broken (an absence may excuse its own min_shifts).
    report = check(p, parse_assignments(p, sol))
    assert [v.message.en for v in report.hard
            if not (v.rule == "min_shifts" and v.volunteer == absent)] == []
    # The changes are exactly the difference.
    added = {(c["volunteer"], c["date"], c["shift"], c["post"]) for c in sol["changes"]
             if c["action"] in ("added", "moved")}
    removed = {(c["volunteer"], c["date"], c["shift"], c["post"]) for c in sol["changes"]
               if c["action"] == "removed"} | {
        (c["volunteer"], c["from"]["date"], c["from"]["shift"], c["from"]["post"])
        for c in sol["changes"] if c["action"] == "moved"}
    assert (before - removed) | added == after
