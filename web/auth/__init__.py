"""Login, sessions, roles and scope: how every route says who may use it.

Declaring access (every view must do one of the two; a test walks ``app.url_map``):

    from web.auth import login_required, public, current_user, site_scope, own_volunteer_id

    @bp.get("/rosters")
    @login_required(roles=("coordinator",))          # anonymous → 302 /login, other role → 403
    def roster_list(): ...

    @bp.get("/healthz")
    @public                                          # no login needed
    def healthz(): ...

Roles are ``coordinator``, ``secretary`` (scoped to their branch's sites) and
``volunteer`` (only ever their own data). Inside a view:

- ``current_user()`` — the logged-in `User` (never None behind ``login_required``);
  ``actor_name()`` — its name, for audit records;
- ``site_scope()`` — the `SiteScope` of the user (coordinator: all sites; secretary: the
  sites linked to them; volunteer: none). Filter queries with
  ``.where(site_scope().clause(Site.id))`` and check single sites with
  ``require_site(site_id)`` (404 outside the scope, so other branches' sites stay unseen);
- ``own_volunteer_id()`` — the volunteer id of a volunteer user; volunteer routes never
  take a volunteer id from the URL or the form, only from here.

Services never read the request: pass ``current_user()`` (or its ``name`` as the audit
actor) and the scope in. The same helpers live in `scheduler.accounts.services`
(``visible_site_ids(session, user)``, ``own_volunteer_id(user)``) for jobs and the CLI.

Sessions: Flask's signed cookie (HttpOnly, SameSite=Lax, Secure in production) holds the
user id and the user's ``session_generation``; both are checked on every request, so
logout (which bumps the generation: it ends the user's sessions on every device),
disabling a user and a password change end sessions at once.

CSRF: flask-wtf's ``CSRFProtect`` checks every POST/PUT/PATCH/DELETE, forms and JSON
alike. HTML forms carry ``{{ csrf_token() }}`` in a hidden ``csrf_token`` field; the JSON
API uses the same session cookie and sends the token in an ``X-CSRFToken`` header (the
base template puts it in ``<meta name="csrf-token">``). There is no token auth for now:
every client is a browser of a logged-in user.

Login throttling is in the database (`scheduler.accounts.services`), so it holds across
gunicorn workers without Redis.
"""

from flask import Blueprint

from .access import (
    actor_name,
    current_user,
    init_app,
    login_required,
    own_volunteer_id,
    public,
    require_site,
    site_scope,
)

bp = Blueprint("auth", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401  (registers the views on bp)

__all__ = ["actor_name", "bp", "current_user", "init_app", "login_required",
           "own_volunteer_id", "public", "require_site", "site_scope"]
