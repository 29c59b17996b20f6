"""The hotline console: the case queue (live) and the case page.

Agents and supervisors only (admin passes everywhere). Every view of a case
and every change is written to the audit log. Message bodies, notes and form
answers are decrypted for display and always escaped (Jinja autoescape; the
queue script sets ``textContent``, never HTML).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import case as sql_case
from sqlalchemy import select

from lanpya import audit, clock, escalation
from lanpya.models import Case, CaseNote, Contact, Inbound, Outbox, Staff
from lanpya.phone import masked
from webhook.auth import current_staff, login_required, nav_item
from webhook.ext import config, db

logger = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")

CASE_ROLES = (Staff.AGENT, Staff.SUPERVISOR)
OUTCOMES = (
    "referred", "reporter_safe", "reunited", "advice_given", "no_contact", "duplicate", "not_a_case", "other",
)
CONVERSATION_LIMIT = 300


def queue_rows(session, statuses: tuple[str, ...] = Case.OPEN, limit: int = 200) -> list[dict]:
    """Open cases, most severe first, then by time left to the deadline."""
    severity_order = sql_case({Case.EMERGENCY: 0, Case.URGENT: 1, Case.NORMAL: 2}, value=Case.severity, else_=3)
    acked_last = sql_case((Case.acknowledged_at.is_(None), 0), else_=1)
    cases = session.scalars(
        select(Case).where(Case.status.in_(statuses))
        .order_by(acked_last, severity_order, Case.deadline_at, Case.id).limit(limit)
    ).all()
    now = clock.now()
    failed_ids = set(session.scalars(
        select(Outbox.case_id).where(
            Outbox.case_id.in_([c.id for c in cases]), Outbox.kind == Outbox.ALERT,
            Outbox.state.in_([Outbox.FAILED, Outbox.UNDELIVERED]) | Outbox.error_code.is_not(None),
        )
    ).all()) if cases else set()
    return [case_summary(c, now, c.id in failed_ids) for c in cases]


def case_summary(case: Case, now: datetime, alert_failed: bool = False) -> dict:
    left = None
    if case.deadline_at is not None and case.acknowledged_at is None and case.status != Case.CLOSED:
        left = int((case.deadline_at - now).total_seconds())
    return {
        "id": case.id,
        "severity": case.severity,
        "category": case.category,
        "status": case.status,
        "source": case.source,
        "language": case.language,
        "channel": case.channel,
        "handoff": case.handoff,
        "created_at": _iso(case.created_at),
        "deadline_at": _iso(case.deadline_at),
        "seconds_left": left,
        "overdue": left is not None and left < 0,
        "acknowledged_at": _iso(case.acknowledged_at),
        "chase_step": case.chase_step,
        "alert_failed": alert_failed,
        "url": url_for("console.case_page", case_id=case.id),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def _get_case(session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        abort(404)
    return case


# --- queue --------------------------------------------------------------------------
@bp.get("/cases")
@login_required(*CASE_ROLES)
def queue():
    show = request.args.get("show", "open")
    statuses = (Case.CLOSED,) if show == "closed" else Case.OPEN
    with db().session() as s:
        rows = queue_rows(s, statuses)
        oncall = on_call_now(s)
    return render_template("console/queue.html", rows=rows, show=show, oncall=oncall)


def on_call_now(session) -> list[str]:
    """"a1@example.org (rank 1)", ... and the supervisors: who gets the next alert."""
    people = escalation.on_call(session)
    emails = {st.id: st.email for st in session.scalars(select(Staff))}
    out = [f"{emails.get(p.staff_id, '?')} (rank {p.rank})" for p in people]
    sups = dict.fromkeys(p.supervisor_id for p in people if p.supervisor_id)
    out += [f"{emails.get(sid, '?')} (supervisor)" for sid in sups]
    return out


@bp.get("/cases.json")
@login_required(*CASE_ROLES)
def queue_json():
    with db().session() as s:
        rows = queue_rows(s)
    return jsonify({"cases": rows, "now": _iso(clock.now())})


# --- one case -------------------------------------------------------------------------
def conversation(session, case: Case) -> list[dict]:
    if case.contact_id is None:
        return []
    inbound = session.scalars(
        select(Inbound).where(Inbound.contact_id == case.contact_id).order_by(Inbound.id.desc()).limit(CONVERSATION_LIMIT)
    ).all()
    outbound = session.scalars(
        select(Outbox).where(Outbox.contact_id == case.contact_id).order_by(Outbox.id.desc()).limit(CONVERSATION_LIMIT)
    ).all()
    items = [{"dir": "in", "at": m.received_at, "body": m.body or f"[{m.kind}]", "meta": _in_meta(m)} for m in inbound]
    items += [{"dir": "out", "at": m.created_at, "body": m.body or "", "meta": _out_meta(m)} for m in outbound]
    items.sort(key=lambda x: x["at"] or datetime.min)
    return items


def _in_meta(m: Inbound) -> str:
    bits = [m.language or "", m.intent or m.keyword or ""]
    return " · ".join(b for b in bits if b)


def _out_meta(m: Outbox) -> str:
    who = "agent" if m.kind == Outbox.AGENT else m.kind
    return f"{who} · {m.state}" + (f" · error {m.error_code}" if m.error_code else "")


def referral_choices() -> list[tuple[str, str]]:
    try:
        from lanpya.content import Content

        return [(r.id, r.names.get("en") or r.id) for r in Content.load(config=config()).referrals() if r.enabled]
    except Exception:  # noqa: BLE001 - the close form still works with free text
        logger.warning("referral list unavailable; free text only")
        return []


@bp.get("/cases/<int:case_id>")
@login_required(*CASE_ROLES)
def case_page(case_id: int):
    staff = current_staff()
    with db().session() as s:
        case = _get_case(s, case_id)
        contact = s.get(Contact, case.contact_id) if case.contact_id else None
        notes = s.execute(
            select(CaseNote, Staff.email).outerjoin(Staff, Staff.id == CaseNote.staff_id)
            .where(CaseNote.case_id == case.id).order_by(CaseNote.id)
        ).all()
        names = {st.id: st.email for st in s.scalars(select(Staff))}
        alerts = escalation.alert_status(s, case.id)
        items = conversation(s, case)
        summary = case_summary(case, clock.now(), any(a["failed"] for a in alerts))
        who = None
        if contact is not None and contact.address and contact.erased_at is None:
            who = masked(contact.address) if contact.channel == Contact.SMS else f"Viber user {contact.uuid[:8]}"
        audit.record(s, "case_viewed", "case", case.id, staff_id=staff.id)
        from lanpya.models import AuditLog

        trail = s.execute(
            select(AuditLog).where(AuditLog.object_type == "case", AuditLog.object_id == case.id)
            .order_by(AuditLog.id.desc()).limit(50)
        ).scalars().all()
        page = render_template(
            "console/case.html", case=case, summary=summary, contact=contact, who=who, notes=notes,
            alerts=alerts, items=items, names=names, trail=trail, outcomes=OUTCOMES,
            referrals=referral_choices(), can_reply=case.status != Case.CLOSED and who is not None,
        )
    return page


def _change(case_id: int, action):
    """Run ``action(session, case, staff)``; flash its error; back to the case."""
    staff = current_staff()
    try:
        with db().session() as s:
            case = _get_case(s, case_id)
            message = action(s, case, staff)
    except escalation.CaseError as exc:
        flash(str(exc))
        return redirect(url_for("console.case_page", case_id=case_id), 303)
    if message:
        flash(message)
    return redirect(url_for("console.case_page", case_id=case_id), 303)


@bp.post("/cases/<int:case_id>/ack")
@login_required(*CASE_ROLES)
def ack(case_id: int):
    def act(s, case, staff):
        return "Acknowledged: the chase has stopped." if escalation.acknowledge(s, case, staff.id) else \
            "Already acknowledged."
    return _change(case_id, act)


@bp.post("/cases/<int:case_id>/status")
@login_required(*CASE_ROLES)
def status(case_id: int):
    new = request.form.get("status", "")

    def act(s, case, staff):
        escalation.set_status(s, case, new, staff.id)
        return f"Status: {new.replace('_', ' ')}."
    return _change(case_id, act)


@bp.post("/cases/<int:case_id>/notes")
@login_required(*CASE_ROLES)
def note(case_id: int):
    body = request.form.get("body", "")

    def act(s, case, staff):
        escalation.add_note(s, case, staff.id, body)
        return "Note added."
    return _change(case_id, act)


@bp.post("/cases/<int:case_id>/reply")
@login_required(*CASE_ROLES)
def reply(case_id: int):
    body = request.form.get("body", "")

    def act(s, case, staff):
        escalation.reply(s, case, staff.id, body)
        return "Reply queued: it goes through the reporter's own channel."
    return _change(case_id, act)


@bp.post("/cases/<int:case_id>/handoff")
@login_required(*CASE_ROLES)
def handoff(case_id: int):
    on = request.form.get("handoff") == "take"

    def act(s, case, staff):
        escalation.set_handoff(s, case, on, staff.id)
        return "You have the conversation: messages come here, not to the bot." if on else \
            "Given back to the bot."
    return _change(case_id, act)


@bp.post("/cases/<int:case_id>/close")
@login_required(*CASE_ROLES)
def close(case_id: int):
    outcome = request.form.get("outcome", "")
    referral = request.form.get("referral", "") or request.form.get("referral_other", "")

    def act(s, case, staff):
        if outcome not in OUTCOMES:
            raise escalation.CaseError("choose an outcome")
        escalation.close(s, case, staff.id, outcome=outcome, referral=referral)
        return "Case closed."
    return _change(case_id, act)


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required(*CASE_ROLES)
def new_case():
    """An agent opens a case (e.g. for someone who phoned the hotline)."""
    if request.method == "GET":
        return render_template("console/new_case.html", categories=Case.CATEGORIES, severities=Case.SEVERITIES,
                               form={})
    from lanpya.ingest import get_or_create_contact
    from lanpya.phone import BadNumber, normalise_phone

    staff = current_staff()
    form = request.form
    error = None
    try:
        phone = normalise_phone(form.get("phone", ""))
        category = escalation.normalise_category(form.get("category"))
        severity = escalation.normalise_severity(form.get("severity"))
    except (BadNumber, escalation.CaseError) as exc:
        error = str(exc) or "that phone number is not valid"
    if error:
        return render_template("console/new_case.html", categories=Case.CATEGORIES, severities=Case.SEVERITIES,
                               form={k: form.get(k, "") for k in ("category", "severity", "note")},
                               error=error), 400
    with db().session() as s:
        contact = get_or_create_contact(s, Contact.SMS, phone)
        case, created = escalation.open_case(
            s, contact, category=category, severity=severity, source="agent", channel=Contact.SMS,
            handoff=True, staff_id=staff.id, config=config(),
        )
        if case.acknowledged_at is None:
            escalation.acknowledge(s, case, staff.id)
        if form.get("note", "").strip():
            escalation.add_note(s, case, staff.id, form["note"])
        case_id = case.id
    flash("Case opened and assigned to you." if created else "This person already had an open case: joined it.")
    return redirect(url_for("console.case_page", case_id=case_id), 303)


@bp.get("/cases/<int:case_id>/messages.json")
@login_required(*CASE_ROLES)
def messages_json(case_id: int):
    """The conversation after message ``?after=<n>`` items, for the case page to append (as text)."""
    with db().session() as s:
        case = _get_case(s, case_id)
        items = conversation(s, case)
        status_now = case.status
    after = request.args.get("after", type=int) or 0
    return jsonify({
        "count": len(items), "status": status_now,
        "items": [{"dir": m["dir"], "at": m["at"].strftime("%Y-%m-%d %H:%M:%S") if m["at"] else "",
                   "meta": m["meta"], "body": m["body"]} for m in items[after:]],
    })


nav_item("Cases", "console.queue", CASE_ROLES)
