"""A day-by-day greedy fill, scarcest skill first.

It is the baseline the solver must beat and, once `solver.fill` has closed the gaps it
leaves, the solver's first incumbent (a hint for CP-SAT).  Every tentative assignment is
checked with the same rule catalogue the validator uses, so the greedy roster never
breaks a hard rule.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable

from solver.bound import daily_and_weekly_caps
from solver.problem import Problem
from solver.rules import Rule, instantiate
from solver.rules.catalogue import MinRestHours, OneShiftPerDay
from solver.validate import volunteer_cost

#: How many feasible candidates the greedy prices before it picks the cheapest.
PRICED = 8
#: Price of a shift from someone whose remaining shifts no longer cover every remaining
#: day they could work, against soft costs (balance is 2n+1): see `horizon_pressure`.
HORIZON_PRICE = 35


def eligible_pairs(problem: Problem, rules: list[Rule],
                   slots: Iterable[int] | None = None) -> dict[tuple[int, int], None]:
    """Every (volunteer, slot) pair that no hard unary rule forbids, in slot order.

    `slots` limits it to those slots (a repair asks only around the shifts it refills).
    """
    by_site: dict[int, list[int]] = defaultdict(list)
    anywhere: list[int] = []
    for vol in problem.volunteers:
        if vol.sites is None:
            anywhere.append(vol.index)
        else:
            for s in vol.sites:
                by_site[s].append(vol.index)
    filters = unary(rules)
    pairs: dict[tuple[int, int], None] = {}
    chosen = problem.slots if slots is None else [problem.slots[s] for s in sorted(slots)]
    vols = problem.volunteers
    for slot in chosen:
        for v in sorted(by_site.get(slot.site, []) + anywhere):
            vol = vols[v]
            for r in filters:
                if not r.eligible(vol, slot):
                    break
            else:
                pairs[(v, slot.index)] = None
    return pairs


def unary(rules: list[Rule]) -> list[Rule]:
    """The rules that may forbid pairs on their own (see `Rule.filters`)."""
    return [r for r in rules if r.filters()]


def one_shift_a_day(rules: list[Rule]) -> bool:
    """Whether a hard one-shift-per-day rule holds for everyone: then nobody working on a
    day can take another shift that day, which spares most calls into the catalogue."""
    return any(isinstance(r, OneShiftPerDay) and r.hard and r.applies_to is None
               for r in rules)


def greedy(problem: Problem, rules: list[Rule] | None = None,
           pairs: dict[tuple[int, int], None] | None = None,
           volunteers: set[int] | None = None, seed: int = 0) -> list[tuple[int, int]]:
    """Fill each day's requirements, scarcest first, with the cheapest feasible volunteer.

    Skill requirements come before head counts, and within each the requirement with the
    fewest candidates per missing person goes first.  A candidate's price is the soft cost
    the assignment adds (rules, preferences, balance), so spare people are spread evenly.
    """
    rules = rules if rules is not None else instantiate(problem)
    pairs = pairs if pairs is not None else eligible_pairs(problem, rules)
    rng = random.Random(seed)
    cands: dict[int, list[int]] = defaultdict(list)
    for v, s in pairs:
        if volunteers is None or v in volunteers:
            cands[s].append(v)
    items: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    cost: dict[int, int] = defaultdict(int)
    taken: dict[int, set[int]] = defaultdict(set)
    out: list[tuple[int, int]] = []
    vols = problem.volunteers
    slots_by_day: dict[int, list[int]] = defaultdict(list)
    for slot in problem.slots:
        if cands.get(slot.index):
            slots_by_day[slot.day].append(slot.index)
    tie = {v.index: rng.random() for v in vols}
    # What each person can give over the horizon: days they could work, within max_shifts.
    reach: dict[int, set[int]] = defaultdict(set)
    for v, s in pairs:
        reach[v].add(problem.slots[s].day)
    cap = {v.index: max(1, min(len(reach[v.index]), v.max_shifts or problem.days)) for v in vols}

    one_a_day = one_shift_a_day(rules)
    busy: dict[int, set[int]] = defaultdict(set)  # day -> volunteers working that day
    # (v, s) -> (how many shifts v had, trial, hard rule broken, cost): a person's price for
    # a slot stands until they take another shift, and a slot's requirements (skills, then
    # the head count, each one person at a time) price the same people again and again.
    priced: dict[tuple[int, int], tuple[int, list[tuple[int, int, int]], Rule | None, int]] = {}

    def price(v: int, s: int) -> tuple[list[tuple[int, int, int]], Rule | None, int]:
        known = priced.get((v, s))
        if known is not None and known[0] == len(items[v]):
            return known[1:]
        slot = problem.slots[s]
        trial = sorted(items[v] + [(slot.day, slot.shift, s)],
                       key=lambda it: problem.begins(it[0], it[1]))
        broken, c = volunteer_cost(rules, problem, v, trial)
        priced[(v, s)] = (len(items[v]), trial, broken, c)
        return trial, broken, c

    def try_fill(s: int, skill: str | None, need: int) -> None:
        slot = problem.slots[s]
        need = min(need, slot.max - len(taken[s]))
        while need > 0:
            best: tuple[int, int, float, float, int] | None = None
            chosen: tuple[list[tuple[int, int, int]], int] = ([], 0)
            # The price is mostly balance (2n+1), so the least-loaded people are the likely
            # winners: price them in that order and stop after a few feasible ones.
            # Requirements of the slot that a person without the skill would leave no
            # room for (a night with one place that needs a medic who is a Party member).
            room = slot.max - len(taken[s]) - 1
            short = [(t, n - sum(1 for v in taken[s] if t in vols[v].skills) - room)
                     for t, n in slot.requires]
            short = [(t, n) for t, n in short if n > 0]

            def lost(v: int, short: list[tuple[str, int]] = short) -> int:
                return sum(n - (t in vols[v].skills) for t, n in short)

            pool = sorted((v for v in cands[s] if v not in taken[s]
                           and (not skill or skill in vols[v].skills)
                           and not (one_a_day and v in busy[slot.day])),
                          key=lambda v: (lost(v), len(items[v]) >= (vols[v].min_shifts or 0),
                                         len(items[v]) / cap[v], tie[v]))
            feasible = 0
            for v in pool:
                if feasible >= PRICED:
                    break
                trial, broken, c = price(v, s)
                if broken is not None:
                    continue
                feasible += 1
                # People still short of their min_shifts first; then the cheapest, saving
                # volunteers with many skills for the requirements that need them.
                below = len(items[v]) < (vols[v].min_shifts or 0)
                # A person whose shifts left fall short of the days left is kept for later.
                key = (0 if below else 1, lost(v), c - cost[v] + 0.1 * len(vols[v].skills)
                       + HORIZON_PRICE * horizon_pressure(v, slot.day), tie[v], v)
                if best is None or key < best:
                    best, chosen = key, (trial, c)
            if best is None:
                return
            add(best[-1], s, *chosen)
            need -= 1

    def add(v: int, s: int, trial: list[tuple[int, int, int]], c: int) -> None:
        items[v] = trial
        cost[v] = c
        taken[s].add(v)
        busy[problem.slots[s].day].add(v)
        out.append((v, s))

    def horizon_pressure(v: int, day: int) -> float:
        """How much of `v`'s remaining capacity a shift on `day` takes from later days.

        0 while the shifts `v` may still work cover every day left that they could work;
        towards 1 as a shift today means a day later without them.  A day-by-day fill
        that ignores this spends its people in the first days and leaves the last ones
        short (seen on generated districts: most of the shortage on the final day).
        """
        left = sum(1 for d in reach[v] if d >= day)
        spare = cap[v] - len(items[v])
        return max(0, left - spare + 1) / max(1, left)


    rests = [r for r in rules if isinstance(r, MinRestHours) and r.hard]
    _, weekly = daily_and_weekly_caps(problem, rules)

    def free_today(day: int) -> Callable[[int, str | None], int]:
        """How many people may still take a requirement of `day` after the days before it:
        not kept out by rest after their last shift, nor by a full week (a cheap estimate
        of `volunteer_cost`, to order the day's requirements)."""
        week = problem.week(day)
        memo: dict[tuple[int, int], bool] = {}

        def free(v: int, shift: int) -> bool:
            if (v, shift) not in memo:
                done = items[v]
                last = done[-1][:2] if done else None
                memo[(v, shift)] = not (
                    last is not None and any(r.applies(vols[v]) and r.too_close(last, (day, shift))
                                             for r in rests)
                    or v in weekly and sum(1 for d, _, _ in done
                                           if problem.week(d) == week) >= weekly[v])
            return memo[(v, shift)]

        def supply(s: int, skill: str | None) -> int:
            shift = problem.slots[s].shift
            return sum(1 for v in cands[s]
                       if (not skill or skill in vols[v].skills) and free(v, shift))

        return supply

    for day in sorted(slots_by_day):
        # The requirement with the fewest people still free for it per person missing goes
        # first: a night after a late shift is open only to those who rested the day before.
        supply = free_today(day)
        todo: list[tuple[float, int, str, int]] = []
        for s in slots_by_day[day]:
            for skill, need in problem.slots[s].requires:
                todo.append((supply(s, skill) / need, s, skill, need))
        for _, s, skill, need in sorted(todo, key=lambda t: t[0]):
            have = sum(1 for v in taken[s] if skill in vols[v].skills)
            try_fill(s, skill, need - have)
        rest = sorted(slots_by_day[day],
                      key=lambda s: supply(s, None) / max(1, problem.slots[s].min))
        for s in rest:
            try_fill(s, None, problem.slots[s].min - len(taken[s]))
    return out
