"""Tests for the Curtois & Qu benchmark: parser, validator, model and solver."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path

import pytest
from ortools.sat.python import cp_model

from solver.curtois import search
from solver.curtois.cli import run_curtois
from solver.curtois.incumbent import Incumbent
from solver.curtois.instance import (
    OFF,
    CurtoisFormatError,
    Instance,
    Roster,
    format_roster,
    parse_instance,
    parse_instance_text,
    parse_roster_text,
    read_roster,
)
from solver.curtois.model import InstanceData, SubModel, build_pattern_model, build_submodel
from solver.curtois.polish import _Rows, _takers, polish
from solver.curtois.search import (
    Clock,
    _Adaptive,
    _cell_costs,
    _count,
    _keep,
    _lns_worker,
    _uniform_schedule,
    _weekend_days,
    construct,
    solve,
)
from solver.curtois.validate import evaluate, objective

SHARED = Path(os.environ.get("BASTION_SHARED") or Path(__file__).resolve().parents[2] / "shared")
BENCH = SHARED / "bench" / "curtois"
needs_data = pytest.mark.skipif(not BENCH.is_dir(), reason="shared benchmark data not found")


def _reference_rosters() -> list[Path]:
    return sorted((BENCH / "reference-rosters").glob("*.tsv")) if BENCH.is_dir() else []


def make_instance(
    horizon: int = 7,
    shifts: str = "D,480,",
    staff: str = "A,D=7,4800,0,7,1,1,9",
    days_off: str = "",
    on: str = "",
    off: str = "",
    cover: str = "",
) -> Instance:
    """A tiny instance in the published text format (one shift type by default)."""
    text = "\n".join(
        [
            "SECTION_HORIZON",
            str(horizon),
            "SECTION_SHIFTS",
            shifts,
            "SECTION_STAFF",
            staff,
            "SECTION_DAYS_OFF",
            days_off,
            "SECTION_SHIFT_ON_REQUESTS",
            on,
            "SECTION_SHIFT_OFF_REQUESTS",
            off,
            "SECTION_COVER",
            cover,
        ]
    )
    return parse_instance_text(text, name="tiny")


def row(inst: Instance, pattern: str) -> list[int]:
    """Roster row from a string: '.' = off, otherwise a one-letter shift ID."""
    return [OFF if c == "." else inst.shift_index[c] for c in pattern]


# --------------------------------------------------------------------------- parser


@needs_data
def test_parse_all_instances() -> None:
    import csv

    with open(BENCH / "best-known.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    for r in rows:
        inst = parse_instance(BENCH / "instances" / f"{r['instance']}.txt")
        assert inst.horizon == int(r["days"])
        assert inst.num_staff == int(r["staff"])
        assert inst.num_shifts == int(r["shift_types"])
        assert len(inst.cover) == inst.horizon * inst.num_shifts


@needs_data
def test_parse_instance1_details() -> None:
    inst = parse_instance(BENCH / "instances" / "Instance1.txt")
    assert inst.horizon == 14
    assert [s.id for s in inst.shifts] == ["D"]
    a = inst.staff[0]
    assert (a.id, a.max_shifts, a.max_total_minutes, a.min_total_minutes) == (
        "A",
        {"D": 14},
        4320,
        3360,
    )
    assert (a.max_consecutive_shifts, a.min_consecutive_shifts) == (5, 2)
    assert (a.min_consecutive_days_off, a.max_weekends) == (2, 1)
    assert inst.days_off[0] == frozenset({0})
    assert inst.on_requests[0].weight == 2
    assert inst.cover[1].requirement == 7


def test_parse_cannot_follow_and_weekends() -> None:
    inst = make_instance(horizon=14, shifts="E,480,\nL,480,E", staff="A,E=3|L=14,9000,0,7,1,1,9")
    assert inst.banned_successors(inst.shift_index["L"]) == [inst.shift_index["E"]]
    assert inst.max_shifts(0, 0) == 3
    assert inst.weekends() == [(5, 6), (12, 13)]


@pytest.mark.parametrize(
    ("mutation", "fragment"),
    [
        ("SECTION_HORIZON\nabc", "bad.txt:2"),
        ("SECTION_HORIZON\n7\nSECTION_SHIFTS\nD,xx,\nSECTION_STAFF\nA,D=7,1,0,1,1,1,1", "'xx'"),
        ("SECTION_HORIZON\n7\nSECTION_SHIFTS\nD,480,Q\nSECTION_STAFF\nA,D=7,1,0,1,1,1,1", "'Q'"),
        ("SECTION_HORIZON\n7\nSECTION_SHIFTS\nD,480,\nSECTION_STAFF\nA,D=7,1,0,1", "8 comma"),
        (
            "SECTION_HORIZON\n7\nSECTION_SHIFTS\nD,480,\nSECTION_STAFF\nA,D=7,1,0,1,1,1,1\n"
            "SECTION_COVER\n9,D,1,100,1",
            "day 9 outside",
        ),
        (
            "SECTION_HORIZON\n7\nSECTION_SHIFTS\nD,480,\nSECTION_STAFF\nA,D=7,1,0,1,1,1,1\n"
            "SECTION_SHIFT_ON_REQUESTS\nZ,1,D,1",
            "unknown employee 'Z'",
        ),
        ("SECTION_BOGUS\n1", "unknown section"),
        ("SECTION_HORIZON\n7", "missing SECTION_SHIFTS"),
    ],
)
def test_malformed_instances(mutation: str, fragment: str) -> None:
    with pytest.raises(CurtoisFormatError) as exc:
        parse_instance_text(mutation, source="bad.txt")
    assert isinstance(exc.value, ValueError)
    assert "bad.txt" in str(exc.value)
    assert fragment in str(exc.value)


def test_error_names_line_number() -> None:
    text = "# comment\nSECTION_HORIZON\n\n14\nSECTION_SHIFTS\nD,-5,\nSECTION_STAFF\nA,D=7,1,0,1,1,1,1\n"
    with pytest.raises(CurtoisFormatError, match=r"bad\.txt:6: .*-5"):
        parse_instance_text(text, source="bad.txt")


def test_run_curtois_malformed_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("SECTION_HORIZON\nseven\n")
    assert run_curtois(str(bad), None, 1.0, 1, 0) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "bad.txt:2" in err
    assert run_curtois(str(tmp_path / "missing.txt"), None, 1.0, 1, 0) == 2


def test_roster_roundtrip_and_errors() -> None:
    inst = make_instance(staff="A,D=7,4800,0,7,1,1,9\nB,D=7,4800,0,7,1,1,9")
    roster = [row(inst, "DD..D.."), row(inst, ".......")]
    text = format_roster(roster, inst)
    assert text.splitlines()[0] == "A\tD\tD\t\t\tD\t\t"
    assert parse_roster_text(text, inst) == roster
    with pytest.raises(CurtoisFormatError, match="expected employee 'A'"):
        parse_roster_text("B\t\nA\t\n", inst)
    with pytest.raises(CurtoisFormatError, match="unknown shift 'X'"):
        parse_roster_text("A\tX\nB\t\n", inst)


# --------------------------------------------------------------------------- validator


@needs_data
@pytest.mark.parametrize("path", _reference_rosters(), ids=lambda p: p.stem)
def test_reference_rosters(path: Path) -> None:
    name, obj = path.stem.rsplit("-", 1)
    inst = parse_instance(BENCH / "instances" / f"{name}.txt")
    ev = evaluate(inst, read_roster(path, inst))
    assert ev.violations == []
    assert ev.objective == int(obj)


@needs_data
def test_reference_rosters_exist() -> None:
    assert len(_reference_rosters()) >= 10


# Each case: instance kwargs, a roster row (single employee) violating the rule only
# when the rule binds, the fragment expected in the violation, and the same kwargs
# with the limit relaxed (non-binding: no violation).
RULES = [
    ("days off", {"days_off": "A,2"}, "DDD....", "day-off 2", {"days_off": "A,4"}),
    (
        "succession",
        {"shifts": "E,480,\nL,480,E", "staff": "A,,9000,0,7,1,1,9"},
        "LE.....",
        "cannot follow",
        {"shifts": "E,480,\nL,480,", "staff": "A,,9000,0,7,1,1,9"},
    ),
    (
        "max shifts",
        {"staff": "A,D=2,4800,0,7,1,1,9"},
        "DDD....",
        "> max 2",
        {"staff": "A,D=3,4800,0,7,1,1,9"},
    ),
    (
        "max minutes",
        {"staff": "A,D=7,1000,0,7,1,1,9"},
        "DDD....",
        "minutes > max",
        {"staff": "A,D=7,1440,0,7,1,1,9"},
    ),
    (
        "min minutes",
        {"staff": "A,D=7,4800,1500,7,1,1,9"},
        "DDD....",
        "minutes < min",
        {"staff": "A,D=7,4800,1440,7,1,1,9"},
    ),
    (
        "max consecutive",
        {"staff": "A,D=7,4800,0,2,1,1,9"},
        "DDD....",
        "consecutive shifts",
        {"staff": "A,D=7,4800,0,3,1,1,9"},
    ),
    (
        "min consecutive",
        {"staff": "A,D=7,4800,0,7,3,1,9"},
        ".DD....",
        "< min 3",
        {"staff": "A,D=7,4800,0,7,2,1,9"},
    ),
    (
        "min days off",
        {"staff": "A,D=7,4800,0,7,1,3,9"},
        "D..D...",
        "days off from day 1",
        {"staff": "A,D=7,4800,0,7,1,2,9"},
    ),
    (
        "max weekends",
        {"horizon": 14, "staff": "A,D=14,9999,0,14,1,1,1"},
        ".....D......D.",
        "weekends",
        {"horizon": 14, "staff": "A,D=14,9999,0,14,1,1,2"},
    ),
]


@pytest.mark.parametrize(
    ("rule", "binding", "pattern", "fragment", "relaxed"), RULES, ids=[r[0] for r in RULES]
)
def test_rule_binds_and_not(
    rule: str, binding: dict, pattern: str, fragment: str, relaxed: dict
) -> None:
    inst = make_instance(**binding)
    pat = pattern + "." * (inst.horizon - len(pattern))
    ev = evaluate(inst, [row(inst, pat)])
    assert len(ev.violations) == 1, ev.violations
    assert fragment in ev.violations[0]
    ok = make_instance(**relaxed)
    assert evaluate(ok, [row(ok, pat)]).violations == []


def test_min_runs_exempt_at_horizon_edges() -> None:
    inst = make_instance(staff="A,D=7,4800,0,7,3,3,9")
    # One-day runs touching day 0 / the last day are fine; inner short runs are not.
    assert evaluate(inst, [row(inst, "D...DDD")]).violations == []
    assert evaluate(inst, [row(inst, ".DDD...")]).violations == []
    assert evaluate(inst, [row(inst, "DDD...D")]).violations == []
    assert len(evaluate(inst, [row(inst, "DDD.DDD")]).violations) == 1


def test_weekend_counts_saturday_or_sunday() -> None:
    inst = make_instance(horizon=14, staff="A,D=14,9999,0,14,1,1,1")
    assert evaluate(inst, [row(inst, ".....DD.......")]).violations == []
    assert len(evaluate(inst, [row(inst, "......D.....D.")]).violations) == 1


def test_objective_breakdown() -> None:
    inst = make_instance(
        staff="A,D=7,4800,0,7,1,1,9\nB,D=7,4800,0,7,1,1,9",
        on="A,0,D,3\nA,1,D,5",
        off="B,0,D,2",
        cover="0,D,1,100,1\n1,D,2,100,1\n2,D,0,100,7",
    )
    ev = evaluate(inst, [row(inst, "D.D...."), row(inst, "D......")])
    assert (ev.on_requests, ev.off_requests) == (5, 2)
    assert ev.under == 200  # day 1: nobody, two wanted
    assert ev.over == 1 + 7  # day 0: one extra; day 2: one at weight 7
    assert ev.objective == 215


# --------------------------------------------------------------------------- model


def _brute_force(inst: Instance) -> int | None:
    best: int | None = None
    choices = [OFF, *range(inst.num_shifts)]
    for cells in itertools.product(choices, repeat=inst.horizon * inst.num_staff):
        roster = [
            list(cells[e * inst.horizon : (e + 1) * inst.horizon]) for e in range(inst.num_staff)
        ]
        ev = evaluate(inst, roster)
        if ev.feasible and (best is None or ev.objective < best):
            best = ev.objective
    return best


def _cp_optimum(inst: Instance, sequence: str) -> int | None:
    data = InstanceData(inst)
    roster = [[OFF] * inst.horizon for _ in range(inst.num_staff)]
    sub = build_submodel(data, roster, range(inst.num_staff), hint=False, sequence=sequence)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    status = solver.solve(sub.model)
    if status == cp_model.INFEASIBLE:
        return None
    assert status == cp_model.OPTIMAL
    new = sub.extract(solver, roster)
    ev = evaluate(inst, new)
    assert ev.feasible, ev.violations
    # Terms without any free variable are left out of the model, so compare changes.
    base = evaluate(inst, roster).objective
    assert ev.objective - base == round(solver.objective_value) - sub.incumbent_value
    return ev.objective


COVER7 = "\n".join(f"{d},D,1,100,1" for d in range(7))


@pytest.mark.parametrize("sequence", ["clauses", "flow"])
@pytest.mark.parametrize(
    ("rule", "binding", "pattern", "fragment", "relaxed"), RULES, ids=[r[0] for r in RULES]
)
def test_model_matches_brute_force(
    sequence: str, rule: str, binding: dict, pattern: str, fragment: str, relaxed: dict
) -> None:
    for kwargs in (binding, relaxed):
        horizon = kwargs.get("horizon", 7)
        if horizon > 7 or "E,480" in kwargs.get("shifts", ""):
            kwargs = {**kwargs, "horizon": min(horizon, 6)}
        h = kwargs.get("horizon", 7)
        inst = make_instance(
            **kwargs,
            on="A,1,D,3" if "E,480" not in kwargs.get("shifts", "") else "A,1,E,3",
            cover="\n".join(
                f"{d},{s.split(',')[0]},1,100,1"
                for d in range(h)
                for s in kwargs.get("shifts", "D,480,").splitlines()
            ),
        )
        assert _cp_optimum(inst, sequence) == _brute_force(inst), rule


@pytest.mark.parametrize(
    "on", ["A,0,L,5\nA,1,E,5\nA,2,N,3\nA,3,D,3", "A,0,N,4\nA,1,D,4\nA,2,M,2\nA,3,E,2"]
)
def test_model_matches_brute_force_on_several_banned_successions(on: str) -> None:
    # L and N ban the same two successors, M one of them.  Each request set asks
    # for banned successions, so the optimum is above 0 only if they bind.
    inst = make_instance(
        horizon=4,
        shifts="E,480,\nD,480,\nL,480,E|D\nN,480,E|D\nM,480,E",
        staff="A,,9000,0,7,1,1,9",
        on=on,
    )
    assert _cp_optimum(inst, "clauses") == _brute_force(inst)


def _fortnight() -> tuple[Instance, Roster]:
    """Two employees over 14 days, with cover, requests and a feasible roster."""
    inst = make_instance(
        horizon=14,
        staff="A,D=14,9999,0,4,2,2,2\nB,D=14,9999,0,4,2,2,2",
        cover="\n".join(f"{d},D,{1 + d % 2},100,1" for d in range(14)),
        on="A,3,D,2\nB,9,D,4",
        off="A,10,D,3",
    )
    return inst, [row(inst, "DD..DDD..DD..."), row(inst, "..DD...DD..DD.")]


def _solve_sub(inst: Instance, sub: SubModel, roster: Roster) -> tuple[Roster, int]:
    """The sub-model's optimum as a roster, and the objective change it claims."""
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(sub.model) == cp_model.OPTIMAL
    return sub.extract(solver, roster), round(solver.objective_value) - sub.incumbent_value


