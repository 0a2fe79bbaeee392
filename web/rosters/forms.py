"""Forms of the rosters pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, StringField
from wtforms.validators import NumberRange, Optional

from scheduler.rosters import DEFAULT_TIME_LIMIT, STANDARD_RULES
from solver.i18n import Text


class GenerateForm(FlaskForm):
    time_limit = DecimalField("求解时间（秒）", default=DEFAULT_TIME_LIMIT,
                              validators=[NumberRange(min=1, max=3600)])


class PublishForm(FlaskForm):
    # The version the coordinator saw published: compare-and-set against it.
    expected = IntegerField(validators=[Optional()])
    reason = StringField("说明", validators=[Optional()])


def parse_new_roster(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Text]]:
    """`scheduler.rosters.create_roster` arguments from the new-roster form, and the
    errors found while reading (the service checks the rest, so all are shown at once)."""
    errors: dict[str, Text] = {}
    raw_start = str(form.get("start") or "").strip()
    start = None
    if raw_start:
        try:
            start = dt.date.fromisoformat(raw_start)
        except ValueError:
            errors["start"] = Text(f"无法识别的日期 {raw_start!r}（如 2022-04-04）",
                                   f"not a date: {raw_start!r} (e.g. 2022-04-04)")
    raw_days = str(form.get("days") or "").strip()
    days = int(raw_days) if raw_days.isdigit() else None
    raw_rules = str(form.get("rules") or STANDARD_RULES).strip()
    rules: str | int = int(raw_rules) if raw_rules.isdigit() else raw_rules
    return {"name": str(form.get("name") or ""), "start": start, "days": days,
            "rules": rules}, errors
