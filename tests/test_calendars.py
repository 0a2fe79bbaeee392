"""Calendar feeds: tokens, the iCalendar documents, the routes, log redaction, the CLI.

Feeds are parsed by two independent parsers (``icalendar`` and the strict ``ical``) after
a publication, a change and a cancellation.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import icalendar
import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from ical.calendar import Calendar as StrictCalendar
from ical.calendar_stream import IcsCalendarStream
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.test import Client

from scheduler import db as scheduler_db
from scheduler import rosters
from scheduler.calendars import ical, services
from scheduler.calendars.models import FeedToken
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import TaskOffer
from scheduler.models import (
    Assignment,
    AuditEvent,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from web import CLOCK_KEY, config, create_app
from web.calendar import limits, links
from web.calendar.fastpath import FeedFastPath
from web.calendar.redact import redact

pytest_plugins = ["tests.fixtures.db"]

SECRET = "test-secret-key"
DOMAIN = "feeds.test"
DAY = dt.date(2022, 4, 4)


# -- helpers ------------------------------------------------------------------------------

@dataclass
class District:
    """A checkpoint with two posts, a night shift, a leader and two volunteers."""

    db: Session
    roster: Roster
    site: Site
    other_site: Site
    night: ShiftTemplate
    day: ShiftTemplate
    zhang: Volunteer  # the volunteer whose feed most tests read
    li: Volunteer
    leader: Volunteer
    versions: int = 0

    def version(self, rows: list[tuple[Volunteer, dt.date, ShiftTemplate, int, str, int]],
                *, publish: bool = True) -> RosterVersion:
        """A new version with `rows` = (volunteer, date, shift, post id, uid, revision)."""
        self.versions += 1
        version = RosterVersion(roster_id=self.roster.id, number=self.versions,
                                state="draft", created_by="test")
        version.assignments = [
            Assignment(volunteer_id=v.id, date=d, shift_id=s.id, post_id=p, uid=uid,
                       revision=rev) for v, d, s, p, uid, rev in rows]
        self.db.add(version)
        self.db.flush()
        if publish:
            current = rosters.published_version(self.db, self.roster.id)
            rosters.publish(self.db, self.roster.id, version.number,
                            None if current is None else current.number, "test")
        return version

    def post(self, site: Site, index: int = 0) -> int:
        return site.posts[index].id

    def feed(self, volunteer: Volunteer | None = None,
             now: dt.datetime | None = None) -> services.Feed:
        return services.volunteer_feed(self.db, (volunteer or self.zhang).id,
                                       now or scheduler_db.utcnow(), domain=DOMAIN)


@pytest.fixture
def district(db: Session, create_site: Callable[..., Site], create_shift: Callable[..., Any],
             create_volunteer: Callable[..., Volunteer],
             create_roster: Callable[..., Roster]) -> District:
    site = create_site(name="万家丽南收费站卡口", posts=["车辆查验", "人员登记"])
    site.posts[0].name, site.posts[1].name = "车辆查验", "人员登记"
    site.address, site.street = "长沙市雨花区万家丽南路与环保大道交汇处", "黎托街道"
    site.contact_name, site.contact_phone = "王芳", "13900001111"
    other = create_site(name="德馨园小区", posts=["门岗"])
    night = create_shift(start="22:00", end="06:00", name="夜班")
    day = create_shift(start="08:00", end="16:00", name="白班")
    zhang = create_volunteer("张三", phone="13800138000")
    li = create_volunteer("李四", phone="13800138001")
    leader = create_volunteer("赵党员", phone="13800138002", party_member=True)
    db.flush()
    return District(db, create_roster(), site, other, night, day, zhang, li, leader)


def both_parsers(body: bytes) -> tuple[icalendar.Calendar, StrictCalendar]:
    """The feed as parsed by icalendar and by the strict ical package."""
    return (icalendar.Calendar.from_ical(body),
            IcsCalendarStream.calendar_from_ics(body.decode("utf-8")))


def events_by_uid(body: bytes) -> dict[str, dict[str, Any]]:
    """Each VEVENT's main fields, checked to agree between the two parsers."""
    loose, strict = both_parsers(body)
    out: dict[str, dict[str, Any]] = {}
    for event in loose.walk("VEVENT"):
        out[str(event["UID"])] = {
            "sequence": int(event["SEQUENCE"]), "status": str(event["STATUS"]),
            "summary": str(event["SUMMARY"]), "location": str(event["LOCATION"]),
            "description": str(event["DESCRIPTION"]), "start": event["DTSTART"].dt,
            "end": event["DTEND"].dt, "modified": event["LAST-MODIFIED"].dt,
            "stamp": event["DTSTAMP"].dt}
    assert len(strict.events) == len(out)
    for event in strict.events:
        mine = out[event.uid]
        assert event.sequence == mine["sequence"]
        assert event.status is not None and event.status.value == mine["status"]
        assert event.summary == mine["summary"] and event.location == mine["location"]
        assert event.dtstart == mine["start"] and event.end == mine["end"]
        assert event.last_modified == mine["modified"] == mine["stamp"] == event.dtstamp
    return out