def test_submodel_window_matches_validator() -> None:
    inst, roster = _fortnight()
    data = InstanceData(inst)
    base = evaluate(inst, roster)
    assert base.feasible
    for lo, hi in [(0, 5), (4, 10), (9, 14), (0, 14)]:
        new, delta = _solve_sub(inst, build_submodel(data, roster, [0, 1], lo, hi), roster)
        ev = evaluate(inst, new)
        assert ev.feasible, ev.violations
        assert ev.objective - base.objective == delta


@pytest.mark.parametrize("days", [[0, 1, 5, 6, 12, 13], [3, 4, 9, 10], [2, 3, 4, 5]])
def test_submodel_on_some_days_is_the_window_with_the_rest_kept(days: list[int]) -> None:
    inst, roster = _fortnight()
    data = InstanceData(inst)
    base = evaluate(inst, roster)
    lo, hi = days[0], days[-1] + 1
    sub = build_submodel(data, roster, [0, 1], lo, hi, days=days)
    assert {d for _, d, _ in sub.x} <= set(days)
    new, delta = _solve_sub(inst, sub, roster)
    ev = evaluate(inst, new)
    assert ev.feasible, ev.violations
    assert ev.objective - base.objective == delta
    assert all(new[e][d] == roster[e][d] for e in (0, 1) for d in range(14) if d not in days)
    # The same optimum as the whole window with its other days kept as they are.
    window = build_submodel(data, roster, [0, 1], lo, hi)
    kept = [(e, d, roster[e][d]) for e in (0, 1) for d in range(lo, hi) if d not in days]
    _keep(data, window, kept)
    assert evaluate(inst, _solve_sub(inst, window, roster)[0]).objective == ev.objective


