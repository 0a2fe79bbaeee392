"""`python -m solver …` as a coordinator runs it: exit codes, messages, round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.problems import assign, demand, make_problem, preference, recheck, volunteer

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "solver", *args], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def write(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(path)


def small_problem() -> dict[str, Any]:
    return make_problem(days=3, demand=[demand("p1", "M", min=2), demand("p1", "N")],
                        volunteers=["v1", "v2", volunteer("v3", unavailable=[(1, None)]),
                                    volunteer("v4", preferences=[preference(0, want=False)])],
                        rules=[{"type": "min_rest_hours", "hours": 12},
                               {"type": "balance", "weight": 1}])


def test_solve_then_check_round_trip(tmp_path: Path) -> None:
    prob = write(tmp_path / "p.json", small_problem())
    out = tmp_path / "s.json"
    res = run("solve", prob, "-o", str(out), "--time-limit", "2", "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    sol = json.loads(out.read_text(encoding="utf-8"))
    assert sol["format"] == "roster-solution/1" and sol["status"] in ("OPTIMAL", "FEASIBLE")
    assert f"目标值 {sol['objective']}" in res.stdout  # the summary
    assert recheck(small_problem(), sol).objective == sol["objective"]

    res = run("check", prob, str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0] == f"objective {sol['objective']}"
    assert "no hard rule is broken" in res.stdout
    assert "note: the solution claims" not in res.stdout


def test_solve_to_stdout_with_progress_on_stderr(tmp_path: Path) -> None:
    prob = write(tmp_path / "p.json", small_problem())
    res = run("solve", prob, "--time-limit", "2", "--workers", "1")
    assert res.returncode == 0, res.stderr
    sol = json.loads(res.stdout)
    assert sol["assignments"]
    assert "objective" in res.stderr and "Traceback" not in res.stderr


def test_check_reports_a_hard_violation_with_exit_1(tmp_path: Path) -> None:
    doc = small_problem()
    prob = write(tmp_path / "p.json", doc)
    # v3 is unavailable on 04-05; v1 works N and M of 04-04 back to back (rest 0 h)
    sol = write(tmp_path / "s.json", assign(doc, [("v3", 1, "M", "p1"), ("v1", 0, "N", "p1"),
                                                  ("v1", 0, "M", "p1")]))
    res = run("check", prob, sol)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "hard rule violation" in res.stdout
    assert "[availability]" in res.stdout and "[min_rest_hours#0]" in res.stdout
    assert "[one_shift_per_day]" in res.stdout
    assert "Traceback" not in res.stderr


def test_check_notes_a_wrong_claimed_objective(tmp_path: Path) -> None:
    doc = make_problem()
    prob = write(tmp_path / "p.json", doc)
    sol = write(tmp_path / "s.json", dict(assign(doc, [("v1", 0, "M", "p1")]), objective=5))
    res = run("check", prob, sol)
    assert res.returncode == 0
    assert res.stdout.splitlines()[0] == "objective 0"
    assert "note: the solution claims objective 5" in res.stdout


def malformed_cases() -> list[tuple[str, Any, str]]:
    bad_post = make_problem(demand=[demand("p1", "M"), demand("p9", "M")])
    bad_time = make_problem()
    bad_time["shifts"][0]["start"] = "25:00"
    bad_rule = make_problem(rules=[{"type": "max_night"}])
    bad_tag = dict(make_problem(), format="roster-problem/0")
    return [
        ("json", '{"format": "roster-problem/1", "days": }', "error: "),
        ("format", bad_tag, "error: format: "),
        ("post", bad_post, 'error: demand[1].post: unknown post "p9"'),
        ("time", bad_time, "error: shifts[0].start: "),
        ("rule", bad_rule, "error: rules[0].type: "),
    ]


def check_input_error(res: subprocess.CompletedProcess[str], expected: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith(expected), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda c: c[0])
def test_malformed_problem_exits_2(tmp_path: Path, case: tuple[str, Any, str]) -> None:
    name, doc, expected = case
    path = tmp_path / "p.json"
    if isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        write(path, doc)
    res = run("solve", str(path), "--time-limit", "2")
    check_input_error(res, expected)
    if name == "json":
        assert f"{path}: invalid JSON at line 1" in res.stderr


@pytest.mark.parametrize("command", ["check", "greedy"])
def test_malformed_problem_exits_2_for_every_command(tmp_path: Path, command: str) -> None:
    _, doc, expected = malformed_cases()[2]
    prob = write(tmp_path / "p.json", doc)
    sol = write(tmp_path / "s.json", {"format": "roster-solution/1", "assignments": []})
    check_input_error(run(command, prob, *([sol] if command == "check" else [])), expected)


def test_missing_problem_file_exits_2(tmp_path: Path) -> None:
    res = run("solve", str(tmp_path / "nope.json"), "--time-limit", "2")
    assert res.returncode == 2 and res.stderr.startswith("error: ")
    assert "cannot read file" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("assignment, expected", [
    ({"volunteer": "ghost", "date": "2022-04-04", "shift": "M", "post": "p1"},
     "error: assignments[0].volunteer: unknown volunteer 'ghost'"),
    ({"volunteer": "v1", "date": "2022-05-01", "shift": "M", "post": "p1"},
     "error: assignments[0].date: "),
    ({"volunteer": "v1", "date": "2022-04-04", "shift": "A", "post": "p1"},
     "error: assignments[0]: no demand asks for p1 A on 2022-04-04"),
])
def test_malformed_solution_exits_2(tmp_path: Path, assignment: dict[str, Any], expected: str
                                    ) -> None:
    prob = write(tmp_path / "p.json", make_problem())
    sol = write(tmp_path / "s.json", {"format": "roster-solution/1", "assignments": [assignment]})
    check_input_error(run("check", prob, sol), expected)


def test_unhashable_assignment_field_exits_2(tmp_path: Path) -> None:
    prob = write(tmp_path / "p.json", make_problem())
    sol = write(tmp_path / "s.json", {"format": "roster-solution/1", "assignments": [
        {"volunteer": ["v1"], "date": "2022-04-04", "shift": "M", "post": "p1"}]})
    res = run("check", prob, sol)
    assert "Traceback" not in res.stderr
    assert res.returncode == 2 and res.stderr.startswith("error: assignments[0].volunteer")


def test_non_finite_number_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(make_problem()).replace('"days": 1', '"days": Infinity'),
                    encoding="utf-8")
    res = run("solve", str(path), "--time-limit", "2")
    assert "Traceback" not in res.stderr
    assert res.returncode == 2 and res.stderr.startswith("error: days: ")


def test_greedy_writes_a_valid_roster(tmp_path: Path) -> None:
    doc = small_problem()
    prob = write(tmp_path / "p.json", doc)
    res = run("greedy", prob)
    assert res.returncode == 0, res.stderr
    sol = json.loads(res.stdout)
    assert sol["status"] == "FEASIBLE" and sol["assignments"]
    rep = recheck(doc, sol)
    assert rep.ok and rep.objective == sol["objective"]
    out = tmp_path / "g.json"
    res = run("greedy", prob, "-o", str(out))
    assert res.returncode == 0 and "目标值" in res.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["objective"] == sol["objective"]


def test_greedy_with_min_shifts(tmp_path: Path) -> None:
    doc = make_problem(days=2, volunteers=[volunteer("v1", min_shifts=2), "v2"])
    res = run("greedy", write(tmp_path / "p.json", doc))
    assert "Traceback" not in res.stderr
    assert res.returncode == 0
    assert recheck(doc, json.loads(res.stdout)).ok
