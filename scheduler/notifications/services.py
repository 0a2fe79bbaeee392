"""Notification services: create notices (producers), claim and send them, retry, list.

**Producers** add `Notification` rows in the caller's transaction, so a notice exists
exactly when the change it announces is committed: `notify_offer` (called where a task
offer is created), `notify_changes` (called by `scheduler.rosters.publish` with the diff
between the old and the new published version) and `create_reminders` (a periodic job).
Each row has a unique `dedup_key`; producing the same notice again adds nothing.

**Sending** (`deliver`) is claim, send, record, each step its own commit:

1. *claim*: ``UPDATE … SET status='sending', attempts=attempts+1 WHERE id=… AND
   status='pending'`` — a compare-and-set, so of two workers (or an RQ job and the clock
   thread) that pick the same row, exactly one gets it;
2. the sender is called outside any transaction (a slow gateway holds no lock);
3. *record*: ``sent``, or ``pending`` again with an exponential back-off, or ``failed``
   after `MAX_ATTEMPTS` (shown to the secretary, who may retry it).

Before the claim, a task offer notice whose offer is no longer pending (answered,
withdrawn) or has expired is marked ``obsolete`` instead and never sent
(`drop_if_obsolete`); the secretary sees it with the reason.

A worker killed between 1 and 3 leaves the row ``sending``; `sweep` puts claims older than
`CLAIM_TIMEOUT` back to ``pending``. That makes delivery *at-least-once*: if the worker
died after the gateway accepted the message but before step 3 committed, the message is
sent a second time. The alternative (mark sent before calling the gateway) is
*at-most-once* and silently loses a message whenever a worker dies mid-send; for a shift
reminder a duplicate SMS is the cheaper failure. The gateway gets the `dedup_key` with
every message and can drop the duplicate if it keeps recent keys.

Services never commit, except `deliver`, which must: a claim is worthless until others
can see it. Every write has its audit row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from scheduler import audit, senders
from scheduler.absences import reports as absence_reports
from scheduler.accounts.services import SiteScope
from scheduler.db import utcnow
from scheduler.localtime import TZ, local_date, shift_interval
from scheduler.models import (
    Assignment,
    Post,
    Roster,
    RosterVersion,
    ShiftTemplate,
    Site,
    Volunteer,
)
from scheduler.notifications.models import Notification

if TYPE_CHECKING:
    from scheduler.dispatch.models import TaskOffer
    from scheduler.rosters import VersionDiff

log = logging.getLogger(__name__)

#: The actor of audit rows the system writes on its own.
SYSTEM = "system"
#: Sends of one notice before it is `failed`.
MAX_ATTEMPTS = 5
#: Wait before the second try; doubled at each further try (1, 2, 4, 8 minutes).
BACKOFF = dt.timedelta(minutes=1)
#: A claim older than this is taken for a dead worker's and put back by `sweep`.
CLAIM_TIMEOUT = dt.timedelta(minutes=5)
#: Minutes before a shift's start its reminder is sent (``BASTION_REMIND_BEFORE``).
DEFAULT_REMIND_BEFORE = 120
#: Items listed in one shift-change message; the rest are counted.
MAX_ITEMS = 6
#: Statuses the secretary's page lists.
OUTSTANDING = ("failed", "sending", "pending")
#: Obsolete notices (not sent) the page lists too: those created since the start of
#: yesterday.
OBSOLETE_SHOWN_DAYS = 1

#: ``sender(phone_e164, text, dedup_key)``; raises if the message was not accepted.
Sender = Callable[[str, str, str], None]


class NotifyConfigError(RuntimeError):
    """``BASTION_NOTIFY_SENDER`` or ``BASTION_REMIND_BEFORE`` is malformed or refused."""


def _mask(phone: str) -> str:
    # Imported here: dispatch.services imports this module to notify offers.
    from scheduler.dispatch.services import mask_phone

    return mask_phone(phone)


def log_sender(phone: str, text: str, key: str) -> None:
    """Development sender: writes the notice to the server log (refused in production)."""
    log.warning("notification %s to %s (development: not sent): %s", key, _mask(phone), text)


def load_sender(env: Mapping[str, str] | None = None) -> Sender:
    """The sender named by ``BASTION_NOTIFY_SENDER``: ``log`` (default) or ``module:function``.

    ``log`` is refused when ``BASTION_ENV=production``: workers load the sender themselves,
    so they check it as the web app's configuration does.
    """
    source = os.environ if env is None else env
    spec = (source.get("BASTION_NOTIFY_SENDER") or "").strip() or "log"
    if (source.get("BASTION_ENV") or "").strip() == "production" and senders.is_log(spec):
        raise NotifyConfigError("BASTION_NOTIFY_SENDER=log only writes notifications to the "
                                "server log; set a real sender (module:function) in production")
    return senders.load(spec, setting="BASTION_NOTIFY_SENDER",
                        builtin=log_sender, error=NotifyConfigError)


def remind_before(env: Mapping[str, str] | None = None) -> int:
    """``BASTION_REMIND_BEFORE``: minutes between a reminder and its shift (default 120)."""
    raw = ((os.environ if env is None else env).get("BASTION_REMIND_BEFORE") or "").strip()
    if not raw:
        return DEFAULT_REMIND_BEFORE
    if not raw.isdigit() or not 0 < int(raw) <= 7 * 24 * 60:
        raise NotifyConfigError(f"BASTION_REMIND_BEFORE: expected minutes (1-10080), got {raw!r}")
    return int(raw)


# -- producers ----------------------------------------------------------------------------

def _add(session: Session, volunteer: Volunteer, kind: str, key: str, zh: str, en: str,
         actor: str, now: dt.datetime | None = None) -> Notification | None:
    """Add one notice unless its key exists or the volunteer cannot receive it."""
    if not volunteer.phone or volunteer.status == "left":
        return None
    if session.scalar(select(Notification.id).where(Notification.dedup_key == key)):
        return None
    row = Notification(volunteer_id=volunteer.id, kind=kind, dedup_key=key, text_zh=zh,
                       text_en=en, status="pending", attempts=0, send_after=now or utcnow())
    try:
        with session.begin_nested():  # a concurrent producer may have added the same key
            session.add(row)
            session.flush()
            audit.record(session, actor, "notification.create", "notification", row.id,
                         after={"kind": kind, "volunteer": volunteer.id, "key": key})
            session.flush()
    except IntegrityError:
        return None
    return row


def _local(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(TZ)


def notify_offer(session: Session, offer: TaskOffer, actor: str = SYSTEM) -> Notification | None:
    """Tell a volunteer a task is offered to them (key ``offer:<offer id>``).

    The message names the task type, the place and the times only: the resident's name and
    phone are shown to the volunteer once they accept, never sent by SMS.
    """
    task = offer.task
    place = " ".join(p for p in (task.building, task.room) if p)
    where = f"{task.site.name} {place}".strip()
    due, expires = _local(task.due_at), _local(offer.expires_at)
    zh = (f"【Bastion】新任务：{task.type.name_zh}（{where}），{due:%m月%d日 %H:%M} 前完成。"
          f"请在 {expires:%H:%M} 前打开“我的任务”接受或拒绝。")
    en = (f"[Bastion] New task: {task.type.name_en} ({where}), due {due:%m-%d %H:%M}. "
          f"Accept or decline under 'My tasks' before {expires:%H:%M}.")
    volunteer = offer.volunteer or session.get(Volunteer, offer.volunteer_id)
    assert volunteer is not None
    return _add(session, volunteer, "task_offer", f"offer:{offer.id}", zh, en, actor,
                offer.offered_at)


def _day(iso: str) -> tuple[str, str]:
    day = dt.date.fromisoformat(iso)
    return f"{day.month}月{day.day}日", f"{day:%m-%d}"


def notify_changes(session: Session, changes: VersionDiff, version: RosterVersion,
                   actor: str = SYSTEM) -> list[Notification]:
    """One ``shift_change`` notice per volunteer whose shifts `changes` adds, removes or moves.

    `changes` is `scheduler.rosters.diff` from the previously published version to
    `version`, just published; the key is ``change:<version id>:<volunteer id>``. Three
    queries whatever the number of changes, plus one insert per affected volunteer.
    """
    items: dict[str, list[tuple[str, str]]] = defaultdict(list)
    moved_posts = {m["from_post"] for m in changes.moved}
    posts = {p.code: p.name for p in session.scalars(select(Post).where(Post.code.in_(
        {r["post"] for r in changes.added + changes.removed} | moved_posts
        | {m["to_post"] for m in changes.moved})))}
    shifts = {s.code: s.name for s in session.scalars(select(ShiftTemplate))}
    for verb_zh, verb_en, rows in (("新增", "added", changes.added),
                                   ("取消", "removed", changes.removed)):
        for r in rows:
            zh_day, en_day = _day(r["date"])
            shift, post = shifts.get(r["shift"], r["shift"]), posts.get(r["post"], r["post"])
            items[r["volunteer"]].append((f"{verb_zh} {zh_day} {shift} {post}",
                                          f"{verb_en} {en_day} {shift} {post}"))
    for m in changes.moved:
        zh_from, en_from = _day(m["from_date"])
        zh_to, en_to = _day(m["date"])
        old = f"{shifts.get(m['from_shift'], m['from_shift'])} {posts.get(m['from_post'], '')}"
        new = f"{shifts.get(m['shift'], m['shift'])} {posts.get(m['to_post'], '')}"
        items[m["volunteer"]].append((f"调整 {zh_from} {old} → {zh_to} {new}",
                                      f"moved {en_from} {old} → {en_to} {new}"))
    if not items:
        return []
    volunteers = session.scalars(select(Volunteer).where(Volunteer.code.in_(items))).all()
    roster = session.get(Roster, version.roster_id)
    name = roster.name if roster is not None else ""
    created = []
    for volunteer in sorted(volunteers, key=lambda v: v.id):
        lines = items[volunteer.code]
        shown, more = lines[:MAX_ITEMS], len(lines) - MAX_ITEMS
        zh = f"【Bastion】您的排班（{name}）有变动：" + "；".join(z for z, _ in shown)
        en = f"[Bastion] Your shifts ({name}) changed: " + "; ".join(e for _, e in shown)
        if more > 0:
            zh, en = zh + f"；等共 {len(lines)} 项", en + f"; {more} more"
        zh, en = zh + "。请在“我的班次”查看。", en + ". See 'My shifts'."
        row = _add(session, volunteer, "shift_change", f"change:{version.id}:{volunteer.id}",
                   zh, en, actor)
        if row is not None:
            created.append(row)
    return created


def create_reminders(session: Session, now: dt.datetime, lead_minutes: int) -> list[Notification]:
    """A ``shift_reminder`` for each published assignment starting within `lead_minutes`.

    Idempotent: the key ``remind:<uid>:<revision>:<lead>`` names the assignment as
    published (a move to another post makes a new revision, so a new reminder), so
    running it again, or on two clocks, adds nothing. Shifts already begun get none.
    """
    horizon = now + dt.timedelta(minutes=lead_minutes)
    first, last = local_date(now) - dt.timedelta(days=1), local_date(horizon)
    rows = session.execute(
        select(Assignment, ShiftTemplate, Post, Site, Volunteer)
        .join(RosterVersion, Assignment.version_id == RosterVersion.id)
        .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
        .join(Post, Assignment.post_id == Post.id)
        .join(Site, Post.site_id == Site.id)
        .join(Volunteer, Assignment.volunteer_id == Volunteer.id)
        .where(RosterVersion.state == "published", Assignment.date >= first,
               Assignment.date <= last, Volunteer.phone.is_not(None),
               Volunteer.status != "left")).all()
    due = []
    for a, shift, post, site, volunteer in rows:
        start, _end = shift_interval(a.date, shift.start, shift.end)
        if now <= start <= horizon:
            due.append((f"remind:{a.uid}:{a.revision}:{lead_minutes}", a, shift, post, site,
                        volunteer, start))
    if not due:
        return []
    known = set(session.scalars(select(Notification.dedup_key).where(
        Notification.dedup_key.in_([d[0] for d in due]))))
    created = []
    for key, _a, shift, post, site, volunteer, start in due:
        if key in known:
            continue
        begin = _local(start)
        zh = (f"【Bastion】上岗提醒：{begin.month}月{begin.day}日 {shift.name} {begin:%H:%M} "
              f"在 {site.name} {post.name} 上岗。如不能到岗，请尽快联系本支部书记。")
        en = (f"[Bastion] Reminder: {shift.name} shift at {site.name} {post.name}, "
              f"{begin:%m-%d %H:%M}. If you cannot come, call your branch secretary now.")
        row = _add(session, volunteer, "shift_reminder", key, zh, en, SYSTEM, now)
        if row is not None:
            created.append(row)
    return created


# -- sending ------------------------------------------------------------------------------

def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed try: 1, 2, 4, 8 … minutes."""
    return BACKOFF * (2 ** max(0, attempts - 1))