@pytest.mark.parametrize(
    ("sunday_over", "days_off", "works"),
    [
        (0, "", ".....DD"),  # a tie: the whole weekend rather than Saturday alone
        (1, "", "....DD."),  # the whole weekend costs 1 more: never taken for the tie-break
        (0, "A,6", "....DD."),  # Sunday is a day off anyway: no tie-break
    ],
)
def test_submodel_breaks_ties_against_split_weekends(
    sunday_over: int, days_off: str, works: str
) -> None:
    # Two shifts in a row, Saturday (day 5) needs one person; Friday and Sunday
    # are free to work (Sunday at ``sunday_over`` a person), the other days costly.
    cover = {4: "0,100,0", 5: "1,100,9", 6: f"0,100,{sunday_over}"}
    inst = make_instance(
        staff="A,D=7,960,960,2,2,1,1",
        days_off=days_off,
        cover="\n".join(f"{d},D,{cover.get(d, '0,100,9')}" for d in range(7)),
    )
    data = InstanceData(inst)
    start = [row(inst, "....DD.")]  # Friday and Saturday: the weekend split
    base = evaluate(inst, start)
    sub = build_submodel(data, start, [0], split_weekends=True)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(sub.model) == cp_model.OPTIMAL
    new = sub.extract(solver, start)
    assert new == [row(inst, works)]
    assert evaluate(inst, new).objective == base.objective  # never truly worse


