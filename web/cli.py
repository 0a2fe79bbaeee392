"""``flask bastion …``: thin commands over the scheduler services.

The database is the scheduler's (``DATABASE_URL``, see `scheduler.db`), the one the
background solve jobs use too. Each command works in one session, committed on success.
Without ``REDIS_URL`` a solve runs in a thread of this process, so ``solve`` waits for it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from scheduler import db, exports, imports, problems, queues, rosters
from scheduler.accounts import services as accounts
from scheduler.calendars import services as calendars
from scheduler.dispatch import services as dispatch
from scheduler.models import (
    ACTIVE_RUN_STATUSES,
    PhoneError,
    Roster,
    RosterVersion,
    Site,
    SolveRun,
    Volunteer,
    normalize_phone,
)
from solver import scenario

bastion = AppGroup("bastion",
                   help="Bastion rostering: database, demo data, imports, solving, exports.")

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
    """Run the database migrations up to the latest revision; add missing task types."""
    url = db.database_url()
    added = _upgrade(url)
    click.echo(f"database migrated: {make_url(url).render_as_string(hide_password=True)}")
    if added:
        click.echo(f"task types added: {', '.join(added)}")


def _upgrade(url: str) -> list[str]:
    """Migrate to head, then seed the default task types that are missing.

    Seeded here because every deployment migrates before it serves (production never runs
    ``demo`` or ``bootstrap``); `ensure_task_types` never overwrites an edited type.
    """
    db.upgrade(url)
    with db.session_scope() as session:
        return [t.code for t in dispatch.ensure_task_types(session, DEFAULT_ACTOR)]


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


@bastion.command("bootstrap")
@click.option("--days", default=14, show_default=True, type=click.IntRange(min=1),
              help="Length of the demo roster period, from today.")
def bootstrap(days: int) -> None:
    """Development: migrate, load the demo district once, create the demo accounts."""
    from flask import current_app

    from scheduler import demo as demo_data
    from web.i18n import zone

    if current_app.config["BASTION_ENV"] == "production":
        raise click.ClickException("bootstrap loads demo data and demo passwords: "
                                   "development only")
    url = db.database_url()
    _upgrade(url)
    today = dt.datetime.now(zone()).date()
    with db.session_scope() as session:
        result = demo_data.seed_demo(session, "bootstrap", start=today, days=days)
        rosters_count = session.scalar(select(func.count(Roster.id)))
    if result.roster_id is not None:
        click.echo(f"demo district loaded: roster {result.roster_id}, {days} days from {today}")
    else:
        click.echo(f"database already has {rosters_count} roster(s): demo not loaded again")
    click.echo("demo accounts (development only):")
    for name in (demo_data.COORDINATOR, demo_data.SECRETARY):
        click.echo(f"  {name} / {demo_data.DEMO_PASSWORD}")
    click.echo(f"  volunteer: phone {demo_data.demo_phone(1)[3:]}, "
               f"the login code is written to this log")


@bastion.command("demo-sheets")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Random seed of the scenario.")
@click.option("--days", default=14, show_default=True, type=click.IntRange(min=1, max=62),
              help="Length of the roster period.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First date (default: tomorrow, Beijing time).")
@click.option("--streets", default=4, show_default=True, type=click.IntRange(min=1),
              help="Streets of the district (about 8 sites and 225 volunteers each).")
def demo_sheets(directory: Path, seed: int, days: int, start: dt.datetime | None,
                streets: int) -> None:
    """Write the demo district as the four import sheets (XLSX, Chinese templates)."""
    from scheduler import demo as demo_data
    from web.i18n import zone

    first = start.date() if start else dt.datetime.now(zone()).date() + dt.timedelta(days=1)
    sheets = demo_data.demo_sheets(start=first, seed=seed, days=days, streets=streets)
    directory.mkdir(parents=True, exist_ok=True)
    for kind, data in sheets.items():
        path = directory / demo_data.sheet_filename(kind)
        path.write_bytes(data)
        click.echo(f"{path}  ({kind})")
    click.echo(f"import them in this order into a roster period from {first.isoformat()} "
               f"({days} days, standard rules)")


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


#: What `export --hours` writes for each file extension.
HOURS_FORMATS = {".xlsx": exports.service_hours_xlsx, ".csv": exports.service_hours_csv}


def _extension(path: Path, allowed: tuple[str, ...], what: str) -> str:
    """The lower-cased extension of `path`, or a usage error naming the ones we write."""
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise click.BadParameter(
            f"unknown extension {suffix or '(none)'!r} of {path.name}; {what} is written as "
            + " or ".join(allowed), param_hint="FILE" if what == "the roster" else "--hours")
    return suffix


@bastion.command("export")
@click.argument("roster_id", metavar="ROSTER", type=int)
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--version", "number", type=int, default=None,
              help="Version number (default: the published version, else the latest draft).")
@click.option("--hours", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              default=None, help="Also write the service-hours report (.xlsx or .csv).")
@click.option("--full-phones", is_flag=True,
              help="Write phone numbers in full (default: masked, 138****8000).")
def export(roster_id: int, file: Path, number: int | None, hours: Path | None,
           full_phones: bool) -> None:
    """Write ROSTER as an XLSX workbook to FILE (one sheet per site and per unit)."""
    _extension(file, (".xlsx",), "the roster")
    hours_format = None if hours is None else HOURS_FORMATS[
        _extension(hours, tuple(HOURS_FORMATS), "the service-hours report")]
    try:
        with db.session_scope() as session:
            book = exports.roster_workbook(session, roster_id, number, full_phones=full_phones)
            report = None if hours_format is None else hours_format(
                session, roster_id, number, full_phones=full_phones)
            version = exports.export_version(session, roster_id, number)
            label = f"version {version.number} ({version.state})"
    except LookupError as exc:
        raise _fail(exc) from None
    file.write_bytes(book)  # only once everything is built: an error writes no file
    click.echo(f"roster {roster_id}: {label} -> {file} ({len(book):,} bytes)")
    if hours is not None and report is not None:
        hours.write_bytes(report)
        click.echo(f"service hours -> {hours} ({len(report):,} bytes)")
# -- users --------------------------------------------------------------------------------

user = AppGroup("user", help="Coordinator and secretary accounts.")
bastion.add_command(user)

#: Where ``user add`` reads the password when it is not typed at the prompt.
PASSWORD_ENV = "BASTION_NEW_USER_PASSWORD"


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.STAFF_ROLES), required=True)
@click.option("--site", "sites", multiple=True, metavar="CODE",
              help="A site of the secretary's branch (repeat for more).")
@click.option("--branch", default="", help="The secretary's branch (shown on their pages).")
@click.option("--password", envvar=PASSWORD_ENV, prompt=True, hide_input=True,
              confirmation_prompt=True, help=f"Prompted for unless {PASSWORD_ENV} is set.")
@actor_option
def user_add(username: str, role: str, sites: tuple[str, ...], branch: str, password: str,
             actor: str) -> None:
    """Create a coordinator or secretary USERNAME."""
    try:
        with db.session_scope() as session:
            created = accounts.create_staff_user(session, username, role, password, actor,
                                                 site_codes=sites, branch=branch)
            user_id = created.id
    except accounts.AccountError as exc:
        raise _fail(exc) from None
    scope = f", sites {', '.join(sites)}" if sites else ""
    click.echo(f"user {user_id}: {username} ({role}{scope})")


@user.command("disable")
@click.argument("username")
@actor_option
def user_disable(username: str, actor: str) -> None:
    """Disable USERNAME: no more logins, and their sessions end now."""
    try:
        with db.session_scope() as session:
            accounts.disable_user(session, username, actor)
    except accounts.AccountError as exc:
        raise _fail(exc) from None
    click.echo(f"user {username} disabled; their sessions have ended")
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