def claim(session: Session, notification_id: int, now: dt.datetime) -> int | None:
    """Claim a due pending notice for sending (compare-and-set); its attempt number or None.

    The attempt number is the claim's token: `finish` records the outcome only if the row
    is still this claim's (the sweeper may have put it back and another worker claimed it).
    """
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "pending",
               Notification.send_after <= now)
        .values(status="sending", claimed_at=now, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempts = session.scalar(select(Notification.attempts)
                              .where(Notification.id == notification_id))
    audit.record(session, SYSTEM, "notification.claim", "notification", notification_id,
                 before={"status": "pending"}, after={"status": "sending", "attempt": attempts})
    return attempts


def finish(session: Session, notification_id: int, attempt: int, error: str | None,
           now: dt.datetime) -> str | None:
    """Record the outcome of claim `attempt`: ``sent``, ``pending`` (retry later) or ``failed``.

    None when the row is no longer this claim's (nothing is written).
    """
    row = session.get(Notification, notification_id, with_for_update=True,
                      populate_existing=True)
    if row is None or row.status != "sending" or row.attempts != attempt:
        return None
    if error is None:
        row.status, row.sent_at = "sent", now
    elif row.attempts >= MAX_ATTEMPTS:
        row.status, row.last_error = "failed", error
    else:
        row.status, row.last_error = "pending", error
        row.send_after = now + backoff(row.attempts)
    row.claimed_at = None
    audit.record(session, SYSTEM, f"notification.{'send' if error is None else 'fail'}",
                 "notification", row.id, before={"status": "sending", "attempt": attempt},
                 after={"status": row.status, "error": error,
                        "send_after": row.send_after if row.status == "pending" else None})
    return row.status


def _offer_over(session: Session, row: Notification, now: dt.datetime) -> str | None:
    """Why a task offer notice no longer matters (its offer answered, withdrawn or
    expired), or None while the volunteer can still act on it."""
    from scheduler.dispatch.models import TaskOffer  # dispatch.services imports this module

    offer_id = row.dedup_key.removeprefix("offer:")
    if row.kind != "task_offer" or not offer_id.isdigit():
        return None  # not a `notify_offer` key: nothing to check it against
    offer = session.get(TaskOffer, int(offer_id))
    if offer is None:
        return "offer deleted"
    if offer.state != "pending":
        return f"offer {offer.state}"
    if offer.expires_at <= now:
        return "offer expired"
    return None


def drop_if_obsolete(session: Session, notification_id: int, now: dt.datetime) -> str | None:
    """Mark a due pending notice ``obsolete`` if what it announces is over; the reason.

    A task offer notice waiting behind a slow gateway, its retries or a queue outage
    must not ask the volunteer to accept an offer that expired or was withdrawn. The
    change is a compare-and-set from ``pending``, as `claim` is.
    """
    row = session.get(Notification, notification_id, populate_existing=True)
    if row is None or row.status != "pending" or row.send_after > now:
        return None
    reason = _offer_over(session, row, now)
    if reason is None:
        return None
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "pending")
        .values(status="obsolete", last_error=reason, claimed_at=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    audit.record(session, SYSTEM, "notification.obsolete", "notification", notification_id,
                 before={"status": "pending"}, after={"status": "obsolete"}, reason=reason)
    return reason


def deliver(session: Session, notification_id: int, sender: Sender, *,
            now: Callable[[], dt.datetime] = utcnow) -> str:
    """Claim, send and record one notice; commits after the claim and after the outcome.

    Returns ``sent``, ``pending`` (will be retried), ``failed``, ``obsolete`` (not sent:
    see `drop_if_obsolete`) or ``skipped`` (not due, or another worker has it). The
    sender's exception is recorded, not raised.
    """
    if drop_if_obsolete(session, notification_id, now()) is not None:
        session.commit()
        return "obsolete"
    attempt = claim(session, notification_id, now())
    if attempt is None:
        session.commit()  # nothing written; ends the transaction like the other paths
        return "skipped"
    row = session.get(Notification, notification_id, populate_existing=True)
    assert row is not None
    phone, text, key = row.volunteer.phone or "", row.text_zh, row.dedup_key
    session.commit()
    error = None
    try:
        sender(phone, text, key)
    except Exception as exc:  # any gateway failure is retried; the message is kept
        error = f"{type(exc).__name__}: {exc}"[:1000]
        log.warning("notification %s to %s failed (attempt %d): %s", key, _mask(phone),
                    attempt, error)
    outcome = finish(session, notification_id, attempt, error, now())
    session.commit()
    return outcome or "skipped"


def sweep(session: Session, now: dt.datetime,
          timeout: dt.timedelta = CLAIM_TIMEOUT) -> list[Notification]:
    """Put back to ``pending`` the claims older than `timeout` (their worker died)."""
    rows = session.scalars(select(Notification).where(
        Notification.status == "sending", Notification.claimed_at < now - timeout)
        .with_for_update().execution_options(populate_existing=True)).all()
    for row in rows:
        before = {"status": "sending", "claimed_at": row.claimed_at, "attempt": row.attempts}
        row.status, row.claimed_at, row.send_after = "pending", None, now
        audit.record(session, SYSTEM, "notification.requeue", "notification", row.id,
                     before=before, after={"status": "pending"},
                     reason="claim expired: the worker is gone")
    session.flush()
    return list(rows)


def due(session: Session, now: dt.datetime, limit: int = 200) -> list[int]:
    """Ids of pending notices whose `send_after` has come, oldest first."""
    return list(session.scalars(select(Notification.id).where(
        Notification.status == "pending", Notification.send_after <= now)
        .order_by(Notification.send_after, Notification.id).limit(limit)))


# -- the secretary's page -----------------------------------------------------------------

def _visible(scope: SiteScope, today: dt.date) -> ColumnElement[bool]:
    # A secretary's volunteers are those she may record absent (absences.reports).
    return absence_reports.in_scope(scope, today)


def outstanding(session: Session, scope: SiteScope, today: dt.date,
                limit: int = 200) -> list[Notification]:
    """Failed, sending and pending notices to the scope's volunteers, failed ones first,
    then the obsolete ones created since the start of yesterday (`today` is local)."""
    order = case({"failed": 0, "sending": 1, "pending": 2}, value=Notification.status,
                 else_=3)
    since = dt.datetime.combine(today - dt.timedelta(days=OBSOLETE_SHOWN_DAYS), dt.time(),
                                TZ)
    shown = or_(Notification.status.in_(OUTSTANDING),
                (Notification.status == "obsolete") & (Notification.created_at >= since))
    return list(session.scalars(
        select(Notification).join(Volunteer, Notification.volunteer_id == Volunteer.id)
        .where(shown, _visible(scope, today))
        .options(joinedload(Notification.volunteer))
        .order_by(order, Notification.send_after, Notification.id).limit(limit)))


def visible(session: Session, scope: SiteScope, today: dt.date,
            notification_id: int) -> Notification | None:
    """The notice if it goes to one of the scope's volunteers."""
    return session.scalars(
        select(Notification).join(Volunteer, Notification.volunteer_id == Volunteer.id)
        .where(Notification.id == notification_id, _visible(scope, today))).one_or_none()


class NotRetryable(ValueError):
    """Only a failed or pending notice can be retried."""


def retry(session: Session, notification_id: int, actor: str, *,
          now: dt.datetime | None = None) -> Notification:
    """Send a failed (or waiting) notice again now, with a fresh count of attempts."""
    row = session.get(Notification, notification_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no notification {notification_id}")
    if row.status not in ("failed", "pending"):
        raise NotRetryable(f"notification {notification_id} is {row.status}")
    before: dict[str, Any] = {"status": row.status, "attempts": row.attempts,
                              "send_after": row.send_after}
    row.status, row.attempts, row.send_after = "pending", 0, now or utcnow()
    session.flush()
    audit.record(session, actor, "notification.retry", "notification", row.id, before=before,
                 after={"status": "pending", "attempts": 0, "send_after": row.send_after})
    return row


__all__ = ["CLAIM_TIMEOUT", "MAX_ATTEMPTS", "NotRetryable", "NotifyConfigError", "Sender",
           "backoff", "claim", "create_reminders", "deliver", "drop_if_obsolete", "due", "finish",
           "load_sender", "log_sender", "notify_changes", "notify_offer", "outstanding", "remind_before",
           "retry", "sweep", "visible"]