class _Patterns(cp_model.CpSolverSolutionCallback):
    def __init__(self, work: dict) -> None:
        super().__init__()
        self.work = work
        self.found: set[tuple[bool, ...]] = set()

    def on_solution_callback(self) -> None:
        self.found.add(
            tuple(v if isinstance(v, bool) else bool(self.value(v)) for v in self.work.values())
        )


def _accepted_patterns(inst: Instance, shift: int | None = None) -> set[tuple[bool, ...]]:
    """Every work/off pattern employee 0's pattern model accepts (True = works)."""
    model, work = build_pattern_model(InstanceData(inst), 0, shift)
    solver = cp_model.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    patterns = _Patterns(work)
    solver.solve(model, patterns)
    return patterns.found


def _pattern_feasible(inst: Instance, pattern: tuple[bool, ...]) -> bool:
    return pattern in _accepted_patterns(inst)


@pytest.mark.parametrize(
    ("rule", "binding", "pattern", "fragment", "relaxed"), RULES, ids=[r[0] for r in RULES]
)
def test_pattern_model_is_the_schedules_work_days(
    rule: str, binding: dict, pattern: str, fragment: str, relaxed: dict
) -> None:
    # The patterns of feasible schedules (brute force) are all accepted; with one shift
    # type the pattern decides feasibility, so they are exactly the accepted ones.
    for kwargs in (binding, relaxed):
        inst = make_instance(**kwargs)
        choices = [OFF, *range(inst.num_shifts)]
        schedules = set()
        for cells in itertools.product(choices, repeat=inst.horizon):
            if evaluate(inst, [list(cells)]).feasible:
                schedules.add(tuple(c != OFF for c in cells))
        accepted = _accepted_patterns(inst)
        assert schedules <= accepted, rule
        if inst.num_shifts == 1:
            assert schedules == accepted, rule
        # For one shift type that may follow itself, the model is exact.
        for t in range(inst.num_shifts):
            if t in inst.banned_successors(t):
                continue
            only_t = set()
            for cells in itertools.product((OFF, t), repeat=inst.horizon):
                if evaluate(inst, [list(cells)]).feasible:
                    only_t.add(tuple(c != OFF for c in cells))
            assert only_t == _accepted_patterns(inst, t), (rule, t)


# Neither shift may follow the other, at most two of each, four shifts in all: a run of
# four working days has a feasible pattern but no shift types that fit it.
_NO_MIXING = {
    "shifts": "E,480,L\nL,480,E",
    "staff": "A,E=2|L=2,1920,1920,7,1,1,9",
}


def test_construct_repairs_a_pattern_without_fitting_types() -> None:
    inst = make_instance(horizon=6, days_off="A,5", **_NO_MIXING)
    assert _pattern_feasible(inst, (True, True, True, True, False, False))
    for seed in range(5):
        roster = construct(InstanceData(inst), Clock(10), random.Random(seed), workers=1)
        ev = evaluate(inst, roster)
        assert ev.feasible, (seed, ev.violations)
        assert sum(c != OFF for c in roster[0]) == 4


def test_construct_breaks_ties_against_split_weekends() -> None:
    # Sunday (day 6) needs one person for two shifts in a row; Saturday and Monday
    # cost nothing, the other days are costly.  Saturday and Sunday waste no
    # weekend day; Sunday and Monday do.  Without the tie-break, construction
    # took Sunday and Monday on 5 of these 10 seeds.
    cover = {5: "0,100,0", 6: "1,100,9", 7: "0,100,0"}
    inst = make_instance(
        horizon=14,
        staff="A,D=14,960,960,2,2,1,1",
        cover="\n".join(f"{d},D,{cover.get(d, '0,100,9')}" for d in range(14)),
    )
    for seed in range(10):
        roster = construct(InstanceData(inst), Clock(10), random.Random(seed), workers=1)
        assert roster == [row(inst, ".....DD.......")], seed


