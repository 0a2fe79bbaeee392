"""Task dispatch (scheduler/dispatch): rules, ranking, lifecycle, conflicts, masking, feed."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.absences.models import Absence
from scheduler.db import make_engine, sessionmaker_for, upgrade
from scheduler.dispatch import rules
from scheduler.dispatch import services as dispatch
from scheduler.dispatch.models import Task, TaskOffer, TaskType
from scheduler.models import AuditEvent, Site, Volunteer
from tests.fixtures.world import NOW, SECRETARY, World, local

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.dispatch"]


def _task_actions(db: Session, task: Task) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).where(
        AuditEvent.entity == "task", AuditEvent.entity_id == str(task.id))
        .order_by(AuditEvent.id)))


def _ranked_ids(db: Session, task: Task, limit: int = 50) -> list[int]:
    return [c.volunteer_id for c in dispatch.suggest(db, task.id, limit, now=NOW).candidates]


# -- task types and creation --------------------------------------------------------------

def test_task_types_are_seeded_once_with_their_skills(db: Session) -> None:
    added = dispatch.ensure_task_types(db)
    assert len(added) == len(dispatch.DEFAULT_TASK_TYPES)
    assert dispatch.ensure_task_types(db) == []
    escort = db.scalars(select(TaskType).where(TaskType.code == "hospital_escort")).one()
    assert (escort.people, escort.requires, escort.name_zh) == (2, {"driver": 1}, "就医陪护")
    sampling = db.scalars(select(TaskType).where(TaskType.code == "home_sampling")).one()
    assert sampling.requires == {"medical": 1}
    support = db.scalars(select(TaskType).where(TaskType.code == "psychological_support")).one()
    assert support.requires == {"counselor": 1}
    # A coordinator's edit survives a second seeding.
    escort.default_minutes = 240
    dispatch.ensure_task_types(db)
    assert escort.default_minutes == 240


def test_create_task_takes_defaults_from_its_type_and_normalises_the_phone(
        db: Session, world: World, make_task: Callable[..., Task]) -> None:
    task = make_task("hospital_escort", building="3栋", room="502",
                     requester_phone="+86 139-0013-9000", duration_minutes=None)
    assert (task.status, task.version, task.urgency, task.duration_minutes) == (
        "open", 1, "urgent", 180)
    assert (task.people, task.requires, task.requester_phone) == (
        2, {"driver": 1}, "+8613900139000")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "task.create")).one()
    assert event.actor == SECRETARY and event.after["requester"] == "张* 139****9000"


def test_create_task_reports_every_bad_field_and_writes_nothing(
        db: Session, world: World) -> None:
    with pytest.raises(dispatch.TaskInputError) as caught:
        dispatch.create_task(db, SECRETARY, type_code="teleport", site_id=99999,
                             requester_name=" ", requester_phone="12345",
                             due_at=dt.datetime(2022, 4, 6, 11), urgency="asap",
                             duration_minutes=0)
    assert set(caught.value.errors) == {"type", "site", "requester_name", "requester_phone",
                                        "due_at", "urgency", "duration_minutes"}
    assert "未知任务类型" in str(caught.value) and "unknown task type" in str(caught.value)
    assert db.scalar(select(func.count()).select_from(Task)) == 0


# -- eligibility --------------------------------------------------------------------------

def _blocked(db: Session, task: Task, volunteer: Volunteer, **kw: Any) -> dict[str, str]:
    return {b.rule: b.reason.zh
            for b in dispatch.explain(db, task.id, volunteer.id, now=NOW, **kw)}


def test_each_eligibility_rule_blocks_with_its_reason(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer],
        busy_with: Callable[..., Task]) -> None:
    task = make_task("home_sampling")  # east, 10:00-11:00 on 4-6, needs medical
    ok = create_volunteer("医生甲", skills=["medical"])
    no_skill = create_volunteer("普通乙")
    absent = create_volunteer("病号丙", skills=["medical"])
    db.add(Absence(volunteer_id=absent.id, from_date=dt.date(2022, 4, 5),
                   to_date=dt.date(2022, 4, 7), starts_at=local(1, 0), ends_at=local(4, 0),
                   reason="sick", created_by=SECRETARY))
    hotel = create_volunteer("酒店丁", skills=["medical"])
    world.duty(hotel, "hotel-care", "M", 0)  # two days before, same roster period
    elsewhere = create_volunteer("西湖戊", skills=["medical"])
    world.duty(elsewhere, "west-gate", "M", 2)
    night = create_volunteer("夜班己", skills=["medical"])
    world.duty(night, "east-gate", "N", 2)  # 00:00-08:00, task at 10:00
    short = create_volunteer("门岗庚", skills=["medical"])
    world.demand("east-door", "M", 1)
    world.duty(short, "east-door", "M", 2)  # the only one on a post that needs one
    tasked = create_volunteer("忙碌辛", skills=["medical"])
    other_task = busy_with(tasked, local(2, 10, 30))
    left = create_volunteer("离开壬", skills=["medical"], status="left")
    db.flush()

    assert _blocked(db, task, ok) == {}
    assert _blocked(db, task, no_skill) == {"skills": "缺少所需技能：医护"}
    assert _blocked(db, task, absent) == {"not_absent": "缺勤（病假）至 4月7日"}
    assert _blocked(db, task, hotel) == {"closed_loop": "在闭环站点 隔离酒店1 工作，不能外出"}
    assert _blocked(db, task, elsewhere) == {
        "not_on_shift_elsewhere": "此时在 西湖卡口 当班（08:00-16:00）"}
    assert _blocked(db, task, night) == {"rest_after_night": "夜班 08:00 下班，需休息 8 小时"}
    assert _blocked(db, task, night, params=rules.DispatchParams(night_rest_hours=2)) == {}
    assert _blocked(db, task, short) == {
        "post_not_left_short": "正在本站点当班，岗位无富余人手可抽调"}
    assert _blocked(db, task, tasked) == {"not_on_another_task": f"此时在做任务 {other_task.id}"}
    assert set(_blocked(db, task, left)) == {"active"}
    suggestions = dispatch.suggest(db, task.id, now=NOW)
    assert [c.volunteer_id for c in suggestions.candidates] == [ok.id]
    assert suggestions.excluded == {"skills": 1, "not_absent": 1, "closed_loop": 1,
                                    "not_on_shift_elsewhere": 1, "rest_after_night": 1,
                                    "post_not_left_short": 1, "not_on_another_task": 1}


def test_a_hotel_worker_may_take_a_task_at_their_own_hotel(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task(site="hotel")
    inside = create_volunteer("酒店丁")
    world.duty(inside, "hotel-care", "A", 0)
    assert _blocked(db, task, inside) == {}


def test_a_two_person_escort_keeps_a_place_for_a_driver(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task("hospital_escort", urgency="today")
    walker = create_volunteer("步行甲")
    other = create_volunteer("步行乙")
    driver = create_volunteer("司机丙", skills=["driver"])
    assert set(_ranked_ids(db, task)) == {walker.id, other.id, driver.id}
    dispatch.offer(db, task.id, walker.id, SECRETARY, task.version, now=NOW)
    assert task.status == "offered"
    # One place left, and it must bring the driver.
    assert _ranked_ids(db, task) == [driver.id]
    with pytest.raises(dispatch.NotEligible, match="驾驶员"):
        dispatch.offer(db, task.id, other.id, SECRETARY, task.version, now=NOW)
    dispatch.offer(db, task.id, driver.id, SECRETARY, task.version, now=NOW)
    with pytest.raises(dispatch.TransitionError, match="every place"):
        dispatch.offer(db, task.id, other.id, SECRETARY, task.version, now=NOW)
    dispatch.accept(db, task.id, walker.id, now=NOW)
    assert task.status == "offered"  # one of two
    dispatch.accept(db, task.id, driver.id, now=NOW)
    assert task.status == "accepted" and task.assignee_ids == [walker.id, driver.id]


# -- ranking ------------------------------------------------------------------------------

def test_ranking_same_site_then_spare_duty_then_today_then_week(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer], busy_with: Callable[..., Task]) -> None:
    task = make_task(building="3栋")  # east, 10:00-11:00 on day 2
    world.demand("east-gate", "M", 1)
    building = create_volunteer("同楼")     # has a task in building 3 today (later)
    busy_with(building, local(2, 15), building="3栋")
    spare = create_volunteer("当班富余")    # on east-gate M with a colleague: spare
    colleague = create_volunteer("同事")
    world.duty(spare, "east-gate", "M", 2)
    world.duty(colleague, "east-gate", "M", 2)
    here_later = create_volunteer("本站晚班")  # at east today, but 16:00-00:00
    world.duty(here_later, "east-gate", "A", 2)
    free_week2 = create_volunteer("本周两单")  # elsewhere: 0 today, 2 this week
    busy_with(free_week2, local(0, 11))
    busy_with(free_week2, local(1, 11))
    today1 = create_volunteer("今天一单")   # 1 today, 1 this week
    busy_with(today1, local(2, 18))
    free_week1 = create_volunteer("本周一单")  # 0 today, 1 this week
    busy_with(free_week1, local(4, 11))
    fresh = create_volunteer("空闲")         # nothing at all

    ranked = dispatch.suggest(db, task.id, 20, now=NOW).candidates
    order = [c.volunteer_id for c in ranked]
    # building (2 points, despite its task today) > on duty with spare > colleague (same
    # duty, tie broken by id) > here later > the rest by today's tasks, then the week.
    assert order == [building.id, spare.id, colleague.id, here_later.id, fresh.id,
                     free_week1.id, free_week2.id, today1.id]
    first = ranked[0]
    assert first.rank == 1 and first.points["same_site"] == 2
    assert [r.zh for r in first.reasons][:1] == ["今天在同一楼栋有任务"]
    second = ranked[1]
    assert second.points == {"same_site": 1, "on_duty_spare": 1, "fewest_today": 0,
                             "weekly_fairness": 0}
    assert "在本站点当班，岗位人手有富余" in [r.zh for r in second.reasons]
    assert ranked[-1].points["fewest_today"] == -1


def test_suggest_uses_a_fixed_number_of_queries(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    from sqlalchemy import event

    task = make_task()

    def count() -> int:
        seen: list[str] = []

        def listener(*args: Any) -> None:
            seen.append(args[2])

        engine = db.get_bind()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            db.expire_all()
            dispatch.suggest(db, task.id, now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    for i in range(3):
        world.duty(create_volunteer(f"甲{i}"), "east-gate", "M", 2)
    create_volunteer("丙")  # someone the context does not know: their page is read
    few = count()
    for i in range(30):
        world.duty(create_volunteer(f"乙{i}"), "west-gate", "A", 2)
        world.duty(create_volunteer(f"丁{i}"), "west-gate", "M", 2)  # busy elsewhere
        world.duty(create_volunteer(f"戊{i}"), "hotel-care", "M", 4)  # closed loop
    assert count() == few <= 12


# -- lifecycle ----------------------------------------------------------------------------

def test_full_lifecycle_is_audited_step_by_step(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    v = create_volunteer("志愿者甲")
    offer = dispatch.offer(db, task.id, v.id, SECRETARY, 1, now=NOW)
    assert (task.status, task.version, offer.state) == ("offered", 2, "pending")
    assert offer.expires_at == NOW + dispatch.OFFER_TIMEOUT["normal"]
    dispatch.accept(db, task.id, v.id, now=NOW)
    assert (task.status, task.version) == ("accepted", 3)
    dispatch.start(db, task.id, "volunteer:x", now=NOW)
    assert task.status == "in_progress" and task.started_at == NOW
    dispatch.complete(db, task.id, "volunteer:x", note="已送达", now=NOW)
    assert (task.status, task.version, task.outcome) == ("done", 5, "已送达")
    assert _task_actions(db, task) == ["task.create", "task.offer", "task.accept",
                                       "task.start", "task.complete"]
    accept_event = db.scalars(select(AuditEvent).where(AuditEvent.action == "task.accept")).one()
    assert accept_event.actor == f"volunteer:{v.code}"
    assert accept_event.before == {"status": "offered", "version": 2}
    assert accept_event.after == {"status": "accepted", "version": 3, "volunteer": v.id}


def test_decline_offers_the_task_to_the_next_candidate(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    first, second = create_volunteer("甲"), create_volunteer("乙")
    dispatch.offer(db, task.id, first.id, SECRETARY, task.version, now=NOW)
    made = dispatch.decline(db, task.id, first.id, "在外地", now=NOW)
    assert [o.volunteer_id for o in made] == [second.id]
    assert task.status == "offered" and task.pending_ids == [second.id]
    # the decliner is never asked again; the last one declining leaves the task open
    assert dispatch.decline(db, task.id, second.id, now=NOW) == []
    assert task.status == "open"
    assert _task_actions(db, task) == ["task.create", "task.offer", "task.decline",
                                       "task.offer", "task.decline"]
    declined = db.scalars(select(AuditEvent).where(AuditEvent.action == "task.decline")
                          .order_by(AuditEvent.id)).first()
    assert declined is not None and declined.reason == "在外地"


def test_an_offer_times_out_and_goes_to_the_next_candidate(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task(urgency="urgent")
    first, second = create_volunteer("甲"), create_volunteer("乙")
    dispatch.offer(db, task.id, first.id, SECRETARY, task.version, now=NOW)
    assert dispatch.expire_offers(db, NOW + dt.timedelta(minutes=4)) == []
    later = NOW + dt.timedelta(minutes=5)
    with pytest.raises(dispatch.TransitionError, match="超时"):
        dispatch.accept(db, task.id, first.id, now=later)
    expired = dispatch.expire_offers(db, later)
    assert [o.volunteer_id for o in expired] == [first.id] and expired[0].state == "expired"
    assert task.pending_ids == [second.id]
    assert _task_actions(db, task)[-2:] == ["task.expire", "task.offer"]
    system = db.scalars(select(AuditEvent.actor).where(AuditEvent.action == "task.expire")).one()
    assert system == "system"


def test_auto_dispatch_only_for_urgent_tasks(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    driver = create_volunteer("司机", skills=["driver"])
    walker = create_volunteer("步行")
    escort = make_task("hospital_escort")  # urgent by default, two people, one driver
    made = dispatch.auto_dispatch(db, escort.id, now=NOW)
    assert sorted(o.volunteer_id for o in made) == sorted([driver.id, walker.id])
    assert escort.status == "offered"
    normal = make_task()
    with pytest.raises(dispatch.TransitionError, match="not urgent"):
        dispatch.auto_dispatch(db, normal.id, now=NOW)
    assert normal.status == "open" and normal.offers == []


def test_illegal_transitions_are_refused_and_change_nothing(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    v = create_volunteer("甲")
    with pytest.raises(dispatch.TransitionError, match="待派单.*不能开始"):
        dispatch.start(db, task.id, SECRETARY, now=NOW)
    with pytest.raises(dispatch.TransitionError, match="no pending offer"):
        dispatch.accept(db, task.id, v.id, now=NOW)
    with pytest.raises(dispatch.TransitionError):
        dispatch.complete(db, task.id, SECRETARY, now=NOW)
    with pytest.raises(dispatch.TaskInputError):
        dispatch.cancel(db, task.id, SECRETARY, " ", now=NOW)
    assert (task.status, task.version) == ("open", 1)
    dispatch.cancel(db, task.id, SECRETARY, "居民已自行解决", now=NOW)
    for step in (lambda: dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW),
                 lambda: dispatch.cancel(db, task.id, SECRETARY, "again", now=NOW),
                 lambda: dispatch.fail(db, task.id, SECRETARY, "x", now=NOW)):
        with pytest.raises(dispatch.TransitionError, match="已取消"):
            step()
    assert _task_actions(db, task) == ["task.create", "task.cancel"]
    with pytest.raises(LookupError):
        dispatch.start(db, 987654, SECRETARY)


def test_cancel_withdraws_pending_offers(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    v = create_volunteer("甲")
    offer = dispatch.offer(db, task.id, v.id, SECRETARY, task.version, now=NOW)
    dispatch.cancel(db, task.id, SECRETARY, "重复登记", task.version, now=NOW)
    assert (task.status, offer.state, task.outcome) == ("cancelled", "withdrawn", "重复登记")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "task.cancel")).one()
    assert event.after["withdrawn"] == [v.id] and event.reason == "重复登记"


def test_a_stale_version_gets_a_conflict_with_the_current_state(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    a, b = create_volunteer("甲"), create_volunteer("乙")
    dispatch.offer(db, task.id, a.id, SECRETARY, 1, now=NOW)
    with pytest.raises(dispatch.TaskConflict) as caught:
        dispatch.offer(db, task.id, b.id, "秘书李", 1, now=NOW)
    assert caught.value.current == {**caught.value.current, "status": "offered", "version": 2,
                                    "pending": [a.id], "assignees": []}
    assert "已被他人修改" in str(caught.value)
    assert task.pending_ids == [a.id]
    assert _task_actions(db, task) == ["task.create", "task.offer"]


# -- concurrency on a real database -------------------------------------------------------

@pytest.fixture(scope="module")
def committed(backend: str, new_database: Callable[[str], str]) -> Iterator[Engine]:
    """A committed PostgreSQL database of this module's own, for two real sessions."""
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers itself")
    url = new_database(backend)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_two_secretaries_offering_at_once_exactly_one_wins(committed: Engine) -> None:
    maker = sessionmaker_for(committed)
    with maker() as s:
        dispatch.ensure_task_types(s)
        site = Site(code="c-east", name="东塘", kind="checkpoint")
        vols = [Volunteer(code=f"c-v{i}", name=f"志愿者{i}") for i in range(2)]
        s.add_all([site, *vols])
        s.flush()
        task = dispatch.create_task(s, SECRETARY, type_code="grocery_run", site_id=site.id,
                                    requester_name="张三", requester_phone="13800138000",
                                    due_at=NOW + dt.timedelta(hours=3))
        s.commit()
        task_id, version, ids = task.id, task.version, [v.id for v in vols]

    barrier = threading.Barrier(2)
    results: dict[int, Any] = {}

    def secretary(i: int) -> None:
        with maker() as s:
            barrier.wait()
            try:
                dispatch.offer(s, task_id, ids[i], f"秘书{i}", version, now=NOW)
                # Hold the row lock a moment: the other secretary must wait, then lose.
                threading.Event().wait(0.3)
                s.commit()
                results[i] = "won"
            except dispatch.TaskConflict as exc:
                s.rollback()
                results[i] = exc

    threads = [threading.Thread(target=secretary, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r if r == "won" else "conflict" for r in results.values()) == [
        "conflict", "won"]
    winner = next(i for i, r in results.items() if r == "won")
    loser = results[1 - winner]
    assert loser.current["status"] == "offered" and loser.current["version"] == version + 1
    assert loser.current["pending"] == [ids[winner]]
    with maker() as s:
        offers = s.scalars(select(TaskOffer).where(TaskOffer.task_id == task_id)).all()
        assert [o.volunteer_id for o in offers] == [ids[winner]]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "task.offer", AuditEvent.entity_id == str(task_id))) == 1


