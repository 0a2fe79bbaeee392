"""Page render times with the demo district: median and p95 per page, in milliseconds.

    python bench/pages_bench.py [--runs N] [--database-url URL]

Without ``--database-url`` a temporary SQLite database is migrated and the demo district
loaded (`scheduler.demo.seed_demo`: 28 sites, 783 volunteers, 14 days, a published
roster version). Each page is rendered through the Flask test client as the role that
uses it, after one warm-up request; the figures include routing, the queries and the
template. The target is under 200 ms per page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, select  # noqa: E402

from scheduler import db  # noqa: E402
from scheduler.accounts import services as accounts  # noqa: E402
from scheduler.accounts.models import User  # noqa: E402
from scheduler.demo import COORDINATOR, SECRETARY, demo_phone, seed_demo  # noqa: E402
from scheduler.models import Roster, RosterVersion, Volunteer  # noqa: E402
from web import create_app  # noqa: E402
from web.auth.access import GENERATION_KEY, USER_KEY  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    db.upgrade(url)
    started = time.perf_counter()
    with db.session_scope() as session:
        seed_demo(session, "bench", start=dt.date.today())
    print(f"database: {url.split('://')[0]}, demo loaded in {time.perf_counter() - started:.1f} s")
    with db.session_scope() as session:
        roster = session.scalars(select(Roster).order_by(Roster.id)).first()
        assert roster is not None
        version = session.scalars(select(RosterVersion).where(
            RosterVersion.roster_id == roster.id)).first()
        assert version is not None
        volunteer = session.scalars(select(Volunteer).where(
            Volunteer.phone == demo_phone(1))).one()
        users = {name: session.scalars(select(User).where(User.username == name)).one()
                 for name in (COORDINATOR, SECRETARY)}
        vuser = accounts._volunteer_user(session, volunteer)
        users["volunteer"] = vuser
        ids = {k: (u.id, u.session_generation) for k, u in users.items()}
        roster_id, number = roster.id, version.number
    app = create_app({"TESTING": True})
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.get_engine(), "before_cursor_execute", count)
    pages = [
        ("coordinator", "dashboard", "/dashboard"),
        ("coordinator", "roster list", "/rosters"),
        ("coordinator", "roster", f"/rosters/{roster_id}"),
        ("coordinator", "grid (7 days, all sites)", f"/rosters/{roster_id}/versions/{number}"),
        ("coordinator", "grid (filtered by skill)",
         f"/rosters/{roster_id}/versions/{number}?skill=medical"),
        ("coordinator", "rule settings", f"/rosters/{roster_id}/rules"),
        ("coordinator", "imports", "/imports"),
        ("volunteer", "my shifts", "/me"),
        ("secretary", "branch today/tomorrow", "/branch"),
    ]
    role_key = {"coordinator": COORDINATOR, "secretary": SECRETARY, "volunteer": "volunteer"}
    print(f"{'page':32} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for role, name, path in pages:
        client = app.test_client()
        with client.session_transaction() as cookie:
            cookie[USER_KEY], cookie[GENERATION_KEY] = ids[role_key[role]]
        assert client.get(path).status_code == 200, path
        times = []
        for _ in range(args.runs):
            statements = 0
            t0 = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"{name:32} {statistics.median(times):10.1f} {p95:8.1f} {statements:8d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
