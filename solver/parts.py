"""City scale: split a problem into independent sub-problems, solve them apart, merge.

`solve` already decomposes a problem into the connected parts of the volunteer–site
eligibility graph; here those parts are packed into a few *sub-problems*, each a valid
`roster-problem/1` document of its own, so that they can be solved in other processes
(`solve_parallel`, `python -m solver solve --jobs N`) or by other machines (RQ jobs), and
the part solutions merged back into one `roster-solution/1` (`merge`).

Parts share no volunteer and no slot, and every rule but coverage and `demand_max` (which
are per slot) is per volunteer, so objectives, bounds, penalties and unmet demand simply
add up.  A sub-problem keeps every site its volunteers refer to (their `sites` lists,
post preferences, `closed_loop` by id) but only its own sites' demand: a preference for a
post elsewhere then costs exactly what it costs in the whole problem.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from solver.greedy import eligible_pairs
from solver.problem import SOLUTION_FORMAT, Problem, parse_problem
from solver.rules import instantiate
from solver.solve import Part, decompose, part_bound
from solver.validate import check, parse_assignments

#: Eligible pairs per sub-problem when none is asked for: about one generated district,
#: large enough for `solve` to share time among its parts, small enough to balance.
GROUP_PAIRS = 150_000
#: A part with more eligible pairs than this is cut (`cut`) into pieces of about half
#: as many: two districts' worth, more than one job should take on alone.
CUT_PAIRS = 2 * GROUP_PAIRS
#: Share of the time limit kept back for merging and validating the whole roster (the
#: generated city: 2.7 s of the 10.8 s this keeps of 540 s).
MERGE_SHARE = 0.02
#: Seconds a sub-problem takes beyond its budget, until one is measured.
STARTUP = 2.0
#: A sub-problem stops once within this share of its bound, leaving its time to the
#: others: half the 5 % a part must reach, so time goes where a part is furthest from it.
PART_GAP = 0.025
#: Least seconds worth giving a sub-problem that goes on from its roster once all are done
#: (`_Runner.extend`): less is mostly spent rebuilding its bounds.
EXTEND_MIN = 10.0
#: Worst first: the merged status is the worst of the parts'.
STATUS_RANK = {"OPTIMAL": 0, "FEASIBLE": 1, "UNKNOWN": 2, "INFEASIBLE": 3}


@dataclass(frozen=True)
class SubProblem:
    """Independent parts of a problem packed into one `roster-problem/1` document."""

    index: int
    doc: dict[str, Any]
    size: int  # eligible pairs + slots: the work it takes, for time budgets
    parts: int
    volunteers: int
    slots: int


@dataclass(frozen=True)
class PartProgress:
    """One sub-problem finished (or failed) while a split problem is solved."""

    index: int
    count: int
    done: int
    status: str
    objective: int | None
    bound: int | None
    seconds: float
    peak_mb: float
    error: str | None = None
    #: the sub-problem went on from its roster with time the others left (`extend`)
    extended: bool = False


class PartFailed(RuntimeError):
    """A sub-problem failed twice (its process crashed or it raised); names the part."""

    def __init__(self, index: int, count: int, reason: str) -> None:
        super().__init__(f"part {index + 1}/{count} failed twice: {reason}")
        self.index, self.count, self.reason = index, count, reason


def split(problem: Problem | dict[str, Any], group_pairs: int = GROUP_PAIRS,
          min_groups: int = 1, cut_pairs: int = CUT_PAIRS) -> list[SubProblem]:
    """Split `problem` into sub-problems of whole independent parts, largest first.

    Parts are packed largest first into the lightest of as many sub-problems as it takes
    for about `group_pairs` eligible pairs each, at least `min_groups` (so that every
    process has work) and at most one per part.  A part too large for one job (more than
    `cut_pairs` pairs) is not solved badly in one: it is `cut` into pieces of about half
    that, each a sub-problem of its own.
    """
    if not isinstance(problem, Problem):
        problem = parse_problem(problem)
    rules = instantiate(problem)
    parts = decompose(problem, eligible_pairs(problem, rules))
    whole = [p for p in parts if len(p.pairs) <= cut_pairs]
    subs = []
    for origin, part in enumerate(p for p in parts if len(p.pairs) > cut_pairs):
        pieces = cut(problem, part, -(-2 * len(part.pairs) // max(1, cut_pairs)))
        subs += [_sub_document(problem, [piece], (origin, sites)) for piece, sites in pieces]
    total = sum(len(p.pairs) for p in whole)
    count = max(min_groups - len(subs), -(-total // max(1, group_pairs)))
    bins: list[list[Part]] = [[] for _ in range(max(1, min(count, len(whole))))]
    loads = [0] * len(bins)
    for part in whole:  # decompose sorts them largest first
        k = loads.index(min(loads))
        bins[k].append(part)
        loads[k] += part.size
    subs += [_sub_document(problem, group) for group in bins if group]
    subs.sort(key=lambda s: -s.size)
    return [SubProblem(i, s.doc, s.size, s.parts, s.volunteers, s.slots)
            for i, s in enumerate(subs)]


def cut(problem: Problem, part: Part, pieces: int) -> list[tuple[Part, set[int]]]:
    """Cut one part into `pieces` groups of its sites, each volunteer kept on one side.

    Sites are taken in breadth-first order over shared people (so that neighbours stay
    together) and cut into runs of about equal eligible pairs; each volunteer goes with
    the group where they have the most pairs and loses the others.  The pieces are then
    independent: a restriction of the part, so their rosters together are a valid roster
    of it, but their optima and bounds are not the part's (`merge` bounds a cut part as
    a whole).  Returns each piece with its sites.
    """
    slots = problem.slots
    weight: Counter[int] = Counter()
    people: dict[int, set[int]] = defaultdict(set)  # site -> volunteers
    where: dict[int, Counter[int]] = defaultdict(Counter)  # volunteer -> site -> pairs
    for v, s in part.pairs:
        site = slots[s].site
        weight[site] += 1
        people[site].add(v)
        where[v][site] += 1
    own = sorted({slots[s].site for s in part.slots})
    order: list[int] = []
    seen_sites: set[int] = set()
    seen_people: set[int] = set()
    for start in own:  # breadth first; a site nobody can work starts its own search
        if start in seen_sites:
            continue
        seen_sites.add(start)
        queue = [start]
        while queue:
            site = queue.pop(0)
            order.append(site)
            for v in sorted(people[site] - seen_people):
                seen_people.add(v)
                for other in sorted(where[v]):
                    if other not in seen_sites:
                        seen_sites.add(other)
                        queue.append(other)
    pieces = max(1, min(pieces, len(order)))
    target = sum(weight.values()) / pieces
    group: dict[int, int] = {}
    done = 0
    for site in order:
        group[site] = min(pieces - 1, int(done // target)) if target else 0
        done += weight[site]
    side: dict[int, int] = {}  # volunteer -> the group with most of their pairs
    for v, sites in where.items():
        per_group: Counter[int] = Counter()
        for site, n in sites.items():
            per_group[group[site]] += n
        side[v] = min(per_group, key=lambda k: (-per_group[k], k))
    out: list[tuple[Part, set[int]]] = [(Part([], [], {}), set()) for _ in range(pieces)]
    for site, k in group.items():
        out[k][1].add(site)
    for v in part.volunteers:
        out[side[v]][0].volunteers.append(v)
    for s in part.slots:
        out[group[slots[s].site]][0].slots.append(s)
    for v, s in part.pairs:
        if side[v] == group[slots[s].site]:
            out[group[slots[s].site]][0].pairs[(v, s)] = None
    return [(piece, sites) for piece, sites in out if piece.slots or piece.volunteers]


def _sub_document(problem: Problem, group: list[Part],
                  cut_from: tuple[int, set[int]] | None = None) -> SubProblem:
    """The `roster-problem/1` document of some parts: their people and their demand.

    `cut_from`: the group is one piece of a cut part (`cut`): its index among the cut
    parts and the piece's sites.  Its people may then work at those sites only, and the
    document says so in an added `cut` field that `merge` reads to bound the part.
    """
    raw = problem.raw
    vols = sorted(v for p in group for v in p.volunteers)
    own_sites = {problem.slots[s].site for p in group for s in p.slots}
    site_ix = {s.id: s.index for s in problem.sites}
    referenced = set(own_sites)
    people = []
    for v in vols:
        vol = problem.volunteers[v]
        raw_vol = raw["volunteers"][v]
        if cut_from is not None:
            allowed = cut_from[1] if vol.sites is None else vol.sites & cut_from[1]
            raw_vol = {**raw_vol, "sites": [problem.sites[i].id for i in sorted(allowed)]}
            referenced |= allowed
        else:
            referenced |= vol.sites or set()
        referenced |= {problem.posts[pr.post].site for pr in vol.preferences
                       if pr.post is not None}
        people.append(raw_vol)
    for spec in problem.rules:  # closed_loop by site id must name sites that exist
        referenced |= {site_ix[s] for s in spec.params.get("sites") or [] if s in site_ix}
    demand = [raw["demand"][d.index] for d in problem.demand
              if problem.posts[d.post].site in own_sites]
    doc = {k: val for k, val in raw.items() if k not in ("sites", "demand", "volunteers")}
    doc["name"] = f"{raw.get('name', '')} · {len(group)} parts".strip(" ·")
    doc["sites"] = [raw["sites"][s] for s in sorted(referenced)]
    doc["demand"] = demand
    doc["volunteers"] = people
    if cut_from is not None:
        doc["cut"] = {"part": cut_from[0],
                      "sites": [problem.sites[i].id for i in sorted(cut_from[1])],
                      "volunteers": [problem.volunteers[v].id for v in vols]}
    return SubProblem(0, doc, sum(p.size for p in group), len(group), len(vols),
                      sum(len(p.slots) for p in group))


def merge(problem: Problem, solutions: list[dict[str, Any]], seconds: float,
          docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One `roster-solution/1` from the solutions of a split problem's sub-problems.

    Objective, bound, penalties and unmet demand add up and the status is the worst; the
    whole roster is re-checked by the validator, and a hard violation or an objective
    that does not add up (the parts were not independent) raises instead of returning.
    `docs`: the sub-problems' documents, in the same order; pieces of a cut part (their
    `cut` field) bound only their restriction of it, so the part is bounded here whole.
    """
    status = max((s["status"] for s in solutions), key=lambda st: STATUS_RANK.get(st, 2))
    base = {"format": SOLUTION_FORMAT, "status": status, "objective": None, "bound": None,
            "seconds": round(seconds, 3), "assignments": [], "unmet": [], "penalties": [],
            "parts": sum(s.get("parts", 1) for s in solutions)}
    if status == "INFEASIBLE":
        base["conflicts"] = [c for s in solutions for c in s.get("conflicts", [])]
        return base
    if status not in ("OPTIMAL", "FEASIBLE"):
        base["message"] = next(s.get("message") for s in solutions if s["status"] == status)
        return base
    items = [a for s in solutions for a in s["assignments"]]
    pairs = parse_assignments(problem, {"assignments": items})
    report = check(problem, pairs)
    if not report.ok:
        raise AssertionError("merged roster is invalid: "
                             + "; ".join(v.message.en for v in report.hard[:5]))
    claimed = sum(s["objective"] for s in solutions)
    if claimed != report.objective:
        raise AssertionError(f"part objectives add up to {claimed}, the validator finds "
                             f"{report.objective} for the merged roster")
    order = sorted(range(len(items)), key=lambda i: pairs[i])
    cuts: list[dict[str, Any] | None] = ([d.get("cut") for d in docs] if docs
                                         else [None] * len(solutions))
    bound = sum(s["bound"] for s, c in zip(solutions, cuts, strict=True) if not c)
    if any(cuts):
        bound += _cut_bound(problem, solutions, cuts)
        if base["status"] == "OPTIMAL" and bound < report.objective:
            base["status"] = "FEASIBLE"  # optimal for the pieces, not proven for the part
    base.update(objective=report.objective,
                bound=min(report.objective, bound),
                assignments=[items[i] for i in order],
                unmet=[u for s in solutions for u in s["unmet"]],
                penalties=report.penalties())
    return base