def utc(moment: dt.datetime | None) -> dt.datetime:
    assert moment is not None
    return moment.astimezone(dt.UTC).replace(microsecond=0)


# -- tokens -------------------------------------------------------------------------------

def test_tokens_are_issued_resolved_and_revoked(district: District) -> None:
    db = district.db
    first = services.issue_volunteer_token(db, district.zhang.id, "coord", secret=SECRET)
    assert len(first) == 43  # 256-bit HMAC in base64url
    owner = services.resolve(db, first)
    assert owner is not None and (owner.kind, owner.id) == ("volunteer", district.zhang.id)
    # Only the hash is stored, never the token.
    row = db.scalars(select(FeedToken).where(FeedToken.volunteer_id == district.zhang.id)).one()
    assert row.token_hash == services.hash_token(first) and first not in repr(row.__dict__)
    # Shown again without rotating it; a changed secret key cannot show it.
    assert services.current_token(db, "volunteer", district.zhang.id, secret=SECRET) == first
    assert services.current_token(db, "volunteer", district.zhang.id, secret="other") is None

    second = services.reset_volunteer_token(db, district.zhang.id, "zhang", secret=SECRET)
    assert second != first
    assert services.resolve(db, first) is None
    renewed = services.resolve(db, second)
    assert renewed is not None and renewed.id == district.zhang.id
    assert renewed.token_id != owner.token_id
    live = db.scalars(select(FeedToken).where(FeedToken.volunteer_id == district.zhang.id,
                                              FeedToken.revoked_at.is_(None))).all()
    assert len(live) == 1
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "feed_token.issue")
                        .order_by(AuditEvent.id)).all()
    assert [e.actor for e in events] == ["coord", "zhang"]
    assert events[1].before == {"revoked": [row.id]}
    for event in events:  # the audit trail never holds a token or its hash
        text = repr((event.before, event.after, event.reason))
        assert first not in text and second not in text and row.token_hash not in text

    site_token = services.issue_site_token(db, district.site.id, "coord", secret=SECRET)
    site_owner = services.resolve(db, site_token)
    assert site_owner is not None and (site_owner.kind, site_owner.id) == ("site",
                                                                           district.site.id)
    for bad in ("", "x" * 43, second[:-1], second + "A", "../" + second[3:]):
        assert services.resolve(db, bad) is None


def test_issuing_for_an_unknown_owner_changes_nothing(district: District) -> None:
    before = district.db.scalars(select(AuditEvent)).all()
    with pytest.raises(services.FeedTokenError):
        services.issue_volunteer_token(district.db, 99999, "coord", secret=SECRET)
    with pytest.raises(services.FeedTokenError):
        services.issue_site_token(district.db, district.site.id, "coord", secret="")
    assert district.db.scalars(select(AuditEvent)).all() == before
    assert district.db.scalars(select(FeedToken)).all() == []


def test_last_used_is_written_at_most_hourly(district: District) -> None:
    token = services.issue_volunteer_token(district.db, district.zhang.id, "c", secret=SECRET)
    now = scheduler_db.utcnow()
    owner = services.resolve(district.db, token)
    assert owner is not None and services.mark_used(district.db, owner, now)
    owner = services.resolve(district.db, token)
    assert owner is not None and utc(owner.last_used_at) == utc(now)
    assert not services.mark_used(district.db, owner, now + dt.timedelta(minutes=59))
    assert services.mark_used(district.db, owner, now + dt.timedelta(minutes=61))


# -- feeds --------------------------------------------------------------------------------

