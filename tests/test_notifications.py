"""Notifications (scheduler/notifications): producers, claim-and-send, retries, sweeper, page."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler import rosters
from scheduler.accounts.models import User
from scheduler.db import make_engine, sessionmaker_for, upgrade
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task
from scheduler.models import Assignment, AuditEvent, RosterVersion, Volunteer
from scheduler.notifications import services as notices
from scheduler.notifications.models import Notification
from tests.fixtures.webhelp import form_post, login
from tests.fixtures.world import NOW, SECRETARY, START, World

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.web", "tests.fixtures.dispatch"]


def _rows(db: Session, kind: str | None = None) -> list[Notification]:
    query = select(Notification).order_by(Notification.id)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list(db.scalars(query))


def _actions(db: Session, notice: Notification) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).where(
        AuditEvent.entity == "notification", AuditEvent.entity_id == str(notice.id))
        .order_by(AuditEvent.id)))


class Recorder:
    """A sender that records what it sends and fails the first `fail` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.sent = fail, []  # type: ignore[var-annotated]
        self.lock = threading.Lock()

    def __call__(self, phone: str, text: str, key: str) -> None:
        with self.lock:
            if self.fail > 0:
                self.fail -= 1
                raise ConnectionError("gateway 503")
            self.sent.append((phone, text, key))


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


# -- producers ----------------------------------------------------------------------------

