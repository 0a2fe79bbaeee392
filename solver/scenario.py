"""Seeded generator of realistic `roster-problem/1` documents (see problem-format.md).

Shape of one generated district (the numbers are averages; every street varies):

* ``streets_per_district`` streets (default 4), each with about 8 sites:

  - 1-3 highway checkpoints ``che`` (24 h): ``check`` vehicle checks with a Party member
    leading every shift, ``sample`` (核酸采样, medical), ``disinfect``;
  - 1 quarantine hotel ``hot`` (24 h, a *closed loop*): ``medical`` (medics, one of them
    a Party member), ``security``, ``logistics``, ``care`` (counselor, daytime) and
    ``transfer`` with a driver on every shift;
  - 2-4 locked-down buildings ``bui``: ``gate`` (Party lead) and ``delivery``, M and A;
  - 2 testing points ``tes``: ``sample`` (medical), ``register``, ``order`` (Party lead),
    M and A.  The first runs daily and needs extra samplers on the city's mass-testing
    days; the second opens only on those days (demand entries with explicit ``dates``).

* Volunteers belong to *units* (offices, police, hospitals, schools, property
  companies...).  A unit is paired with one to three sites of its street and every member's
  ``sites`` is that list.  The hotel is staffed by hotel-only teams (medical, security,
  drivers, counselors, logistics), so the closed loop strands nobody; in ~30 % of
  hotels a property company paired with the hotel and a building takes part of the
  logistics (its members must choose).  Medical units serve the sampling posts of a
  checkpoint and a testing point; the other units are sized from what remains of their
  site's demand, with enough Party members to lead every shift.

* Roughly 1/3 of the volunteers are Party members, 1/6 medical; drivers, security and
  counselors sit mostly in the hotel teams; ``senior`` volunteers (retired cadres,
  residents' committees) never work nights (a hard ``max_shift_per_week`` N = 0 rule on
  the tag); ``teacher`` volunteers (school units) are unavailable on weekday mornings.

Calibration: every unit is filled, one volunteer at a time, until the shifts its members
could work (``capacity``: ``max_shifts`` capped by 5 shifts in each 7-day block of
available dates) reach its share of demand divided by ``TARGET_LOAD`` (0.9; rounding,
head-count floors and Party floors add a few members, so a district lands at 0.86-0.89
of supply): tight but mostly coverable.  A few shortages are designed in and
cannot be covered by any roster: some hotels get too few drivers for a transfer driver on
every shift, and in every district one checkpoint's medical unit is recalled to its
hospital for a few days, leaving the checkpoint without samplers.  ``summarize`` measures
all of this, including a lower bound of the demand no roster can cover.

Everything is drawn from ``random.Random(seed)``; district *i* draws from its own stream
seeded by the city stream, so a city's first district equals the one-district problem.
Street names depend only on the district index (the city's map does not change).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FORMAT = "roster-problem/1"
COVERAGE_WEIGHT = 1000

# Skill tags.  "counselor" is spelt as in shared/examples/yuhua-small.json.
PARTY = "party"
MEDICAL = "medical"
DRIVER = "driver"
SECURITY = "security"
COUNSELOR = "counselor"
SENIOR = "senior"
TEACHER = "teacher"

SHIFTS: list[dict[str, str]] = [
    {"id": "M", "name": "早班", "start": "08:00", "end": "16:00"},
    {"id": "A", "name": "中班", "start": "16:00", "end": "00:00"},
    {"id": "N", "name": "夜班", "start": "00:00", "end": "08:00"},
]

RULES: list[dict[str, Any]] = [
    {"type": "one_shift_per_day"},
    {"type": "min_rest_hours", "hours": 12},
    {"type": "max_consecutive_days", "days": 6},
    {"type": "max_shifts_per_week", "count": 5},
    {"type": "max_shift_per_week", "shift": "N", "count": 0, "applies_to": SENIOR},
    {"type": "max_shift_per_week", "shift": "N", "count": 2, "weight": 20},
    {"type": "closed_loop", "site_kinds": ["hotel"]},
    {"type": "balance", "weight": 1},
]
WEEK_CAP = 5  # the hard max_shifts_per_week above; used by `capacity`

# Demand is this share of the supply each unit is sized for.  Below ~0.8 the roster is
# slack and the solver has nothing to trade off; above ~0.95 the rest and night rules
# (A -> M, M -> N and A -> N are all < 12 h apart) make much of the rest uncoverable.
TARGET_LOAD = 0.9
# A hotel short of drivers gets driver capacity for only this share of its transfer
# demand (one driver per shift): the gap cannot be covered by any roster.
DRIVER_SHORT_SHARE = (0.55, 0.75)
HOTEL_DRIVER_SHORT_P = 0.35
RECALL_DAYS = (3, 4)  # length of the medical unit's recall to hospital

DISTRICTS = (
    "雨花区 芙蓉区 天心区 岳麓区 开福区 望城区 东城区 西城区 南湖区 北塘区 江滨区 "
    "湘江区 麓山区 星沙区 暮云区 洋湖区 梅溪区 坪塘区 黎托区 圭塘区 洞井区 高桥区 "
    "马坡区 捞刀区 金霞区 浏阳河区 松雅区 黄兴区 榔梨区 跳马区 含浦区 莲花区 雷锋区 "
    "丁字区 铜官区 乔口区 靖港区 白沙区 桃花区 枫林区 观沙区 银盆区 橘洲区 青竹区"
).split()
STREET_STEMS = (
    "东塘 砂子塘 左家塘 侯家塘 雨花亭 井湾子 黎托 圭塘 洞井 高桥 同升 东山 望月 "
    "咸嘉 银盆 观沙 西湖 桔子洲 岳麓 天顶 梅溪 含光 坡子 文源 新开 金盆 裕南 "
    "赤岭 青园 大托 先锋 黄土 湘湖 马王堆 荷花 五里 八一 长青 丽江 伍家 四方 "
    "月湖 清水 捞刀 洪山 东风 芙蓉 定王 火星 东岸 鸭子铺 新河 通泰 望麓 湘雅 "
    "浏正 伍家岭"
).split()
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋"
    "蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段"
    "雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯晨俊峰"
    "婷雪琳欣怡佳琪晓东海波春燕丹梅新志立红军林颖慧子轩梓涵一诺子墨雨桐思远嘉怡浩然"
)


@dataclass(frozen=True)
class PostSpec:
    """A post of a site template: per-shift minimum and the skills that minimum needs."""

    key: str
    name: str
    mins: dict[str, int]  # shift id -> min people
    requires: dict[str, int]  # skill -> people; a value of -1 means "all of min"
    jitter: int = 0  # min varies by up to this much per site

    def required(self, minimum: int) -> dict[str, int]:
        return {k: (minimum if v < 0 else min(v, minimum)) for k, v in self.requires.items()}


# Sizes are per site and shift.  One street sums to ~100 person-shifts a day, which at
# TARGET_LOAD and ~7.9 shifts per volunteer in 14 days gives the ~225 volunteers of a
# street (~900 a district).  Skilled posts are sized so that required medical work is
# ~14 % of demand against ~1/6 medical volunteers, party leads ~15 % against ~1/3.
CHECKPOINT = (
    PostSpec("check", "车辆查验", {"M": 6, "A": 5, "N": 4}, {PARTY: 1}, jitter=1),
    PostSpec("sample", "核酸采样", {"M": 1, "A": 1, "N": 1}, {MEDICAL: -1}),
    PostSpec("disinfect", "现场消杀", {"M": 1, "A": 1, "N": 1}, {}),
)
HOTEL = (
    PostSpec("medical", "内场医疗", {"M": 2, "A": 2, "N": 1}, {MEDICAL: -1, PARTY: 1}),
    PostSpec("security", "安全保卫", {"M": 1, "A": 1, "N": 1}, {SECURITY: 1}),
    PostSpec("logistics", "后勤保障", {"M": 3, "A": 2, "N": 1}, {}, jitter=1),
    PostSpec("care", "人文关怀", {"M": 1, "A": 1}, {COUNSELOR: 1}),
    PostSpec("transfer", "病例转运", {"M": 1, "A": 1, "N": 1}, {DRIVER: 1}),
)
BUILDING = (
    PostSpec("gate", "楼栋门岗", {"M": 3, "A": 2}, {PARTY: 1}, jitter=1),
    PostSpec("delivery", "物资配送", {"M": 3, "A": 3}, {}, jitter=1),
)
TESTING = (
    PostSpec("sample", "采样", {"M": 2, "A": 1}, {MEDICAL: -1}),
    PostSpec("register", "扫码登记", {"M": 4, "A": 2}, {}, jitter=1),
    PostSpec("order", "秩序维护", {"M": 2, "A": 2}, {PARTY: 1}),
)
MASS_EXTRA_SAMPLERS = 2  # extra medics at the daily testing point's M shift on mass days
TEMPLATES: dict[str, tuple[str, str, tuple[PostSpec, ...]]] = {
    "checkpoint": ("che", "高速卡口", CHECKPOINT),
    "hotel": ("hot", "隔离酒店", HOTEL),
    "building": ("bui", "封控楼栋", BUILDING),
    "testing": ("tes", "核酸采样点", TESTING),
}


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit and the share of its members with each tag."""

    name: str  # "{s}" is replaced by the street's stem
    tags: dict[str, float]


