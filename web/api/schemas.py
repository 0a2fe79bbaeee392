"""Marshmallow schemas of the JSON API: what requests may say and what responses say.

The OpenAPI document is generated from these (flask-smorest/apispec), so a field's
``metadata["description"]`` is its documentation. Times are ISO 8601 in Asia/Shanghai
(``+08:00``); dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from scheduler.listings import MAX_PAGE_SIZE
from web.i18n import zone

DEFAULT_PAGE_SIZE = 100


class LocalDateTime(fields.DateTime):
    """An aware UTC timestamp written in the app's zone (Asia/Shanghai)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(zone())
        return super()._serialize(value, attr, obj, **kwargs)


class Strict(ma.Schema):
    """Request schemas refuse fields they do not know (a typo is an error, not ignored)."""

    class Meta:
        unknown = ma.RAISE


# -- problems (documentation of the error bodies) -----------------------------------------

class FieldErrorSchema(ma.Schema):
    location = fields.String(required=True, metadata={"description": "query, json or path"})
    field = fields.String(required=True, metadata={"description": "Field path, e.g. per_page"})
    message = fields.String(required=True)
    value = fields.Raw(allow_none=True, metadata={"description": "The value sent, if any"})


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"description": "Problem type URI"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema),
                         metadata={"description": "Validation errors, one per field"})


class PublishConflictSchema(ProblemSchema):
    """The version the client expected to be published is not the published one."""

    expected = fields.Integer(allow_none=True,
                              metadata={"description": "The number the request expected"})
    current = fields.Integer(allow_none=True,
                             metadata={"description": "The number published now (null: none)"})
    state = fields.String(metadata={"description": "The target version's state, if not a draft"})


# -- query arguments ----------------------------------------------------------------------

class PageArgs(Strict):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=DEFAULT_PAGE_SIZE,
                              validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
                              metadata={"description": f"Items per page, at most {MAX_PAGE_SIZE}"})


_ID = validate.Range(min=1, max=2**31 - 1)


class AssignmentArgs(PageArgs):
    date = fields.Date(metadata={"description": "Only this date"})
    date_from = fields.Date(metadata={"description": "From this date on"})
    date_to = fields.Date(metadata={"description": "Up to this date"})
    site_id = fields.Integer(validate=_ID, metadata={"description": "Only this site"})
    volunteer_id = fields.Integer(validate=_ID, metadata={"description": "Only this volunteer"})

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ma.ValidationError("date_from is after date_to", "date_to")


class MyAssignmentArgs(PageArgs):
    date_from = fields.Date(metadata={"description": "From this date on"})
    date_to = fields.Date(metadata={"description": "Up to this date"})


class VolunteerArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["active", "paused", "left"]))
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "Part of the name or code"})


class DiffArgs(Strict):
    from_ = fields.Integer(required=True, data_key="from", validate=_ID,
                           metadata={"description": "Version number to compare from"})
    to = fields.Integer(required=True, validate=_ID,
                        metadata={"description": "Version number to compare to"})


# -- request bodies -----------------------------------------------------------------------

class SolveRunRequest(Strict):
    time_limit = fields.Float(load_default=60.0, validate=validate.Range(min=1, max=3600),
                              metadata={"description": "Solver time limit in seconds"})
    seed = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))


class PublishRequest(Strict):
    expected_current = fields.Integer(
        required=True, allow_none=True, validate=_ID,
        metadata={"description": "The number of the version you saw published (null: none "
                                 "yet). Another one published since is a 409 conflict."})
    reason = fields.String(validate=validate.Length(max=500), allow_none=True)


# -- responses ----------------------------------------------------------------------------

class PageSchema(ma.Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True, metadata={"description": "Items in all pages"})


class RosterSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True, metadata={"description": "Last day"})
    days = fields.Integer(required=True)
    timezone = fields.String(required=True)
    status = fields.String(required=True)
    published_version = fields.Integer(
        allow_none=True, required=True,
        metadata={"description": "Number of the published version (null: none)"})


class RosterPageSchema(PageSchema):
    items = fields.List(fields.Nested(RosterSchema), required=True)


class UnmetSchema(ma.Schema):
    post = fields.String()
    date = fields.String()
    shift = fields.String()
    missing = fields.Integer()
    skill = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    reason_en = fields.String(allow_none=True)


class VersionSchema(ma.Schema):
    """A roster version and its summary."""

    id = fields.Integer(required=True)
    roster = fields.Integer(required=True, attribute="roster_id")
    number = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "draft, published, superseded"})
    created_at = LocalDateTime(required=True)
    created_by = fields.String(required=True)
    published_at = LocalDateTime(allow_none=True, required=True)
    published_by = fields.String(allow_none=True, required=True)
    solve_run = fields.Integer(allow_none=True, required=True, attribute="solve_run_id")
    solver_status = fields.String(allow_none=True, required=True)
    objective = fields.Float(allow_none=True, required=True)
    bound = fields.Float(allow_none=True, required=True)
    unmet_count = fields.Integer(required=True, metadata={
        "description": "Uncovered demand entries (a slot, or a skill of a slot, short of its "
                       "minimum) at the sites you can see"})
    assignment_count = fields.Integer(required=True,
                                      metadata={"description": "At the sites you can see"})


