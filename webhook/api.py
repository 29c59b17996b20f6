"""JSON API for integrations (tokens from ``lanpya staff token EMAIL``).

- ``GET /api/cases?status=new,notified`` (default: open cases) → ``{"cases": [...]}``
- ``GET /api/cases/<id>`` → the case with its form answers, narrative and notes
- ``POST /api/cases/<id>/ack`` → ``{"ok": true, "acknowledged": bool}``
- ``POST /api/cases/<id>/notes`` ``{"body"}`` → ``{"note_id"}``

``Authorization: Bearer <token>``; agents and supervisors (and admins). Every
read and change is audited. A signed-in console session works too, with the
CSRF header on POSTs.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from lanpya import audit, clock, escalation
from lanpya.models import Case, CaseNote, Staff
from webhook.auth import current_staff, login_required
from webhook.console import CASE_ROLES, case_summary, queue_rows
from webhook.ext import db

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")


def _error(message: str, status: int):
    return jsonify({"error": message}), status


@bp.get("/cases")
@login_required(*CASE_ROLES)
def list_cases():
    raw = request.args.get("status", "")
    statuses = tuple(s.strip() for s in raw.split(",") if s.strip()) or Case.OPEN
    bad = [s for s in statuses if s not in Case.STATUSES]
    if bad:
        return _error(f"unknown status {bad[0]!r}; use {', '.join(Case.STATUSES)}", 400)
    staff = current_staff()
    with db().session() as s:
        rows = queue_rows(s, statuses, limit=500)
        audit.record(s, "cases_listed", "case", None, staff_id=staff.id, detail={"status": list(statuses),
                                                                               "n": len(rows)})
    return jsonify({"cases": rows})


@bp.get("/cases/<int:case_id>")
@login_required(*CASE_ROLES)
def get_case(case_id: int):
    staff = current_staff()
    with db().session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return _error("no such case", 404)
        notes = s.execute(
            select(CaseNote, Staff.email).outerjoin(Staff, Staff.id == CaseNote.staff_id)
            .where(CaseNote.case_id == case.id).order_by(CaseNote.id)
        ).all()
        out = case_summary(case, clock.now())
        out.update({
            "answers": case.answers or {},
            "narrative": case.narrative,
            "township": case.township,
            "outcome": case.outcome,
            "referral": case.referral,
            "closed_at": case.closed_at.isoformat() + "Z" if case.closed_at else None,
            "notes": [{"id": n.id, "by": email, "at": n.created_at.isoformat() + "Z", "body": n.body}
                      for n, email in notes],
            "alerts": [{k: (v.isoformat() + "Z" if k == "at" else v) for k, v in a.items()}
                       for a in escalation.alert_status(s, case.id)],
        })
        audit.record(s, "case_viewed", "case", case.id, staff_id=staff.id, detail={"via": "api"})
    return jsonify(out)


@bp.post("/cases/<int:case_id>/ack")
@login_required(*CASE_ROLES)
def ack(case_id: int):
    staff = current_staff()
    with db().session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return _error("no such case", 404)
        try:
            done = escalation.acknowledge(s, case, staff.id, via="api")
        except escalation.CaseError as exc:
            return _error(str(exc), 409)
    return jsonify({"ok": True, "acknowledged": done})


@bp.post("/cases/<int:case_id>/notes")
@login_required(*CASE_ROLES)
def add_note(case_id: int):
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("body"), str):
        return _error('expected a JSON object {"body": "..."}', 400)
    staff = current_staff()
    with db().session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return _error("no such case", 404)
        try:
            note = escalation.add_note(s, case, staff.id, data["body"])
        except escalation.CaseError as exc:
            return _error(str(exc), 400)
        note_id = note.id
    return jsonify({"note_id": note_id}), 201