# Two employees, requests of both kinds and cover of every weight: each cell's price.
_PRICED = {
    "shifts": "E,480,\nL,480,E",
    "staff": "A,,9000,0,7,1,1,9\nB,,9000,0,7,1,1,9",
    "on": "A,1,E,3\nA,2,L,4",
    "off": "A,2,E,5\nA,4,L,2",
    "cover": "0,E,1,100,1\n1,E,2,100,7\n2,L,0,50,3\n4,L,1,9,8",
}


def test_cell_costs_are_the_objective_change() -> None:
    inst = make_instance(**_PRICED)
    other = row(inst, "EE.L.LL")
    cnt = [[0, 0] for _ in range(7)]
    _count(cnt, other)
    cost = _cell_costs(InstanceData(inst), 0, cnt)
    off = [OFF] * 7
    base = objective(inst, [off, other])
    for d in range(7):
        for t in range(2):
            one = off[:]
            one[d] = t
            assert cost[d][t] == objective(inst, [one, other]) - base, (d, t)


def test_uniform_schedule_one_type_where_it_is_short() -> None:
    data = InstanceData(make_instance(horizon=6, days_off="A,5", **_NO_MIXING))
    none = [[0, 0] for _ in range(6)]
    assert _uniform_schedule(data, 0, none, random.Random(0), 1, 1.0) is None  # 2 of each
    # Four L shifts fit; L is short on days 0, 1, 3 and 4 only (day 2 covered).
    inst = make_instance(
        horizon=6,
        days_off="A,5",
        shifts=_NO_MIXING["shifts"],
        staff="A,E=2|L=4,1920,1920,7,1,1,9",
        cover="\n".join(f"{d},L,1,100,1" for d in range(5)),
    )
    data = InstanceData(inst)
    cnt = [[0, 0] for _ in range(6)]
    cnt[2][inst.shift_index["L"]] = 1
    row = _uniform_schedule(data, 0, cnt, random.Random(0), 1, 1.0)
    assert row is not None
    assert evaluate(inst, [row]).feasible
    assert row == [inst.shift_index["L"]] * 2 + [OFF] + [inst.shift_index["L"]] * 2 + [OFF]


def test_construct_names_an_employee_with_no_schedule() -> None:
    # Day 4 off leaves only days 0-3 for four shifts: one run, which no types fit.
    inst = make_instance(horizon=5, days_off="A,4", **_NO_MIXING)
    with pytest.raises(RuntimeError, match="employee A has no feasible schedule"):
        construct(InstanceData(inst), Clock(10), random.Random(0), workers=1)


# --------------------------------------------------------------------------- polish


def _incumbent(inst: Instance, roster: list[list[int]]) -> Incumbent:
    return Incumbent(InstanceData(inst), roster, objective(inst, roster))


def _polished(inst: Instance, start: list[list[int]]) -> tuple[Incumbent, int]:
    """Polish a copy of ``start`` to its local optimum: (the incumbent, the gain).
    The incumbent's tracked objective is checked against the validator."""
    state = _incumbent(inst, [r[:] for r in start])
    gain = polish(InstanceData(inst), state, random.Random(0), time.monotonic() + 10)
    assert state.obj == objective(inst, state.roster) == objective(inst, start) - gain
    return state, gain


def _changed(roster: list[list[int]], e: int, ch: dict[int, int]) -> list[list[int]]:
    new = [r[:] for r in roster]
    for d, t in ch.items():
        new[e][d] = t
    return new


#: The validator's words for the rules on an employee's totals, which
#: ``_Rows.feasible(totals=False)`` leaves out.
_TOTALS = ("shifts > max", "minutes > max", "minutes < min", "weekends")


@pytest.mark.parametrize(
    ("rule", "binding", "pattern", "fragment", "relaxed"), RULES, ids=[r[0] for r in RULES]
)
def test_polish_feasibility_test_is_the_validator(
    rule: str, binding: dict, pattern: str, fragment: str, relaxed: dict
) -> None:
    # From every feasible schedule (a sample of them on 14 days), every change of one
    # or two cells: the incremental test agrees with the validator.
    rng = random.Random(0)
    for kwargs in (binding, relaxed):
        inst = make_instance(**kwargs)
        H = inst.horizon
        choices = [OFF, *range(inst.num_shifts)]
        feasible = [
            list(cells)
            for cells in itertools.product(choices, repeat=H)
            if evaluate(inst, [list(cells)]).feasible
        ]
        assert feasible, rule
        for start in rng.sample(feasible, min(len(feasible), 40)):
            rows = _Rows(InstanceData(inst), _incumbent(inst, [start]))
            changes = [{d: t} for d in range(H) for t in choices if t != start[d]]
            changes += [
                {d: rng.choice(choices), d2: rng.choice(choices)}
                for d, d2 in itertools.combinations(range(H), 2)
            ]
            for ch in changes:
                violations = evaluate(inst, _changed([start], 0, ch)).violations
                assert rows.feasible(0, ch) == (not violations), (rule, start, ch)
                # Without the totals, only the totals' own violations are let through.
                loose = all(any(f in v for f in _TOTALS) for v in violations)
                assert rows.feasible(0, ch, totals=False) == loose, (rule, start, ch)


@needs_data
def test_polish_feasibility_test_on_a_published_roster() -> None:
    # All rules at once, many employees: random changes of up to three cells of a
    # reference roster of instance 1.
    inst = parse_instance(BENCH / "instances" / "Instance1.txt")
    (path,) = (BENCH / "reference-rosters").glob("Instance1-*.tsv")
    roster = read_roster(path, inst)
    rows = _Rows(InstanceData(inst), _incumbent(inst, roster))
    rng = random.Random(1)
    verdicts = set()
    for _ in range(3000):
        e = rng.randrange(inst.num_staff)
        days = rng.sample(range(inst.horizon), rng.randint(1, 3))
        ch = {d: rng.choice([OFF, *range(inst.num_shifts)]) for d in days}
        expected = evaluate(inst, _changed(roster, e, ch)).feasible
        assert rows.feasible(e, ch) == expected, (e, ch)
        verdicts.add(expected)
    assert verdicts == {True, False}


