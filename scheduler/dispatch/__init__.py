"""Ad-hoc task dispatch (临时任务派单): task types, tasks, offers, the rule catalogue."""
