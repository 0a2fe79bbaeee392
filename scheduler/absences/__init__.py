"""Absences (缺勤): a volunteer who cannot work from one date and shift to another."""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
