"""Calendar feeds (日历订阅): revocable per-owner feed tokens and iCalendar rendering."""