def test_cell_deltas_are_the_objective_change() -> None:
    inst = make_instance(**_PRICED)
    roster = [row(inst, "E.L.LL."), row(inst, "EE.L.LL")]
    state = _incumbent(inst, roster)
    rows = _Rows(InstanceData(inst), state)
    options = [0, 1, OFF]
    for d in range(7):
        deltas = rows.cell_deltas(0, d, options)
        for t, delta in zip(options, deltas, strict=True):
            after = objective(inst, _changed(roster, 0, {d: t}))
            assert delta == after - state.obj, (d, t)


def test_polish_moves_a_shift_to_where_it_is_short() -> None:
    # A works E on days 0-1, where nobody is wanted; E is short on days 3-4.  Two days
    # of work must stay (minutes), so one move is not enough: day 0 to day 3 then
    # day 1 to day 4 (a run of one is allowed).  L is a distraction: cover wants none.
    inst = make_instance(
        shifts="E,480,\nL,480,",
        staff="A,,960,960,7,1,1,9",
        cover="\n".join([f"{d},E,{int(d in (3, 4))},100,1" for d in range(7)] + ["0,L,0,100,5"]),
    )
    state, gain = _polished(inst, [row(inst, "EE.....")])
    assert state.roster == [row(inst, "...EE..")]
    assert (gain, state.obj) == (202, 0)


def test_polish_transfers_a_short_run_across_the_horizon() -> None:
    # A's two days of work (days 3-4, not wanted) are wanted on days 20-21.  A run
    # must be two days long, so no single day can move, and 20 is beyond REACH of
    # 3: only moving the whole run in one step gains.
    inst = make_instance(
        horizon=28,
        shifts="E,480,",
        staff="A,,960,960,7,2,1,9",
        cover="\n".join(f"{d},E,{int(d in (20, 21))},100,1" for d in range(28)),
    )
    start = [row(inst, "...EE" + "." * 23)]
    state, gain = _polished(inst, start)
    assert state.roster == [row(inst, "." * 20 + "EE" + "." * 6)]
    assert (gain, state.obj) == (202, 0)


def test_polish_chains_a_change_of_shift_with_a_colleague_filling_in() -> None:
    # E is short on day 0 and A's L is needed there too; B may work only L but works
    # it on day 3, where nobody is wanted.  No single move gains; A to E with B to
    # day 0 does.
    inst = make_instance(
        shifts="E,480,\nL,480,",
        staff="A,,480,480,7,1,1,9\nB,E=0|L=7,480,480,7,1,1,9",
        cover="0,E,1,100,1\n0,L,1,100,1\n3,L,0,100,1",
    )
    start = [row(inst, "L......"), row(inst, "...L...")]
    state, gain = _polished(inst, start)
    assert state.roster == [row(inst, "E......"), row(inst, "L......")]
    assert (gain, state.obj) == (101, 0)


def test_polish_changes_the_types_a_new_shift_cannot_be_followed_by() -> None:
    # A must work days 1-3 (days off around, minutes for three shifts).  L is wanted
    # on day 1, but E may not follow L: L on day 1 needs days 2 and 3 to change to L
    # as well, though L is not wanted there.  Day 3 to L alone gains nothing; the
    # three together do.
    inst = make_instance(
        horizon=5,
        shifts="E,480,\nL,480,E",
        staff="A,,1440,1440,7,2,1,9",
        days_off="A,0,4",
        cover="\n".join(f"{d},E,0,100,1\n{d},L,{int(d == 1)},100,1" for d in range(5)),
    )
    start = [row(inst, ".EEE.")]
    state, gain = _polished(inst, start)
    assert state.roster == [row(inst, ".LLL.")]
    assert (gain, state.obj) == (101, 2)


def test_polish_passes_work_along_a_chain_of_colleagues() -> None:
    # Day 0 is short.  Only A may work it, by giving up day 5, which B may then take
    # over by giving up day 12, which C may take over by giving up day 20, where
    # nobody is wanted.  Each employee works exactly one shift; no move gains alone.
    inst = make_instance(
        horizon=28,
        shifts="E,480,",
        staff="A,,480,480,7,1,1,9\nB,,480,480,7,1,1,9\nC,,480,480,7,1,1,9",
        days_off="B,0\nC,0,5",
        cover="\n".join(f"{d},E,{int(d in (0, 5, 12))},100,1" for d in range(28)),
    )
    start = [row(inst, "." * 5 + "E" + "." * 22)]
    start += [row(inst, "." * 12 + "E" + "." * 15), row(inst, "." * 20 + "E" + "." * 7)]
    state, gain = _polished(inst, start)
    assert state.roster == [
        row(inst, "E" + "." * 27),
        row(inst, "." * 5 + "E" + "." * 22),
        row(inst, "." * 12 + "E" + "." * 15),
    ]
    assert (gain, state.obj) == (101, 0)


