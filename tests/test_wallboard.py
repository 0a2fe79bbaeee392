"""The site's "now / next" wall board (scheduler/wallboard, GET /sites/<id>/now)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from scheduler.accounts.models import User
from scheduler.localtime import TZ
from scheduler.models import (
    Assignment,
    Demand,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from scheduler.wallboard import wall_board
from tests.fixtures.webhelp import login

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web"]

DAY = dt.date(2022, 4, 4)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY + dt.timedelta(days=day), dt.time(hour, minute), tzinfo=TZ)


@dataclass
class Gate:
    site: Site
    other: Site
    shifts: dict[str, ShiftTemplate]
    people: dict[str, Volunteer]
    draft: RosterVersion


@pytest.fixture
def gate(db: Session, create_site: Callable[..., Site], create_shift: Callable[..., ShiftTemplate],
         create_roster: Callable[..., Roster],
         create_volunteer: Callable[..., Volunteer]) -> Gate:
    """A checkpoint with a gate and a register desk, three shifts (the night one crosses
    midnight), a published 3-day roster and a draft that must never show."""
    site = create_site("wb-gate", name="万家丽卡口", posts=["wb-car", "wb-desk"])
    other = create_site("wb-other", name="别处", posts=["wb-other-p"])
    shifts = {"M": create_shift("wbM", "08:00", "16:00", name="早班"),
              "A": create_shift("wbA", "16:00", "22:00", name="中班", position=1),
              "N": create_shift("wbN", "22:00", "06:00", name="夜班", position=2)}
    roster = create_roster(start=DAY, days=3)
    car, desk = site.posts
    db.add_all([
        Demand(roster_id=roster.id, position=0, post_id=car.id, shift_id=shifts["N"].id,
               min=2, max=3, requires={"medical": 1}),
        Demand(roster_id=roster.id, position=1, post_id=desk.id, shift_id=shifts["N"].id,
               min=1, max=1),
        Demand(roster_id=roster.id, position=2, post_id=car.id, shift_id=shifts["M"].id,
               min=2, max=2),
    ])
    people = {n: create_volunteer(n, skills=s) for n, s in [
        ("张伟", []), ("李娜", []), ("王芳", ["medical"]), ("赵强", []), ("刘洋", [])]}
    published = RosterVersion(roster_id=roster.id, number=1, state="published",
                              created_by="t")
    draft = RosterVersion(roster_id=roster.id, number=2, state="draft", created_by="t")
    db.add_all([published, draft])
    db.flush()

    def put(version: RosterVersion, who: str, post: str, shift: str, day: int) -> None:
        db.add(Assignment(version_id=version.id, volunteer_id=people[who].id,
                          post_id={"car": car.id, "desk": desk.id,
                                   "other": other.posts[0].id}[post],
                          shift_id=shifts[shift].id, date=DAY + dt.timedelta(days=day)))

    put(published, "张伟", "car", "N", 0)     # night of day 0: 22:00 → 06:00 on day 1
    put(published, "李娜", "car", "N", 0)
    put(published, "赵强", "desk", "N", 1)    # the *next* night, not now
    put(published, "王芳", "car", "M", 1)     # next: day 1 08:00
    put(published, "刘洋", "other", "N", 0)   # another site
    put(draft, "刘洋", "car", "N", 0)         # a draft: never on the board
    db.flush()
    return Gate(site, other, shifts, people, draft)


def _names(block: object) -> dict[str, list[str]]:
    return {p.post_name: [v.name for v in p.people] for p in block.posts}  # type: ignore[attr-defined]


def test_at_two_in_the_night_the_night_shift_of_the_day_before_is_on(
        db: Session, gate: Gate) -> None:
    board = wall_board(db, gate.site.id, at(1, 2))
    assert board is not None
    assert [(b.shift_name, b.date) for b in board.now] == [("夜班", DAY)]
    night = board.now[0]
    assert (night.begins, night.ends) == (at(0, 22), at(1, 6))
    assert _names(night) == {"wb-car": ["张伟", "李娜"], "wb-desk": []}
    # Two at the car lane (min 2) but no medic; the desk (min 1) is empty.
    gaps = {p.post_name: (p.missing, p.skills_missing) for p in night.gaps}
    assert gaps == {"wb-car": (0, {"medical": 1}), "wb-desk": (1, {})}
    assert board.next is not None
    assert (board.next.shift_name, board.next.date, board.next.begins) == ("早班", DAY + dt.timedelta(days=1), at(1, 8))
    assert _names(board.next) == {"wb-car": ["王芳"]}
    assert [(p.post_name, p.missing) for p in board.next.gaps] == [("wb-car", 1)]


def test_in_the_afternoon_nobody_is_on_and_the_night_comes_next(
        db: Session, gate: Gate) -> None:
    board = wall_board(db, gate.site.id, at(1, 17))
    assert board is not None and board.now == []
    assert board.next is not None
    assert (board.next.shift_name, board.next.date) == ("夜班", DAY + dt.timedelta(days=1))
    assert _names(board.next) == {"wb-car": [], "wb-desk": ["赵强"]}
    # At 06:00 sharp the night is over (intervals are half-open) and 08:00 is next.
    early = wall_board(db, gate.site.id, at(1, 6))
    assert early is not None and early.now == [] and early.next is not None
    assert early.next.begins == at(1, 8)


def test_outside_the_published_roster_the_board_is_empty(db: Session, gate: Gate) -> None:
    board = wall_board(db, gate.site.id, at(10, 2))
    assert board is not None and (board.now, board.next) == ([], None)
    assert wall_board(db, 999_999, at(1, 2)) is None


def test_the_page_shows_the_night_crew_gaps_and_reloads_itself(
        app: Flask, db: Session, gate: Gate, create_user: Callable[..., User],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import web.dispatch.routes as routes

    monkeypatch.setattr(routes, "local_now", lambda: at(1, 2))
    mine = create_user("secretary", sites=[gate.site])
    theirs = create_user("secretary", sites=[gate.other])
    client = app.test_client()
    login(client, mine)
    response = client.get(f"/sites/{gate.site.id}/now")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="60">' in page
    now, nxt = page.index("当前值班"), page.index("下一班")
    assert now < page.index("张伟") < page.index("李娜") < nxt < page.index("王芳")
    assert "22:00–06:00" in page and "缺 1 人" in page and "缺技能 医护" in page
    assert "刘洋" not in page and "赵强" not in page  # other site, draft, later night
    assert client.get("/sites/999999/now").status_code == 404
    other = app.test_client()
    login(other, theirs)
    assert other.get(f"/sites/{gate.site.id}/now").status_code == 404
