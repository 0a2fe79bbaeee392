"""Repairs: an absence → a minimal-change proposal (background job) → accept or reject;
manual edits of a published roster checked by the rule catalogue."""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
