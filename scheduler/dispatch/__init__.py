"""Ad-hoc task dispatch (临时任务派单): task types, tasks, offers, the rule catalogue."""

# The core models first: they register every feature's tables at their end, and a
# feature module imported on its own must not run that while half initialised.
import scheduler.models  # noqa: E402, F401
