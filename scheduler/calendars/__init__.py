"""Calendar feeds (日历订阅): revocable per-owner feed tokens and iCalendar rendering."""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
