"""Reading the dispatch forms and JSON bodies into service arguments.

Every field error is collected (the form's own parsing and the service's checks), so a
secretary sees all of them at once, each next to its field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from scheduler.accounts.services import SiteScope
from scheduler.dispatch.services import TaskInputError
from solver.i18n import Text

#: The fields of the new-task form (named as `create_task` names its errors).
TASK_FIELDS = ("type", "site", "building", "room", "requester_name", "requester_phone",
               "urgency", "due_at", "duration_minutes", "notes")


def _int(raw: Any) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw if raw is not None else "").strip()
    return int(text) if text.isdigit() else None


def parse_task(form: Mapping[str, Any], scope: SiteScope, zone: dt.tzinfo
               ) -> tuple[dict[str, Any], dict[str, Text]]:
    """`create_task` keyword arguments from the form, and the errors found while reading.

    Where a field cannot be read, a harmless placeholder is passed on, so the service
    still checks every other field; the caller must not keep a task made from them.
    """
    errors: dict[str, Text] = {}
    site_id = _int(form.get("site"))
    if site_id is None or site_id not in scope:
        errors["site"] = Text(f"未知站点 {form.get('site', '')!r}",
                              f"unknown site {form.get('site', '')!r}")
        site_id = 0
    due_raw = str(form.get("due_at") or "").strip()
    try:
        due_at = dt.datetime.fromisoformat(due_raw)
        if due_at.tzinfo is None:
            due_at = due_at.replace(tzinfo=zone)  # the form's time is Asia/Shanghai
    except ValueError:
        errors["due_at"] = (Text("请填写截止时间", "enter the due time") if not due_raw else
                            Text(f"无法识别的时间 {due_raw!r}", f"not a time: {due_raw!r}"))
        due_at = dt.datetime.now(dt.UTC)
    duration_raw = str(form.get("duration_minutes") or "").strip()
    duration = _int(duration_raw) if duration_raw else None
    if duration_raw and duration is None:
        errors["duration_minutes"] = Text(f"预计用时须为分钟数，而不是 {duration_raw!r}",
                                          f"duration must be minutes, not {duration_raw!r}")
    urgency = str(form.get("urgency") or "").strip() or None
    kwargs = {
        "type_code": str(form.get("type") or "").strip(), "site_id": site_id,
        "building": str(form.get("building") or ""), "room": str(form.get("room") or ""),
        "requester_name": str(form.get("requester_name") or ""),
        "requester_phone": str(form.get("requester_phone") or ""),
        "urgency": urgency, "due_at": due_at, "duration_minutes": duration,
        "notes": str(form.get("notes") or "").strip(),
    }
    return kwargs, errors


def merge(exc: TaskInputError | None, errors: dict[str, Text]) -> dict[str, Text]:
    """The service's errors and the form's (the form's win: it read the field first)."""
    return {**(exc.errors if exc else {}), **errors}


def expected_version(data: Mapping[str, Any]) -> int:
    """The task version the secretary's screen showed (required on every action)."""
    version = _int(data.get("expected_version"))
    if version is None:
        raw = data.get("expected_version")
        raise TaskInputError({"expected_version": Text(
            f"缺少或无法识别任务版本 {raw!r}，请刷新页面",
            f"missing or unreadable task version {raw!r}; reload the page")})
    return version


def volunteer_id(data: Mapping[str, Any]) -> int:
    vid = _int(data.get("volunteer_id"))
    if vid is None:
        raise TaskInputError({"volunteer_id": Text("请选择志愿者", "choose a volunteer")})
    return vid