# Shares are per member.  Party membership is high in government and police units and low
# in companies, which averages to ~1/3 over a district's mix of units.
GENERAL_KINDS: dict[str, tuple[tuple[UnitKind, float], ...]] = {
    "checkpoint": (
        (UnitKind("区交警大队", {PARTY: 0.35, SECURITY: 0.3, DRIVER: 0.15}), 2),
        (UnitKind("交通执法大队", {PARTY: 0.3, DRIVER: 0.2}), 2),
        (UnitKind("区纪委监委", {PARTY: 0.6}), 1),
        (UnitKind("区税务局", {PARTY: 0.35}), 1),
        (UnitKind("市财政局", {PARTY: 0.4}), 1),
        (UnitKind("区城管局", {PARTY: 0.25, DRIVER: 0.1}), 1),
        (UnitKind("{s}中学", {TEACHER: 1.0, PARTY: 0.2}), 1),
    ),
    "building": (
        (UnitKind("{s}物业公司", {PARTY: 0.05, SECURITY: 0.1}), 3),
        (UnitKind("{s}社区居委会", {PARTY: 0.3, SENIOR: 0.4}), 2),
        (UnitKind("区委老干部局", {PARTY: 0.5, SENIOR: 0.6}), 1),
        (UnitKind("{s}退休干部志愿队", {PARTY: 0.45, SENIOR: 0.9}), 1),
        (UnitKind("{s}街道办事处", {PARTY: 0.45}), 2),
        (UnitKind("区市场监管局", {PARTY: 0.35}), 1),
        (UnitKind("{s}小学", {TEACHER: 1.0, PARTY: 0.15}), 1),
        (UnitKind("市供销社", {PARTY: 0.3, DRIVER: 0.1}), 1),
    ),
    "testing": (
        (UnitKind("{s}中学", {TEACHER: 1.0, PARTY: 0.2, COUNSELOR: 0.05}), 2),
        (UnitKind("区教育局", {PARTY: 0.35}), 1),
        (UnitKind("市委党校中青班", {PARTY: 0.7}), 1),
        (UnitKind("{s}社区居委会", {PARTY: 0.3, SENIOR: 0.4}), 2),
        (UnitKind("{s}退休干部志愿队", {PARTY: 0.45, SENIOR: 0.9}), 1),
        (UnitKind("市科协", {PARTY: 0.3}), 1),
        (UnitKind("区卫健局", {PARTY: 0.4, MEDICAL: 0.2}), 1),
        (UnitKind("区委组织部", {PARTY: 0.6}), 1),
    ),
}
MEDICAL_KINDS = (
    UnitKind("{s}社区卫生服务中心", {MEDICAL: 1.0, PARTY: 0.3}),
    UnitKind("区人民医院", {MEDICAL: 1.0, PARTY: 0.35}),
    UnitKind("区中医医院", {MEDICAL: 1.0, PARTY: 0.3}),
    UnitKind("区妇幼保健院", {MEDICAL: 1.0, PARTY: 0.3}),
)
# The hotel's teams, by post: every member has the post's skill, so the closed loop is
# staffed by people who work nowhere else.
HOTEL_TEAMS: dict[str, UnitKind] = {
    "medical": UnitKind("区人民医院医疗队", {MEDICAL: 1.0, PARTY: 0.3}),
    "security": UnitKind("区公安分局", {SECURITY: 1.0, PARTY: 0.35}),
    "transfer": UnitKind("区交运局转运组", {DRIVER: 1.0, PARTY: 0.2}),
    "care": UnitKind("区心理援助中心", {COUNSELOR: 1.0, PARTY: 0.25}),
    "logistics": UnitKind("区机关事务局", {PARTY: 0.3, DRIVER: 0.05}),
}
# Some hotels share logistics with a property company that also serves a building.
HOTEL_MIXED = UnitKind("{s}物业公司", {PARTY: 0.1, SECURITY: 0.1})
HOTEL_MIXED_P = 0.3
# Tags a member of any non-hotel unit may also have, whatever the unit.
BACKGROUND_TAGS = {MEDICAL: 0.01, DRIVER: 0.04, SECURITY: 0.02, COUNSELOR: 0.01}
TAG_ORDER = (PARTY, MEDICAL, DRIVER, SECURITY, COUNSELOR, SENIOR, TEACHER)


