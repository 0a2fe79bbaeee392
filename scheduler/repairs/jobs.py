"""The repair job: `repair_roster(proposal_id)`, IDs only, the proposal row the truth.

Like `scheduler.jobs.solve_roster`: the row is marked running in one transaction, the
repair computed from a read-only session, and the result written with finishing the
row in one more, so a worker killed mid-way leaves the proposal running (never half
written); any error marks it failed with its message (a roster that moved on: stale).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.db import session_scope, utcnow
from scheduler.repairs.models import ACTIVE_PROPOSAL_STATUSES, RepairProposal
from scheduler.repairs.services import StaleProposal, compute_repair

log = logging.getLogger(__name__)
SYSTEM = "system"


def _lock(session: Session, proposal_id: int) -> RepairProposal | None:
    return session.scalars(select(RepairProposal).where(RepairProposal.id == proposal_id)
                           .with_for_update()).one_or_none()


def repair_roster(proposal_id: int) -> dict[str, Any]:
    """Compute the repair of proposal `proposal_id` and store it on the row (ready).

    Errors are recorded on the row (failed, or stale when the published version moved
    on) and raised again so RQ records the job as failed too. Returns a JSON-able summary.
    """
    with session_scope() as session:
        proposal = _lock(session, proposal_id)
        if proposal is None or proposal.status != "queued":
            status = None if proposal is None else proposal.status
            log.warning("repair proposal %s is %s; its job skips it", proposal_id, status)
            return {"proposal": proposal_id, "status": status, "skipped": True}
        proposal.status, proposal.started_at, proposal.error = "running", utcnow(), None
        audit.record(session, SYSTEM, "repair_proposal.start", "repair_proposal", proposal_id,
                     before={"status": "queued"}, after={"status": "running"})
    try:
        with session_scope() as session:
            proposal = session.get(RepairProposal, proposal_id)
            assert proposal is not None
            result = compute_repair(session, proposal)
        with session_scope() as session:
            proposal = _lock(session, proposal_id)
            if proposal is None or proposal.status != "running":
                log.warning("repair proposal %s was ended elsewhere; result dropped", proposal_id)
                return {"proposal": proposal_id, "status": None, "skipped": True}
            proposal.result, proposal.status, proposal.finished_at = result, "ready", utcnow()
            summary = result.get("repair") or {}
            audit.record(session, SYSTEM, "repair_proposal.ready", "repair_proposal",
                         proposal_id, before={"status": "running"},
                         after={"status": "ready", "changes": len(result.get("changes") or []),
                                "vacated": summary.get("vacated"),
                                "uncovered": len(summary.get("uncovered") or [])})
    except BaseException as exc:  # noqa: B036 - never leave the row running
        _fail(proposal_id, exc)
        raise
    return {"proposal": proposal_id, "status": "ready",
            "changes": len(result.get("changes") or [])}


def _fail(proposal_id: int, exc: BaseException) -> None:
    status = "stale" if isinstance(exc, StaleProposal) else "failed"
    message = str(exc) if status == "stale" else f"{type(exc).__name__}: {exc}"
    try:
        with session_scope() as session:
            proposal = _lock(session, proposal_id)
            if proposal is None or proposal.status not in ACTIVE_PROPOSAL_STATUSES:
                return
            before = proposal.status
            proposal.status, proposal.error = status, message[:4000]
            proposal.finished_at = utcnow()
            audit.record(session, SYSTEM, f"repair_proposal.{'stale' if status == 'stale' else 'fail'}",
                         "repair_proposal", proposal_id, before={"status": before},
                         after={"status": status, "error": proposal.error})
    except Exception:  # do not hide the original error
        log.exception("could not record the failure of repair proposal %s", proposal_id)