def test_feed_after_publish_change_and_cancellation(district: District) -> None:
    d = district
    check, register = d.post(d.site, 0), d.post(d.site, 1)
    # A Party member with the smallest code, but at another site: not the leader here.
    elsewhere = Volunteer(code="a0000", name="钱党员", party_member=True)
    d.db.add(elsewhere)
    d.db.flush()
    v1 = d.version([
        (d.zhang, DAY, d.night, check, "a" * 32, 1),
        (d.zhang, DAY + dt.timedelta(days=1), d.day, register, "b" * 32, 1),
        (d.leader, DAY, d.night, register, "c" * 32, 1),
        (d.li, DAY, d.night, check, "d" * 32, 1),
        (elsewhere, DAY, d.night, d.post(d.other_site), "f" * 32, 1),
        (elsewhere, DAY + dt.timedelta(days=1), d.night, check, "0" * 32, 1),
    ])
    feed = d.feed()
    events = events_by_uid(feed.body)
    assert set(events) == {f"{'a' * 32}@{DOMAIN}", f"{'b' * 32}@{DOMAIN}"}
    night = events[f"{'a' * 32}@{DOMAIN}"]
    assert night["summary"] == "夜班 · 万家丽南收费站卡口 · 车辆查验"
    assert night["status"] == "CONFIRMED" and night["sequence"] == 0
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert night["start"] == dt.datetime(2022, 4, 4, 22, tzinfo=shanghai)
    assert night["end"] == dt.datetime(2022, 4, 5, 6, tzinfo=shanghai)  # the next day
    assert night["location"] == "万家丽南收费站卡口，长沙市雨花区万家丽南路与环保大道交汇处"
    assert "带班党员 Shift leader：赵党员" in night["description"]
    assert "点位联系人 Site contact：王芳 13900001111" in night["description"]
    assert "带班党员 Shift leader：待定" in events[f"{'b' * 32}@{DOMAIN}"]["description"]
    assert night["modified"] == utc(v1.published_at)
    assert feed.last_modified == utc(v1.published_at)
    loose, strict = both_parsers(feed.body)
    assert str(loose["X-WR-CALNAME"]) == "Bastion 排班 · 张三"
    assert str(loose["X-WR-TIMEZONE"]) == "Asia/Shanghai"
    assert strict.timezones[0].tz_id == "Asia/Shanghai"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in feed.body
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in feed.body
    assert b"DTSTART;TZID=Asia/Shanghai:20220404T220000\r\n" in feed.body
    for uid in events:  # no personal data in UIDs
        for personal in ("张三", "13800138000", d.zhang.code, str(d.zhang.id) + "@"):
            assert personal not in uid

    # v2: the night shift moves to the other post; the day shift stays as it was.
    v2 = d.version([
        (d.zhang, DAY, d.night, register, "a" * 32, 2),
        (d.zhang, DAY + dt.timedelta(days=1), d.day, register, "b" * 32, 1),
        (d.leader, DAY, d.night, register, "c" * 32, 1),
    ])
    events = events_by_uid(d.feed().body)
    moved = events[f"{'a' * 32}@{DOMAIN}"]
    assert moved["sequence"] == 1 and moved["summary"].endswith("人员登记")
    assert moved["modified"] == utc(v2.published_at)
    unchanged = events[f"{'b' * 32}@{DOMAIN}"]
    assert unchanged["sequence"] == 0 and unchanged["modified"] == utc(v1.published_at)

    # v3: the night shift is removed; it stays as cancelled for 7 days, then goes.
    v3 = d.version([(d.zhang, DAY + dt.timedelta(days=1), d.day, register, "b" * 32, 1)])
    published = utc(v3.published_at)
    events = events_by_uid(d.feed(now=published + dt.timedelta(days=6, hours=23)).body)
    gone = events[f"{'a' * 32}@{DOMAIN}"]
    assert gone["status"] == "CANCELLED" and gone["sequence"] == 2
    assert gone["modified"] == published and gone["summary"].startswith("【已取消】")
    assert "带班党员 Shift leader：待定" in gone["description"]
    later = events_by_uid(d.feed(now=published + dt.timedelta(days=7)).body)
    assert set(later) == {f"{'b' * 32}@{DOMAIN}"}


def test_accepted_tasks_are_events_and_a_cancelled_one_stays_cancelled(
        district: District) -> None:
    """Issue 5: a volunteer's accepted tasks are in their feed, with the requester."""
    d = district
    dispatch.ensure_task_types(d.db)
    now = scheduler_db.utcnow()
    due = now + dt.timedelta(hours=3)
    task = dispatch.create_task(d.db, "书记", type_code="medicine_delivery", site_id=d.site.id,
                                requester_name="刘奶奶", requester_phone="13700001234",
                                due_at=due, building="3栋", room="402", urgency="urgent",
                                duration_minutes=45, notes="降压药")
    task.offers.append(TaskOffer(volunteer_id=d.zhang.id, state="accepted", offered_by="t",
                                 expires_at=now + dt.timedelta(minutes=5), accepted_at=now))
    task.status = "accepted"
    d.db.flush()
    uid = f"task-{task.id}@{DOMAIN}"
    event = events_by_uid(d.feed(now=now).body)[uid]
    assert event["status"] == "CONFIRMED" and "万家丽南收费站卡口 3栋 402" in event["summary"]
    assert "刘奶奶 +8613700001234" in event["description"] and "降压药" in event["description"]
    assert event["end"] - event["start"] == dt.timedelta(minutes=45)
    assert utc(event["end"]) == utc(due)
    assert uid not in events_by_uid(d.feed(d.li, now=now).body)  # only the assignee's feed

    before = event["sequence"]
    dispatch.cancel(d.db, task.id, "书记", "居民已自行购药", task.version, now=now)
    d.db.flush()
    cancelled = events_by_uid(d.feed(now=now).body)[uid]
    assert cancelled["status"] == "CANCELLED" and cancelled["sequence"] > before
    assert cancelled["summary"].startswith("【已取消】")


