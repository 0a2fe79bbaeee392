"""Accounts: users and their roles, one-time login codes, login throttling, site scope.

`models` holds the tables, `services` the actions (create, disable, authenticate, issue
and check one-time codes) and the scoping helpers every page and API uses
(`visible_site_ids`, `own_volunteer_id`). Services take the acting user or actor name as
an argument and never look at request state.
"""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