def district_name(i: int) -> str:
    """The Chinese name of district *i* (0-based) of the generated city."""
    return DISTRICTS[i] if i < len(DISTRICTS) else f"第{i + 1}区"


def street_names(district: int, count: int) -> list[str]:
    """Street stems of a district: distinct within it, drawn deterministically."""
    rng = random.Random(f"streets:{district}")
    stems = rng.sample(STREET_STEMS, min(count, len(STREET_STEMS)))
    return stems + [f"第{k + 1}" for k in range(len(stems), count)]


def capacity(max_shifts: int, blocked: Iterable[int], days: int) -> int:
    """Upper bound on the shifts a volunteer can work: ``max_shifts``, at most
    ``WEEK_CAP`` shifts in each 7-day block and only on dates not wholly unavailable.

    It ignores the run limit (6 days) and the rest rule, which with 5 shifts a week rarely
    bind on their own, and the sites, which the unit sizing accounts for."""
    blocked_set = set(blocked)
    total = 0
    for week in range(0, days, 7):
        free = sum(1 for d in range(week, min(week + 7, days)) if d not in blocked_set)
        total += min(WEEK_CAP, free)
    return min(max_shifts, total)


@dataclass
class _Context:
    """What one generate() call shares between districts."""

    rng: random.Random
    days: int
    dates: list[str]
    weekdays: list[int]  # day indexes that are Mon-Fri
    index: dict[str, int]  # date -> day index
    mass_days: list[int]
    next_volunteer: int = 1


