"""Split into independent sub-problems, solve them in processes, merge (solver/parts.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from solver.greedy import eligible_pairs
from solver.parts import (
    PartFailed,
    PartProgress,
    SubTask,
    merge,
    solve_parallel,
    solve_subproblem,
    split,
)
from solver.problem import parse_problem
from solver.rules import instantiate
from solver.scenario import generate
from solver.solve import decompose, part_bound, solve
from tests.fixtures.problems import four_parts, recheck, solve_doc

ROOT = Path(__file__).resolve().parents[1]


def test_split_partitions_people_and_demand_into_valid_documents() -> None:
    doc = generate(districts=2, seed=1, days=7)
    whole = parse_problem(doc)
    subs = split(whole, group_pairs=20_000)
    assert len(subs) > 2 and [s.index for s in subs] == list(range(len(subs)))
    assert [s.size for s in subs] == sorted((s.size for s in subs), reverse=True)
    people: list[str] = []
    slots = 0
    for sub in subs:
        part = parse_problem(sub.doc)  # every sub-problem is a valid document
        assert len(part.volunteers) == sub.volunteers and len(part.slots) == sub.slots
        people += [v.id for v in part.volunteers]
        slots += len(part.slots)
    assert sorted(people) == sorted(v.id for v in whole.volunteers)
    assert slots == len(whole.slots)
    assert sum(s.parts for s in subs) == len(decompose(whole, eligible_pairs(whole,
                                                                          instantiate(whole))))


def test_split_keeps_at_least_as_many_groups_as_asked_but_never_cuts_a_part() -> None:
    doc = four_parts()
    assert len(split(doc, min_groups=2)) == 2
    assert len(split(doc, min_groups=50)) == 3  # two streets and the pooled remainder


def _cut_district() -> tuple[dict[str, Any], int]:
    """A 3-day district and a cut size that its three largest parts exceed."""
    doc = generate(districts=1, seed=1, days=3)
    whole = parse_problem(doc)
    sizes = [len(p.pairs) for p in decompose(whole, eligible_pairs(whole, instantiate(whole)))]
    cut_pairs = 2 * sizes[0] // 3
    assert sum(size > cut_pairs for size in sizes) == 3
    return doc, cut_pairs


def test_a_part_too_large_for_one_sub_problem_is_cut_into_pieces() -> None:
    doc, cut_pairs = _cut_district()
    whole = parse_problem(doc)
    subs = split(whole, cut_pairs=cut_pairs)
    pieces = [s for s in subs if s.doc.get("cut")]
    assert len({s.doc["cut"]["part"] for s in pieces}) == 3
    assert len(pieces) >= 3 * 2
    people: list[str] = []
    slots = 0
    for sub in subs:
        part = parse_problem(sub.doc)
        people += [v.id for v in part.volunteers]
        slots += len(part.slots)
        if sub.doc.get("cut"):
            # each piece's people may work at the piece's own sites and nowhere else
            allowed = set(sub.doc["cut"]["sites"])
            assert sub.doc["cut"]["volunteers"] == [v.id for v in part.volunteers]
            for vol in part.volunteers:
                assert vol.sites is not None and vol.sites
                assert {part.sites[i].id for i in vol.sites} <= allowed
            assert {part.posts[s.post].site for s in part.slots} <= {
                part.site_by_id[i].index for i in allowed}
    assert sorted(people) == sorted(v.id for v in whole.volunteers)  # everyone once
    assert slots == len(whole.slots)  # every slot once


def test_cut_pieces_merge_into_a_valid_roster_bounded_as_whole_parts() -> None:
    doc, cut_pairs = _cut_district()
    whole = parse_problem(doc)
    subs = split(whole, cut_pairs=cut_pairs)
    solutions = [solve(s.doc, time_limit=1, workers=1, seed=s.index) for s in subs]
    merged = merge(whole, solutions, 1.0, [s.doc for s in subs])  # validates the whole
    recheck(doc, merged)
    # The pieces' own bounds bound only their restriction of the part: the cut parts are
    # bounded whole, from the pieces' objectives as the incumbent.
    rules = instantiate(whole)
    pairs = eligible_pairs(whole, rules)
    cut_parts = [p for p in decompose(whole, pairs) if len(p.pairs) > cut_pairs]
    by_part: dict[int, int] = Counter()
    for sub, sol in zip(subs, solutions, strict=True):
        if sub.doc.get("cut"):
            by_part[sub.doc["cut"]["part"]] += sol["objective"]
    expected = sum(sol["bound"] for sub, sol in zip(subs, solutions, strict=True)
                   if not sub.doc.get("cut"))
    expected += sum(min(by_part[k], part_bound(whole, rules, part, by_part[k]))
                    for k, part in enumerate(cut_parts))
    assert merged["bound"] == min(merged["objective"], expected)
    # and it is a bound: no roster of the whole problem does better
    direct = solve(doc, time_limit=5, workers=1)
    assert 0 < merged["bound"] <= direct["objective"]
    assert merged["status"] == "FEASIBLE" or merged["bound"] == merged["objective"]


def test_split_then_merge_equals_solving_whole() -> None:
    doc = four_parts()
    whole = solve_doc(doc)
    assert whole["status"] == "OPTIMAL"
    subs = split(doc, group_pairs=1)
    assert len(subs) == 3
    sols = [solve_doc(s.doc) for s in subs]
    merged = merge(parse_problem(doc), sols, 0.0)
    assert merged["status"] == "OPTIMAL"
    assert merged["objective"] == whole["objective"] == sum(s["objective"] for s in sols)
    assert merged["bound"] == whole["bound"]
    assert merged["parts"] == whole["parts"] == 3
    report = recheck(doc, merged)
    assert report.ok and report.objective == merged["objective"]
    assert merged["penalties"] == report.penalties() == whole["penalties"]
    # which day goes short may differ between optimal rosters; how much may not
    assert missing_by_post(merged) == missing_by_post(whole)
    assert any(u["post"] == "p4" for u in merged["unmet"])  # the site nobody may serve


def missing_by_post(sol: dict[str, Any]) -> Counter[tuple[str, str | None]]:
    out: Counter[tuple[str, str | None]] = Counter()
    for u in sol["unmet"]:
        out[(u["post"], u["skill"])] += u["missing"]
    return out


def test_merge_refuses_a_roster_that_breaks_a_hard_rule() -> None:
    doc = four_parts()
    sols = [solve_doc(s.doc) for s in split(doc, group_pairs=1)]
    first = next(s for s in sols if s["assignments"])
    first["assignments"].append(dict(first["assignments"][0]))  # the same person twice
    with pytest.raises(AssertionError, match="invalid"):
        merge(parse_problem(doc), sols, 0.0)


def test_merge_refuses_objectives_that_do_not_add_up() -> None:
    doc = four_parts()
    sols = [solve_doc(s.doc) for s in split(doc, group_pairs=1)]
    sols[0]["objective"] += 1
    with pytest.raises(AssertionError, match="add up"):
        merge(parse_problem(doc), sols, 0.0)


def test_one_infeasible_part_makes_the_whole_infeasible_and_names_who() -> None:
    doc = four_parts()
    doc["volunteers"][3]["min_shifts"] = 3  # b2: at most 1 shift, yet at least 3
    doc["volunteers"][3].pop("max_shifts")
    doc["volunteers"][3]["unavailable"] = [{"date": "2022-04-05"}]
    seen: list[PartProgress] = []
    sol = solve_parallel(doc, time_limit=20, jobs=2, workers=1, progress=seen.append,
                         group_pairs=1)
    assert sol["status"] == "INFEASIBLE" and sol["assignments"] == []
    assert [c["volunteer"] for c in sol["conflicts"]] == ["b2"]
    assert sorted(p.index for p in seen) == [0, 1, 2]


def test_solve_parallel_on_two_districts_is_valid_and_reports_every_part() -> None:
    doc = generate(districts=2, seed=2, days=7)
    seen: list[PartProgress] = []
    sol = solve_parallel(doc, time_limit=20, jobs=2, progress=seen.append)
    assert sol["status"] in ("FEASIBLE", "OPTIMAL")
    report = recheck(doc, sol)
    assert report.ok and report.objective == sol["objective"]
    assert 0 < sol["bound"] <= sol["objective"]
    first = [p for p in seen if not p.extended]
    assert len(first) == 4 and sorted(p.index for p in first) == [0, 1, 2, 3]  # 2 per process
    assert [p.done for p in first] == [1, 2, 3, 4]
    assert all(p.error is None and p.peak_mb > 0 for p in seen)
    # a sub-problem that went on with time left over reports again: its last report counts
    last = {p.index: p for p in seen}
    assert sum(p.objective or 0 for p in last.values()) == sol["objective"]


def crash_once(task: SubTask) -> dict[str, Any]:
    """In a worker process: die without a word the first time part 1 is solved."""
    marker = Path(os.environ["BASTION_TEST_MARKER"])
    if task.index == 0 and not marker.exists():
        marker.write_text("crashed", encoding="utf-8")
        os._exit(7)
    return solve_subproblem(task)


def fail_part_two(task: SubTask) -> dict[str, Any]:
    """In a worker process: part 2 always raises."""
    if task.index == 1:
        raise RuntimeError("part two exploded")
    return solve_subproblem(task)


def test_a_crashed_worker_process_is_reported_and_its_part_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_TEST_MARKER", str(tmp_path / "crashed"))
    doc = four_parts()
    seen: list[PartProgress] = []
    sol = solve_parallel(doc, time_limit=20, jobs=2, workers=1, progress=seen.append,
                         part_solver=crash_once, group_pairs=1)
    assert (tmp_path / "crashed").exists()
    failed = [p for p in seen if p.status == "FAILED"]
    # the crash took down whatever else was running (which one died is not known then);
    # each of those is reported, retried alone and done
    assert 0 in {p.index for p in failed}
    assert all(p.error == "its worker process died" for p in failed)
    assert sorted(p.index for p in seen if p.error is None) == [0, 1, 2]
    assert sol["objective"] == solve_doc(doc)["objective"] and recheck(doc, sol).ok


def test_a_part_failing_twice_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[PartProgress] = []
    with pytest.raises(PartFailed, match=r"part 2/3 failed twice: RuntimeError: part two "
                                         r"exploded") as info:
        solve_parallel(four_parts(), time_limit=20, jobs=2, workers=1, progress=seen.append,
                       part_solver=fail_part_two, group_pairs=1)
    assert info.value.index == 1
    assert [p.index for p in seen if p.status == "FAILED"] == [1, 1]


def looks_far(task: SubTask) -> dict[str, Any]:
    """In a worker process: a first round that claims no bound, so that every sub-problem
    seems far from it and goes on with the time left."""
    result = solve_subproblem(task)
    if task.start is None:
        result["solution"].update(status="FEASIBLE", bound=0)
    return result


def fails_going_on(task: SubTask) -> dict[str, Any]:
    """In a worker process: as `looks_far`, but going on fails."""
    if task.start is not None:
        raise RuntimeError("no time for more")
    return looks_far(task)


def test_time_left_over_goes_to_the_sub_problems_far_from_their_bounds() -> None:
    doc = four_parts()
    seen: list[PartProgress] = []
    sol = solve_parallel(doc, time_limit=30, jobs=2, workers=1, progress=seen.append,
                         part_solver=looks_far, group_pairs=1)
    first = [p for p in seen if not p.extended]
    again = [p for p in seen if p.extended]
    assert sorted(p.index for p in first) == [0, 1, 2] and all(p.bound == 0 for p in first)
    # each went on from its roster (`solve` refuses a start that is not a valid roster)
    far = {p.index for p in first if p.objective}
    assert len(far) >= 2 and {p.index for p in again} == far
    assert all(p.error is None and p.bound for p in again)
    whole = solve_doc(doc)
    assert (sol["objective"], sol["bound"]) == (whole["objective"], whole["bound"])
    assert recheck(doc, sol).ok


def test_a_sub_problem_failing_to_go_on_keeps_its_first_roster() -> None:
    doc = four_parts()
    seen: list[PartProgress] = []
    sol = solve_parallel(doc, time_limit=30, jobs=2, workers=1, progress=seen.append,
                         part_solver=fails_going_on, group_pairs=1)
    failed = [p for p in seen if p.status == "FAILED"]
    assert failed and all(p.extended for p in failed)
    assert {p.error for p in failed} == {"RuntimeError: no time for more; its first roster "
                                         "stands"}
    assert sol["objective"] == solve_doc(doc)["objective"] and sol["bound"] == 0
    assert recheck(doc, sol).ok


@pytest.mark.slow
def test_cli_solves_in_two_processes_and_the_result_checks(tmp_path: Path) -> None:
    prob = tmp_path / "p.json"
    prob.write_text(json.dumps(generate(districts=3, seed=5, days=7), ensure_ascii=False),
                    encoding="utf-8")
    out = tmp_path / "s.json"
    res = subprocess.run([sys.executable, "-m", "solver", "solve", str(prob), "-o", str(out),
                          "--time-limit", "25", "--jobs", "2"], cwd=ROOT, capture_output=True,
                         text=True, encoding="utf-8", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    sol = json.loads(out.read_text(encoding="utf-8"))
    lines = [ln for ln in res.stderr.splitlines() if " part " in ln]
    assert len(lines) >= 4 and all("objective" in ln for ln in lines)
    check = subprocess.run([sys.executable, "-m", "solver", "check", str(prob), str(out)],
                           cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                           timeout=120)
    assert check.returncode == 0, check.stdout
    assert check.stdout.splitlines()[0] == f"objective {sol['objective']}"
