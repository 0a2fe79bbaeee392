"""Fast local search on the incumbent: small moves checked incrementally in Python.

The CP-SAT neighbourhoods of :mod:`solver.curtois.search` are exact but cost about a
second each on the 364-day instances.  Many of the improvements a constructed roster
still offers are small, though: an employee works a shift type that is over-covered
on a day where another type of the same length is short, or could move working days
to where they are needed.  This module finds those by plain enumeration, thousands
per second:

* *change* one cell of one employee (a different shift type, a day off, or a
  shift on a day off);
* *move* a working day: one cell to a shift and another cell within
  :data:`REACH` days to a day off (or the other way round), so the employee's
  minutes stay within their window;
* *ejection chains* (:func:`_cover`) for a short cell: someone takes the shift
  over (another type that day, or work moved there from anywhere in the horizon,
  one or two days at a time), which may leave another cell short; a colleague
  covers that one the same way, up to :data:`CHAIN_DEPTH` links; kept only if the
  whole chain gains; for a cell on a weekend, those who already work that
  weekend are tried first (:func:`_takers`);
* *swap* with a colleague the cells of a block of 1–:data:`BLOCK` days starting on
  the day, which leaves the cover as it is and serves the requests.

Every candidate is priced exactly (request and cover costs of the cells it
changes) and only an improving one (or a chain's opening link) is checked for
feasibility, against the employee's rules around the changed days (:class:`_Rows`).
The search walks from costly cells: under- or over-covered (day, shift) cells and
violated requests.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterable, Iterator

from .incumbent import Incumbent
from .instance import OFF
from .model import InstanceData

__all__ = ["polish"]

#: Days either side of a changed cell where a move looks for the compensating cell.
REACH = 10
#: Longest block of days swapped between two employees.
BLOCK = 7
#: Colleagues tried per swap.
SWAP_PARTNERS = 8
#: Employees tried for each link of an ejection chain (:func:`_cover`).  60 s of
#: polish from the constructed roster of instance 23, seeds 0-2, mean of the three:
#: 3 tries 43,340, 4 38,261, 6 36,493, 10 35,349 (random tries, not weekend workers
#: first: 3 49,078, 6 43,019); instance 24, seeds 0-1: 3 99,824 and 98,185, 8 89,121
#: and 93,560.
CHAIN_TRIES = 8
#: Links an ejection chain may add after its first move.
CHAIN_DEPTH = 3
#: Moves of one employee tested for feasibility per link.
CHAIN_CHECKS = 40
#: Moves of one employee applied tentatively per link, each to open a longer chain.
CHAIN_OPENINGS = 3
#: Moves of one employee looked at per link, most of them rejected by the quick
#: tests of their far blocks.
CHAIN_SCAN = 400

#: One employee's changes: day -> new cell (shift index or OFF).
Change = dict[int, int]


class _Rows:
    """Per-employee counters and cover margins: the cost and feasibility of a change.

    Owns ``state`` while it lives: every change must go through :meth:`set`.
    """

    def __init__(self, data: InstanceData, state: Incumbent) -> None:
        self.data = data
        self.state = state
        # Cover cost of one more / one fewer person on (day, shift).
        self.more = [[0] * data.S for _ in range(data.H)]
        self.fewer = [[0] * data.S for _ in range(data.H)]
        for d in range(data.H):
            for t in range(data.S):
                self._margins(d, t)
        self.minutes = [0] * data.E
        self.count = [[0] * data.S for _ in range(data.E)]
        self.weekends = [0] * data.E
        for e, row in enumerate(state.roster):
            for t in row:
                if t != OFF:
                    self.minutes[e] += data.minutes[t]
                    self.count[e][t] += 1
            self.weekends[e] = sum(
                1 for sat, sun in data.weekends if row[sat] != OFF or row[sun] != OFF
            )

    def feasible(self, e: int, ch: Change, totals: bool = True) -> bool:
        """Whether employee ``e``'s row with the cells ``ch`` changed keeps every hard rule.

        The row is feasible before the change, so only what the change touches is
        checked: its cells, their successions, the totals, and the work and off runs
        around the days whose work/off status flips.  ``totals=False`` leaves out the
        totals (minutes, caps per type, weekends): for part of a change whose other
        part makes up for them.
        """
        data = self.data
        row = self.state.roster[e]
        st = data.inst.staff[e]
        H = data.H
        minutes = data.minutes
        banned = data.banned_set
        off_days = data.inst.days_off[e]
        dmin = 0
        dcount: dict[int, int] = {}
        flips: list[int] = []
        for d, new in ch.items():
            old = row[d]
            if new != OFF:
                if d in off_days:
                    return False
                dmin += minutes[new]
                dcount[new] = dcount.get(new, 0) + 1
                prev = ch.get(d - 1, row[d - 1]) if d > 0 else OFF
                if prev != OFF and new in banned[prev]:
                    return False
                nxt = ch.get(d + 1, row[d + 1]) if d + 1 < H else OFF
                if nxt != OFF and nxt in banned[new]:
                    return False
            if old != OFF:
                dmin -= minutes[old]
                dcount[old] = dcount.get(old, 0) - 1
            if (old == OFF) != (new == OFF):
                flips.append(d)
        if totals:
            total = self.minutes[e] + dmin
            if not st.min_total_minutes <= total <= st.max_total_minutes:
                return False
            count = self.count[e]
            cap = data.max_shifts[e]
            if any(k > 0 and count[t] + k > cap[t] for t, k in dcount.items()):
                return False
        if not flips:
            return True

        def works(x: int) -> bool:
            return ch.get(x, row[x]) != OFF

        if totals and self.weekends[e] + self._weekends_change(row, ch, flips) > st.max_weekends:
            return False
        # Every run that the flips can have changed lies between the start of the run
        # holding the day before the first flip and the end of the run holding the
        # day after the last.
        a = max(0, min(flips) - 1)
        while a > 0 and works(a - 1) == works(a):
            a -= 1
        b = min(H - 1, max(flips) + 1)
        while b < H - 1 and works(b + 1) == works(b):
            b += 1
        x = a
        while x <= b:
            on = works(x)
            y = x
            while y < b and works(y + 1) == on:
                y += 1
            length = y - x + 1
            edge = x == 0 or y == H - 1
            if on:
                if length > st.max_consecutive_shifts:
                    return False
                if length < st.min_consecutive_shifts and not edge:
                    return False
            elif length < st.min_consecutive_days_off and not edge:
                return False
            x = y + 1
        return True

    def _weekends_change(self, row: list[int], ch: Change, flips: list[int]) -> int:
        """Change in weekends worked when ``ch`` (whose work/off flips are ``flips``)
        is applied to ``row``."""
        data = self.data
        n = 0
        for k in {data.weekend_of[d] for d in flips if d in data.weekend_of}:
            sat, sun = data.weekends[k]
            after = ch.get(sat, row[sat]) != OFF or ch.get(sun, row[sun]) != OFF
            n += after - (row[sat] != OFF or row[sun] != OFF)
        return n

    def _margins(self, d: int, t: int) -> None:
        n = self.state.cnt[d][t]
        pen = self.state.cover_pen
        now = pen(d, t, n)
        self.more[d][t] = pen(d, t, n + 1) - now
        self.fewer[d][t] = pen(d, t, n - 1) - now if n else 0

    def cell_deltas(self, e: int, d: int, options: list[int]) -> list[int]:
        """Objective change of employee ``e`` working each of ``options`` on day ``d``.

        Exact with everybody else fixed.  One employee's cells on different days
        touch different cover cells, so the change of several of them is the sum.
        """
        state = self.state
        old = state.roster[e][d]
        requests = self.data.request_weight[e][d] > 0
        base = state.cell_cost(e, d, old) if requests else 0
        if old != OFF:
            base -= self.fewer[d][old]
        more = self.more[d]
        out = []
        for new in options:
            if new == old:
                out.append(0)
            elif new == OFF:
                out.append((state.cell_cost(e, d, OFF) if requests else 0) - base)
            elif requests:
                out.append(state.cell_cost(e, d, new) - base + more[new])
            else:
                out.append(more[new] - base)
        return out

    def set(self, e: int, ch: Change, delta: int) -> None:
        """Write ``ch`` (whose objective change is ``delta``) into the incumbent."""
        state = self.state
        row = state.roster[e]
        data = self.data
        flips = []
        for d, new in ch.items():
            old = row[d]
            if old != OFF:
                self.minutes[e] -= data.minutes[old]
                self.count[e][old] -= 1
            if new != OFF:
                self.minutes[e] += data.minutes[new]
                self.count[e][new] += 1
            if (old == OFF) != (new == OFF):
                flips.append(d)
        self.weekends[e] += self._weekends_change(row, ch, flips)
        for d, new in ch.items():
            old = row[d]
            state.put(e, d, new)
            if old != OFF:
                self._margins(d, old)
            if new != OFF:
                self._margins(d, new)
        state.version[e] += 1
        state.obj += delta


def _try_single(
    data: InstanceData, state: Incumbent, rows: _Rows, e: int, d: int, below: int = 0
) -> int:
    """Apply the best feasible move of employee ``e`` at day ``d`` that changes the
    objective by less than ``below``; return minus that change, or 0 if there is none.

    The moves: the cell on day ``d`` to any other shift type or a day off, alone or
    with one cell within :data:`REACH` days flipped the other way (work to off or
    off to work), which keeps the minutes in their window.
    """
    row = state.roster[e]
    cur = row[d]
    options = [*data.allowed[e], OFF]
    here = rows.cell_deltas(e, d, options)
    cands: list[tuple[int, int, int, int]] = []  # (delta, new on d, d2, new on d2)
    for t, delta in zip(options, here, strict=True):
        if delta < below and t != cur:
            cands.append((delta, t, -1, OFF))
    off_here = here[-1]
    for d2 in range(max(0, d - REACH), min(data.H, d + REACH + 1)):
        other = row[d2]
        if d2 == d or (other == OFF) == (cur == OFF):
            continue
        if cur == OFF:
            # Work on d instead of on d2.
            drop = rows.cell_deltas(e, d2, [OFF])[0]
            for t, delta in zip(options[:-1], here, strict=False):
                if delta + drop < below:
                    cands.append((delta + drop, t, d2, OFF))
        else:
            # Work on d2 instead of on d.
            there = rows.cell_deltas(e, d2, options[:-1])
            for t, delta in zip(options[:-1], there, strict=True):
                if delta + off_here < below:
                    cands.append((delta + off_here, OFF, d2, t))
    cands.sort()
    for delta, t, d2, t2 in cands:
        ch = {d: t} if d2 < 0 else {d: t, d2: t2}
        if rows.feasible(e, ch):
            rows.set(e, ch, delta)
            return -delta
    return 0


def _fits(data: InstanceData, s: int, near: int, after: bool) -> bool:
    """Whether shift ``s`` may come right after (``after``) or right before ``near``."""
    return s not in data.banned_set[near] if after else near not in data.banned_set[s]


def _fit_types(
    data: InstanceData, rows: _Rows, e: int, row: list[int], block: Change
) -> tuple[int, int, Change] | None:
    """Retype the working days next to ``block`` (consecutive days of work for
    employee ``e``) that may not follow it, or precede it, as the banned successions
    say: each to its cheapest type that fits, outwards until the successions hold.
    Returns (objective change, minutes change, the retyped cells), or ``None`` when
    some day has no type that fits.
    """
    options = data.allowed[e]
    minutes = data.minutes
    H = data.H
    cost = mins = 0
    extra: Change = {}
    for step in (1, -1):
        x = (max(block) if step == 1 else min(block)) + step
        near = block[x - step]
        while 0 <= x < H and row[x] != OFF and not _fits(data, row[x], near, step == 1):
            old = row[x]
            fit = [s for s in options if _fits(data, s, near, step == 1)]
            if not fit:
                return None
            p, s = min(zip(rows.cell_deltas(e, x, fit), fit, strict=True))
            extra[x] = near = s
            cost += p
            mins += minutes[s] - minutes[old]
            x += step
    return cost, mins, extra


def _moves(
    data: InstanceData, state: Incumbent, rows: _Rows, e: int, d: int, t: int
) -> Iterable[tuple[int, Change, Change]]:
    """Changes of employee ``e``'s row that put shift ``t`` on day ``d``: (objective
    change, cells added or changed around ``d``, cells given up elsewhere), cheapest
    first; not yet checked for feasibility.

    Working another shift that day: the change of type.  Off that day: the day alone
    or with an adjacent day off (a run of one day is often too short), either as
    extra work or giving up as much work anywhere in the horizon, one working day or
    two adjacent ones.  Every employee's minutes are nearly fixed on the 364-day
    instances, and construction leaves whole months short and others over-covered,
    so the work must move across months.  Either way, the working days around that
    may no longer follow (or precede) the new shift change type too
    (:func:`_fit_types`): on instance 22, turning a day shift into a late one needs
    the rest of the run late or at night.
    """
    row = state.roster[e]
    if row[d] == t or t not in data.allowed[e] or d in data.inst.days_off[e]:
        return []
    H = data.H
    minutes = data.minutes
    options = data.allowed[e]
    (here,) = rows.cell_deltas(e, d, [t])
    # The blocks of work to add or retype around d: (delta, minutes, change).
    blocks: list[tuple[int, int, Change]] = []
    if row[d] != OFF:
        blocks.append((here, minutes[t] - minutes[row[d]], {d: t}))
    else:
        blocks.append((here, minutes[t], {d: t}))
        for x in (d - 1, d + 1):
            if not 0 <= x < H or row[x] != OFF:
                continue
            prices = rows.cell_deltas(e, x, options)
            fits = [
                (p, s)
                for p, s in zip(prices, options, strict=True)
                if _fits(data, s, t, x > d)
            ]
            if fits:
                p, s = min(fits)
                blocks.append((here + p, minutes[t] + minutes[s], {d: t, x: s}))
    adds = []
    for pa, ma, ca in blocks:
        fitted = _fit_types(data, rows, e, row, ca)
        if fitted is not None:
            adds.append((pa + fitted[0], ma + fitted[1], {**ca, **fitted[2]}))
    if row[d] != OFF:
        return [(pa, ca, {}) for pa, _, ca in adds]
    # The blocks of work to give up, anywhere: none, one working day, or two adjacent.
    fewer = rows.fewer
    weight = data.request_weight[e]
    drop: dict[int, int] = {}
    for x, old in enumerate(row):
        if old != OFF:
            # Without requests on the cell, its price is the cover's alone.
            drop[x] = rows.cell_deltas(e, x, [OFF])[0] if weight[x] else fewer[x][old]
    drops: list[tuple[int, int, Change]] = [(0, 0, {})]
    for x, p in drop.items():
        drops.append((p, minutes[row[x]], {x: OFF}))
        if x + 1 in drop:
            pair = (p + drop[x + 1], minutes[row[x]] + minutes[row[x + 1]])
            drops.append((*pair, {x: OFF, x + 1: OFF}))
    drops.sort(key=lambda b: b[0])
    st = data.inst.staff[e]
    low = st.min_total_minutes - rows.minutes[e]
    high = st.max_total_minutes - rows.minutes[e]

    def paired(pa: int, ma: int, ca: Change) -> Iterator[tuple[int, Change, Change]]:
        for pd, md, cd in drops:
            if low <= ma - md <= high and not ca.keys() & cd.keys():
                yield pa + pd, ca, cd

    # Cheapest first, generated as the caller goes: it mostly stops early.
    return heapq.merge(*(paired(*a) for a in adds), key=lambda m: m[0])


def _takers(
    data: InstanceData, state: Incumbent, d: int, pool: list[int], k: int, rng: random.Random
) -> list[int]:
    """Up to ``k`` employees of ``pool`` to try for a cell on day ``d``, at random;
    on a weekend day, all but the last try go to those who already work that weekend.

    Taking the cell costs them no weekend.  On the long instances every employee is
    at their weekend limit and the short cells are on weekends, so anyone else must
    give up a weekend elsewhere, which mostly fails.  The last try is anyone's: with
    every try on those who work the weekend, polish stopped sooner, at a worse roster
    (instance 23 from the constructed roster, 60 s, three tries a link, seeds 0-2:
    random tries 51,099, 47,781 and 48,353; all on weekend workers 52,584 at 45 s on
    seed 0; all but the last 43,266, 44,733 and 42,021).
    """
    week = data.weekend_of.get(d)
    if week is None:
        return rng.sample(pool, min(len(pool), k))
    days = data.weekends[week]
    roster = state.roster
    first = [e for e in pool if any(roster[e][x] != OFF for x in days)]
    chosen = rng.sample(first, min(len(first), k - 1))
    rest = [e for e in pool if e not in chosen]
    return chosen + rng.sample(rest, min(len(rest), k - len(chosen)))


def _cover(
    data: InstanceData,
    state: Incumbent,
    rows: _Rows,
    d: int,
    t: int,
    below: int,
    depth: int,
    rng: random.Random,
    seen: frozenset[int] = frozenset(),
) -> int:
    """Put one more employee on shift ``t`` on day ``d`` by a chain of moves that
    changes the objective by less than ``below``; return minus that change, or 0
    (the roster unchanged).

    An ejection chain: a move of one employee (:func:`_moves`) that gains on its own
    is applied; one that leaves another cell short is applied tentatively when up to
    ``depth`` further links may cover that cell (by a colleague, recursively), and
    undone if they cannot.  Employees already in the chain (``seen``) stay put.
    """
    row_of = state.roster
    cover = data.cover
    pool = [e for e in data.by_type[t] if row_of[e][d] != t and e not in seen]
    for e in _takers(data, state, d, pool, CHAIN_TRIES, rng):
        row = row_of[e]
        checks = opened = 0
        # A block of work far from another cannot mend the other's runs: such blocks
        # are tested alone first (once each, without the totals), the whole only after.
        st = data.inst.staff[e]
        near = 2 + max(
            st.max_consecutive_shifts, st.min_consecutive_shifts, st.min_consecutive_days_off
        )
        alone: dict[tuple[tuple[int, int], ...], bool] = {}

        def fits(block: Change, e: int = e, alone: dict = alone) -> bool:
            key = tuple(block.items())
            if key not in alone:
                alone[key] = rows.feasible(e, block, totals=False)
            return alone[key]

        limit = below + (data.max_under if depth else 0)
        for scanned, (delta, add, give) in enumerate(_moves(data, state, rows, e, d, t)):
            if delta >= limit or checks >= CHAIN_CHECKS or scanned >= CHAIN_SCAN:
                break
            if give and min(abs(x - d) for x in give) > near:
                if not (fits(add) and fits(give)):
                    continue
            ch = {**add, **give}
            checks += 1
            if not rows.feasible(e, ch):
                continue
            if delta < below:
                rows.set(e, ch, delta)
                return -delta
            # The cell this move leaves short, if exactly one: the next link covers it.
            vacated = [
                (x, row[x])
                for x in ch
                if row[x] != OFF
                and (c := cover[x][row[x]]) is not None
                and state.cnt[x][row[x]] <= c[0]
            ]
            if len(vacated) != 1 or opened >= CHAIN_OPENINGS:
                continue
            opened += 1
            undo = {x: row[x] for x in ch}
            rows.set(e, ch, delta)
            (x, s) = vacated[0]
            gain = _cover(data, state, rows, x, s, below - delta, depth - 1, rng, seen | {e})
            if gain:
                return gain - delta
            rows.set(e, undo, -delta)
    return 0


def _try_swap(
    data: InstanceData, state: Incumbent, rows: _Rows, e: int, d: int, rng: random.Random
) -> int:
    """Swap a block of days from ``d`` with a colleague if that lowers the request cost."""
    row = state.roster[e]
    weight = data.request_weight
    cost = state.cell_cost
    partners = rng.sample(range(data.E), min(data.E, SWAP_PARTNERS))
    best: tuple[int, int, Change, Change] | None = None
    for e2 in partners:
        if e2 == e:
            continue
        row2 = state.roster[e2]
        delta = 0
        ch1: Change = {}
        ch2: Change = {}
        for x in range(d, min(data.H, d + BLOCK)):
            a, b = row[x], row2[x]
            if a != b:
                ch1[x], ch2[x] = b, a
                if weight[e][x]:
                    delta += cost(e, x, b) - cost(e, x, a)
                if weight[e2][x]:
                    delta += cost(e2, x, a) - cost(e2, x, b)
            if ch1 and delta < 0 and (best is None or delta < best[0]):
                if rows.feasible(e, ch1) and rows.feasible(e2, ch2):
                    best = (delta, e2, dict(ch1), dict(ch2))
    if best is None:
        return 0
    delta, e2, ch1, ch2 = best
    rows.set(e, ch1, delta)
    rows.set(e2, ch2, 0)
    return -delta


def polish(data: InstanceData, state: Incumbent, rng: random.Random, deadline: float) -> int:
    """Improve ``state`` in place until a pass over the costly cells finds nothing.

    ``deadline`` is a :func:`time.monotonic` time.  Returns the total gain.  The
    caller must hold ``state.lock`` (or be alone).
    """
    rows = _Rows(data, state)
    gain = 0
    by_type = data.by_type
    while time.monotonic() < deadline:
        state.refresh()
        # (kind, day, shift or employee): costly cover cells, then violated requests.
        items = [(0, d, t) for d, t in state.gaps]
        items += [
            (1, d, e) for e, costs in enumerate(state.req_cost) for d, c in enumerate(costs) if c
        ]
        rng.shuffle(items)
        found = 0
        for kind, d, x in items:
            if time.monotonic() >= deadline:
                break
            if kind == 1:
                g = _try_single(data, state, rows, x, d) or _try_swap(data, state, rows, x, d, rng)
            else:
                short = state.cnt[d][x] < data.cover[d][x][0]  # type: ignore[index]
                pool = [e for e in by_type[x] if (state.roster[e][d] == x) != short]
                g = 0
                # Those who work the cell's shift, when it is over-covered, all work
                # the weekend: _takers is then a plain random choice.
                for e in _takers(data, state, d, pool, 3, rng):
                    g = _try_single(data, state, rows, e, d)
                    if g:
                        break
                if short and not g:
                    # A chain of moves: someone takes the shift over, a colleague
                    # covers what they leave short, and so on.
                    g = _cover(data, state, rows, d, x, 0, CHAIN_DEPTH, rng)
            found += g
        gain += found
        if not found:
            break
    return gain