def _person_name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _weighted(rng: random.Random, options: Sequence[tuple[UnitKind, float]]) -> UnitKind:
    return rng.choices([k for k, _ in options], weights=[w for _, w in options])[0]


def _make_volunteer(
    ctx: _Context, rng: random.Random, unit: str, kind: UnitKind, sites: list[str],
    recall: Sequence[int], background: bool, party: bool, days_off: list[int] | None,
) -> tuple[dict[str, Any], int]:
    """One volunteer and their capacity; ``party`` forces the Party tag, ``days_off``
    replaces the random days off."""
    tags = {t for t, p in kind.tags.items() if rng.random() < p}
    if background:
        tags |= {t for t, p in BACKGROUND_TAGS.items() if rng.random() < p}
    if party:
        tags.add(PARTY)
    days = ctx.days
    scale = days / 14
    # 6-10 shifts in 14 days: volunteers keep their day jobs part of the week.
    max_shifts = max(1, round(rng.randint(6, 10) * scale))
    # Everyone has a few days off (family, their own unit's duties); the count scales
    # with the horizon and at least one is always drawn.
    n_off = min(days, max(1, round(rng.randint(1, 3) * scale)))
    if days_off is not None:
        off = set(days_off[:max(1, min(n_off, len(days_off)))])
    else:
        off = set(rng.sample(range(days), n_off))
    off.update(recall)
    unavailable: list[tuple[int, str | None]] = [(d, None) for d in off]
    if rng.random() < 0.15:
        unavailable.append((rng.randrange(days), rng.choice("MAN")))
    if TEACHER in tags:  # classes (online in 2022) on weekday mornings
        unavailable.extend((d, "M") for d in ctx.weekdays)
    seen: set[tuple[int, str | None]] = set()
    entries: list[dict[str, Any]] = []
    for d, s in sorted(unavailable, key=lambda e: (e[0], e[1] or "")):
        if (d, s) in seen or (s is not None and d in off):
            continue
        seen.add((d, s))
        entries.append({"date": ctx.dates[d]} if s is None else {"date": ctx.dates[d], "shift": s})
    preferences: list[dict[str, Any]] = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        d = rng.randrange(days)
        if d in off:
            continue
        pref: dict[str, Any] = {"date": ctx.dates[d]}
        if rng.random() < 0.75:
            pref["shift"] = rng.choice("MA" if SENIOR in tags else "MAN")
        pref["want"] = rng.random() < 0.4
        pref["weight"] = rng.randint(1, 5)
        preferences.append(pref)
    vid = f"v{ctx.next_volunteer:05d}"
    ctx.next_volunteer += 1
    volunteer = {
        "id": vid,
        "name": _person_name(rng),
        "unit": unit,
        "skills": [t for t in TAG_ORDER if t in tags],
        "max_shifts": max_shifts,
        "min_shifts": 0,
        "sites": list(sites),
        "unavailable": entries,
        "preferences": preferences,
    }
    return volunteer, capacity(max_shifts, off, days)


