"""Parsing `roster-problem/1`: every error names its place; times, dates and slots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from solver.problem import ProblemError, load_problem, parse_problem
from tests.fixtures.problems import demand, make_problem, preference, shift, site, volunteer

SHARED = Path(os.environ.get("BASTION_SHARED")
              or Path(__file__).resolve().parents[2] / "shared")


def error_of(doc: Any) -> ProblemError:
    with pytest.raises(ProblemError) as info:
        parse_problem(doc)
    return info.value


# -- errors name their place ------------------------------------------------------------


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "roster-problem/1",\n  "days": ,}', encoding="utf-8")
    with pytest.raises(ProblemError) as info:
        load_problem(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "invalid JSON at line 2 column" in msg


def test_missing_file_is_a_problem_error(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="cannot read file"):
        load_problem(tmp_path / "absent.json")


def test_load_problem_reads_a_valid_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(make_problem(), ensure_ascii=False), encoding="utf-8-sig")
    assert load_problem(path).days == 1


def test_not_an_object() -> None:
    assert str(error_of([1, 2])) == "expected an object, got [1, 2]"


def test_wrong_format_tag() -> None:
    doc = make_problem()
    doc["format"] = "roster-problem/2"
    err = error_of(doc)
    assert err.path == "format"
    assert str(err) == 'format: expected "roster-problem/1", got "roster-problem/2"'


def test_unknown_rule_type_names_the_rule() -> None:
    doc = make_problem(rules=[{"type": "balance", "weight": 1}, {"type": "max_night"}])
    err = error_of(doc)
    assert err.path == "rules[1].type"
    assert str(err).startswith('rules[1].type: unknown rule type "max_night"')


def test_demand_naming_an_unknown_post_exact_message() -> None:
    doc = make_problem(
        sites=[site("wjln", posts=["wjln-check"])],
        demand=[demand("wjln-check", "M"), demand("wjln-check", "A"),
                demand("wjln-check", "N"), demand("wjln-chk", "M")])
    err = error_of(doc)
    assert str(err) == 'demand[3].post: unknown post "wjln-chk"'
    assert err.path == "demand[3].post"


def test_demand_naming_an_unknown_shift() -> None:
    err = error_of(make_problem(demand=[demand("p1", "X")]))
    assert str(err) == 'demand[0].shift: unknown shift "X"'


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value", ["25:00", "12:60", "8:00", "noon"])
def test_invalid_shift_time(field: str, value: str) -> None:
    shifts = [shift("M", "08:00", "16:00")]
    shifts[0][field] = value
    err = error_of(make_problem(shifts=shifts))
    assert err.path == f"shifts[0].{field}"
    assert f'invalid time "{value}"' in str(err)


def test_demand_date_outside_horizon() -> None:
    err = error_of(make_problem(days=2, demand=[demand("p1", "M", dates=[0, 2])]))
    assert err.path == "demand[0].dates[1]"
    assert "2022-04-06 is outside the horizon 2022-04-04 + 2 days" in str(err)


def test_demand_date_before_start() -> None:
    err = error_of(make_problem(days=2, demand=[demand("p1", "M", dates=["2022-04-03"])]))
    assert err.path == "demand[0].dates[0]"


def test_preference_date_outside_horizon() -> None:
    vol = volunteer("v1", preferences=[preference(5, want=True)])
    err = error_of(make_problem(days=2, volunteers=[vol]))
    assert err.path == "volunteers[0].preferences[0].date"


def test_unavailability_outside_horizon_is_ignored() -> None:
    p = parse_problem(make_problem(days=2, volunteers=[volunteer("v1", unavailable=[(9, None)])]))
    assert p.volunteers[0].unavailable_days == frozenset()


def test_invalid_date_string() -> None:
    doc = make_problem()
    doc["start"] = "2022-13-01"
    err = error_of(doc)
    assert str(err) == 'start: invalid date "2022-13-01" (expected YYYY-MM-DD)'


@pytest.mark.parametrize("where, expected", [
    ("shifts", "shifts[1].id"),
    ("sites", "sites[1].id"),
    ("volunteers", "volunteers[1].id"),
])
def test_duplicate_ids(where: str, expected: str) -> None:
    doc = make_problem()
    if where == "shifts":
        doc["shifts"][1]["id"] = "M"
    elif where == "sites":
        doc["sites"].append(site("s1", posts=["p2"]))
    else:
        doc["volunteers"][1]["id"] = "v1"
    err = error_of(doc)
    assert err.path == expected
    assert "duplicate" in str(err)


def test_duplicate_post_ids_across_sites() -> None:
    doc = make_problem(sites=[site("s1", posts=["p1"]), site("s2", posts=["p1"])])
    err = error_of(doc)
    assert str(err).startswith("sites[1].posts: duplicate post id")


def test_demand_max_below_min() -> None:
    err = error_of(make_problem(demand=[demand("p1", "M", min=3, max=2)]))
    assert err.path == "demand[0].max"
    assert str(err) == "demand[0].max: max 2 is below min 3"


def test_requires_more_than_max() -> None:
    err = error_of(make_problem(demand=[demand("p1", "M", min=1, max=2,
                                               requires={"party": 1, "medical": 3})]))
    assert err.path == "demand[0].requires.medical"
    assert "needs 3 people with medical but max is 2" in str(err)


def test_requires_more_than_min_but_within_max_is_fine() -> None:
    p = parse_problem(make_problem(demand=[demand("p1", "M", min=1, max=2,
                                                  requires={"medical": 2})]))
    assert p.slots[0].requires == (("medical", 2),)


def test_two_demand_entries_covering_the_same_slot() -> None:
    doc = make_problem(days=3, demand=[demand("p1", "M", dates=[0, 1]),
                                       demand("p1", "A"), demand("p1", "M", dates=[1])])
    err = error_of(doc)
    assert err.path == "demand[2]"
    assert str(err) == "demand[2]: p1 M on 2022-04-05 is already covered by demand[0]"


def test_same_post_different_shifts_or_dates_is_fine() -> None:
    p = parse_problem(make_problem(days=2, demand=[demand("p1", "M", dates=[0]),
                                                   demand("p1", "M", dates=[1]),
                                                   demand("p1", "A")]))
    assert len(p.slots) == 4


def test_unknown_volunteer_site() -> None:
    doc = make_problem(volunteers=["v1", volunteer("v2", sites=["s1", "nowhere"])])
    err = error_of(doc)
    assert str(err) == 'volunteers[1].sites[1]: unknown site "nowhere"'


def test_unknown_unavailable_shift() -> None:
    err = error_of(make_problem(volunteers=[volunteer("v1", unavailable=[(0, "Z")])]))
    assert err.path == "volunteers[0].unavailable[0].shift"


@pytest.mark.parametrize("rule, path", [
    ({"type": "min_rest_hours"}, "rules[0].hours"),
    ({"type": "min_rest_hours", "hours": -1}, "rules[0].hours"),
    ({"type": "max_shift_per_week", "shift": "Z", "count": 1}, "rules[0].shift"),
    ({"type": "closed_loop", "sites": ["s9"]}, "rules[0].sites[0]"),
    ({"type": "closed_loop"}, "rules[0]"),
    ({"type": "balance"}, "rules[0].weight"),
    ({"type": "balance", "weight": "1"}, "rules[0].weight"),
])
def test_rule_parameter_errors(rule: dict[str, Any], path: str) -> None:
    assert error_of(make_problem(rules=[rule])).path == path


def test_unknown_site_kind() -> None:
    err = error_of(make_problem(sites=[site("s1", kind="school", posts=["p1"])]))
    assert err.path == "sites[0].kind"


def test_whole_number_fields() -> None:
    assert error_of(make_problem(days=0)).path == "days"
    assert error_of(make_problem(demand=[demand("p1", "M", min=True)])).path == "demand[0].min"
    err = error_of(make_problem(demand=[demand("p1", "M", min=1.5)]))  # type: ignore[arg-type]
    assert str(err) == "demand[0].min: expected a whole number, got 1.5"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_problem_errors(value: float) -> None:
    err = error_of(make_problem(days=value))  # type: ignore[arg-type]
    assert err.path == "days"


@pytest.mark.parametrize("where", ["preference", "rule", "site"])
def test_unhashable_ids_are_problem_errors(where: str) -> None:
    if where == "preference":
        doc = make_problem(volunteers=[volunteer("v1", preferences=[
            {"date": "2022-04-04", "want": True, "shift": ["M"]}])])
        path = "volunteers[0].preferences[0].shift"
    elif where == "rule":
        doc = make_problem(rules=[{"type": "max_shift_per_week", "shift": ["N"], "count": 1}])
        path = "rules[0].shift"
    else:
        doc = make_problem(volunteers=[volunteer("v1")])
        doc["volunteers"][0]["sites"] = [["s1"]]
        path = "volunteers[0].sites[0]"
    assert error_of(doc).path == path


# -- meaning ------------------------------------------------------------------------------


def test_overnight_shifts_end_next_day() -> None:
    p = parse_problem(make_problem(days=2, shifts=[
        shift("M", "08:00", "16:00"), shift("A", "16:00", "00:00"),
        shift("L", "22:00", "06:00"), shift("D", "08:00", "08:00")],
        demand=[demand("p1", "L")]))
    by_id = p.shift_by_id
    assert (by_id["M"].start, by_id["M"].end) == (480, 960)
    assert (by_id["A"].start, by_id["A"].end) == (960, 1440)
    assert (by_id["L"].start, by_id["L"].end) == (22 * 60, 30 * 60)
    assert by_id["D"].minutes == 24 * 60  # equal start and end: a full day
    # the L shift of day 1 runs from 22:00 on 04-05 to 06:00 on 04-06
    assert p.begins(1, by_id["L"].index) == 1440 + 22 * 60
    assert p.ends(1, by_id["L"].index) == 2 * 1440 + 6 * 60


def test_dates_null_means_every_day() -> None:
    p = parse_problem(make_problem(days=4, demand=[demand("p1", "M", dates=None),
                                                   demand("p1", "A", dates=[1, 3])]))
    m = [s.day for s in p.slots if p.shifts[s.shift].id == "M"]
    a = [s.day for s in p.slots if p.shifts[s.shift].id == "A"]
    assert m == [0, 1, 2, 3]
    assert a == [1, 3]
    assert p.iso(3) == "2022-04-07"


def test_max_defaults_to_min_and_defaults() -> None:
    doc = make_problem(demand=[demand("p1", "M", min=2)])
    del doc["volunteers"][0]["unit"]
    p = parse_problem(doc)
    assert (p.slots[0].min, p.slots[0].max) == (2, 2)
    assert p.coverage_weight == 1000
    assert p.volunteers[0].max_shifts is None and p.volunteers[0].min_shifts is None


def test_preference_weight_defaults_to_one_and_unavailability_kinds() -> None:
    vol = volunteer("v1", unavailable=[(0, None), (1, "N")],
                    preferences=[preference(0, want=False, shift="M", post="p1")])
    p = parse_problem(make_problem(days=2, volunteers=[vol]))
    v = p.volunteers[0]
    assert v.preferences[0].weight == 1 and v.preferences[0].want is False
    n = p.shift_by_id["N"].index
    assert not v.available(0, p.shift_by_id["M"].index)
    assert not v.available(1, n) and v.available(1, p.shift_by_id["M"].index)


def test_shared_example_parses() -> None:
    p = load_problem(SHARED / "examples" / "yuhua-small.json")
    assert p.days == 7 and p.start.isoformat() == "2022-04-04"
    assert len(p.volunteers) > 0 and len(p.slots) > 0
    assert {s.kind for s in p.sites} <= {"checkpoint", "building", "hotel", "testing", "other"}
