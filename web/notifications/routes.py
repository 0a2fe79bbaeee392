"""``/notifications``: failed and waiting notices, and ``POST …/<id>/retry``."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from scheduler.dispatch.services import mask_phone
from scheduler.notifications import services as notices
from web.auth import actor_name, login_required, site_scope
from web.database import db_session
from web.i18n import gettext, local_now

from . import bp

STAFF = ("secretary", "coordinator")
KIND_NAMES = {"task_offer": "任务派单", "shift_change": "排班变动",
              "shift_reminder": "上岗提醒"}
STATUS_NAMES = {"pending": "待发送", "sending": "发送中", "sent": "已发送",
                "failed": "发送失败", "obsolete": "已作废（未发送）"}
#: Why an obsolete notice was not sent (`notices.drop_if_obsolete`).
OBSOLETE_REASONS = {"offer expired": "派单已超时", "offer withdrawn": "派单已撤回",
                    "offer accepted": "已接受", "offer declined": "已拒绝",
                    "offer deleted": "派单已删除"}


@bp.get("/notifications")
@login_required(roles=STAFF)
def index() -> ResponseReturnValue:
    rows = notices.outstanding(db_session(), site_scope(), local_now().date())
    return render_template("notifications/index.html", rows=rows, mask=mask_phone,
                           kinds=KIND_NAMES, statuses=STATUS_NAMES,
                           reasons=OBSOLETE_REASONS)


@bp.post("/notifications/<int:notification_id>/retry")
@login_required(roles=STAFF)
def retry(notification_id: int) -> ResponseReturnValue:
    session = db_session()
    if notices.visible(session, site_scope(), local_now().date(), notification_id) is None:
        abort(404)
    try:
        notices.retry(session, notification_id, actor_name())
    except notices.NotRetryable:
        session.rollback()
        flash(gettext("该通知正在发送或已发送，无需重试。"), "info")
    else:
        session.commit()
        flash(gettext("已重新加入发送队列。"), "info")
    return redirect(url_for("notifications.index")), 303