def test_a_cached_feed_is_rebuilt_for_its_volunteer_s_tasks_only(district: District) -> None:
    """Dispatch changes tasks all day: another volunteer's task keeps Zhang's feed cached."""
    d = district
    dispatch.ensure_task_types(d.db)
    now = scheduler_db.utcnow()

    def task_of(volunteer: Volunteer, state: str) -> Any:
        task = dispatch.create_task(d.db, "书记", type_code="medicine_delivery",
                                    site_id=d.site.id, requester_name="刘奶奶",
                                    requester_phone="13700001234",
                                    due_at=now + dt.timedelta(hours=3))
        task.offers.append(TaskOffer(
            volunteer_id=volunteer.id, state=state, offered_by="t",
            expires_at=now + dt.timedelta(minutes=5),
            accepted_at=now if state == "accepted" else None))
        d.db.flush()
        return task

    mine, theirs = task_of(d.zhang, "accepted"), task_of(d.li, "pending")
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    cache = services.FeedCache()

    def poll() -> services.Feed:
        owner = services.resolve(d.db, token)
        assert owner is not None
        return services.owner_feed(d.db, owner, now, domain=DOMAIN, cache=cache)

    first = poll()
    assert f"task-{mine.id}@{DOMAIN}" in events_by_uid(first.body) and poll() is first
    later = now + dt.timedelta(minutes=1)
    dispatch.cancel(d.db, theirs.id, "书记", "不需要了", theirs.version, now=later)
    d.db.flush()
    assert poll() is first  # not Zhang's task: still the cached feed
    dispatch.cancel(d.db, mine.id, "书记", "居民已自行购药", mine.version, now=later)
    d.db.flush()
    rebuilt = poll()
    assert rebuilt is not first
    assert events_by_uid(rebuilt.body)[f"task-{mine.id}@{DOMAIN}"]["status"] == "CANCELLED"
    assert rebuilt.body == d.feed(now=now).body  # what a build without cache gives


def test_unchanged_feed_is_byte_stable(district: District) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1),
               (d.li, DAY, d.day, d.post(d.site), "d" * 32, 1)])
    first = d.feed()
    assert d.feed(now=scheduler_db.utcnow() + dt.timedelta(hours=5)) == first
    # Another volunteer's change is a new publication, but not a change of this feed.
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1),
               (d.li, DAY, d.day, d.post(d.site, 1), "d" * 32, 2)])
    again = d.feed()
    assert again.body == first.body and again.etag == first.etag
    assert d.feed(d.li).etag != first.etag


def test_drafts_never_appear(district: District) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)], publish=False)
    assert events_by_uid(d.feed().body) == {}
    d.version([(d.zhang, DAY, d.day, d.post(d.site), "e" * 32, 1)])
    d.version([(d.zhang, DAY, d.day, d.post(d.site), "e" * 32, 1),
               (d.zhang, DAY + dt.timedelta(days=2), d.day, d.post(d.site), "f" * 32, 1)],
              publish=False)
    assert set(events_by_uid(d.feed().body)) == {f"{'e' * 32}@{DOMAIN}"}


def test_site_feed_shows_the_site_and_moves_away_as_cancelled(district: District) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1),
               (d.li, DAY, d.night, d.post(d.other_site), "d" * 32, 1),
               (d.leader, DAY, d.night, d.post(d.site, 1), "c" * 32, 1)])
    now = scheduler_db.utcnow()
    feed = services.site_feed(d.db, d.site.id, now, domain=DOMAIN)
    events = events_by_uid(feed.body)
    assert set(events) == {f"{'a' * 32}.site@{DOMAIN}", f"{'c' * 32}.site@{DOMAIN}"}
    assert events[f"{'a' * 32}.site@{DOMAIN}"]["summary"] == "夜班 · 车辆查验 · 张三"
    assert str(icalendar.Calendar.from_ical(feed.body)["X-WR-CALNAME"]) == (
        "Bastion 点位排班 · 万家丽南收费站卡口")
    # Zhang moves to the other site: cancelled here, confirmed there.
    d.version([(d.zhang, DAY, d.night, d.post(d.other_site), "a" * 32, 2),
               (d.li, DAY, d.night, d.post(d.other_site), "d" * 32, 1),
               (d.leader, DAY, d.night, d.post(d.site, 1), "c" * 32, 1)])
    here = events_by_uid(services.site_feed(d.db, d.site.id, now, domain=DOMAIN).body)
    there = events_by_uid(services.site_feed(d.db, d.other_site.id, now, domain=DOMAIN).body)
    assert here[f"{'a' * 32}.site@{DOMAIN}"]["status"] == "CANCELLED"
    assert here[f"{'a' * 32}.site@{DOMAIN}"]["sequence"] == 1
    assert there[f"{'a' * 32}.site@{DOMAIN}"]["status"] == "CONFIRMED"


def test_long_chinese_lines_are_folded_at_75_octets(district: District) -> None:
    d = district
    d.site.name = "长沙市雨花区黎托街道万家丽南路与环保大道交汇处高速公路收费站出入口联合防控检查卡口"
    d.site.address = "湖南省长沙市雨花区黎托街道万家丽南路二段一百八十八号（环保大道交汇处东北角）" * 2
    d.db.flush()
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    body = d.feed().body
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    lines = body.split(b"\r\n")[:-1]
    assert any(line.startswith(b" ") for line in lines)  # something was folded
    for line in lines:
        assert len(line) <= 75
        line.decode("utf-8")  # each physical line is whole UTF-8 characters
    event = next(iter(events_by_uid(body).values()))
    assert event["location"] == f"{d.site.name}，{d.site.address}"