def test_polish_tries_who_already_works_the_weekend_first() -> None:
    # Day 0 is a Monday, so days 5 and 6 are a weekend.  A and B work Saturday, C
    # Sunday; D, E and F are off all week.  For a cell on Sunday, all but one of the
    # employees tried work that weekend already where there are such (taking the
    # cell costs them no weekend); the last is anyone, so the others are tried too.
    # On a weekday, anyone.
    inst = make_instance(staff="\n".join(f"{c},D=7,4800,0,7,1,1,9" for c in "ABCDEF"))
    data = InstanceData(inst)
    patterns = (".....D.", ".....D.", "......D", ".......", ".......", ".......")
    state = _incumbent(inst, [row(inst, p) for p in patterns])
    weekend = {0, 1, 2}
    sunday, monday = [], []
    for seed in range(40):
        rng = random.Random(seed)
        sunday.append(_takers(data, state, 6, [0, 1, 3, 4, 5], 3, rng))
        monday.append(_takers(data, state, 0, list(range(6)), 3, rng))
    for tried in sunday + monday:
        assert len(set(tried)) == 3
    # A and B, then one of D, E, F.
    assert all(set(t[:2]) == {0, 1} and t[2] in (3, 4, 5) for t in sunday)
    assert {t[2] for t in sunday} == {3, 4, 5}
    assert any(len(set(t) & weekend) < 2 for t in monday)
    # As many weekend workers as tries: still one try for anyone.
    full = [_takers(data, state, 6, list(range(6)), 3, random.Random(s)) for s in range(40)]
    assert all(len(set(t[:2]) & weekend) == 2 for t in full)
    assert any(t[2] not in weekend for t in full)
    # Fewer weekend workers than tries: each of them, then the others.
    one = [_takers(data, state, 6, [1, 3, 4, 5], 3, random.Random(s)) for s in range(20)]
    assert all(t[0] == 1 and not set(t[1:]) & weekend for t in one)


@needs_data
def test_polish_keeps_the_roster_feasible_and_its_objective_true() -> None:
    inst = parse_instance(BENCH / "instances" / "Instance5.txt")
    data = InstanceData(inst)
    roster = construct(data, Clock(0.0), random.Random(0), workers=1)
    state = Incumbent(data, roster, objective(inst, roster))
    start = state.obj
    gain = polish(data, state, random.Random(0), time.monotonic() + 30)
    ev = evaluate(inst, state.roster)
    assert ev.feasible, ev.violations[:3]
    assert state.obj == ev.objective == start - gain
    assert gain > 0


# --------------------------------------------------------------------------- solver


def test_polish_runs_only_on_instances_of_polish_cells_or_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst = make_instance(horizon=7, cover="0,D,1,100,1\n3,D,1,100,1")
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> int:
        calls.append(1)
        return real(*args, **kwargs)

    real = search.polish
    monkeypatch.setattr(search, "polish", counted)
    monkeypatch.setattr(search, "POLISH_CELLS", 7 * 1 + 1)  # one employee, seven days
    res = solve(inst, time_limit=1.0, workers=1, seed=0)
    assert calls == []  # neither first nor as an operator of the LNS
    assert evaluate(inst, res.roster).violations == []
    monkeypatch.setattr(search, "POLISH_CELLS", 7 * 1)
    solve(inst, time_limit=1.0, workers=1, seed=0)
    assert calls  # the first polish, at least


def _far_move_instance() -> tuple[Instance, Roster]:
    """A week of work must move 70 days on; nothing else gains.

    A and B cover days 0-4 and 10-14; C works days 20-24, where nobody is needed, and
    days 90-94 are short.  Everyone's minutes are fixed and everyone is off on days
    30-84, so no window of fewer than 66 days holds a week of work and the short week.
    """
    H = 100
    cover = [f"{d},D,{int(d < 5 or 10 <= d < 15 or 90 <= d < 95)},100,1" for d in range(H)]
    inst = make_instance(
        horizon=H,
        staff="\n".join(f"{e},D={H},2400,2400,7,1,1,99" for e in "ABC"),
        days_off="\n".join(f"{e}," + ",".join(str(d) for d in range(30, 85)) for e in "ABC"),
        cover="\n".join(cover),
    )
    pad = "." * (H - 25)
    start = [
        row(inst, "DDDDD" + "." * 20 + pad),
        row(inst, "." * 10 + "DDDDD" + "." * 10 + pad),
        row(inst, "." * 20 + "DDDDD" + pad),
    ]
    return inst, start


@pytest.mark.parametrize(
    ("ops", "reaches"),
    [
        ((("horizon", "random"),), True),
        # Windows of a few employees on at most 59 days.  (Everybody on a few days
        # grows here to the whole tiny instance.)
        ((("staff", "random"), ("staff", "cover"), ("staff", "requests")), False),
    ],
)
def test_horizon_neighbourhood_moves_work_across_the_year(
    ops: tuple[tuple[str, str], ...], reaches: bool
) -> None:
    inst, start = _far_move_instance()
    data = InstanceData(inst)
    state = Incumbent(data, start, evaluate(inst, start).objective)
    assert state.obj == 5 * 100 + 5 * 1
    stop = threading.Event()
    stats = {"iterations": 0, "proven": 0}
    history: list[tuple[float, int]] = []
    args = (Clock(1.5), 0, 0, stop, stats, history, None)
    _lns_worker(data, state, _Adaptive(data, ops), *args)
    assert stats["iterations"] > 0
    assert evaluate(inst, state.roster).objective == state.obj
    assert (state.obj == 0) is reaches


def _weekend_move_instance() -> tuple[Instance, Roster]:
    """One weekend of work must move from the first weekend to the ninth.

    A and B work two shifts each, on one weekend at most; Saturday and Sunday of
    the ninth weekend (days 61 and 62) need one person, the first Saturday none.
    """
    H = 70
    cover = "\n".join(["5,D,0,100,1", "61,D,1,100,1", "62,D,1,100,1"])
    inst = make_instance(
        horizon=H, staff="\n".join(f"{e},D={H},960,960,7,2,1,1" for e in "AB"), cover=cover
    )
    start = [
        row(inst, "....." + "DD" + "." * (H - 7)),
        row(inst, "." * 12 + "DD" + "." * (H - 14)),
    ]
    return inst, start


