"""``flask bastion …``: thin commands over the scheduler services.

The database is the scheduler's (``DATABASE_URL``, see `scheduler.db`), the one the
background solve jobs use too. Each command works in one session, committed on success.
Without ``REDIS_URL`` a solve runs in a thread of this process, so ``solve`` waits for it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from scheduler import db, imports, problems, queues, rosters
from scheduler.calendars import services as calendars
from scheduler.models import (
    ACTIVE_RUN_STATUSES,
    PhoneError,
    RosterVersion,
    Site,
    SolveRun,
    Volunteer,
    normalize_phone,
)
from solver import scenario

bastion = AppGroup("bastion", help="Bastion rostering: database, demo data, imports, solving.")

#: Who the audit trail names when no --actor is given.
DEFAULT_ACTOR = "cli"
#: Seconds between looks at a solve run that runs elsewhere (an RQ worker).
POLL_INTERVAL = 0.5

actor_option = click.option("--actor", default=DEFAULT_ACTOR, show_default=True,
                            help="Who the audit trail records.")


def init_app(app: Flask) -> None:
    app.cli.add_command(bastion)


def _fail(exc: Exception) -> click.ClickException:
    """A service's refusal as a one-line error (exit status 1)."""
    return click.ClickException(str(exc))


@bastion.command("migrate")
def migrate() -> None:
    """Run the database migrations up to the latest revision."""
    url = db.database_url()
    db.upgrade(url)
    click.echo(f"database migrated: {make_url(url).render_as_string(hide_password=True)}")


@bastion.command("demo")
@click.option("--seed", default=0, show_default=True, help="Random seed of the scenario.")
@click.option("--days", default=14, show_default=True, type=click.IntRange(min=1),
              help="Length of the roster period.")
@actor_option
def demo(seed: int, days: int, actor: str) -> None:
    """Create a roster from the generated demo district."""
    doc = scenario.generate(seed=seed, days=days)
    with db.session_scope() as session:
        roster = problems.load_problem(session, doc, actor=actor,
                                       reason=f"demo district (seed {seed})")
        roster_id, name, start = roster.id, roster.name, roster.start
    click.echo(f"roster {roster_id}: {name}, {start.isoformat()}, {days} days, "
               f"{len(doc['volunteers'])} volunteers, {len(doc['sites'])} sites, "
               f"{len(doc['demand'])} demand rows")


@bastion.command("import")
@click.argument("kind", type=click.Choice(imports.KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--roster", "roster_id", type=int, default=None,
              help="The roster a demand or unavailability file belongs to.")
@click.option("--dry-run", is_flag=True, help="Check and count only; write nothing.")
@actor_option
def import_(kind: str, file: Path, roster_id: int | None, dry_run: bool, actor: str) -> None:
    """Import an XLSX or CSV file of KIND (all rows or none)."""
    try:
        with db.session_scope() as session:
            result = imports.import_file(session, kind, file.name, file.read_bytes(), actor,
                                         roster_id=roster_id, dry_run=dry_run)
    except imports.ImportFailed as exc:
        click.echo(f"导入失败，未写入任何内容（{len(exc.errors)} 处错误）：", err=True)
        for issue in exc.errors:
            click.echo(f"  {_where(issue)}{issue.message}", err=True)
        raise click.exceptions.Exit(1) from None
    except (LookupError, ValueError) as exc:
        raise _fail(exc) from None
    for issue in result.warnings:
        click.echo(f"  提示：{_where(issue)}{issue.message}")
    click.echo(result.message)


def _where(issue: imports.ImportIssue) -> str:
    """``第 3 行，手机号（B 列），值「138***0000」：`` — the parts the issue has."""
    parts = []
    if issue.row is not None:
        parts.append(f"第 {issue.row} 行")
    if issue.column:
        parts.append(issue.column + (f"（{issue.column_letter} 列）" if issue.column_letter
                                     else ""))
    if issue.value not in (None, ""):
        parts.append(f"值「{issue.value}」")
    return "，".join(parts) + "：" if parts else ""


@bastion.command("solve")
@click.argument("roster_id", metavar="ROSTER", type=int)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              default=rosters.DEFAULT_TIME_LIMIT, show_default=True,
              help="Solver time limit in seconds.")
@click.option("--seed", default=0, show_default=True, help="Solver random seed.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the run to end (always, when it runs in this process).")
@actor_option
def solve(roster_id: int, time_limit: float, seed: int, wait: bool, actor: str) -> None:
    """Solve ROSTER into a new draft version and report the run."""
    with db.sessionmaker_for(db.get_engine())() as session:
        try:
            run = rosters.generate(session, roster_id, actor, time_limit, seed=seed)
        except (LookupError, ValueError, queues.QueueError) as exc:
            raise _fail(exc) from None
        run_id, job_id = run.id, run.job_id
    click.echo(f"solve run {run_id} ({job_id}): {run.status}")
    local = job_id is not None and job_id.startswith(queues.LOCAL_PREFIX)
    if local:
        queues.wait_local(job_id)  # a daemon thread: it dies with this process
    elif not wait:
        return
    while True:
        with db.session_scope() as session:
            found = session.get(SolveRun, run_id)
        if found is None:
            raise click.ClickException(f"solve run {run_id} is gone")
        run = found
        if run.status not in ACTIVE_RUN_STATUSES:
            break
        time.sleep(POLL_INTERVAL)
    version = (run.progress or {}).get("version")
    click.echo(f"status: {run.status}" + (f" ({run.solver_status})" if run.solver_status
                                          else ""))
    click.echo(f"objective: {run.objective}  bound: {run.bound}  coverage: {run.coverage}")
    if version is not None:
        click.echo(f"draft version: {version}")
    if run.status != "finished":
        raise click.ClickException(run.error or f"solve run {run_id} {run.status}")