def _cut_bound(problem: Problem, solutions: list[dict[str, Any]],
               cuts: list[dict[str, Any] | None]) -> int:
    """A valid bound of the cut parts, each bounded whole (`part_bound`).

    The pieces' rosters together are a roster of their part, so the sum of their
    objectives is an incumbent the bound may use.
    """
    groups: dict[int, tuple[set[int], set[int], int]] = {}
    vol_ix = {v.id: v.index for v in problem.volunteers}
    for solution, c in zip(solutions, cuts, strict=True):
        if not c:
            continue
        sites, vols, incumbent = groups.get(c["part"], (set(), set(), 0))
        sites |= {problem.site_by_id[s].index for s in c["sites"]}
        vols |= {vol_ix[v] for v in c["volunteers"]}
        groups[c["part"]] = (sites, vols, incumbent + solution["objective"])
    rules = instantiate(problem)
    total = 0
    for sites, vols, incumbent in groups.values():
        slots = [slot.index for slot in problem.slots if slot.site in sites]
        pairs = {k: None for k in eligible_pairs(problem, rules, slots) if k[0] in vols}
        total += min(incumbent, part_bound(problem, rules, Part(sorted(vols), slots, pairs),
                                           incumbent))
    return total


@dataclass(frozen=True)
class SubTask:
    """What a worker process needs to solve one sub-problem (picklable)."""

    index: int
    doc: dict[str, Any]
    time_limit: float
    workers: int
    seed: int
    #: its roster from an earlier round, to go on from (`solve`'s `start`)
    start: dict[str, Any] | None = None