def _fill_unit(
    ctx: _Context, rng: random.Random, out: list[dict[str, Any]], kind: UnitKind,
    stem: str, sites: list[str], target: float, *, recall: Sequence[int] = (),
    background: bool = True, party_target: float = 0.0, heads: int = 1,
    stagger: int | None = None,
) -> None:
    """Add members of one unit until their capacity reaches ``target`` shifts (to the
    nearest member), the Party members' capacity reaches ``party_target`` (the first
    members are Party members if the unit's own share would fall short: 下沉党员 lead
    every shift) and the unit has at least ``heads`` members.  With ``stagger`` the
    members' days off rotate from that day on (轮休), so a small team never has most of
    its members off on the same day."""
    unit = kind.name.format(s=stem)
    half = 4 * ctx.days / 14  # half a typical member's capacity
    share = kind.tags.get(PARTY, 0.0)
    supply = party_supply = count = 0
    # The limit only guards against members who can never work (a recall that covers
    # the whole horizon): a unit is never that large.
    limit = heads + int(2 * target) + 10
    while (supply + half < target or party_supply < party_target or count < heads) and (
            count < limit):
        # Force the tag only when the unit's own share would not reach the floor, so
        # the Party share stays near the units' shares (~1/3) instead of floor + share.
        force = party_supply + share * max(0.0, target - supply) < party_target
        off = [(stagger + count) % ctx.days, (stagger + count + 7) % ctx.days] if (
            stagger is not None) else None
        volunteer, cap = _make_volunteer(
            ctx, rng, unit, kind, sites, recall, background, force, off)
        out.append(volunteer)
        supply += cap
        count += 1
        if PARTY in volunteer["skills"]:
            party_supply += cap