@bastion.command("publish")
@click.argument("roster_id", metavar="ROSTER", type=int)
@click.option("--version", "number", type=int, default=None,
              help="Version number to publish (default: the latest draft).")
@click.option("--reason", default=None, help="Recorded in the audit trail.")
@actor_option
def publish(roster_id: int, number: int | None, reason: str | None, actor: str) -> None:
    """Publish a draft version of ROSTER."""
    try:
        with db.session_scope() as session:
            if number is None:
                number = session.scalar(select(func.max(RosterVersion.number)).where(
                    RosterVersion.roster_id == roster_id, RosterVersion.state == "draft"))
                if number is None:
                    raise LookupError(f"roster {roster_id} has no draft version")
            current = rosters.published_version(session, roster_id)
            previous = None if current is None else current.number
            rosters.publish(session, roster_id, number, previous, actor, reason=reason)
    except (LookupError, rosters.VersionStateError, rosters.PublishConflict) as exc:
        raise _fail(exc) from None
    replaced = "" if previous is None else f" (version {previous} superseded)"
    click.echo(f"roster {roster_id}: version {number} published{replaced}")


@bastion.command("problem")
@click.argument("roster_id", metavar="ROSTER", type=int)
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def problem(roster_id: int, file: Path) -> None:
    """Write ROSTER to FILE as a roster-problem/1 JSON document."""
    try:
        with db.session_scope() as session:
            doc = problems.roster_problem(session, roster_id)
    except LookupError as exc:
        raise _fail(exc) from None
    file.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(f"roster {roster_id}: {len(doc['volunteers'])} volunteers, "
               f"{len(doc['demand'])} demand rows -> {file}")


@bastion.command("feed-url")
@click.argument("phone", required=False)
@click.option("--site", "site_code", default=None, help="A site's feed (for its leaders) "
              "instead of a volunteer's.")
@click.option("--reset", is_flag=True, help="Revoke the current link (it answers 404 from "
              "now on) and print a new one.")
@actor_option
def feed_url(phone: str | None, site_code: str | None, reset: bool, actor: str) -> None:
    """Print the calendar feed URL of the volunteer with PHONE (or of --site CODE).

    Only a hash of each feed token is stored; the link is derived again from the server's
    secret key (BASTION_SECRET_KEY), so printing it does not change it and subscribed
    calendars keep working. A first link is issued if there is none; --reset replaces it.
    """
    from web.calendar.links import subscribe_links

    if (phone is None) == (site_code is None):
        raise click.UsageError("give a volunteer's PHONE or --site CODE (one of them)")
    secret = current_app.config["SECRET_KEY"]
    try:
        with db.session_scope() as session:
            kind, owner_id, label = _feed_owner(session, phone, site_code)
            if reset:
                issue = (calendars.issue_volunteer_token if kind == "volunteer"
                         else calendars.issue_site_token)
                token = issue(session, owner_id, actor, secret=secret,
                              reason="reset calendar link (cli)")
            else:
                ensure = (calendars.volunteer_token if kind == "volunteer"
                          else calendars.site_token)
                token = ensure(session, owner_id, actor, secret=secret)
    except (LookupError, PhoneError, calendars.FeedTokenError) as exc:
        raise _fail(exc) from None
    links = subscribe_links(current_app.config["BASE_URL"], token, kind)
    if reset:
        click.echo(f"{label}: 旧链接已失效 (old link revoked)")
    click.echo(f"{label}")
    click.echo(links.url)
    click.echo(links.webcal)


def _feed_owner(session: Session, phone: str | None,
                site_code: str | None) -> tuple[str, int, str]:
    """(kind, id, label) of the volunteer with `phone` or the site with `site_code`."""
    if site_code is not None:
        site = session.scalars(select(Site).where(Site.code == site_code)).one_or_none()
        if site is None:
            raise LookupError(f"no site {site_code!r}")
        return "site", site.id, f"{site.name} ({site.code})"
    assert phone is not None
    number = normalize_phone(phone)
    volunteer = session.scalars(select(Volunteer).where(Volunteer.phone == number)
                                ).one_or_none()
    if volunteer is None:
        raise LookupError(f"no volunteer with phone {number}")
    return "volunteer", volunteer.id, f"{volunteer.name} ({volunteer.code})"