class VersionDetailSchema(VersionSchema):
    unmet = fields.List(fields.Nested(UnmetSchema), required=True,
                        metadata={"description": "Uncovered demand and why"})


class VersionListSchema(ma.Schema):
    items = fields.List(fields.Nested(VersionSchema), required=True)


class RefSchema(ma.Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class ShiftRefSchema(RefSchema):
    start = fields.Time(required=True)
    end = fields.Time(required=True)


class AssignmentSchema(ma.Schema):
    id = fields.Integer(required=True)
    uid = fields.String(required=True, metadata={"description": "Same person, day and shift "
                                                                "across versions"})
    revision = fields.Integer(required=True)
    roster = fields.Integer(required=True, attribute="roster_id")
    version = fields.Integer(required=True)
    date = fields.Date(required=True)
    volunteer = fields.Nested(RefSchema, required=True)
    site = fields.Nested(RefSchema, required=True)
    post = fields.Nested(RefSchema, required=True)
    shift = fields.Nested(ShiftRefSchema, required=True)


class AssignmentPageSchema(PageSchema):
    items = fields.List(fields.Nested(AssignmentSchema), required=True)


class VolunteerSchema(ma.Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    unit = fields.String(required=True)
    skills = fields.List(fields.String(), required=True)
    party_member = fields.Boolean(required=True)
    status = fields.String(required=True)
    max_shifts = fields.Integer(allow_none=True, required=True)
    min_shifts = fields.Integer(allow_none=True, required=True)
    sites_restricted = fields.Boolean(required=True)
    allowed_sites = fields.List(fields.Integer(), required=True,
                                metadata={"description": "Site ids (if sites_restricted)"})
    phone = fields.String(allow_none=True, required=True, metadata={
        "description": "Shown to coordinators and to the volunteer themselves; null otherwise"})


class VolunteerPageSchema(PageSchema):
    items = fields.List(fields.Nested(VolunteerSchema), required=True)


class MeSchema(ma.Schema):
    id = fields.Integer(required=True)
    role = fields.String(required=True, metadata={"description": "coordinator, secretary, "
                                                                 "volunteer"})
    name = fields.String(required=True)
    branch = fields.String(required=True)
    site_ids = fields.List(fields.Integer(), required=True,
                           metadata={"description": "Sites in scope (secretaries); empty "
                                                    "for coordinators, who see all"})
    volunteer = fields.Nested(VolunteerSchema, allow_none=True, required=True, metadata={
        "description": "A volunteer's own record; null for staff"})
    csrf_token = fields.String(required=True, metadata={
        "description": "Send as the X-CSRFToken header on POST requests"})


class SolveRunSchema(ma.Schema):
    """A solve run and its progress, from the database (it survives reloads)."""

    id = fields.Integer(required=True)
    roster = fields.Integer(required=True)
    status = fields.String(required=True, metadata={
        "description": "queued, running, finished, failed"})
    active = fields.Boolean(required=True)
    solver_status = fields.String(allow_none=True, required=True)
    objective = fields.Float(allow_none=True, required=True)
    bound = fields.Float(allow_none=True, required=True)
    coverage = fields.Float(allow_none=True, required=True, metadata={
        "description": "Share of demand covered, 0 to 1"})
    elapsed = fields.Float(allow_none=True, required=True, metadata={"description": "Seconds"})
    time_limit = fields.Float(required=True)
    percent = fields.Float(required=True, metadata={"description": "Of the time limit"})
    version = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Number of the version the run wrote, when finished"})
    error = fields.String(allow_none=True, required=True)
    requested_by = fields.String(required=True)
    created_at = LocalDateTime(required=True)
    started_at = LocalDateTime(allow_none=True, required=True)
    finished_at = LocalDateTime(allow_none=True, required=True)


class SolveRunPageSchema(PageSchema):
    items = fields.List(fields.Nested(SolveRunSchema), required=True)


class DiffRowSchema(ma.Schema):
    uid = fields.String(required=True)
    revision = fields.Integer(required=True)
    volunteer = fields.String(required=True, metadata={"description": "Volunteer code"})
    name = fields.String(required=True)
    date = fields.String(required=True)
    shift = fields.String(required=True)
    post = fields.String(required=True)


class DiffMoveSchema(ma.Schema):
    uid = fields.String(required=True)
    volunteer = fields.String(required=True)
    name = fields.String(required=True)
    date = fields.String(required=True)
    shift = fields.String(required=True)
    from_post = fields.String(required=True)
    to_post = fields.String(required=True)
    from_date = fields.String(required=True)
    from_shift = fields.String(required=True)
    from_revision = fields.Integer(required=True)
    to_revision = fields.Integer(required=True)


class DiffSchema(ma.Schema):
    from_ = fields.Integer(required=True, data_key="from")
    to = fields.Integer(required=True)
    added = fields.List(fields.Nested(DiffRowSchema), required=True)
    removed = fields.List(fields.Nested(DiffRowSchema), required=True)
    moved = fields.List(fields.Nested(DiffMoveSchema), required=True)