def test_an_offer_creates_exactly_one_notice_without_the_residents_details(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task(building="3栋", room="502")
    v = create_volunteer("志愿者甲", phone="+8613900000001")
    offer = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    [notice] = _rows(db)
    assert (notice.kind, notice.volunteer_id, notice.dedup_key, notice.status) == (
        "task_offer", v.id, f"offer:{offer.id}", "pending")
    assert "新任务" in notice.text_zh and "东塘小区 3栋 502" in notice.text_zh
    assert "New task" in notice.text_en
    # The resident's name and phone are for volunteers who accepted, never in an SMS.
    assert "张三" not in notice.text_zh and "8000" not in notice.text_zh
    assert _actions(db, notice) == ["notification.create"]
    assert db.scalars(select(AuditEvent.actor).where(
        AuditEvent.action == "notification.create")).one() == SECRETARY
    # Producing it again (a retried transaction) adds nothing.
    assert notices.notify_offer(db, offer) is None
    assert len(_rows(db)) == 1


def _publish_v2(db: Session, world: World, v1: list[Assignment],
                change: Callable[[Assignment], Assignment | None],
                extra: list[Assignment]) -> RosterVersion:
    """Draft version 2 from version 1's assignments through `change`, then publish it."""
    v2 = RosterVersion(roster_id=world.roster.id, number=2, state="draft", created_by="t")
    db.add(v2)
    db.flush()
    for a in v1:
        copy = change(Assignment(version_id=v2.id, uid=a.uid, revision=a.revision,
                                 volunteer_id=a.volunteer_id, post_id=a.post_id,
                                 shift_id=a.shift_id, date=a.date))
        if copy is not None:
            db.add(copy)
    for a in extra:
        a.version_id = v2.id
        db.add(a)
    db.flush()
    rosters.publish(db, world.roster.id, 2, 1, "coordinator-li")
    return v2


def test_publishing_a_change_notifies_each_affected_volunteer_once(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    moved = create_volunteer("调岗甲", phone="+8613900000011")
    dropped = create_volunteer("取消乙", phone="+8613900000012")
    added = create_volunteer("新增丙", phone="+8613900000013")
    same = create_volunteer("不变丁", phone="+8613900000014")
    v1 = [world.duty(moved, "east-gate", "M", 3), world.duty(dropped, "east-gate", "A", 3),
          world.duty(same, "west-gate", "M", 3), world.duty(same, "west-gate", "M", 4)]

    def change(a: Assignment) -> Assignment | None:
        if a.volunteer_id == dropped.id:
            return None
        if a.volunteer_id == moved.id:
            a.post_id, a.revision = world.posts["east-door"].id, a.revision + 1
        return a

    v2 = _publish_v2(db, world, v1, change, [Assignment(
        volunteer_id=added.id, post_id=world.posts["hotel-care"].id,
        shift_id=world.shifts["N"].id, date=START + dt.timedelta(days=4))])
    rows = _rows(db, "shift_change")
    assert sorted(r.volunteer_id for r in rows) == sorted([moved.id, dropped.id, added.id])
    by_id = {r.volunteer_id: r for r in rows}
    assert by_id[moved.id].dedup_key == f"change:{v2.id}:{moved.id}"
    assert "调整 4月7日 M 门岗 → 4月7日 M 楼栋" in by_id[moved.id].text_zh
    assert "取消 4月7日 A 门岗" in by_id[dropped.id].text_zh
    assert "新增 4月8日 N 人文关怀" in by_id[added.id].text_zh
    assert "added 04-08 N 人文关怀" in by_id[added.id].text_en
    assert all(_actions(db, r) == ["notification.create"] for r in rows)


def test_the_first_publication_and_an_unchanged_one_notify_nobody(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("不变丁", phone="+8613900000014")
    v1 = [world.duty(v, "west-gate", "M", 3)]
    _publish_v2(db, world, v1, lambda a: a, [])
    assert _rows(db) == []


def _reminder_setup(world: World, create_volunteer: Callable[..., Volunteer]
                    ) -> tuple[Volunteer, Assignment, Assignment]:
    v = create_volunteer("早班甲", phone="+8613900000021")
    soon = world.duty(v, "east-gate", "M", 3)    # 2022-04-07 08:00, 90 min after `now`
    later = world.duty(v, "east-gate", "A", 3)   # 16:00: outside a 120-minute window
    return v, soon, later


def test_reminders_are_created_once_per_assignment_even_when_run_twice(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v, soon, _later = _reminder_setup(world, create_volunteer)
    now = dt.datetime(2022, 4, 7, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    created = notices.create_reminders(db, now.astimezone(dt.UTC), 120)
    assert [(n.volunteer_id, n.dedup_key) for n in created] == [
        (v.id, f"remind:{soon.uid}:{soon.revision}:120")]
    assert "上岗提醒" in created[0].text_zh and "08:00" in created[0].text_zh
    assert notices.create_reminders(db, now.astimezone(dt.UTC), 120) == []
    assert notices.create_reminders(db, (now + dt.timedelta(minutes=1)).astimezone(dt.UTC),
                                    120) == []
    assert len(_rows(db, "shift_reminder")) == 1
    # A shift already begun gets none.
    assert notices.create_reminders(db, (now + dt.timedelta(hours=2)).astimezone(dt.UTC),
                                    60) == []


def test_remind_before_is_configurable_and_checked() -> None:
    assert notices.remind_before({}) == 120
    assert notices.remind_before({"BASTION_REMIND_BEFORE": "45"}) == 45
    with pytest.raises(notices.NotifyConfigError, match="BASTION_REMIND_BEFORE"):
        notices.remind_before({"BASTION_REMIND_BEFORE": "soon"})


# -- sending ------------------------------------------------------------------------------

def _notice(db: Session, volunteer: Volunteer, key: str = "offer:t1") -> Notification:
    row = Notification(volunteer_id=volunteer.id, kind="task_offer", dedup_key=key,
                       text_zh="【Bastion】测试", text_en="[Bastion] test", status="pending",
                       attempts=0, send_after=NOW)
    db.add(row)
    db.flush()
    return row


def test_a_failing_sender_is_retried_with_back_off_then_failed(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲", phone="+8613900000031")
    row = _notice(db, v)
    sender, clock = Recorder(fail=notices.MAX_ATTEMPTS), Clock(NOW)
    waits = []
    for attempt in range(1, notices.MAX_ATTEMPTS + 1):
        outcome = notices.deliver(db, row.id, sender, now=clock)
        db.refresh(row)
        assert row.attempts == attempt and row.last_error == "ConnectionError: gateway 503"
        if attempt < notices.MAX_ATTEMPTS:
            assert outcome == "pending" and row.status == "pending"
            waits.append(row.send_after - clock.now)
            # Not due yet: another pass does nothing.
            assert notices.deliver(db, row.id, sender, now=clock) == "skipped"
            clock.now = row.send_after
    assert outcome == "failed" and row.status == "failed" and sender.sent == []
    assert waits == [notices.backoff(n) for n in range(1, notices.MAX_ATTEMPTS)]
    assert waits[0] < waits[1] < waits[2]
    assert notices.deliver(db, row.id, sender, now=clock) == "skipped"
    # A secretary's retry sends it now, audited under her name.
    notices.retry(db, row.id, "书记王", now=clock.now)
    assert notices.deliver(db, row.id, sender, now=clock) == "sent"
    db.refresh(row)
    assert row.status == "sent" and row.sent_at == clock.now and len(sender.sent) == 1
    assert sender.sent[0] == ("+8613900000031", "【Bastion】测试", "offer:t1")
    assert db.scalars(select(AuditEvent.actor).where(
        AuditEvent.action == "notification.retry")).one() == "书记王"
    with pytest.raises(notices.NotRetryable):
        notices.retry(db, row.id, "书记王")


def test_a_killed_workers_claim_is_requeued_by_the_sweeper_and_sent_once(
        db: Session, world: World, create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲", phone="+8613900000041")
    row = _notice(db, v)
    # The worker claimed it, then died before sending.
    assert notices.claim(db, row.id, NOW) == 1
    db.commit()
    sender = Recorder()
    assert notices.deliver(db, row.id, sender, now=Clock(NOW)) == "skipped"  # it is claimed
    assert notices.sweep(db, NOW + dt.timedelta(minutes=1)) == []  # too young to be dead
    later = NOW + notices.CLAIM_TIMEOUT + dt.timedelta(seconds=1)
    assert [r.id for r in notices.sweep(db, later)] == [row.id]
    assert notices.due(db, later) == [row.id]
    assert notices.deliver(db, row.id, sender, now=Clock(later)) == "sent"
    assert notices.deliver(db, row.id, sender, now=Clock(later)) == "skipped"
    assert [k for _p, _t, k in sender.sent] == ["offer:t1"]
    # The dead worker coming back late cannot overwrite the new outcome.
    assert notices.finish(db, row.id, 1, "late", later) is None
    db.refresh(row)
    assert (row.status, row.attempts) == ("sent", 2)
    assert _actions(db, row) == ["notification.claim", "notification.requeue",
                                 "notification.claim", "notification.send"]


@pytest.fixture(scope="module")
def committed(backend: str, new_database: Callable[[str], str]) -> Iterator[Engine]:
    """A committed PostgreSQL database of this module's own, for real concurrent sessions."""
    if backend != "postgresql":
        pytest.skip("concurrent claims are a PostgreSQL matter; SQLite serialises writers")
    url = new_database(backend)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_two_concurrent_senders_send_a_notice_once(committed: Engine) -> None:
    maker = sessionmaker_for(committed)
    with maker() as s:
        v = Volunteer(code="n-v1", name="并发甲", phone="+8613900000051")
        s.add(v)
        s.flush()
        ids = [_notice(s, v, f"offer:c{i}").id for i in range(5)]
        s.commit()
    sender = Recorder()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        with maker() as s:
            barrier.wait()
            for notification_id in ids:
                outcomes.append(notices.deliver(s, notification_id, sender,
                                                now=Clock(NOW + dt.timedelta(minutes=1))))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(k for _p, _t, k in sender.sent) == sorted(f"offer:c{i}" for i in range(5))
    assert sorted(outcomes) == ["sent"] * 5 + ["skipped"] * 5
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "notification.send")) == 5
        assert set(s.scalars(select(Notification.attempts))) == {1}


# -- the sender ---------------------------------------------------------------------------

def test_the_log_sender_masks_the_phone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="scheduler.notifications.services"):
        notices.log_sender("+8613812345678", "【Bastion】上岗提醒", "remind:x:1:120")
    assert "138****5678" in caplog.text and "13812345678" not in caplog.text
    assert "remind:x:1:120" in caplog.text


def test_the_sender_is_chosen_by_configuration_and_log_is_refused_in_production() -> None:
    assert notices.load_sender({}) is notices.log_sender
    gateway = "scheduler.notifications.services:backoff"  # any importable function
    assert notices.load_sender({"BASTION_NOTIFY_SENDER": gateway}) is notices.backoff
    with pytest.raises(notices.NotifyConfigError, match="module:function"):
        notices.load_sender({"BASTION_NOTIFY_SENDER": "sms"})
    with pytest.raises(notices.NotifyConfigError, match="production"):
        notices.load_sender({"BASTION_ENV": "production"})
    assert notices.load_sender({"BASTION_ENV": "production",
                                "BASTION_NOTIFY_SENDER": gateway}) is notices.backoff

def test_an_offer_notice_is_sent_only_while_the_offer_is_open(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("志愿者甲", phone="+8613900000051")
    sender = Recorder()

    def notice_of(offer_id: int) -> Notification:
        return db.scalars(select(Notification).where(
            Notification.dedup_key == f"offer:{offer_id}")).one()

    # Open: sent.
    task = make_task()
    live = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    assert notices.deliver(db, notice_of(live.id).id, sender, now=Clock(NOW)) == "sent"

    # Expired by the time the sender comes (the gateway was down, say), even before the
    # expiry job has run: not sent.
    task = make_task()
    late = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    assert late.state == "pending"
    row = notice_of(late.id)
    assert notices.deliver(db, row.id, sender, now=Clock(late.expires_at)) == "obsolete"
    db.refresh(row)
    assert (row.status, row.last_error, row.attempts) == ("obsolete", "offer expired", 0)
    assert _actions(db, row) == ["notification.create", "notification.obsolete"]

    # Withdrawn (the task was cancelled) or already answered on the phone: not sent.
    task = make_task()
    withdrawn = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    dispatch.cancel(db, task.id, SECRETARY, "居民已自行解决", now=NOW)
    task = make_task()
    answered = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    dispatch.accept(db, task.id, v.id, now=NOW)
    for offer, reason in ((withdrawn, "offer withdrawn"), (answered, "offer accepted")):
        row = notice_of(offer.id)
        assert notices.deliver(db, row.id, sender, now=Clock(NOW)) == "obsolete"
        db.refresh(row)
        assert (row.status, row.last_error) == ("obsolete", reason)
        assert row.id not in notices.due(db, NOW)
        with pytest.raises(notices.NotRetryable):
            notices.retry(db, row.id, "书记王")
    assert [k for _p, _t, k in sender.sent] == [f"offer:{live.id}"]


# -- the secretary's page -----------------------------------------------------------------

def test_failed_notices_are_shown_masked_to_their_secretary_who_can_retry(
        db: Session, world: World, app: Flask, client: FlaskClient,
        create_volunteer: Callable[..., Volunteer], create_user: Callable[..., User]) -> None:
    mine = create_volunteer("东塘甲", phone="+8613912345678",
                            allowed_sites=[world.sites["east"]])
    other = create_volunteer("西湖乙", phone="+8613987654321",
                             allowed_sites=[world.sites["west"]])
    failing, theirs = _notice(db, mine, "offer:f1"), _notice(db, other, "offer:f2")
    sender, clock = Recorder(fail=notices.MAX_ATTEMPTS), Clock(NOW)
    for _ in range(notices.MAX_ATTEMPTS):
        notices.deliver(db, failing.id, sender, now=clock)
        db.refresh(failing)
        clock.now = max(clock.now, failing.send_after)
    assert failing.status == "failed"
    theirs.status, theirs.attempts = "failed", 5
    db.flush()

    login(client, create_user("secretary", sites=[world.sites["east"]]))
    html = client.get("/notifications").get_data(as_text=True)
    assert "东塘甲" in html and "139****5678" in html and "13912345678" not in html
    assert "发送失败" in html and "ConnectionError: gateway 503" in html
    assert "西湖乙" not in html
    # Another branch's notice is not hers to retry.
    assert form_post(client, f"/notifications/{theirs.id}/retry").status_code == 404
    response = form_post(client, f"/notifications/{failing.id}/retry")
    assert response.status_code == 303
    db.refresh(failing)
    assert (failing.status, failing.attempts) == ("pending", 0)
    assert _actions(db, failing)[-1] == "notification.retry"
    assert client.post(f"/notifications/{failing.id}/retry").status_code == 400  # no CSRF


def test_the_secretary_sees_offer_notices_dropped_as_obsolete_with_the_reason(
        db: Session, world: World, client: FlaskClient, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer], create_user: Callable[..., User]) -> None:
    v = create_volunteer("东塘丙", phone="+8613912340000", allowed_sites=[world.sites["east"]])
    task = make_task()
    offer = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    dispatch.cancel(db, task.id, SECRETARY, "居民已自行解决", now=NOW)
    [row] = _rows(db, "task_offer")
    assert notices.deliver(db, row.id, Recorder(), now=Clock(NOW)) == "obsolete"
    secretary = create_user("secretary", sites=[world.sites["east"]])
    login(client, secretary)
    html = client.get("/notifications").get_data(as_text=True)
    assert "东塘丙" in html and "已作废（未发送）" in html and "派单已撤回" in html
    assert f"/notifications/{row.id}/retry" not in html  # nothing to retry
    assert offer.state == "withdrawn"
    # Made three days ago, it is no longer listed.
    row.created_at -= dt.timedelta(days=3)
    db.flush()
    assert "东塘丙" not in client.get("/notifications").get_data(as_text=True)