def solve_subproblem(task: SubTask) -> dict[str, Any]:
    """Solve one sub-problem (in a worker process); report its peak memory too."""
    from solver.solve import solve

    solution = solve(task.doc, time_limit=task.time_limit, workers=task.workers,
                     seed=task.seed + task.index, gap_limit=PART_GAP, start=task.start)
    return {"solution": solution, "peak_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    `VmHWM` rather than `ru_maxrss`: Linux carries `ru_maxrss` over `exec`, so a spawned
    worker would report its parent's peak; `VmHWM` belongs to the process's own memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PartSolver = Callable[[SubTask], dict[str, Any]]
PartProgressCallback = Callable[[PartProgress], None]


def solve_parallel(problem: Problem | dict[str, Any], time_limit: float = 60.0, jobs: int = 2,
                   workers: int = 2, seed: int = 0,
                   progress: PartProgressCallback | None = None,
                   part_solver: PartSolver = solve_subproblem,
                   group_pairs: int = GROUP_PAIRS) -> dict[str, Any]:
    """Split `problem`, solve the sub-problems in `jobs` processes, merge and validate.

    The time limit covers splitting, solving and merging.  Each sub-problem gets, when a
    process takes it, a budget proportional to its size out of the time left, so that the
    processes finish together.  Each process runs one CP-SAT worker (`workers` when
    `jobs` is 1).  Processes are spawned, not forked (OR-Tools threads and fork do not
    mix), and kept for the next sub-problem: starting one costs seconds.  A sub-problem
    whose process crashes or raises is reported through `progress` and retried once;
    failing again raises `PartFailed`.
    """
    t0 = time.monotonic()
    jobs = max(1, jobs)
    # The processes start (seconds each: a new interpreter importing OR-Tools) while this
    # one parses and splits.
    pool = _new_pool(jobs)
    for _ in range(jobs):
        pool.submit(_warm_up)
    try:
        if not isinstance(problem, Problem):
            problem = parse_problem(problem)
        # Two sub-problems per process at least: one ending early leaves its time to others.
        subs = split(problem, group_pairs=group_pairs, min_groups=2 * jobs)
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    deadline = t0 + time_limit * (1 - MERGE_SHARE)
    runner = _Runner(subs, deadline, jobs, workers if jobs == 1 else 1, seed, progress,
                     part_solver, t0)
    solutions = runner.run(pool)
    return merge(problem, solutions, time.monotonic() - t0, [s.doc for s in subs])


def _gap(solution: dict[str, Any]) -> float:
    """How far above its bound a solved sub-problem ended, as a share of its objective."""
    objective, bound = solution.get("objective"), solution.get("bound")
    if solution.get("status") != "FEASIBLE" or not objective or bound is None:
        return 0.0
    return float(objective - bound) / objective


def _new_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` spawned processes, not forked: OR-Tools threads and fork do not mix."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


def _warm_up() -> None:
    """Import the solver in a new worker process before it gets work."""
    import solver.solve  # noqa: F401


class _Runner:
    """Keeps `jobs` processes busy with sub-problems, largest first, and retries failures.

    A process that dies breaks the whole pool, and with it every sub-problem then running,
    so which one crashed is not known: each is retried alone (nothing else running), where
    a second failure is its own and raises `PartFailed` naming it.
    """

    def __init__(self, subs: list[SubProblem], deadline: float, jobs: int, workers: int,
                 seed: int, progress: PartProgressCallback | None, part_solver: PartSolver,
                 t0: float) -> None:
        self.subs, self.deadline, self.jobs, self.workers = subs, deadline, max(1, jobs), workers
        self.seed, self.progress, self.part_solver, self.t0 = seed, progress, part_solver, t0
        self.pending = list(range(len(subs)))
        self.retry: list[int] = []
        self.left = sum(s.size for s in subs)  # size of the sub-problems not yet started
        self.results: dict[int, dict[str, Any]] = {}
        self.ends: dict[int, float] = {}  # when the running ones should be done
        self.started: dict[int, float] = {}
        self.budgets: dict[int, float] = {}
        self.overrun: float | None = None  # seconds beyond the budget per unit of size

    def run(self, pool: ProcessPoolExecutor) -> list[dict[str, Any]]:
        """Solve every sub-problem, in `pool` and then in new pools if one breaks."""
        while True:
            with pool:
                self._drain(pool)
                if not (self.pending or self.retry):
                    self.extend(pool)
                    break
            pool = _new_pool(self.jobs)
        return [self.results[i]["solution"] for i in range(len(self.subs))]

    def extend(self, pool: ProcessPoolExecutor) -> None:
        """Give the time the sub-problems left unused to those furthest above their bounds.

        Sub-problems within `PART_GAP` stop early, so the processes fall idle before the
        deadline (the generated city: 84 s of 540 s on 2 processes).  The sub-problems
        still above `PART_GAP` go on from their rosters (`solve`'s `start`), furthest
        first, each with an equal share of the time left: as many as get `EXTEND_MIN`
        seconds each.  The better roster of the two rounds stands, and the higher bound;
        a failure here leaves the first round's result as it was.
        """
        order = sorted((i for i, r in self.results.items()
                        if _gap(r["solution"]) > PART_GAP),
                       key=lambda i: -_gap(self.results[i]["solution"]))
        running: dict[Future[dict[str, Any]], int] = {}
        while order or running:
            while order and len(running) < self.jobs:
                budget = self._extend_budget(order)
                if budget is None:
                    break
                i = order.pop(0)
                # another seed: the search takes other steps from where it stopped
                task = SubTask(i, self.subs[i].doc, budget, self.workers,
                               self.seed + len(self.subs), self.results[i]["solution"])
                running[pool.submit(self.part_solver, task)] = i
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                self.ends.pop(i, None)
                exc = future.exception()
                if exc is None:
                    self._keep_better(i, future.result())
                    continue
                self._report(i, "FAILED", None, None, 0.0,
                             f"{type(exc).__name__}: {exc}; its first roster stands", True)
                if isinstance(exc, BrokenProcessPool):
                    return  # the pool is gone, and the others running with it

    def _extend_budget(self, order: list[int]) -> float | None:
        """The budget of `order[0]` when every one in `order` gets an equal share of the
        time left; the nearest to their bounds are dropped until it is `EXTEND_MIN`."""
        now = time.monotonic()
        left = max(0.0, self.deadline - now)
        free = self.jobs * left - self._held(now)
        overrun = self._overrun(self.subs[order[0]].size)
        while order:
            slot = min(left, free / len(order))
            if slot - overrun >= EXTEND_MIN:
                self.ends[order[0]] = now + slot
                return slot - overrun
            order.pop()
        return None

    def _keep_better(self, i: int, result: dict[str, Any]) -> None:
        """Keep the lower objective of sub-problem `i`'s two rounds, with the higher bound
        (both bound the same sub-problem)."""
        old, new = self.results[i]["solution"], result["solution"]
        bound = max(old.get("bound") or 0, new.get("bound") or 0)
        if new.get("status") in ("OPTIMAL", "FEASIBLE") and new["objective"] < old["objective"]:
            self.results[i] = result
        kept = self.results[i]["solution"]
        kept["bound"] = min(bound, kept["objective"])
        self._report(i, kept["status"], kept["objective"], kept["bound"],
                     result.get("peak_mb", 0.0), None, True)

    def _budget(self, i: int, retry: bool) -> float:
        """Its share by size of the process time left, so that all processes end together.

        The process time left is every process until the deadline less what the running
        sub-problems still hold; a sub-problem that ends early leaves its time to the
        rest.  A sub-problem takes longer than its budget: handing it over and back, and
        the construction and bounds that `solve` does whatever its limit (much longer on a
        busy machine).  That overrun, measured per unit of size on the finished ones, is
        taken off the budget.
        """
        now = time.monotonic()
        left = max(0.0, self.deadline - now)
        size = self.subs[i].size
        waiting = self.left + (size if retry else 0)  # not started yet, `i` included
        slot = min(left, max(0.0, self.jobs * left - self._held(now)) * size / max(1, waiting))
        self.ends[i] = now + slot
        self.budgets[i] = max(0.1, slot - self._overrun(size))
        return self.budgets[i]

    def _held(self, now: float) -> float:
        """Process time the running sub-problems still hold, from `now` to their ends."""
        return sum(max(0.0, end - now) for end in self.ends.values())

    def _overrun(self, size: int) -> float:
        """Seconds a sub-problem of `size` is expected to take beyond its budget."""
        return STARTUP if self.overrun is None else self.overrun * size

    def _drain(self, pool: ProcessPoolExecutor) -> None:
        """Run sub-problems in `pool` until none is left or the pool breaks."""
        running: dict[Future[dict[str, Any]], tuple[int, bool]] = {}  # (index, retried)
        while self.pending or self.retry or running:
            if self.retry and not running:
                i = self.retry.pop(0)
                running[self._submit(pool, i, True)] = (i, True)
            while self.pending and not self.retry and len(running) < self.jobs:
                i = self.pending.pop(0)
                running[self._submit(pool, i, False)] = (i, False)
                self.left -= self.subs[i].size
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                i, retried = running.pop(future)
                broken |= self._finished(i, retried, future)
            if broken:  # every other one running was lost with the pool
                for future, (i, retried) in running.items():
                    wait([future])
                    self._finished(i, retried, future)
                return

    def _submit(self, pool: ProcessPoolExecutor, i: int, retry: bool) -> Future[dict[str, Any]]:
        task = SubTask(i, self.subs[i].doc, self._budget(i, retry), self.workers, self.seed)
        self.started[i] = time.monotonic()
        return pool.submit(self.part_solver, task)

    def _finished(self, i: int, retried: bool, future: Future[dict[str, Any]]) -> bool:
        """Record a result or a failure (retried once, alone); True when the pool broke."""
        self.ends.pop(i, None)
        exc = future.exception()
        if exc is None:
            result = self.results[i] = future.result()
            sol = result["solution"]
            over = max(0.0, time.monotonic() - self.started[i] - self.budgets[i])
            per_size = over / max(1, self.subs[i].size)
            # recent ones count most: the machine's load changes
            self.overrun = per_size if self.overrun is None else (self.overrun + per_size) / 2
            self._report(i, sol["status"], sol.get("objective"), sol.get("bound"),
                         result.get("peak_mb", 0.0), None)
            return False
        broken = isinstance(exc, BrokenProcessPool)
        reason = "its worker process died" if broken else f"{type(exc).__name__}: {exc}"
        self._report(i, "FAILED", None, None, 0.0, reason)
        if retried:
            raise PartFailed(i, len(self.subs), reason)
        self.retry.append(i)
        return broken

    def _report(self, i: int, status: str, objective: int | None, bound: int | None,
                peak_mb: float, error: str | None, extended: bool = False) -> None:
        if self.progress:
            self.progress(PartProgress(i, len(self.subs), len(self.results), status,
                                       objective, bound, time.monotonic() - self.t0,
                                       peak_mb, error, extended))