def _site_demand(
    ctx: _Context, rng: random.Random, site_id: str, specs: Sequence[PostSpec],
    when: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Posts and demand entries of one site.  ``when`` is "daily", "mass" (open only on
    mass-testing days) or "daily+mass" (daily, extra samplers on mass days)."""
    posts: list[dict[str, Any]] = []
    demand: list[dict[str, Any]] = []
    mass = [ctx.dates[d] for d in ctx.mass_days]
    other = [ctx.dates[d] for d in range(ctx.days) if d not in set(ctx.mass_days)]
    for spec in specs:
        post_id = f"{site_id}-{spec.key}"
        posts.append({"id": post_id, "name": spec.name})
        for shift, base in spec.mins.items():
            minimum = max(1, base + (rng.randint(-spec.jitter, spec.jitter) if spec.jitter else 0))
            extra = rng.choice((0, 1, 1, 2)) if minimum > 1 else rng.choice((0, 1))
            windows: list[tuple[int, list[str] | None]]
            if when == "mass":
                windows = [(minimum, mass)]
            elif when == "daily+mass" and spec.key == "sample" and shift == "M" and mass:
                windows = [(minimum, other), (minimum + MASS_EXTRA_SAMPLERS, mass)]
            else:
                windows = [(minimum, None)]
            for low, dates in windows:
                if dates is not None and not dates:
                    continue
                demand.append({
                    "post": post_id, "shift": shift, "min": low, "max": low + extra,
                    "requires": spec.required(low), "dates": dates,
                })
    return posts, demand


def _street(
    ctx: _Context, rng: random.Random, district: int, street: int, dname: str, stem: str,
    drivers_short: bool, recall_checkpoint: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    sites: list[dict[str, Any]] = []
    demand: list[dict[str, Any]] = []
    volunteers: list[dict[str, Any]] = []
    counts = {
        "checkpoint": rng.choices((1, 2, 3), weights=(1, 2, 1))[0],
        "hotel": 1,
        "building": rng.choices((2, 3, 4), weights=(1, 2, 1))[0],
        "testing": 2,
    }
    # Min demand per site and day: head count, medics, Party leads.
    daily: dict[str, list[int]] = {}
    med: dict[str, list[int]] = {}
    lead: dict[str, list[int]] = {}
    post_need: dict[str, int] = {}
    kind_of: dict[str, str] = {}
    street_label = f"{dname}{stem}街道"
    for site_kind, n in counts.items():
        prefix, label, specs = TEMPLATES[site_kind]
        for k in range(n):
            site_id = f"d{district:02d}s{street}-{prefix}{k}"
            when = "daily" if site_kind != "testing" else ("daily+mass" if k == 0 else "mass")
            posts, entries = _site_demand(ctx, rng, site_id, specs, when)
            sites.append({
                "id": site_id, "name": f"{street_label}{label}{k + 1}", "kind": site_kind,
                "posts": posts,
            })
            demand.extend(entries)
            kind_of[site_id] = site_kind
            rows = daily[site_id], med[site_id], lead[site_id] = (
                [0] * ctx.days, [0] * ctx.days, [0] * ctx.days)
            for e in entries:
                on = range(ctx.days) if e["dates"] is None else [ctx.index[x] for x in e["dates"]]
                post_need[e["post"]] = post_need.get(e["post"], 0) + e["min"] * len(on)
                counts_ = (e["min"], e["requires"].get(MEDICAL, 0), e["requires"].get(PARTY, 0))
                for row, count in zip(rows, counts_, strict=True):
                    for d in on:
                        row[d] += count

    # A unit must also cover its busiest day with distinct people (one shift a day
    # each), of whom ~1 in 7 has the day off: this matters for mass-testing-only sites.
    def heads(peak: int, share: float = 1.0) -> int:
        return math.ceil(peak / 0.8 / share)

    # The hotel: one team per post, hotel-only (closed loop).
    for hotel in (s for s in sites if s["kind"] == "hotel"):
        for post in hotel["posts"]:
            key = post["id"].rsplit("-", 1)[1]
            target = post_need[post["id"]] / TARGET_LOAD
            party_target = 0.0
            if key == "transfer" and drivers_short:
                target = post_need[post["id"]] * rng.uniform(*DRIVER_SHORT_SHARE)
            if key == "medical":
                party_target = sum(lead[hotel["id"]]) / TARGET_LOAD
            buildings = [x["id"] for x in sites if x["kind"] == "building"]
            if key == "logistics" and buildings and rng.random() < HOTEL_MIXED_P:
                # The hotel's property company also serves a building: its members choose
                # the loop or the building (closed_loop), the rest of logistics is theirs.
                _fill_unit(ctx, rng, volunteers, HOTEL_MIXED, stem,
                           [hotel["id"], rng.choice(buildings)], target * 0.3)
                target *= 0.7
            # Hotel staff live in the closed loop and rotate their days off.
            _fill_unit(ctx, rng, volunteers, HOTEL_TEAMS[key], stem, [hotel["id"]], target,
                       background=False, party_target=party_target,
                       stagger=rng.randrange(ctx.days))

    # Medical units: each serves the sampling of one or two sites (a checkpoint paired with
    # a testing point where possible), sized for the medical part of their demand.
    checkpoints = [s["id"] for s in sites if s["kind"] == "checkpoint"]
    tests = [s["id"] for s in sites if s["kind"] == "testing"]
    rng.shuffle(checkpoints)
    groups: list[list[str]] = []
    for i, che in enumerate(checkpoints):
        groups.append([che] + ([tests[i]] if i < len(tests) else []))
    groups.extend([t] for t in tests[len(checkpoints):])
    for g, group in enumerate(groups):
        recall: list[int] = []
        target = sum(sum(med[s]) for s in group) / TARGET_LOAD
        if recall_checkpoint and g == 0 and ctx.days >= 7:
            # Recalled to hospital for a few days: the checkpoint is short of samplers.
            # The unit is sized for its normal load so the gap stays within the recall.
            length = rng.randint(*RECALL_DAYS)
            first = rng.randrange(max(1, ctx.days - length + 1))
            recall = list(range(first, min(ctx.days, first + length)))
            target *= ctx.days / max(1, ctx.days - len(recall))
        medical_unit = rng.choice(MEDICAL_KINDS)
        peak = max(sum(med[s][d] for s in group) for d in range(ctx.days))
        _fill_unit(ctx, rng, volunteers, medical_unit, stem, group, target, recall=recall,
                   heads=heads(peak, medical_unit.tags[MEDICAL]))

    # General units: one or two per site, sized for the non-medical demand of the site,
    # some paired with up to two more sites of the street.
    others = [s["id"] for s in sites if s["kind"] != "hotel"]
    for site_id in others:
        kind_name = kind_of[site_id]
        rest = (sum(daily[site_id]) - sum(med[site_id])) / TARGET_LOAD
        parts = 1 if rest < 140 else 2  # ~18 people; bigger sites draw on two units
        peak = max(a - b for a, b in zip(daily[site_id], med[site_id], strict=True))
        for _ in range(parts):
            extra = rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
            pool = [s for s in others if s != site_id]
            paired = [site_id] + rng.sample(pool, min(extra, len(pool)))
            unit_kind = _weighted(rng, GENERAL_KINDS[kind_name])
            _fill_unit(ctx, rng, volunteers, unit_kind, stem, paired, rest / parts,
                       party_target=sum(lead[site_id]) / parts / TARGET_LOAD,
                       heads=heads(peak) // parts)
    return sites, demand, volunteers


def _district(ctx: _Context, district: int, streets: int) -> tuple[list[Any], list[Any], list[Any]]:
    rng = random.Random(ctx.rng.getrandbits(64))
    dname = district_name(district)
    stems = street_names(district, streets)
    short = [rng.random() < HOTEL_DRIVER_SHORT_P for _ in range(streets)]
    if streets and not any(short):
        short[rng.randrange(streets)] = True  # at least one per district
    recall_street = rng.randrange(streets) if streets else -1
    sites: list[Any] = []
    demand: list[Any] = []
    volunteers: list[Any] = []
    for s in range(streets):
        a, b, c = _street(ctx, rng, district, s, dname, stems[s], short[s], s == recall_street)
        sites += a
        demand += b
        volunteers += c
    return sites, demand, volunteers


def generate(
    districts: int = 1, seed: int = 0, days: int = 14, start: str = "2022-04-04",
    streets_per_district: int = 4,
) -> dict[str, Any]:
    """A `roster-problem/1` document for ``districts`` districts of a city under
    lockdown, ``days`` days from ``start``; the same arguments give the same document.

    Site ids are ``d{district:02d}s{street}-{kind}{k}``, posts ``{site}-{post}``,
    volunteers ``v00001``... numbered across the whole city."""
    if districts < 0 or days < 1 or streets_per_district < 0:
        raise ValueError("districts and streets_per_district must be >= 0, days >= 1")
    first = dt.date.fromisoformat(start)
    rng = random.Random(seed)
    dates = [(first + dt.timedelta(days=d)).isoformat() for d in range(days)]
    weekdays = [d for d in range(days) if (first + dt.timedelta(days=d)).weekday() < 5]
    # City-wide mass testing (全员核酸) every 2-3 days.
    step = rng.choice((2, 3))
    mass_days = list(range(rng.randrange(step), days, step))
    ctx = _Context(rng, days, dates, weekdays, {x: d for d, x in enumerate(dates)}, mass_days)
    sites: list[Any] = []
    demand: list[Any] = []
    volunteers: list[Any] = []
    for i in range(districts):
        a, b, c = _district(ctx, i, streets_per_district)
        sites += a
        demand += b
        volunteers += c
    week = first.isocalendar()[1]
    where = district_name(0) if districts == 1 else f"全市{districts}个区"
    return {
        "format": FORMAT,
        "name": f"{where} 第{week}周起{days}天",
        "timezone": "Asia/Shanghai",
        "start": start,
        "days": days,
        "coverage_weight": COVERAGE_WEIGHT,
        "shifts": [dict(s) for s in SHIFTS],
        "sites": sites,
        "demand": demand,
        "volunteers": volunteers,
        "rules": [dict(r) for r in RULES],
        "generator": {
            "name": "solver.scenario", "seed": seed, "districts": districts,
            "streets_per_district": streets_per_district,
            "mass_testing_days": [dates[d] for d in mass_days],
        },
    }


def summarize(problem: dict[str, Any]) -> dict[str, Any]:
    """Sizes, supply against demand, skill shares and the shortages no roster can cover.

    ``supply`` is the sum of volunteers' ``capacity``.  ``shortages`` lists, per site and
    skill (``None``: anyone), a lower bound of the people missing, the larger of two
    bounds: per date (demand above the distinct volunteers who may work there that day;
    one shift a day each) and over the horizon (demand above their total capacity)."""
    days = int(problem["days"])
    first = dt.date.fromisoformat(problem["start"])
    index = {(first + dt.timedelta(days=d)).isoformat(): d for d in range(days)}
    site_of = {p["id"]: s["id"] for s in problem["sites"] for p in s["posts"]}
    kinds = {s["id"]: s["kind"] for s in problem["sites"]}

    # need[(site, skill)][day]; skill None is the min head count
    need: dict[tuple[str, str | None], list[int]] = {}
    total_min = total_max = 0
    skill_demand: dict[str, int] = {}
    for e in problem["demand"]:
        site = site_of[e["post"]]
        days_of = range(days) if e["dates"] is None else [index[x] for x in e["dates"]]
        count = len(days_of)
        total_min += e["min"] * count
        total_max += e.get("max", e["min"]) * count
        for skill, k in [(None, e["min"]), *e["requires"].items()]:
            row = need.setdefault((site, skill), [0] * days)
            for d in days_of:
                row[d] += k
            if skill is not None:
                skill_demand[skill] = skill_demand.get(skill, 0) + k * count

    avail: dict[tuple[str, str | None], list[int]] = {}
    cap_of: dict[tuple[str, str | None], int] = {}
    supply = 0
    tags: dict[str, int] = {}
    hotel_only = 0
    all_sites = list(kinds)
    for v in problem["volunteers"]:
        off = {index[u["date"]] for u in v["unavailable"] if "shift" not in u}
        cap = capacity(v.get("max_shifts", days), off, days)
        supply += cap
        for t in v["skills"]:
            tags[t] = tags.get(t, 0) + 1
        vs = v["sites"] if v["sites"] is not None else all_sites
        if all(kinds[s] == "hotel" for s in vs):
            hotel_only += 1
        free = [d for d in range(days) if d not in off]
        for s in vs:
            for skill in (None, *v["skills"]):
                if (s, skill) not in need:
                    continue
                row = avail.setdefault((s, skill), [0] * days)
                for d in free:
                    row[d] += 1
                cap_of[(s, skill)] = cap_of.get((s, skill), 0) + cap

    shortages: list[dict[str, Any]] = []
    for (site, skill), row in need.items():
        have = avail.get((site, skill), [0] * days)
        per_date = sum(max(0, n - h) for n, h in zip(row, have, strict=True))
        horizon = max(0, sum(row) - cap_of.get((site, skill), 0))
        missing = max(per_date, horizon)
        if missing:
            shortages.append({
                "site": site, "kind": kinds[site], "skill": skill, "missing": missing,
                "dates": [d for d in range(days) if row[d] > have[d]],
            })
    volunteers = len(problem["volunteers"])
    return {
        "sites": len(problem["sites"]),
        "sites_by_kind": {k: sum(1 for x in kinds.values() if x == k) for k in sorted(set(kinds.values()))},
        "posts": len(site_of),
        "demand_entries": len(problem["demand"]),
        "volunteers": volunteers,
        "demand_min": total_min,
        "demand_max": total_max,
        "supply": supply,
        "load": total_min / supply if supply else float("inf"),
        "skill_demand": skill_demand,
        "tags": tags,
        "tag_share": {t: n / volunteers for t, n in tags.items()} if volunteers else {},
        "hotel_only_volunteers": hotel_only,
        "shortages": shortages,
        "guaranteed_missing": sum(s["missing"] for s in shortages),
    }
