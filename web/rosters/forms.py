"""Forms of the rosters pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, StringField
from wtforms.validators import NumberRange, Optional

from scheduler.rosters import DEFAULT_TIME_LIMIT


class GenerateForm(FlaskForm):
    time_limit = DecimalField("求解时间（秒）", default=DEFAULT_TIME_LIMIT,
                              validators=[NumberRange(min=1, max=3600)])


class PublishForm(FlaskForm):
    # The version the coordinator saw published: compare-and-set against it.
    expected = IntegerField(validators=[Optional()])
    reason = StringField("说明", validators=[Optional()])
