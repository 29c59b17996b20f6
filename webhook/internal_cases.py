"""Internal API about cases, for Rasa's action server (``internal_only``).

- ``POST /internal/cases`` ``{"contact": uuid, "category", "severity", "source": "bot", "intent"}``
  → ``{"case_id", "created"}``: one open case per contact (a repeat report
  joins it and may raise its severity); a new case alerts the on-call staff
  at once.
- ``POST /internal/cases/<id>/answers`` ``{"field", "value"}`` → ``{"ok": true}``
  (an answer "yes" to ``in_danger`` raises the case to emergency)
- ``POST /internal/contacts/<uuid>/handoff`` ``{"reason"}`` → ``{"case_id"}``:
  the contact's messages go to a person (a normal case in hand-off, or
  their open case taken over).

A report is never refused for an unknown category or severity: it is opened
as "other" / "urgent" and the oddity logged. It is refused (4xx with a
clear error) only when the contact is unknown or the body is not JSON.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from lanpya import escalation
from lanpya.models import Case, Contact
from webhook.ext import config, db, internal_only

logger = logging.getLogger(__name__)

bp = Blueprint("internal_cases", __name__, url_prefix="/internal")

YES = {"yes", "y", "true", "1", "affirm"}


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "expected a JSON object")
    return data


def _contact(session, uuid) -> Contact:
    if not isinstance(uuid, str) or not uuid:
        abort(400, "contact (uuid) is required")
    contact = session.scalar(select(Contact).where(Contact.uuid == uuid))
    if contact is None or contact.erased_at is not None:
        abort(404, "no such contact")
    return contact


def _lenient(value, normalise, default: str, what: str) -> str:
    """A report is never refused for a bad label: it opens with the default."""
    if value is not None and not isinstance(value, str):
        logger.warning("case request with a non-text %s: opened as %s", what, default)
        return default
    try:
        return normalise(value)
    except escalation.CaseError:
        logger.warning("case request with unknown %s: opened as %s", what, default)
        return default


@bp.post("/cases")
@internal_only
def open_case():
    data = _json()
    cfg = config()
    category = _lenient(data.get("category"), escalation.normalise_category, "other", "category")
    severity = _lenient(data.get("severity"), escalation.normalise_severity, Case.URGENT, "severity")
    source = data.get("source") if data.get("source") in Case.SOURCES else "bot"
    with db().session() as s:
        contact = _contact(s, data.get("contact"))
        case, created = escalation.open_case(
            s, contact, category=category, severity=severity, source=source,
            language=contact.language, channel=contact.channel, config=cfg,
        )
        if created:
            escalation.alert_safely(s, case, cfg)
        case_id = case.id
    return jsonify({"case_id": case_id, "created": created}), 201 if created else 200


@bp.post("/cases/<int:case_id>/answers")
@internal_only
def add_answer(case_id: int):
    data = _json()
    field = data.get("field")
    if not isinstance(field, str) or not field.strip():
        return jsonify({"error": "field is required"}), 400
    value = data.get("value")
    with db().session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return jsonify({"error": "no such case"}), 404
        try:
            escalation.record_answer(s, case, field, value)
        except escalation.CaseError as exc:
            return jsonify({"error": str(exc)}), 400
        if field.strip() == "in_danger" and str(value).strip().lower() in YES:
            escalation.raise_severity(s, case, Case.EMERGENCY, config=config())
    return jsonify({"ok": True})


@bp.post("/contacts/<uuid>/handoff")
@internal_only
def handoff(uuid: str):
    data = request.get_json(silent=True) or {}
    reason = data.get("reason") if isinstance(data, dict) else None
    cfg = config()
    with db().session() as s:
        contact = _contact(s, uuid)
        case, created = escalation.open_case(
            s, contact, category="other", severity=Case.NORMAL, source="bot",
            language=contact.language, channel=contact.channel, handoff=True, config=cfg,
        )
        if isinstance(reason, str) and reason.strip():
            answers = dict(case.answers or {})
            answers.setdefault("handoff_reason", reason.strip()[:200])
            case.answers = answers
        if created:
            escalation.alert_safely(s, case, cfg)
        case_id = case.id
    return jsonify({"case_id": case_id}), 201 if created else 200