@pytest.mark.parametrize("text", ["a" * 200, "夜" * 80, "é😀" * 40, "x" * 74 + "夜", ""])
def test_fold_never_splits_a_character(text: str) -> None:
    folded = ical.fold("SUMMARY:" + text)
    physical = folded.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert all(line.decode("utf-8") for line in physical)
    unfolded = folded.replace(b"\r\n ", b"").decode("utf-8")
    assert unfolded == "SUMMARY:" + text + "\r\n"


def test_escape_text() -> None:
    assert ical.escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


# -- routes -------------------------------------------------------------------------------

@pytest.fixture
def app(db: Session) -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": SECRET, "DB_BIND": db.connection(),
                       "BASE_URL": "https://bastion.example.cn", "FEED_DOMAIN": DOMAIN})


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def test_feed_route_etag_304_and_404(district: District, client: FlaskClient) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1),
               (d.li, DAY, d.day, d.post(d.site), "d" * 32, 1)])
    zhang = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    li = services.issue_volunteer_token(d.db, d.li.id, "c", secret=SECRET)

    response = client.get(f"/ical/{zhang}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith('W/')
    assert "private" in response.headers["Cache-Control"]
    assert "max-age=" in response.headers["Cache-Control"]
    assert set(events_by_uid(response.data)) == {f"{'a' * 32}@{DOMAIN}"}

    cached = client.get(f"/ical/{zhang}.ics", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b"" and cached.headers["ETag"] == etag
    weak = client.get(f"/ical/{zhang}.ics", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    stale = client.get(f"/ical/{zhang}.ics", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.data == response.data

    # Another volunteer's token never shows Zhang's shifts.
    theirs = client.get(f"/ical/{li}.ics")
    assert set(events_by_uid(theirs.data)) == {f"{'d' * 32}@{DOMAIN}"}
    assert "张三".encode() not in theirs.data

    new = services.reset_volunteer_token(d.db, d.zhang.id, "zhang", secret=SECRET)
    assert client.get(f"/ical/{zhang}.ics").status_code == 404
    assert client.get(f"/ical/{new}.ics").status_code == 200
    assert client.get("/ical/not-a-token.ics").status_code == 404
    assert client.get(f"/ical/site/{new}.ics").status_code == 404  # not a site token

    site = services.issue_site_token(d.db, d.site.id, "c", secret=SECRET)
    assert client.get(f"/ical/{site}.ics").status_code == 404
    response = client.get(f"/ical/site/{site}.ics")
    assert response.status_code == 200
    assert len(events_by_uid(response.data)) == 2


def test_cached_feeds_follow_publications_and_edits(district: District, app: Flask,
                                                    client: FlaskClient) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    path = f"/ical/{token}.ics"
    first = client.get(path)
    cache = app.extensions["bastion.feed_cache"]
    assert len(cache) == 1
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    d.version([(d.zhang, DAY, d.night, d.post(d.site, 1), "a" * 32, 2)])  # moved
    moved = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert moved.status_code == 200 and "人员登记" in moved.data.decode()
    assert events_by_uid(moved.data)[f"{'a' * 32}@{DOMAIN}"]["sequence"] == 1

    d.site.contact_phone = "13911112222"  # an edit, no publication
    d.db.flush()
    edited = client.get(path, headers={"If-None-Match": moved.headers["ETag"]})
    assert edited.status_code == 200 and "13911112222" in edited.data.decode()

    d.zhang.name = "张三丰"
    d.db.flush()
    renamed = client.get(path)
    assert str(icalendar.Calendar.from_ical(renamed.data)["X-WR-CALNAME"]) == (
        "Bastion 排班 · 张三丰")


def test_cache_drops_a_feed_when_a_cancellation_expires(district: District) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    v2 = d.version([])
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    owner = services.resolve(d.db, token)
    assert owner is not None
    cache = services.FeedCache()
    now = utc(v2.published_at) + dt.timedelta(days=1)
    feed = services.owner_feed(d.db, owner, now, domain=DOMAIN, cache=cache)
    assert feed.expires == utc(v2.published_at) + dt.timedelta(days=7)
    assert services.owner_feed(d.db, owner, now, domain=DOMAIN, cache=cache) is feed
    later = services.owner_feed(d.db, owner, feed.expires, domain=DOMAIN, cache=cache)
    assert later is not feed and events_by_uid(later.body) == {} and later.expires is None
    stale = services.FeedOwner(owner.kind, owner.id, owner.token_id, None, ("other",))
    assert cache.get(stale, DOMAIN, now) is None  # another fingerprint: not served


def test_feed_route_works_without_redis(district: District, client: FlaskClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    assert client.get(f"/ical/{token}.ics").status_code == 200


# -- rate limits --------------------------------------------------------------------------

class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_over_its_limit_gets_429_until_its_window_refills(
        district: District, app: Flask, client: FlaskClient) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    zhang = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    li = services.issue_volunteer_token(d.db, d.li.id, "c", secret=SECRET)
    clock = FakeClock()
    app.extensions[limits.EXTENSION_KEY] = limits.FeedLimits(3, 100, 600, clock=clock)

    first = client.get(f"/ical/{zhang}.ics")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert client.get(f"/ical/{zhang}.ics", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/ical/{zhang}.ics").status_code == 200
    refused = client.get(f"/ical/{zhang}.ics", headers={"If-None-Match": etag})
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "ETag" not in refused.headers and "BEGIN:VCALENDAR" not in refused.text
    assert "try again later" in refused.text
    # 3 per 600 s come back at one per 200 s.
    assert refused.headers["Retry-After"] == "200"

    assert client.get(f"/ical/{li}.ics").status_code == 200  # other tokens unaffected

    clock.now += 150
    assert client.get(f"/ical/{zhang}.ics").headers["Retry-After"] == "50"
    clock.now += 50
    assert client.get(f"/ical/{zhang}.ics").status_code == 200
    assert client.get(f"/ical/{zhang}.ics").status_code == 429
    clock.now += 600  # a whole window: a full burst again
    assert [client.get(f"/ical/{zhang}.ics").status_code for _ in range(4)] == [
        200, 200, 200, 429]


def test_an_address_over_its_limit_gets_429_and_others_do_not(
        district: District, app: Flask, client: FlaskClient) -> None:
    d = district
    site = services.issue_site_token(d.db, d.site.id, "c", secret=SECRET)
    clock = FakeClock()
    app.extensions[limits.EXTENSION_KEY] = limits.FeedLimits(100, 4, 60, clock=clock)
    guesser = {"REMOTE_ADDR": "203.0.113.9"}
    answers = [client.get(f"/ical/{'x' * 42}{i}.ics", environ_base=guesser).status_code
               for i in range(5)]
    assert answers == [404, 404, 404, 404, 429]  # refused before any token is looked up
    refused = client.get(f"/ical/site/{site}.ics", environ_base=guesser)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "15"
    other = client.get(f"/ical/site/{site}.ics", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200
    # Requests refused by their address were not counted against any token.
    assert len(app.extensions[limits.EXTENSION_KEY].per_token) == 5


def test_token_buckets_forget_the_least_recently_seen_keys() -> None:
    clock = FakeClock()
    bucket = limits.TokenBucket(1, 60, max_keys=2, clock=clock)
    assert bucket.take("a") == 0 and bucket.take("b") == 0
    assert bucket.take("a") == 60  # "a" is now the most recently seen
    assert bucket.take("c") == 0  # "b" forgotten
    assert len(bucket) == 2
    assert bucket.take("a") == 60 and bucket.take("b") == 0
    with pytest.raises(ValueError, match="limit ≥ 1"):
        limits.TokenBucket(0, 60)


def test_feed_limits_come_from_the_environment() -> None:
    app = create_app({"TESTING": True})
    feed_limits = app.extensions[limits.EXTENSION_KEY]
    assert feed_limits.per_token.limit == 30 and feed_limits.per_token.rate == 30 / 600
    assert feed_limits.per_ip.limit == 2000
    loaded = config.load({"BASTION_FEED_LIMIT_PER_TOKEN": "5",
                          "BASTION_FEED_LIMIT_PER_IP": "0", "BASTION_FEED_LIMIT_WINDOW": "60"})
    app = create_app({"TESTING": True, **{k: v for k, v in loaded.items()
                                          if k.startswith("FEED_LIMIT")}})
    feed_limits = app.extensions[limits.EXTENSION_KEY]
    assert feed_limits.per_ip is None and feed_limits.per_token.rate == 5 / 60
    off = create_app({"TESTING": True, "FEED_LIMIT_PER_TOKEN": 0, "FEED_LIMIT_PER_IP": 0})
    assert limits.EXTENSION_KEY not in off.extensions
    with pytest.raises(config.ConfigError, match="BASTION_FEED_LIMIT_PER_IP"):
        config.load({"BASTION_FEED_LIMIT_PER_IP": "-1"})
    with pytest.raises(config.ConfigError, match="BASTION_FEED_LIMIT_WINDOW"):
        config.load({"BASTION_FEED_LIMIT_WINDOW": "0"})


# -- the WSGI fast path -------------------------------------------------------------------

@dataclass
class BehindFastPath:
    """The app's Flask WSGI callable behind its fast path, and the requests the fast path
    handed to it."""

    flask: Any
    seen: list[str]

    def client(self) -> Client:
        """A client without the fast path: every request goes through Flask."""
        return Client(self.flask)


@pytest.fixture
def to_flask(app: Flask) -> BehindFastPath:
    fast = app.wsgi_app
    assert isinstance(fast, FeedFastPath)
    behind = BehindFastPath(fast.wsgi_app, [])

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        behind.seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return behind.flask(environ, start_response)

    fast.wsgi_app = spy
    return behind


def test_fast_path_refuses_over_the_limit_itself_and_counts_a_request_once(
        district: District, app: Flask, client: FlaskClient, to_flask: BehindFastPath) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    zhang = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    app.extensions[limits.EXTENSION_KEY] = limits.FeedLimits(2, 3, 600, clock=FakeClock())
    assert client.get(f"/ical/{zhang}.ics").status_code == 200
    assert client.get(f"/ical/{'x' * 43}.ics").status_code == 404  # handed on to Flask
    assert to_flask.seen == [f"GET /ical/{'x' * 43}.ics"]
    # Flask did not count the handed-on request again: this is the address's third.
    assert client.get(f"/ical/{zhang}.ics").status_code == 200
    refused = client.get(f"/ical/{zhang}.ics")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert len(to_flask.seen) == 1  # the 429 came from the fast path


def headers_of(response: Any) -> list[tuple[str, str]]:
    return sorted(response.headers.to_wsgi_list())


def test_fast_path_answers_polls_as_flask_would(district: District, app: Flask,
                                               client: FlaskClient, to_flask: BehindFastPath) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1),
               (d.li, DAY, d.day, d.post(d.site, 1), "d" * 32, 1)])
    d.version([(d.zhang, DAY, d.night, d.post(d.site, 1), "a" * 32, 2)])  # moved; Li cancelled
    zhang = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    site = services.issue_site_token(d.db, d.site.id, "c", secret=SECRET)
    slow = to_flask.client()
    now = scheduler_db.utcnow()
    expected = {f"/ical/{zhang}.ics": services.volunteer_feed(d.db, d.zhang.id, now,
                                                              domain=DOMAIN),
                f"/ical/site/{site}.ics": services.site_feed(d.db, d.site.id, now,
                                                             domain=DOMAIN)}
    for path, built in expected.items():
        fast = client.get(path)
        assert fast.status_code == 200 and fast.data == built.body  # as built without cache
        assert fast.headers["ETag"] == built.etag
        assert fast.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert fast.headers["Cache-Control"] == "private, max-age=300"
        assert fast.headers["X-Content-Type-Options"] == "nosniff"
        assert int(fast.headers["Content-Length"]) == len(built.body)
        flask = slow.get(path)
        assert flask.status_code == 200 and flask.data == fast.data
        assert headers_of(flask) == headers_of(fast)
        for validator in (built.etag, f'"x", W/{built.etag}'):
            fast = client.get(path, headers={"If-None-Match": validator})
            flask = slow.get(path, headers={"If-None-Match": validator})
            assert fast.status_code == flask.status_code == 304 and fast.data == b""
            assert headers_of(flask) == headers_of(fast)
            assert fast.headers["ETag"] == built.etag and "Content-Type" not in fast.headers
        stale = client.get(path, headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200 and stale.data == built.body
        head, flask_head = client.head(path), slow.head(path)
        assert head.status_code == flask_head.status_code == 200 and head.data == b""
        assert headers_of(head) == headers_of(flask_head)
    assert to_flask.seen == []  # all of them answered in front of Flask
    row = d.db.scalars(select(FeedToken).where(FeedToken.volunteer_id == d.zhang.id)).one()
    d.db.refresh(row)
    assert row.last_used_at is not None  # the poll's sign of life was written


def test_fast_path_leaves_the_rest_to_flask(district: District, app: Flask,
                                           client: FlaskClient, to_flask: BehindFastPath) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    old = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    new = services.reset_volunteer_token(d.db, d.zhang.id, "zhang", secret=SECRET)
    assert client.get("/no-such-page").status_code == 404
    for path in (f"/ical/{old}.ics", f"/ical/site/{new}.ics", "/ical/short.ics",
                 f"/ical/{new}.ics/x"):
        response = client.get(path)  # Flask's 404 page, as for any missing page
        assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)
    assert client.post(f"/ical/{new}.ics").status_code == 405
    assert to_flask.seen == [
        "GET /no-such-page", f"GET /ical/{old}.ics", f"GET /ical/site/{new}.ics",
        "GET /ical/short.ics", f"GET /ical/{new}.ics/x", f"POST /ical/{new}.ics"]
    # Until the web process's clock has started, a request (any) goes through Flask.
    app.extensions[CLOCK_KEY] = False
    assert client.get(f"/ical/{new}.ics").status_code == 200
    assert to_flask.seen[-1] == f"GET /ical/{new}.ics"


def test_fast_path_hands_database_errors_to_flask(district: District, client: FlaskClient,
                                                  to_flask: BehindFastPath,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    d = district
    d.version([(d.zhang, DAY, d.night, d.post(d.site), "a" * 32, 1)])
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    path = f"/ical/{token}.ics"
    resolve = services.resolve
    failures = iter([True])

    def once_down(db: Any, token: str) -> services.FeedOwner | None:
        if next(failures, False):  # a pooled connection that died with a restart
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return resolve(db, token)

    def locked(db: Any, owner: services.FeedOwner, now: dt.datetime) -> bool:
        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:  # the hourly sign of life fails: the poll does not
        patch.setattr(services, "mark_used", locked)
        assert client.get(path).status_code == 200 and to_flask.seen == []

    monkeypatch.setattr(services, "resolve", once_down)
    retried = client.get(path)  # Flask tries once more, on a new connection
    assert retried.status_code == 200 and to_flask.seen == [f"GET {path}"]

    def down(db: Any, token: str) -> services.FeedOwner | None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "resolve", down)
    outage = client.get(path)
    assert outage.status_code == 503 and outage.headers["Retry-After"] == "5"


# -- logs ---------------------------------------------------------------------------------

def test_redact() -> None:
    token = "A" * 43
    assert redact(f'"GET /ical/{token}.ics HTTP/1.1" 200') == '"GET /ical/***.ics HTTP/1.1" 200'
    assert redact(f"/ical/site/{token}.ics?x=1") == "/ical/site/***.ics?x=1"
    assert redact(f"/ical/{token}") == "/ical/***"
    assert redact("/healthz") == "/healthz"


def test_werkzeug_request_log_never_has_the_token(district: District, app: Flask,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    d = district
    token = services.issue_volunteer_token(d.db, d.zhang.id, "c", secret=SECRET)
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ical/{token}.ics") as r:
            assert r.status == 200
        thread.join(5)
    server.server_close()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/ical/***.ics" in line for line in lines), lines
    assert not any(token in line for line in lines)


def test_gunicorn_access_log_never_has_the_token() -> None:
    from gunicorn.config import Config

    from web.gunicorn_conf import RedactingLogger

    token = "B" * 43
    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    stream = io.StringIO()
    for handler in logger.access_log.handlers:
        handler.setStream(stream)  # type: ignore[attr-defined]

    @dataclass
    class Resp:
        status: str = "200 OK"
        sent: int = 10
        headers: tuple[()] = ()

    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/ical/{token}.ics",
               "PATH_INFO": f"/ical/{token}.ics", "SERVER_PROTOCOL": "HTTP/1.1",
               "QUERY_STRING": "", "HTTP_REFERER": f"https://x/ical/site/{token}.ics"}
    logger.access(Resp(), {}, environ, dt.timedelta(milliseconds=3))
    config.set("access_log_format", '%(r)s %(U)s %(f)s %({raw_uri}e)s')
    logger.access(Resp(), {}, environ, dt.timedelta(milliseconds=3))
    out = stream.getvalue()
    assert out.count("/ical/***.ics") >= 4 and token not in out, out


# -- subscribe card and CLI ---------------------------------------------------------------

def test_subscribe_links() -> None:
    got = links.subscribe_links("https://bastion.example.cn/app/", "T" * 43)
    assert got.url == f"https://bastion.example.cn/app/ical/{'T' * 43}.ics"
    assert got.webcal == f"webcal://bastion.example.cn/app/ical/{'T' * 43}.ics"
    assert links.subscribe_links("https://h", "T", "site").url == "https://h/ical/site/T.ics"
    with pytest.raises(ValueError):
        links.subscribe_links("bastion.example.cn", "T")


def test_subscribe_card_renders_and_reset_revokes(district: District, app: Flask) -> None:
    d = district
    with app.test_request_context():
        card = links.subscribe_card(d.db, d.zhang.id, "zhang", reset_url="/me/calendar/reset")
        again = links.subscribe_card(d.db, d.zhang.id, "zhang")
        assert again.links == card.links  # showing the card does not rotate the link
        html = render_template("calendar/_subscribe_card.html", card=card)
        token = card.links.url.rsplit("/", 1)[1].removesuffix(".ics")
        assert services.resolve(d.db, token) is not None
        assert card.links.webcal in html and card.links.url in html
        assert "<svg" in html and "iPhone" in html and "安卓 Android" in html
        assert "Outlook" in html and 'action="/me/calendar/reset"' in html
        assert html.index("订阅我的排班日历") < html.index("Subscribe to my shifts")

        reset = links.reset_card(d.db, d.zhang.id, "zhang")
        assert reset.links != card.links and reset.reset_url is None
        assert services.resolve(d.db, token) is None
        assert "reset_url" not in render_template("calendar/_subscribe_card.html", card=reset)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "BASE_URL": "https://b.example"})
    yield app.test_cli_runner()
    scheduler_db.get_engine().dispose()


def test_cli_feed_url(runner: Any) -> None:
    assert runner.invoke(args=["bastion", "migrate"]).exit_code == 0
    with scheduler_db.session_scope() as session:
        session.add(Volunteer(code="v1", name="张三", phone="13800138000"))
        session.add(Site(code="wjln", name="万家丽南"))
    first = runner.invoke(args=["bastion", "feed-url", "138 0013 8000"])
    assert first.exit_code == 0, first.output
    url = next(line for line in first.output.splitlines() if line.startswith("https://"))
    assert url.startswith("https://b.example/ical/") and "webcal://b.example/ical/" in first.output
    again = runner.invoke(args=["bastion", "feed-url", "13800138000"])
    assert url in again.output  # printed again, not rotated
    reset = runner.invoke(args=["bastion", "feed-url", "13800138000", "--reset"])
    assert reset.exit_code == 0 and url not in reset.output and "旧链接已失效" in reset.output
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    with scheduler_db.session_scope() as session:
        assert services.resolve(session, token) is None
    site = runner.invoke(args=["bastion", "feed-url", "--site", "wjln"])
    assert site.exit_code == 0 and "https://b.example/ical/site/" in site.output
    assert runner.invoke(args=["bastion", "feed-url", "13900000000"]).exit_code == 1
    assert runner.invoke(args=["bastion", "feed-url"]).exit_code == 2
