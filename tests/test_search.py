"""The LNS keeps an exact account of the objective and never breaks a hard rule."""

from __future__ import annotations

import sys

import pytest

from solver.greedy import eligible_pairs, greedy
from solver.problem import ProblemError, parse_problem
from solver.rules import instantiate
from solver.scenario import generate
from solver.search import PartSearch
from solver.validate import Report, check, parse_assignments
from tests.fixtures.problems import demand, make_problem, site, volunteer


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



class _Stuck:
    """A stand-in part search whose `objective` each slice lowers by `gain`."""

    def __init__(self, objective: int, gain: int) -> None:
        self.objective, self.gain = objective, gain


def test_lns_slices_leave_a_part_whose_gap_does_not_close() -> None:
    import sys
    import threading
    import time

    from solver.solve import Part

    module = sys.modules["solver.solve"]  # `solver.solve` the name is the function
    scheduler = object.__new__(module._Scheduler)
    scheduler.lock = threading.Lock()
    scheduler.whole, scheduler.busy, scheduler.gain = [], set(), {}
    scheduler.deadline, scheduler.gap_limit = time.monotonic() + 60, 0.0
    # Part 0: a weak bound, its gap (10,000) never closes; part 1: a gap of 8,000 that
    # every slice narrows by 400.
    scheduler.parts = [Part([], [], {}, bound=1_000), Part([], [], {}, bound=500)]
    scheduler.searches = {0: _Stuck(11_000, 0), 1: _Stuck(8_500, 400)}
    chosen = []
    for _ in range(24):
        job = scheduler._next()
        assert job is not None and job[0] == "lns"
        i = job[1]
        chosen.append(i)
        before = scheduler.searches[i].objective
        scheduler.searches[i].objective -= scheduler.searches[i].gain  # the slice's steps
        scheduler._slice_done(i, before)
    assert chosen[0] == 0  # the largest gap is tried first
    assert chosen[-10:] == [1] * 10  # then the part that gains keeps the time
    assert chosen.count(0) <= 6


def test_a_slice_that_gains_little_of_its_gap_gets_the_joint_lp_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Part 0's first slice gains 10 of a 10,000 gap: its bound is the likely weak side.
    # The LP is solved right after that slice (the part may never be chosen again), not
    # on its next turn; part 1's slice gains most of its gap and gets no LP.
    import sys
    import threading
    import time

    from solver.solve import Part

    module = sys.modules["solver.solve"]  # `solver.solve` the name is the function
    solved: list[int] = []

    def lp(problem: object, rules: object, slots: list[int], pairs: object) -> int:
        solved.append(slots[0])
        return 10_900

    monkeypatch.setattr(module, "joint_lp_bound", lp)
    scheduler = object.__new__(module._Scheduler)
    scheduler.lock = threading.Lock()
    scheduler.infeasible = threading.Event()
    scheduler.problem = scheduler.rules = None
    scheduler.busy, scheduler.gain = set(), {}
    scheduler.deadline = time.monotonic() + 60
    scheduler.parts = [Part([], [0], {}, bound=1_000), Part([], [1], {}, bound=500)]
    scheduler.searches = {0: _Stepping(11_000, 10), 1: _Stepping(8_500, 6_000)}
    scheduler.tracker = type("T", (), {"update": lambda *a: None})()
    jobs = [("lns", 0, 0.3), ("lns", 1, 0.3)]
    monkeypatch.setattr(scheduler, "_next", lambda: jobs.pop(0) if jobs else None)
    scheduler._work()
    assert solved == [0]
    assert scheduler.parts[0].bound == 10_900 and scheduler.parts[1].bound == 500
    # Its recent gain is counted against the LP's gap: 10,000 is no longer its due.
    assert scheduler.gain[0] == (11_000 - 10_900 + 10) / 2


class _Stepping(_Stuck):
    """A stand-in part search that gains its `gain` on its first step only."""

    def step(self, limit: float) -> bool:
        gain, self.gain = self.gain, 0
        self.objective -= gain
        return gain > 0


class _FirstStep(Exception):
    """Raised by a stand-in LNS step: the search got as far as stepping."""


@pytest.mark.parametrize("gap_limit", [0.0, 0.9])
def test_the_search_stops_once_within_the_gap_limit(monkeypatch: pytest.MonkeyPatch,
                                                    gap_limit: float) -> None:
    # A generated district's greedy roster is well within 90 % of its bound: with that
    # limit no LNS step is taken; without one the search steps.  The time limit is far
    # more than construction takes even on a slow machine, and the first step ends the
    # solve, so neither case depends on the machine's speed.
    from solver import solve

    def first_step(self: PartSearch, limit: float) -> bool:
        raise _FirstStep

    monkeypatch.setattr(PartSearch, "step", first_step)
    # Every part that can goes to the LNS (no whole-model CP-SAT runs to wait for).
    monkeypatch.setattr(sys.modules["solver.solve"], "WHOLE_MODEL_PAIRS", 0)
    doc = generate(districts=1, seed=3, days=5)
    if gap_limit == 0.0:
        with pytest.raises(_FirstStep):
            solve(doc, time_limit=120, workers=1, gap_limit=gap_limit)
        return
    sol = solve(doc, time_limit=120, workers=1, gap_limit=gap_limit)
    assert 0 < sol["objective"] - sol["bound"] <= 0.9 * sol["objective"]


