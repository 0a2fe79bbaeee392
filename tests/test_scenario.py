"""Tests of solver.scenario, the seeded generator of roster-problem/1 documents."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from functools import cache
from typing import Any

import pytest

from solver import scenario

SHIFT_IDS = {"M", "A", "N"}
KINDS = {"checkpoint", "building", "hotel", "testing", "other"}


@cache
def _problem(districts: int, seed: int, days: int = 14) -> str:
    # Cached as JSON so that no test can mutate another's document.
    return json.dumps(scenario.generate(districts=districts, seed=seed, days=days),
                      ensure_ascii=False)


def problem(districts: int = 1, seed: int = 0, days: int = 14) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_problem(districts, seed, days))
    return doc


def dates_of(doc: dict[str, Any]) -> list[str]:
    first = dt.date.fromisoformat(doc["start"])
    return [(first + dt.timedelta(days=d)).isoformat() for d in range(doc["days"])]


def test_same_seed_same_document() -> None:
    assert scenario.generate(seed=7) == scenario.generate(seed=7)


def test_different_seeds_differ() -> None:
    a, b = problem(seed=0), problem(seed=1)
    assert a["volunteers"] != b["volunteers"]
    assert a["demand"] != b["demand"]


def test_first_district_of_a_city_is_the_one_district_problem() -> None:
    one, city = problem(1, 3), problem(3, 3)
    assert city["sites"][: len(one["sites"])] == one["sites"]
    assert city["volunteers"][: len(one["volunteers"])] == one["volunteers"]


def test_does_not_touch_global_random() -> None:
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    scenario.generate(seed=5)
    assert random.random() == expected


@pytest.mark.parametrize(("districts", "seed", "days"), [(1, 0, 14), (2, 1, 14), (1, 2, 7)])
def test_follows_the_format(districts: int, seed: int, days: int) -> None:
    doc = problem(districts, seed, days)
    json.dumps(doc)  # serialisable
    assert doc["format"] == "roster-problem/1"
    assert doc["timezone"] == "Asia/Shanghai"
    assert doc["days"] == days and doc["start"] == "2022-04-04"
    assert [s["id"] for s in doc["shifts"]] == ["M", "A", "N"]
    horizon = set(dates_of(doc))

    site_ids = [s["id"] for s in doc["sites"]]
    post_ids = [p["id"] for s in doc["sites"] for p in s["posts"]]
    assert len(set(site_ids)) == len(site_ids)
    assert len(set(post_ids)) == len(post_ids)
    assert all(s["kind"] in KINDS and s["name"] and s["posts"] for s in doc["sites"])
    for site in doc["sites"]:
        assert all(p["id"].startswith(site["id"] + "-") for p in site["posts"])

    covered: set[tuple[str, str, str]] = set()
    posts = set(post_ids)
    for e in doc["demand"]:
        assert e["post"] in posts
        assert e["shift"] in SHIFT_IDS
        assert 1 <= e["min"] <= e["max"]
        assert all(isinstance(k, int) and 0 < k <= e["min"] for k in e["requires"].values())
        on = sorted(horizon) if e["dates"] is None else e["dates"]
        assert on, "an entry with an empty date list asks for nothing"
        assert set(on) <= horizon
        for date in on:  # at most one entry per (post, shift, date)
            key = (e["post"], e["shift"], date)
            assert key not in covered
            covered.add(key)

    volunteer_ids = [v["id"] for v in doc["volunteers"]]
    assert len(set(volunteer_ids)) == len(volunteer_ids)
    sites = set(site_ids)
    for v in doc["volunteers"]:
        assert v["name"] and v["unit"]
        assert isinstance(v["skills"], list) and len(set(v["skills"])) == len(v["skills"])
        assert 1 <= len(v["sites"]) <= 3 and set(v["sites"]) <= sites
        assert 0 == v["min_shifts"] <= v["max_shifts"]
        assert v["unavailable"], "everyone has some unavailable days"
        for u in v["unavailable"]:
            assert u["date"] in horizon and u.get("shift", "M") in SHIFT_IDS
        for p in v["preferences"]:
            assert p["date"] in horizon and p.get("shift", "M") in SHIFT_IDS
            assert isinstance(p["want"], bool) and 1 <= p["weight"] <= 5
    # A unit's members share its sites, which lie in one street.
    unit_sites = {(v["unit"], tuple(v["sites"])) for v in doc["volunteers"]}
    for _, paired in unit_sites:
        assert len({s.split("-")[0] for s in paired}) == 1


def test_ids_follow_the_example_style_and_are_unique_across_districts() -> None:
    doc = problem(2, 0)
    assert doc["sites"][0]["id"] == "d00s0-che0"
    assert doc["sites"][0]["posts"][0]["id"] == "d00s0-che0-check"
    assert doc["volunteers"][0]["id"] == "v00001"
    districts = {s["id"][:3] for s in doc["sites"]}
    assert districts == {"d00", "d01"}
    ids = [v["id"] for v in doc["volunteers"]]
    assert ids == [f"v{i:05d}" for i in range(1, len(ids) + 1)]


def test_rules() -> None:
    rules = problem()["rules"]
    assert {"type": "one_shift_per_day"} in rules
    assert {"type": "min_rest_hours", "hours": 12} in rules
    assert {"type": "max_consecutive_days", "days": 6} in rules
    assert {"type": "max_shifts_per_week", "count": 5} in rules
    assert {"type": "max_shift_per_week", "shift": "N", "count": 2, "weight": 20} in rules
    assert {"type": "max_shift_per_week", "shift": "N", "count": 0,
            "applies_to": "senior"} in rules
    assert {"type": "closed_loop", "site_kinds": ["hotel"]} in rules
    assert {"type": "balance", "weight": 1} in rules


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_district_size_and_proportions(seed: int) -> None:
    doc = problem(1, seed)
    stats = scenario.summarize(doc)
    assert 26 <= stats["sites"] <= 38
    assert 750 <= stats["volunteers"] <= 1050
    share = stats["tag_share"]
    assert 0.28 <= share["party"] <= 0.42
    assert 0.13 <= share["medical"] <= 0.20
    for tag in ("driver", "security", "counselor", "senior", "teacher"):
        assert share.get(tag, 0) > 0.01, tag
    per_volunteer = [v["max_shifts"] for v in doc["volunteers"]]
    assert min(per_volunteer) >= 6 and max(per_volunteer) <= 10
    assert 7.5 <= sum(per_volunteer) / len(per_volunteer) <= 8.5


def test_city_size() -> None:
    stats = scenario.summarize(scenario.generate(districts=44, seed=0))
    assert 1250 <= stats["sites"] <= 1550
    assert 36_000 <= stats["volunteers"] <= 44_000
    assert 0.82 <= stats["load"] <= 0.92


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_demand_is_tight_but_mostly_coverable(seed: int) -> None:
    stats = scenario.summarize(problem(1, seed))
    assert 0.80 <= stats["load"] <= 0.95
    # Some demand no roster can cover, but little of it.
    assert 0 < stats["guaranteed_missing"] <= 0.02 * stats["demand_min"]


def test_designed_shortages() -> None:
    stats = scenario.summarize(problem(8, 0))
    short = Counter((s["kind"], s["skill"]) for s in stats["shortages"])
    assert short[("hotel", "driver")] >= 8  # at least one hotel per district
    # A recalled medical unit leaves a checkpoint without enough samplers for some days.
    che_medical = [s for s in stats["shortages"]
                   if s["kind"] == "checkpoint" and s["skill"] == "medical"]
    assert len({s["site"][:3] for s in che_medical}) >= 6
    assert all(0 < len(s["dates"]) <= 5 for s in che_medical)


def test_seniors_and_teachers() -> None:
    doc = problem()
    first = dt.date.fromisoformat(doc["start"])
    weekday_dates = {d for d in dates_of(doc)
                     if dt.date.fromisoformat(d).weekday() < 5}
    assert first.weekday() == 0  # 2022-04-04 is a Monday
    teachers = [v for v in doc["volunteers"] if "teacher" in v["skills"]]
    seniors = [v for v in doc["volunteers"] if "senior" in v["skills"]]
    assert teachers and seniors
    for v in teachers:
        blocked = {u["date"] for u in v["unavailable"]
                   if u.get("shift") in (None, "M")}
        assert weekday_dates <= blocked
        # Weekend mornings are free, but for the odd personal one-shift absence.
        weekend_m = {u["date"] for u in v["unavailable"] if u.get("shift") == "M"}
        assert len(weekend_m - weekday_dates) <= 1
    for v in seniors:
        assert not any(p.get("shift") == "N" for p in v["preferences"])
    # Seniors never sit in a hotel team (24 h, nights).
    hotels = {s["id"] for s in doc["sites"] if s["kind"] == "hotel"}
    assert not any(set(v["sites"]) & hotels for v in seniors)


def test_closed_loop_hotels_have_their_own_staff() -> None:
    doc = problem(1, 0)
    stats = scenario.summarize(doc)
    hotels = [s for s in doc["sites"] if s["kind"] == "hotel"]
    assert len(hotels) == 4
    for hotel in hotels:
        staff = [v for v in doc["volunteers"] if hotel["id"] in v["sites"]]
        only = [v for v in staff if v["sites"] == [hotel["id"]]]
        assert len(only) >= 0.8 * len(staff), "mostly hotel-only units"
        skills = Counter(t for v in only for t in v["skills"])
        for tag in ("medical", "security", "counselor", "driver", "party"):
            assert skills[tag] >= 2, (hotel["id"], tag)
        posts = {p["id"].rsplit("-", 1)[1] for p in hotel["posts"]}
        assert posts == {"medical", "security", "logistics", "care", "transfer"}
    transfer = [e for e in doc["demand"] if e["post"].endswith("-transfer")]
    assert {e["shift"] for e in transfer} == SHIFT_IDS
    assert all(e["requires"] == {"driver": 1} for e in transfer)
    assert stats["hotel_only_volunteers"] > 0


def test_site_templates() -> None:
    doc = problem()
    by_post = {e["post"]: e for e in doc["demand"]}
    shifts: dict[str, set[str]] = {}
    for e in doc["demand"]:
        shifts.setdefault(e["post"], set()).add(e["shift"])
    for site in doc["sites"]:
        ids = [p["id"] for p in site["posts"]]
        if site["kind"] == "checkpoint":
            check = f"{site['id']}-check"
            assert shifts[check] == SHIFT_IDS and by_post[check]["requires"] == {"party": 1}
            assert by_post[f"{site['id']}-sample"]["requires"].get("medical", 0) >= 1
        if site["kind"] in ("building", "testing"):
            assert all(shifts[p] <= {"M", "A"} for p in ids)
    # Testing points on mass-testing days only carry explicit dates.
    mass = set(doc["generator"]["mass_testing_days"])
    dated = [e for e in doc["demand"] if e["dates"] is not None]
    assert dated and all(set(e["dates"]) <= set(dates_of(doc)) for e in dated)
    assert any(set(e["dates"]) == mass for e in dated)


def test_capacity() -> None:
    assert scenario.capacity(10, [], 14) == 10
    assert scenario.capacity(12, [], 14) == 10  # 5 a week
    assert scenario.capacity(8, range(7), 14) == 5  # a whole week off
    assert scenario.capacity(8, [0, 1, 2], 7) == 4


def test_district_names() -> None:
    names = [scenario.district_name(i) for i in range(44)]
    assert len(set(names)) == 44 and all(n.endswith("区") for n in names)
    assert scenario.district_name(100) == "第101区"
    streets = scenario.street_names(0, 4)
    assert len(set(streets)) == 4
    assert scenario.street_names(0, 70)[-1] == "第70"


def test_small_and_empty() -> None:
    assert scenario.generate(districts=0)["volunteers"] == []
    one = scenario.generate(streets_per_district=1, days=3)
    assert one["sites"] and one["volunteers"]
    with pytest.raises(ValueError):
        scenario.generate(days=0)
