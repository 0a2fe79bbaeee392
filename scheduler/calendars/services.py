"""Calendar feeds: issuing, resolving and revoking feed tokens; building the feeds.

Tokens. A token is HMAC-SHA256(secret key, random 128-bit salt), base64url (43
characters). The database holds only its SHA-256 (to find the row) and the salt; the
server's secret key never reaches the database. So a copy of the database alone reveals no
feed URL, yet the server can show a volunteer their current link again (derive it from
the salt) without rotating it, which a subscribed phone would not survive. Issuing a token
revokes the owner's previous one in the same transaction, with an audit row.

Feeds. Only published rosters are shown: for every roster, the events come from its
published version; an assignment that an earlier published (now superseded) version had
and the published one lacks is shown as STATUS:CANCELLED for `CANCELLED_DAYS` after the
publication that removed it. An event's SEQUENCE counts the publications that changed it
(post moved, removed), and its DTSTAMP and LAST-MODIFIED are the publication time of the
last such change, so an unchanged roster gives an identical feed, byte for byte.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from scheduler import audit
from scheduler.calendars import ical
from scheduler.calendars.models import FeedToken
from scheduler.db import utcnow
from scheduler.dispatch.models import Task, TaskOffer, TaskType
from scheduler.dispatch.services import tasks_for_volunteer
from scheduler.models import Assignment, Post, RosterVersion, ShiftTemplate, Site, Volunteer

#: How long a removed assignment stays in feeds as STATUS:CANCELLED.
CANCELLED_DAYS = 7
#: `last_used_at` is written at most this often per token, so polls stay read-only.
LAST_USED_RESOLUTION = dt.timedelta(hours=1)
#: Domain separation of the HMAC that derives tokens from the secret key.
_TOKEN_CONTEXT = b"bastion/feed-token/1:"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
#: Said for a missing shift leader or site contact.
TBD = "待定"


class FeedTokenError(ValueError):
    """A feed token cannot be issued (unknown owner, no secret key)."""


# -- tokens -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedOwner:
    """Whose feed a token opens: a volunteer's or a site's."""

    kind: str  # "volunteer" | "site"
    id: int
    token_id: int
    last_used_at: dt.datetime | None = None
    # The state the feed is built from (see `resolve`); equal fingerprints, equal feeds.
    fingerprint: tuple[Any, ...] = ()


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise FeedTokenError("feed tokens need the server's secret key")
    return key


def derive_token(secret: str | bytes, salt: str) -> str:
    """The token of a row with `salt`, under the server's `secret` key."""
    digest = hmac.new(_key(secret), _TOKEN_CONTEXT + bytes.fromhex(salt), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def hash_token(token: str) -> str:
    """The hex SHA-256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _owner_filter(kind: str, owner_id: int) -> ColumnElement[bool]:
    column = FeedToken.volunteer_id if kind == "volunteer" else FeedToken.site_id
    return column == owner_id


def _issue(session: Session, kind: str, owner_id: int, actor: str, secret: str | bytes,
           reason: str | None) -> str:
    """Revoke the owner's live token, if any, and store a new one; return the new token."""
    model = Volunteer if kind == "volunteer" else Site
    key = _key(secret)
    with session.begin_nested():
        if session.get(model, owner_id) is None:
            raise FeedTokenError(f"no {kind} {owner_id}")
        now = utcnow()
        live = session.scalars(select(FeedToken).where(
            _owner_filter(kind, owner_id), FeedToken.revoked_at.is_(None))
            .with_for_update()).all()
        for row in live:
            row.revoked_at = now
        session.flush()  # one live token per owner, at every moment
        salt = secrets.token_hex(16)
        token = derive_token(key, salt)
        row = FeedToken(token_hash=hash_token(token), salt=salt, created_at=now,
                        created_by=actor, **{f"{kind}_id": owner_id})
        session.add(row)
        session.flush()
        audit.record(session, actor, "feed_token.issue", "feed_token", row.id,
                     before={"revoked": [r.id for r in live]} if live else None,
                     after={"owner": kind, "owner_id": owner_id}, reason=reason)
    return token


def issue_volunteer_token(session: Session, volunteer_id: int, actor: str, *,
                          secret: str | bytes, reason: str | None = None) -> str:
    """A new feed token for the volunteer; their previous one stops working at once.

    Works in a savepoint of the caller's transaction (the caller commits), with an audit
    row that names the revoked token rows but never a token or hash.
    """
    return _issue(session, "volunteer", volunteer_id, actor, secret, reason)


def issue_site_token(session: Session, site_id: int, actor: str, *, secret: str | bytes,
                     reason: str | None = None) -> str:
    """A new feed token for the site (its leaders' feed); the previous one stops working."""
    return _issue(session, "site", site_id, actor, secret, reason)


def reset_volunteer_token(session: Session, volunteer_id: int, actor: str, *,
                          secret: str | bytes) -> str:
    """"Reset my calendar link" (重置日历链接): a new token, the old link answers 404."""
    return issue_volunteer_token(session, volunteer_id, actor, secret=secret,
                                 reason="reset calendar link")


def current_token(session: Session, kind: str, owner_id: int, *,
                  secret: str | bytes) -> str | None:
    """The owner's live token, derived again from its salt; None if there is none.

    None too when the secret key has changed since the token was issued (the derived token
    no longer matches the stored hash): the old link still works, but only a reset can
    show a link again.
    """
    row = session.scalars(select(FeedToken).where(
        _owner_filter(kind, owner_id), FeedToken.revoked_at.is_(None))).one_or_none()
    if row is None:
        return None
    token = derive_token(secret, row.salt)
    return token if hmac.compare_digest(hash_token(token), row.token_hash) else None


def volunteer_token(session: Session, volunteer_id: int, actor: str, *,
                    secret: str | bytes) -> str:
    """The volunteer's current token, issuing one if they have none (or it can't be shown)."""
    token = current_token(session, "volunteer", volunteer_id, secret=secret)
    if token is None:
        token = issue_volunteer_token(session, volunteer_id, actor, secret=secret)
    return token


def site_token(session: Session, site_id: int, actor: str, *, secret: str | bytes) -> str:
    """The site's current token, issuing one if it has none (or it can't be shown)."""
    token = current_token(session, "site", site_id, secret=secret)
    if token is None:
        token = issue_site_token(session, site_id, actor, secret=secret)
    return token


def _max(column: Any) -> Any:
    return select(func.max(column)).scalar_subquery()


def _of_accepted_tasks(aggregate: Any) -> Any:
    """`aggregate` over the tasks the token's volunteer accepted (correlated to the token)."""
    return (select(aggregate).select_from(TaskOffer)
            .join(Task, TaskOffer.task_id == Task.id)
            .where(TaskOffer.volunteer_id == FeedToken.volunteer_id,
                   TaskOffer.accepted_at.is_not(None)).scalar_subquery())


#: What a feed's content depends on: every publication (count and latest time of
#: non-draft versions; the count also moves when a roster is deleted) and every edit of the
#: rows an event shows (sites, posts, shifts, volunteers, task types: `updated_at` moves
#: on each change; rows that assignments point to cannot be deleted). Coarse on purpose:
#: any such change anywhere rebuilds every feed once, and these changes are rare next to
#: polls. Tasks are the exception: dispatch changes them all day (every offer, answer and
#: expiry touches the task), so only the tasks the token's volunteer accepted count (how
#: many, and their latest change; `_settle` touches the task when an offer changes).
#: Every poll computes all of it: each max() reads one entry of an index on its column
#: (migration c41d7e2a9b68; shift templates and task types are a handful of rows); the
#: tasks come through the volunteer's offers (ix_task_offers_volunteer_id_state).
_FINGERPRINT = (
    select(func.count(RosterVersion.id)).where(RosterVersion.state != "draft")
    .scalar_subquery(),
    _max(RosterVersion.published_at),
    _max(Site.updated_at), _max(Post.updated_at), _max(ShiftTemplate.updated_at),
    _max(Volunteer.updated_at), _max(TaskType.updated_at),
    _of_accepted_tasks(func.count(Task.id)), _of_accepted_tasks(func.max(Task.updated_at)),
)


# Built once: a prebuilt statement keeps its cache key, so a poll compiles nothing.
_RESOLVE = (select(FeedToken.id, FeedToken.volunteer_id, FeedToken.site_id,
                   FeedToken.last_used_at, *_FINGERPRINT)
            .where(FeedToken.token_hash == bindparam("token_hash"),
                   FeedToken.revoked_at.is_(None)))


def _connection(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def resolve(db: Session | Connection, token: str) -> FeedOwner | None:
    """The owner of a live token, or None for anything else (unknown, revoked, malformed).

    The same query reads the owner's fingerprint (`FeedOwner.fingerprint`), which lets a
    `FeedCache` answer without building the feed. `db` may be a bare Core connection, as
    the web's feed path uses (no ORM session per poll).
    """
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    row = _connection(db).execute(_RESOLVE, {"token_hash": hash_token(token)}).one_or_none()
    if row is None:
        return None
    token_id, volunteer_id, site_id, last_used, *fingerprint = row
    if volunteer_id is not None:
        return FeedOwner("volunteer", volunteer_id, token_id, last_used, tuple(fingerprint))
    return FeedOwner("site", site_id, token_id, last_used, tuple(fingerprint))


_MARK_USED = (update(FeedToken).where(FeedToken.id == bindparam("token_id"))
              .values(last_used_at=bindparam("now")))


def use_is_due(owner: FeedOwner, now: dt.datetime) -> bool:
    """Whether a poll at `now` records the token's use (once per `LAST_USED_RESOLUTION`)."""
    return owner.last_used_at is None or now - owner.last_used_at >= LAST_USED_RESOLUTION


def mark_used(db: Session | Connection, owner: FeedOwner, now: dt.datetime) -> bool:
    """Record that the token was used, at most once per `LAST_USED_RESOLUTION`.

    Returns whether anything was written (the caller commits). Not audited: it is a
    sign of life, not a change anyone made.
    """
    if not use_is_due(owner, now):
        return False
    _connection(db).execute(_MARK_USED, {"token_id": owner.token_id, "now": now})
    return True


# -- feeds --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feed:
    """An iCalendar document with its strong ETag and the time it last changed.

    `expires` is the next moment the document changes by the clock alone (a cancelled
    event leaving its 7 days), or None; until then only a database change can change it.
    """

    body: bytes
    etag: str
    last_modified: dt.datetime | None
    expires: dt.datetime | None = None


@dataclass(frozen=True)
class _Place:
    post_name: str
    site_id: int
    site_name: str
    address: str | None
    contact_name: str | None
    contact_phone: str | None


@dataclass(frozen=True)
class _Row:
    """An assignment row of a published or superseded version, with what the event shows."""

    uid: str
    version_id: int
    volunteer_id: int
    volunteer_name: str
    post_id: int
    shift_id: int
    date: dt.date
    roster_id: int
    place: _Place
    shift_name: str
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class _Version:
    id: int
    roster_id: int
    published_at: dt.datetime


@dataclass(frozen=True)
class _Item:
    """An assignment's state in the feed: its last row, SEQUENCE and last change."""

    row: _Row
    sequence: int
    modified: dt.datetime
    cancelled: bool


_HISTORY = (
    select(Assignment.uid, Assignment.version_id, Assignment.volunteer_id, Volunteer.name,
           Assignment.post_id, Assignment.shift_id, Assignment.date, RosterVersion.roster_id,
           Post.name, Site.id, Site.name, Site.address, Site.contact_name, Site.contact_phone,
           ShiftTemplate.name, ShiftTemplate.start, ShiftTemplate.end)
    .join(RosterVersion, Assignment.version_id == RosterVersion.id)
    .join(Volunteer, Assignment.volunteer_id == Volunteer.id)
    .join(Post, Assignment.post_id == Post.id)
    .join(Site, Post.site_id == Site.id)
    .join(ShiftTemplate, Assignment.shift_id == ShiftTemplate.id)
    .where(RosterVersion.state != "draft"))
_HISTORY_OF = {"volunteer": _HISTORY.where(Assignment.volunteer_id == bindparam("owner")),
               "site": _HISTORY.where(Post.site_id == bindparam("owner"))}
_VERSIONS = (select(RosterVersion.id, RosterVersion.roster_id, RosterVersion.published_at)
             .where(RosterVersion.roster_id.in_(bindparam("rosters", expanding=True)),
                    RosterVersion.state != "draft", RosterVersion.published_at.is_not(None))
             .order_by(RosterVersion.published_at, RosterVersion.number))
_MINE, _OTHER = aliased(Assignment), aliased(Assignment)
_MINE_POST, _OTHER_POST = aliased(Post), aliased(Post)
# The Party members on the same published version, date, shift and site as each of the
# owner's rows; fixed SQL text, so PostgreSQL plans it once per connection.
_PARTY = (select(_MINE.uid, Volunteer.code, Volunteer.name)
          .select_from(_MINE)
          .join(RosterVersion, and_(_MINE.version_id == RosterVersion.id,
                                    RosterVersion.state == "published"))
          .join(_MINE_POST, _MINE.post_id == _MINE_POST.id)
          .join(_OTHER, and_(_OTHER.version_id == _MINE.version_id,
                             _OTHER.date == _MINE.date, _OTHER.shift_id == _MINE.shift_id))
          .join(_OTHER_POST, and_(_OTHER.post_id == _OTHER_POST.id,
                                  _OTHER_POST.site_id == _MINE_POST.site_id))
          .join(Volunteer, and_(_OTHER.volunteer_id == Volunteer.id,
                                Volunteer.party_member.is_(True))))
_PARTY_OF = {"volunteer": _PARTY.where(_MINE.volunteer_id == bindparam("owner")),
             "site": _PARTY.where(_MINE_POST.site_id == bindparam("owner"))}


def _history(session: Session, kind: str, owner_id: int) -> tuple[
        list[_Row], dict[int, list[_Version]]]:
    """Assignment rows of the owner (a volunteer's, or a site's) in published or superseded versions, with their
    post, site, shift and volunteer; and the published/superseded versions of their rosters
    in order of publication. Two queries, whatever the number of events."""
    conn = session.connection()
    rows = [_Row(uid, vid, vol, vname, post, shift, date, roster,
                 _Place(pname, site_id, sname, addr, cname, cphone), shname, start, end)
            for (uid, vid, vol, vname, post, shift, date, roster, pname, site_id, sname, addr,
                 cname, cphone, shname, start, end) in conn.execute(_HISTORY_OF[kind],
                                                                  {"owner": owner_id})]
    roster_ids = sorted({r.roster_id for r in rows})
    versions: dict[int, list[_Version]] = defaultdict(list)
    if roster_ids:
        for vid, roster_id, published_at in conn.execute(_VERSIONS, {"rosters": roster_ids}):
            # iCalendar and HTTP dates have whole seconds; so does every comparison here.
            published = cast(dt.datetime, published_at).replace(microsecond=0)
            versions[roster_id].append(_Version(vid, roster_id, published))
    return rows, versions


def _items(rows: Sequence[_Row], versions: dict[int, list[_Version]],
           now: dt.datetime) -> list[_Item]:
    """Walk each assignment through its roster's publications, in order.

    SEQUENCE starts at 0 and grows at every publication that changes the event (another
    post, or absent); the event is cancelled if the latest publication lacks it, and
    dropped once that was `CANCELLED_DAYS` ago or more.
    """
    by_uid: dict[str, dict[int, _Row]] = defaultdict(dict)
    for row in rows:
        by_uid[row.uid][row.version_id] = row
    window = dt.timedelta(days=CANCELLED_DAYS)
    items = []
    for present in by_uid.values():
        roster_id = next(iter(present.values())).roster_id
        sequence, state = -1, None
        changed: dt.datetime | None = None
        last: _Row | None = None
        for version in versions[roster_id]:
            found = present.get(version.id)
            new_state = None if found is None else found.post_id
            if sequence < 0 and found is None:
                continue  # not yet in the roster
            if sequence < 0 or new_state != state:
                sequence, changed, state = sequence + 1, version.published_at, new_state
            if found is not None:
                last = found
        if last is None or changed is None:
            continue  # only in versions never published (no publication time)
        cancelled = state is None
        if cancelled and now - changed >= window:
            continue
        items.append(_Item(last, sequence, changed, cancelled))
    return items


def _expires(items: Sequence[_Item]) -> dt.datetime | None:
    """When the first cancelled event leaves the feed (the feed then changes)."""
    window = dt.timedelta(days=CANCELLED_DAYS)
    return min((i.modified + window for i in items if i.cancelled), default=None)


def _leaders(session: Session, kind: str, owner_id: int,
             items: Sequence[_Item]) -> dict[str, str]:
    """The shift leader of each live event, by assignment uid: the Party member on the
    same site and shift with the smallest volunteer code (stable across polls)."""
    if all(i.cancelled for i in items):
        return {}
    best: dict[str, tuple[str, str]] = {}
    for uid, code, name in session.connection().execute(_PARTY_OF[kind], {"owner": owner_id}):
        if uid not in best or code < best[uid][0]:
            best[uid] = (code, name)
    return {uid: name for uid, (_code, name) in best.items()}


def _times(date: dt.date, start: dt.time, end: dt.time) -> tuple[dt.datetime, dt.datetime]:
    """Wall-clock start and end; a shift whose end is not after its start ends next day."""
    end_date = date + dt.timedelta(days=1) if end <= start else date
    return dt.datetime.combine(date, start), dt.datetime.combine(end_date, end)


def _contact(place: _Place) -> str:
    parts = [p for p in (place.contact_name, place.contact_phone) if p]
    return " ".join(parts) if parts else TBD


def _location(place: _Place) -> str:
    return f"{place.site_name}，{place.address}" if place.address else place.site_name


def _events(items: Sequence[_Item], leaders: dict[str, str], domain: str, uid_suffix: str,
            title: Callable[[_Row], tuple[str, list[str]]]) -> list[ical.Event]:
    """VEVENTs of `items`; `title(row)` gives the SUMMARY and the first description lines
    of the feed's kind."""
    events = []
    for item in items:
        row, place = item.row, item.row.place
        begin, finish = _times(row.date, row.start, row.end)
        summary, extra = title(row)
        leader = leaders.get(row.uid, TBD)
        lines = [
            *extra,
            f"岗位 Post：{place.site_name} · {place.post_name}",
            f"班次 Shift：{row.shift_name} {row.start:%H:%M}–{row.end:%H:%M}",
            f"带班党员 Shift leader：{TBD if item.cancelled else leader}",
            f"点位联系人 Site contact：{_contact(place)}",
        ]
        if item.cancelled:
            summary = f"【已取消】{summary}"
            lines.insert(0, "此班次已取消 This shift was cancelled.")
        events.append(ical.Event(
            uid=f"{row.uid}{uid_suffix}@{domain}", sequence=item.sequence,
            modified=item.modified, start=begin, end=finish, summary=summary,
            location=_location(place), description="\n".join(lines),
            cancelled=item.cancelled))
    return ical.sorted_events(events)


#: Urgency of a task as its event says it.
_URGENCY = {"urgent": "紧急 urgent", "today": "今日 today", "normal": "一般 normal"}


def _task_events(session: Session, volunteer_id: int, now: dt.datetime,
                 domain: str) -> list[ical.Event]:
    """The volunteer's accepted tasks as VEVENTs (`task-<id>@<domain>`), cancelled ones
    (or ones they were taken off) kept as CANCELLED while their due time is within
    `CANCELLED_DAYS`. SEQUENCE is the task's version, which grows with every change."""
    events = []
    for task in tasks_for_volunteer(session, volunteer_id,
                                    now - dt.timedelta(days=CANCELLED_DAYS)):
        summary = f"任务 · {task.summary.zh}"
        lines = [f"任务 Task：{task.summary.zh} / {task.summary.en}",
                 f"紧急程度 Urgency：{_URGENCY.get(task.urgency, task.urgency)}",
                 f"求助居民 Requester：{task.requester_name} {task.requester_phone}"]
        if task.notes:
            lines.append(f"备注 Notes：{task.notes}")
        if task.cancelled:
            summary = f"【已取消】{summary}"
            lines.insert(0, "此任务已取消或已改派 This task was cancelled or reassigned.")
        events.append(ical.Event(
            uid=f"task-{task.task_id}@{domain}", sequence=task.sequence,
            modified=task.modified, start=_wall(task.starts_at), end=_wall(task.ends_at),
            summary=summary, location=task.location, description="\n".join(lines),
            cancelled=task.cancelled))
    return events


def _wall(moment: dt.datetime) -> dt.datetime:
    """An aware time as the naive Asia/Shanghai wall time the events are written in."""
    return moment.astimezone(ical.ZONE).replace(tzinfo=None)


def _feed(name: str, items: Sequence[_Item], events: Sequence[ical.Event]) -> Feed:
    body = ical.calendar(name, events)
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    modified = max((e.modified for e in events), default=None)
    return Feed(body, etag, modified, _expires(items))


_NAME = {"volunteer": select(Volunteer.name).where(Volunteer.id == bindparam("owner")),
         "site": select(Site.name).where(Site.id == bindparam("owner"))}


def _name(session: Session, kind: str, owner_id: int) -> str:
    name = session.connection().execute(_NAME[kind], {"owner": owner_id}).scalar_one_or_none()
    if name is None:
        raise LookupError(f"no {kind} {owner_id}")
    return str(name)


def _volunteer_title(row: _Row) -> tuple[str, list[str]]:
    return f"{row.shift_name} · {row.place.site_name} · {row.place.post_name}", []


def _site_title(row: _Row) -> tuple[str, list[str]]:
    return (f"{row.shift_name} · {row.place.post_name} · {row.volunteer_name}",
            [f"志愿者 Volunteer：{row.volunteer_name}"])


def volunteer_feed(session: Session, volunteer_id: int, now: dt.datetime, *,
                   domain: str) -> Feed:
    """The volunteer's shifts in every published roster, as an iCalendar feed.

    UIDs are `<assignment uid>@<domain>`: no name, phone or code in them. `now` decides
    only which cancelled events are still within their `CANCELLED_DAYS`.
    """
    name = _name(session, "volunteer", volunteer_id)
    rows, versions = _history(session, "volunteer", volunteer_id)
    items = _items(rows, versions, now)
    leaders = _leaders(session, "volunteer", volunteer_id, items)
    events = ical.sorted_events([*_events(items, leaders, domain, "", _volunteer_title),
                                 *_task_events(session, volunteer_id, now, domain)])
    return _feed(f"Bastion 排班 · {name}", items, events)


def site_feed(session: Session, site_id: int, now: dt.datetime, *, domain: str) -> Feed:
    """Every shift at the site in published rosters (for its leaders): one event per
    volunteer and shift, UIDs `<assignment uid>.site@<domain>`.

    An assignment that moves to another site is cancelled here and appears there.
    """
    name = _name(session, "site", site_id)
    rows, versions = _history(session, "site", site_id)
    items = _items(rows, versions, now)
    leaders = _leaders(session, "site", site_id, items)
    events = _events(items, leaders, domain, ".site", _site_title)
    return _feed(f"Bastion 点位排班 · {name}", items, events)


def owner_feed(session: Session, owner: FeedOwner, now: dt.datetime, *, domain: str,
               cache: FeedCache | None = None) -> Feed:
    """The feed a resolved token opens, from `cache` while the owner's fingerprint (see
    `resolve`) is unchanged and the clock has not reached the cached feed's `expires`."""
    if cache is not None:
        cached = cache.get(owner, domain, now)
        if cached is not None:
            return cached
    build = volunteer_feed if owner.kind == "volunteer" else site_feed
    feed = build(session, owner.id, now, domain=domain)
    if cache is not None:
        cache.put(owner, domain, feed)
    return feed


class FeedCache:
    """Rendered feeds of one process, so that most polls (304 or not) render nothing.

    An entry is used only while the owner's fingerprint is what it was when the feed was
    built: the fingerprint (computed by `resolve` in the same query as the token lookup)
    changes with any publication and any edit of a site, post, shift or volunteer, so a
    stale feed is never served; such edits are rare next to hourly polls. Least recently
    used entries are dropped beyond `size`.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, int, str], tuple[tuple[Any, ...], Feed]] = (
            OrderedDict())
        self._lock = threading.Lock()

    def get(self, owner: FeedOwner, domain: str, now: dt.datetime) -> Feed | None:
        key = (owner.kind, owner.id, domain)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            fingerprint, feed = entry
            if fingerprint != owner.fingerprint or (feed.expires is not None
                                                    and now >= feed.expires):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return feed

    def put(self, owner: FeedOwner, domain: str, feed: Feed) -> None:
        with self._lock:
            self._entries[(owner.kind, owner.id, domain)] = (owner.fingerprint, feed)
            self._entries.move_to_end((owner.kind, owner.id, domain))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["CANCELLED_DAYS", "Feed", "FeedCache", "FeedOwner", "FeedTokenError",
           "current_token", "derive_token", "hash_token", "issue_site_token",
           "issue_volunteer_token", "mark_used", "owner_feed", "reset_volunteer_token",
           "resolve", "site_feed", "site_token", "use_is_due", "volunteer_feed",
           "volunteer_token"]