def test_a_solve_goes_on_from_the_roster_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # A city's sub-problem given the time others left goes on from its roster: the search
    # starts from exactly that roster, and nothing is constructed.
    from solver import solve
    from solver.solve import solution_document

    module = sys.modules["solver.solve"]
    doc = generate(districts=1, seed=3, days=5)
    problem = parse_problem(doc)
    rules = instantiate(problem)
    roster = greedy(problem, rules, eligible_pairs(problem, rules), seed=7)
    given = solution_document(problem, rules, roster, "FEASIBLE", 0, 0.0)
    started: list[tuple[set[tuple[int, int]], int]] = []

    def record(self: PartSearch, assignments: list[tuple[int, int]], objective: int) -> None:
        started.append((set(assignments), objective))
        self.assigned, self.objective = set(assignments), objective

    def constructs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a roster was constructed though one was given")

    monkeypatch.setattr(PartSearch, "start", record)
    monkeypatch.setattr(module, "greedy", constructs)
    monkeypatch.setattr(module, "WHOLE_MODEL_PAIRS", 0)  # every part searched from `given`
    sol = solve(doc, time_limit=5, workers=1, start=given)
    assert set().union(*(a for a, _ in started)) == set(roster)
    assert sum(c for _, c in started) == given["objective"] == check(problem, roster).objective
    assert sol["objective"] <= given["objective"]
    assert check(problem, parse_assignments(problem, sol)).ok


def test_a_roster_to_start_from_that_breaks_a_hard_rule_is_refused() -> None:
    from solver import solve
    from solver.solve import solution_document

    doc = generate(districts=1, seed=3, days=5)
    problem = parse_problem(doc)
    rules = instantiate(problem)
    given = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
    mine, *rest = given["assignments"]
    # someone else's shift on the same day, at another post: a second shift that day
    other = next(a for a in rest if a["date"] == mine["date"] and a["post"] != mine["post"])
    bad = {**given, "assignments": [*given["assignments"],
                                    {**other, "volunteer": mine["volunteer"]}]}
    with pytest.raises(ProblemError, match=r"^start: the roster to start from breaks a hard "
                                           r"rule: "):
        solve(doc, time_limit=5, workers=1, start=bad)


def _hotel_and_building(m_days: list[int]) -> tuple[PartSearch, dict[tuple[int, int], None],
                                                     dict[str, int], dict[tuple[str, int], int],
                                                     Report]:
    """A search over 6 days of a closed-loop hotel nobody works at and a building whose
    one post `m` holds on `m_days`; `m` may also work at the hotel, `u` only at the
    building, `h` only at the hotel (but is never available).  Returns the search, its
    pairs, volunteer and (post, day) slot indexes, and the starting roster's report."""
    problem = parse_problem(make_problem(
        days=6,
        sites=[site("hotel", kind="hotel", posts=["hp"]), site("bldg", kind="building",
                                                               posts=["bp"])],
        demand=[demand("hp", "M"), demand("bp", "M")],
        volunteers=[volunteer("m", sites=["hotel", "bldg"]), volunteer("u", sites=["bldg"]),
                    volunteer("h", sites=["hotel"], unavailable=[(d, None) for d in range(6)])],
        rules=[{"type": "closed_loop", "site_kinds": ["hotel"]},
               {"type": "one_shift_per_day"}]))
    rules = instantiate(problem)
    pairs = eligible_pairs(problem, rules)
    search = PartSearch(problem, rules, pairs, seed=1)
    vid = {v.id: v.index for v in problem.volunteers}
    at = {(problem.posts[sl.post].id, sl.day): sl.index for sl in problem.slots}
    roster = [(vid["m"], at[("bp", d)]) for d in m_days]
    first = check(problem, roster, rules)
    search.start(roster, first.objective)
    return search, pairs, vid, at, first


def test_pull_frees_someone_working_elsewhere_and_whoever_could_take_their_shifts() -> None:
    # `m` holds the building on days 1 and 4: the hotel is short every day
    search, pairs, vid, at, _ = _hotel_and_building([1, 4])
    hotel = [at[("hp", d)] for d in range(6)]
    assert set(hotel) <= set(search.uncovered())
    free = search.pull(hotel)
    # all of m's horizon, and u on the days m would leave (u could take those shifts)
    assert free == ({pair for pair in pairs if pair[0] == vid["m"]}
                    | {(vid["u"], at[("bp", 1)]), (vid["u"], at[("bp", 4)])})
    # nobody short of a building shift works at another site: nobody to pull
    assert search.pull([at[("bp", 0)]]) == set()
    assert search.pull([]) == set()


def test_a_pull_step_moves_someone_into_a_closed_loop_and_backfills(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules["solver.search"], "PULL", 1.0)  # every step pulls
    search, _, _, _, first = _hotel_and_building(list(range(6)))
    assert search.step(5.0)
    problem = search.problem
    report = check(problem, search.assignments(), search.rules)
    assert report.ok and search.objective == report.objective < first.objective
    # m went to the hotel, u took the building
    assert {(problem.volunteers[v].id, problem.posts[problem.slots[s].post].id)
            for v, s in search.assignments()} == {("m", "hp"), ("u", "bp")}