def test_weekend_days_are_a_short_weekend_and_one_with_people_to_spare() -> None:
    inst, start = _weekend_move_instance()
    data = InstanceData(inst)
    state = Incumbent(data, start, evaluate(inst, start).objective)
    assert state.obj == 2 * 100 + 1
    state.refresh()
    days = _weekend_days(data, random.Random(0), 0.0, state)
    assert days == [4, 5, 6, 7, 60, 61, 62, 63]
    # A larger size takes more weekends, at random.
    more = _weekend_days(data, random.Random(0), 4 * 2 * 4.0, state)
    assert set(days) < set(more)
    assert len([d for d in more if d % 7 == 5]) == 4  # Saturdays, with Fridays to Mondays


def test_weekend_neighbourhood_moves_a_weekend_across_the_horizon() -> None:
    inst, start = _weekend_move_instance()
    data = InstanceData(inst)
    state = Incumbent(data, start, evaluate(inst, start).objective)
    stop = threading.Event()
    stats = {"iterations": 0, "proven": 0}
    history: list[tuple[float, int]] = []
    args = (Clock(1.5), 0, 0, stop, stats, history, None)
    _lns_worker(data, state, _Adaptive(data, (("weekend", "random"),)), *args)
    assert evaluate(inst, state.roster).objective == state.obj == 0
    assert state.roster[0][61] != OFF and state.roster[0][5] == OFF
    assert stats["proven"] == 0  # a step on some days proves nothing about the roster


def test_a_commit_needs_only_the_employees_it_changes_unchanged() -> None:
    inst = make_instance(horizon=7, staff="A,D=7,4800,0,7,1,1,9\nB,D=7,4800,0,7,1,1,9")
    data = InstanceData(inst)
    roster = [row(inst, "D......"), row(inst, ".D.....")]
    state = Incumbent(data, roster, 0)
    versions = {0: state.version[0], 1: state.version[1]}
    # Another step changes B since both rows were read.
    assert state.commit([(1, 2, inst.shift_index["D"])], dict(versions)) == 0
    assert state.version == [0, 1]
    # A step made from the old rows that changes A alone still commits ...
    changes = [(0, 3, inst.shift_index["D"]), (1, 1, inst.shift_index["D"])]
    assert state.commit(changes, dict(versions)) == 0
    assert state.roster[0][3] == inst.shift_index["D"]
    assert state.version == [1, 1]  # B's cell was as it is: B is not changed
    # ... and one that changes B does not.
    assert state.commit([(1, 5, inst.shift_index["D"])], dict(versions)) is None
    assert state.roster[1][5] == OFF


def test_horizon_and_weekend_neighbourhoods_are_left_out_where_they_do_not_pay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shapes: list[str] = []

    class Spy(search._Adaptive):
        def __init__(self, data: InstanceData, ops: tuple[tuple[str, str], ...]) -> None:
            shapes.extend(op[0] for op in ops)
            super().__init__(data, ops)

    monkeypatch.setattr(search, "_Adaptive", Spy)
    for horizon in (search.STAFF_WHOLE, search.STAFF_WHOLE + 1):
        shapes.clear()
        inst = make_instance(horizon=horizon, cover="0,D,1,100,1")
        solve(inst, time_limit=0.3, workers=1, seed=0)
        assert ("horizon" in shapes) is (horizon > search.STAFF_WHOLE)
    for horizon in (search.WEEKENDS_FROM - 1, search.WEEKENDS_FROM):
        shapes.clear()
        inst = make_instance(horizon=horizon, cover="0,D,1,100,1")
        solve(inst, time_limit=0.3, workers=1, seed=0)
        assert ("weekend" in shapes) is (horizon >= search.WEEKENDS_FROM)
    # ... and on rosters of more than WEEKENDS_STAFF employees.
    monkeypatch.setattr(search, "WEEKENDS_STAFF", 1)
    for staff in ("A,D=7,4800,0,7,1,1,9", "A,D=7,4800,0,7,1,1,9\nB,D=7,4800,0,7,1,1,9"):
        shapes.clear()
        inst = make_instance(horizon=search.WEEKENDS_FROM, staff=staff, cover="0,D,1,100,1")
        solve(inst, time_limit=0.3, workers=1, seed=0)
        assert ("weekend" in shapes) is (inst.num_staff == 1)


def test_lns_breaks_split_weekend_ties_from_split_weekends_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[bool] = []

    def spy(*args: object, split_weekends: bool = False, **kwargs: object) -> object:
        if kwargs.get("hint", True):  # an LNS step (construction builds without hints)
            asked.append(split_weekends)
        return build_submodel(*args, split_weekends=split_weekends, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search, "build_submodel", spy)
    monkeypatch.setattr(search, "SPLIT_WEEKENDS_FROM", 14)
    for horizon in (13, 14):
        asked.clear()
        inst = make_instance(horizon=horizon, staff="A,D=14,4800,0,7,1,1,9", cover="0,D,1,100,1")
        solve(inst, time_limit=0.3, workers=1, seed=0)
        assert asked
        assert set(asked) == {horizon >= 14}


@needs_data
@pytest.mark.parametrize(("name", "best"), [("Instance1", 607), ("Instance2", 828)])
def test_solver_small_instances(name: str, best: int) -> None:
    inst = parse_instance(BENCH / "instances" / f"{name}.txt")
    res = solve(inst, time_limit=10.0, workers=2, seed=1, target=best)
    ev = evaluate(inst, res.roster)
    assert ev.violations == []
    assert ev.objective == res.objective
    assert res.objective >= best


@needs_data
def test_run_curtois_writes_roster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "roster.tsv"
    code = run_curtois(str(BENCH / "instances" / "Instance1.txt"), str(out), 3.0, 1, 0)
    assert code == 0
    text = capsys.readouterr().out
    assert "objective:" in text and "seconds:" in text
    inst = parse_instance(BENCH / "instances" / "Instance1.txt")
    assert evaluate(inst, read_roster(out, inst)).violations == []