# -- masking and the feed -----------------------------------------------------------------

def test_requester_is_masked_except_for_assignees_and_the_creating_secretary(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task(requester_name="欧阳娜娜")
    a, b = create_volunteer("甲"), create_volunteer("乙")
    dispatch.offer(db, task.id, a.id, SECRETARY, task.version, now=NOW)
    offered = dispatch.masked_requester(task, dispatch.Viewer(volunteer_id=a.id))
    assert (offered.name, offered.phone, offered.masked) == ("欧***", "138****8000", True)
    dispatch.accept(db, task.id, a.id, now=NOW)
    mine = dispatch.masked_requester(task, dispatch.Viewer(volunteer_id=a.id))
    assert (mine.name, mine.phone, mine.masked) == ("欧阳娜娜", "+8613800138000", False)
    assert dispatch.masked_requester(task, dispatch.Viewer(volunteer_id=b.id)).masked
    assert not dispatch.masked_requester(task, dispatch.Viewer(actor=SECRETARY)).masked
    assert dispatch.masked_requester(task, dispatch.Viewer(actor="秘书李")).masked
    assert dispatch.mask_phone("+14155552671") == "********2671"


def test_tasks_for_volunteer_gives_the_feed_its_events(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    v = create_volunteer("甲")
    kept = make_task(building="3栋", room="502", notes="两盒降压药")
    dropped = make_task(due_at=local(3, 11))
    old = make_task(due_at=local(0, 11))
    only_offered = make_task(due_at=local(4, 11))
    for t in (kept, dropped, old, only_offered):
        dispatch.offer(db, t.id, v.id, SECRETARY, t.version, now=local(0, 9))
    for t in (kept, dropped, old):
        dispatch.accept(db, t.id, v.id, now=local(0, 9))
    dispatch.cancel(db, dropped.id, SECRETARY, "不需要了", now=NOW)

    feed = dispatch.tasks_for_volunteer(db, v.id, since=local(1, 0))
    assert [f.task_id for f in feed] == [kept.id, dropped.id]
    first, second = feed
    assert first.uid == f"task-{kept.id}@bastion" and first.sequence == kept.version
    assert (first.starts_at, first.ends_at) == (local(2, 10), local(2, 11))
    assert first.summary.zh == "代购生活物资：东塘小区 3栋 502"
    assert (first.requester_name, first.requester_phone) == ("张三", "+8613800138000")
    assert not first.cancelled and first.notes == "两盒降压药"
    assert second.cancelled and second.status == "cancelled"
    assert second.sequence == dropped.version > first.sequence


def _full_ranking(db: Session, task: Task, params: rules.DispatchParams | None
                  ) -> tuple[list[rules.Ranked], dict[str, int]]:
    """The rule catalogue judging every active volunteer, everyone's facts loaded."""
    ctx = rules.load_context(db, task, NOW, params, everyone=True)
    return rules.eligible_ranked(rules.load_candidates(db), task, ctx)


def _shown(ranked: list[rules.Ranked]) -> list[tuple[int, tuple[int, ...], tuple[str, ...]]]:
    return [(r.candidate.id, r.points, tuple(why.en for _, why in r.reasons)) for r in ranked]


@pytest.mark.parametrize("seed", [5, 11])
def test_fast_ranking_equals_judging_every_volunteer(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer],
        busy_with: Callable[..., Task], monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """`ranked_candidates` judges one by one only the volunteers the context knows of,
    and the others a set at a time in SQL; its answer must be the brute-force ranking of
    every active volunteer, cut at limit, with the same exclusion counts: on a generated
    district (duties at every post and shift, nights, the hotel, short posts, tasks,
    absences, declined and pending offers), for tasks at each site at several times, two
    rest lengths, and for all the tasks at once as the board asks."""
    import random

    monkeypatch.setattr(rules, "PAGE", 7)  # several pages over 160 volunteers
    rng = random.Random(seed)
    tags = [[], [], [], ["driver"], ["medical"], ["driver", "medical"], ["counselor"]]
    people = [create_volunteer(f"丙{i}", skills=rng.choice(tags), party_member=i % 4 == 0,
                               status="active" if i % 13 else "left")
              for i in range(160)]
    posts = ["east-gate", "east-door", "west-gate", "hotel-care"]
    placed = set()
    for v in rng.sample(people, 100):
        for _ in range(rng.randint(1, 3)):
            shift, day = rng.choice("MAN"), rng.choice([1, 2, 2, 2, 3, 5])
            if (v.id, shift, day) not in placed:
                placed.add((v.id, shift, day))
                world.duty(v, rng.choice(posts), shift, day)
    world.demand("east-door", "M", 20)  # who stands there in the morning cannot leave
    for i in range(2):
        world.duty(create_volunteer(f"门岗{i}"), "east-door", "M", 2)
    for v in rng.sample(people, 14):
        busy_with(v, local(rng.choice([1, 2, 2, 3]), rng.choice([9, 11, 15, 20])),
                  status=rng.choice(["accepted", "in_progress", "done"]),
                  building=rng.choice(["", "3栋"]))
    for v in rng.sample(people, 8):
        db.add(Absence(volunteer_id=v.id, from_date=world.roster.start,
                       to_date=world.roster.start, starts_at=local(2, rng.choice([0, 12])),
                       ends_at=local(3, 0), reason="sick", created_by=SECRETARY))
    tasks = [make_task("grocery_run", site="east", building="3栋"),
             make_task("hospital_escort", site="west", due_at=local(2, 19)),
             make_task("home_sampling", site="east", due_at=local(3, 9)),
             make_task("psychological_support", site="hotel", due_at=local(2, 13)),
             make_task("disinfection", site="west", due_at=local(2, 23, 30)),
             make_task("medicine_delivery", site="east", due_at=local(2, 8))]  # late: from now
    for task in tasks:
        for v in rng.sample(people, 4):
            db.add(TaskOffer(task=task, volunteer_id=v.id, offered_by=SECRETARY,
                             state=rng.choice(["declined", "expired", "withdrawn"]),
                             offered_at=NOW, expires_at=NOW))
    non_driver = next(v for v in people if "driver" not in v.tags and v.status == "active")
    db.add(TaskOffer(task=tasks[1], volunteer_id=non_driver.id, state="pending",
                     offered_by=SECRETARY, offered_at=NOW, expires_at=NOW))  # a driver must come
    db.flush()
    seen_rules: set[str] = set()
    for params in (None, rules.DispatchParams(night_rest_hours=12)):
        full = {t.id: _full_ranking(db, t, params) for t in tasks}
        for task in tasks:
            ranking, excluded = full[task.id]
            seen_rules |= set(excluded)
            ctx = rules.load_context(db, task, NOW, params)
            assert ctx.judged is not None and len(ctx.judged) < len(people)
            for limit in (1, 10, 200):
                fast, fast_excluded = rules.ranked_candidates(db, task, ctx, limit)
                assert _shown(fast) == _shown(ranking[:limit]), (task.type.code, limit)
                assert fast_excluded == excluded, (task.type.code, limit)
        ctxs = rules.load_contexts(db, tasks, NOW, params)
        board = rules.ranked_for_tasks(db, [(t, ctxs[t.id]) for t in tasks], 3)
        for task in tasks:
            assert _shown(board[task.id][0]) == _shown(full[task.id][0][:3])
            assert board[task.id][1] == full[task.id][1]
    # The generated district exercises every rule that can exclude an active volunteer.
    assert seen_rules == {rule.code for rule in rules.ELIGIBILITY} - {"active"}


def test_a_context_refuses_to_judge_a_volunteer_it_did_not_load(
        db: Session, world: World, make_task: Callable[..., Task],
        create_volunteer: Callable[..., Volunteer]) -> None:
    task = make_task()
    elsewhere = create_volunteer("西湖戊")
    world.duty(elsewhere, "west-gate", "M", 2)
    candidate = rules.load_candidates(db, [elsewhere.id])[0]
    ctx = rules.load_context(db, task, NOW)
    with pytest.raises(ValueError, match=f"volunteer {elsewhere.id}"):
        rules.blocking(candidate, task, ctx)
    ctx = rules.load_context(db, task, NOW, volunteers=[elsewhere.id])
    assert rules.blocking(candidate, task, ctx) == rules.Blocked(
        "not_on_shift_elsewhere", rules.Text("此时在 西湖卡口 当班（08:00-16:00）",
                                              "on shift at 西湖卡口 then (08:00-16:00)"))
