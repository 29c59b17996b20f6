"""Cases, on-call alerts and the chase up the roster.

- ``open_case``: one open case per contact; a repeat report joins it and may
  raise its severity (and bring its deadline forward).
- ``alert_on_call``: step 0 of the chase — the rank-1 staff on call now (the
  weekly roster is in Asia/Yangon time) get a discreet SMS, and a Viber
  message where they have a Viber id: "Lanpya: new case #12, urgent. <link>".
  No names, no details.
- ``chase_due`` (the scheduler, every 15 s): an open case nobody acknowledged
  by ``next_chase_at`` climbs one step: the next rank on call, then the
  shifts' supervisors, then every active admin and supervisor — that last
  level again every deadline period until someone acknowledges (a report
  is never left to go quiet). Each step is written to the audit log;
  acknowledging stops the chase.

Duplicates are impossible by construction: each alert is an ``Alert`` row
unique on (case, step, staff) written with its outbox row (dedupe key
``alert:<case>:<step>:<staff>``) in one savepoint, and a chase step is taken
under a row lock on the case (SKIP LOCKED on PostgreSQL; SQLite's writes are
serialised by BEGIN IMMEDIATE). Two schedulers never send a second alert for
the same step.

Alerts go through the outbox like every message, so a provider outage delays
them (the dispatcher retries) but loses none; ``alert_status`` tells the
console which were delivered and which failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import audit, clock
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Alert, Case, CaseNote, Contact, Outbox, Shift, Staff
from lanpya.outbox import enqueue

logger = logging.getLogger(__name__)

ROSTER_TZ = ZoneInfo("Asia/Yangon")
SEVERITY_RANK = {Case.NORMAL: 0, Case.URGENT: 1, Case.EMERGENCY: 2}
#: the default alert text if the content directory lacks ``staff_alert``
ALERT_FALLBACK = "Lanpya: new case #{case_id}, {severity}. {url}"
#: roles alerted at the last step when the roster's supervisors did not answer
FALLBACK_ROLES = (Staff.SUPERVISOR, Staff.ADMIN)
#: form fields that are the reporter's own words: kept as the narrative
NARRATIVE_FIELDS = ("what_happened", "narrative", "details")
CATEGORY_ALIASES = {
    "forced marriage": "forced_marriage", "marriage": "forced_marriage", "missing": "missing_person",
    "missing person": "missing_person", "labour": "labour_exploitation", "labor": "labour_exploitation",
    "labour exploitation": "labour_exploitation", "labor_exploitation": "labour_exploitation",
}


class CaseError(ValueError):
    """A request about a case that cannot be honoured (the message says why)."""


def normalise_severity(severity: str | None) -> str:
    value = (severity or Case.URGENT).strip().lower()
    if value not in Case.SEVERITIES:
        raise CaseError(f"severity must be one of {', '.join(Case.SEVERITIES)}")
    return value


def normalise_category(category: str | None) -> str:
    value = (category or "other").strip().lower()
    value = CATEGORY_ALIASES.get(value, value).replace(" ", "_").replace("-", "_")
    if value not in Case.CATEGORIES:
        raise CaseError(f"category must be one of {', '.join(Case.CATEGORIES)}")
    return value


# --- cases ------------------------------------------------------------------------
def open_case(
    session: Session,
    contact: Contact | None,
    *,
    category: str | None = "other",
    severity: str | None = Case.URGENT,
    source: str = "bot",
    language: str | None = None,
    channel: str | None = None,
    handoff: bool | None = None,
    staff_id: int | None = None,
    config: Config | None = None,
) -> tuple[Case, bool]:
    """The contact's open case, or a new one: ``(case, created)``.

    A repeat report joins the open case; a higher severity raises it and
    brings the deadline (and the next chase) forward. ``handoff`` (default:
    True only for agent-opened cases) sends the contact's messages to the
    case instead of the bot. Callers call :func:`alert_on_call` when
    ``created`` (or leave it to the scheduler, which alerts within seconds).
    """
    severity = normalise_severity(severity)
    category = normalise_category(category)
    if source not in Case.SOURCES:
        raise CaseError(f"source must be one of {', '.join(Case.SOURCES)}")
    now = clock.now()
    actor = None if staff_id is not None else source
    if contact is not None:
        if contact.id is None:
            session.flush()
        # one open case per contact: serialise reports of the same contact
        session.execute(select(Contact.id).where(Contact.id == contact.id).with_for_update())
        case = session.scalar(
            select(Case).where(Case.contact_id == contact.id, Case.status.in_(Case.OPEN))
            .order_by(Case.id).limit(1)
        )
        if case is not None:
            _join(session, case, category, severity, now, staff_id, actor, config)
            if handoff:
                case.handoff = True
            return case, False
    minutes = _deadline_minutes(config, severity)
    case = Case(
        contact_id=contact.id if contact is not None else None,
        severity=severity,
        category=category,
        status=Case.NEW,
        source=source,
        language=language or (contact.language if contact is not None else None),
        channel=channel or (contact.channel if contact is not None else None),
        handoff=bool(handoff) if handoff is not None else source == "agent",
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(minutes=minutes),
        # due now: if the caller does not alert, the scheduler's next run does
        next_chase_at=now,
        chase_step=0,
        answers={},
    )
    session.add(case)
    session.flush()
    audit.record(session, "case_opened", "case", case.id, staff_id=staff_id, actor=actor,
                 detail={"severity": severity, "category": category, "source": source})
    logger.info("case %s opened (%s, %s, from %s)", case.id, severity, category, source)
    return case, True


def _deadline_minutes(config: Config | None, severity: str) -> int:
    return (config or Config()).deadline_minutes(severity)


def _join(session: Session, case: Case, category: str, severity: str, now: datetime,
          staff_id: int | None, actor: str | None, config: Config | None) -> None:
    detail: dict = {}
    if SEVERITY_RANK[severity] > SEVERITY_RANK.get(case.severity, 0):
        detail["severity"] = [case.severity, severity]
        case.severity = severity
        if case.acknowledged_at is None:
            sooner = now + timedelta(minutes=_deadline_minutes(config, severity))
            if case.deadline_at is None or sooner < case.deadline_at:
                case.deadline_at = sooner
            if case.next_chase_at is not None and sooner < case.next_chase_at:
                case.next_chase_at = sooner
    if case.category == "other" and category != "other":
        detail["category"] = [case.category, category]
        case.category = category
    case.updated_at = now
    audit.record(session, "case_joined", "case", case.id, staff_id=staff_id, actor=actor, detail=detail or None)


def record_answer(session: Session, case: Case, field: str, value, *, actor: str = "bot") -> None:
    """One answer of the bot's report form (encrypted with the case)."""
    field = (field or "").strip()[:60]
    if not field:
        raise CaseError("field is required")
    if isinstance(value, str):
        value = value[:4000]
    elif value is not None and not isinstance(value, (int, float, bool, list, dict)):
        raise CaseError("value must be text, a number, a list or true/false")
    answers = dict(case.answers or {})
    answers[field] = value
    case.answers = answers
    if field in NARRATIVE_FIELDS and isinstance(value, str) and value.strip():
        case.narrative = f"{case.narrative}\n{value}" if case.narrative else value
    if field == "township" and isinstance(value, str) and value.strip():
        case.township = value.strip()[:60]
    case.updated_at = clock.now()
    audit.record(session, "answer_recorded", "case", case.id, actor=actor, detail={"field": field})


def acknowledge(session: Session, case: Case, staff_id: int | None, *, via: str = "console") -> bool:
    """Someone has it: the chase stops. False if it was already acknowledged."""
    if case.status == Case.CLOSED:
        raise CaseError("the case is closed")
    if case.acknowledged_at is not None:
        return False
    now = clock.now()
    previous = case.status
    case.acknowledged_at = now
    case.acknowledged_by = staff_id
    if case.assigned_to is None:
        case.assigned_to = staff_id
    case.status = Case.ACKNOWLEDGED
    case.next_chase_at = None
    case.updated_at = now
    # alerts not yet handed to the provider are no longer needed
    session.execute(
        update(Outbox).where(Outbox.case_id == case.id, Outbox.kind == Outbox.ALERT, Outbox.state == Outbox.QUEUED)
        .values(state=Outbox.CANCELLED, error="case acknowledged")
    )
    audit.record(session, "case_acknowledged", "case", case.id, staff_id=staff_id,
                 actor=None if staff_id else via, detail={"from": previous, "via": via})
    return True


def set_status(session: Session, case: Case, status: str, staff_id: int | None) -> None:
    if status not in (Case.ACKNOWLEDGED, Case.IN_PROGRESS):
        raise CaseError("use close() to close a case")
    if case.status == Case.CLOSED:
        raise CaseError("the case is closed")
    if case.acknowledged_at is None:
        acknowledge(session, case, staff_id)
    if case.status != status:
        audit.record(session, "case_status", "case", case.id, staff_id=staff_id,
                     detail={"from": case.status, "to": status})
        case.status = status
        case.updated_at = clock.now()


def close(session: Session, case: Case, staff_id: int | None, *, outcome: str, referral: str | None = None) -> None:
    """Close with an outcome (and the organisation referred to). The contact
    goes back to the bot, and nothing more is sent to them about this case."""
    outcome = (outcome or "").strip()[:40]
    if not outcome:
        raise CaseError("an outcome is required to close a case")
    if case.status == Case.CLOSED:
        raise CaseError("the case is already closed")
    now = clock.now()
    previous = case.status
    case.status = Case.CLOSED
    case.closed_at = now
    case.outcome = outcome
    case.referral = (referral or "").strip()[:120] or None
    case.handoff = False
    case.next_chase_at = None
    case.updated_at = now
    if case.acknowledged_at is None:
        case.acknowledged_at = now
        case.acknowledged_by = staff_id
    # nothing unsolicited after closing: agent messages and alerts still waiting are dropped
    session.execute(
        update(Outbox).where(
            Outbox.case_id == case.id, Outbox.kind.in_([Outbox.AGENT, Outbox.ALERT]), Outbox.state == Outbox.QUEUED
        ).values(state=Outbox.CANCELLED, error="case closed")
    )
    audit.record(session, "case_closed", "case", case.id, staff_id=staff_id,
                 detail={"from": previous, "outcome": outcome, "referral": case.referral})


def set_handoff(session: Session, case: Case, on: bool, staff_id: int | None, *, actor: str | None = None) -> None:
    """Take over (the contact's messages come to the case) or give back to the bot."""
    if case.status == Case.CLOSED and on:
        raise CaseError("the case is closed")
    if case.handoff == on:
        return
    case.handoff = on
    case.updated_at = clock.now()
    if on and staff_id is not None and case.assigned_to is None:
        case.assigned_to = staff_id
    audit.record(session, "handoff_taken" if on else "handoff_returned", "case", case.id, staff_id=staff_id,
                 actor=actor)


def add_note(session: Session, case: Case, staff_id: int | None, body: str) -> CaseNote:
    body = (body or "").strip()
    if not body:
        raise CaseError("the note is empty")
    if len(body) > 10000:
        raise CaseError("the note is too long (10,000 characters at most)")
    note = CaseNote(case_id=case.id, staff_id=staff_id, body=body, created_at=clock.now())
    session.add(note)
    session.flush()
    case.updated_at = clock.now()
    audit.record(session, "note_added", "case", case.id, staff_id=staff_id, detail={"note": note.id})
    return note


def reply(session: Session, case: Case, staff_id: int, body: str) -> Outbox:
    """An agent's message to the reporter, through the reporter's own channel.
    Only while the case is open: never an unsolicited message after it closes."""
    body = (body or "").strip()
    if not body:
        raise CaseError("the reply is empty")
    if len(body) > 1600:
        raise CaseError("the reply is too long (1,600 characters at most)")
    if case.status == Case.CLOSED:
        raise CaseError("the case is closed: no more messages to the reporter")
    contact = session.get(Contact, case.contact_id) if case.contact_id else None
    if contact is None or contact.erased_at is not None or not contact.address:
        raise CaseError("the reporter cannot be reached (no contact address)")
    if contact.opted_out:
        raise CaseError("the reporter sent STOP: no messages can be sent to them (call them if you have consent)")
    if case.acknowledged_at is None:
        acknowledge(session, case, staff_id)
    if case.status == Case.ACKNOWLEDGED:
        case.status = Case.IN_PROGRESS
    row = enqueue(session, body=body, channel=contact.channel, contact=contact, staff_id=staff_id,
                  kind=Outbox.AGENT, case_id=case.id)
    assert row is not None
    case.updated_at = clock.now()
    audit.record(session, "agent_reply", "case", case.id, staff_id=staff_id, detail={"outbox": row.id})
    return row


# --- the roster -------------------------------------------------------------------
@dataclass(frozen=True)
class OnCall:
    staff_id: int
    rank: int
    supervisor_id: int | None


def _in_shift(shift: Shift, local: datetime) -> bool:
    t = local.time()
    start, end = shift.start, shift.end
    if isinstance(start, datetime):
        start = start.time()
    if isinstance(end, datetime):
        end = end.time()
    day = local.weekday()
    if start <= end:
        end_ok = t <= end if end >= time(23, 59) else t < end
        return shift.weekday == day and start <= t and end_ok
    # overnight: from start on its weekday until end on the next day
    return (shift.weekday == day and t >= start) or ((shift.weekday + 1) % 7 == day and t < end)


def on_call(session: Session, at: datetime | None = None) -> list[OnCall]:
    """Who is on call at ``at`` (naive UTC), by rank (roster in Asia/Yangon time)."""
    at = at or clock.now()
    local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(ROSTER_TZ).replace(tzinfo=None)
    rows = session.execute(
        select(Shift).join(Staff, Staff.id == Shift.staff_id).where(Staff.active.is_(True))
        .order_by(Shift.rank, Shift.id)
    ).scalars().all()
    seen: set[int] = set()
    out: list[OnCall] = []
    for shift in rows:
        if _in_shift(shift, local) and shift.staff_id not in seen:
            seen.add(shift.staff_id)
            out.append(OnCall(shift.staff_id, shift.rank, shift.supervisor_id))
    return out


def ladder(session: Session, at: datetime | None = None) -> list[tuple[str, list[int]]]:
    """The chase's steps at ``at``: each rank on call, then their supervisors,
    then every active supervisor and admin. Empty levels are left out."""
    people = on_call(session, at)
    levels: list[tuple[str, list[int]]] = []
    for rank in sorted({p.rank for p in people}):
        levels.append((f"rank {rank}", [p.staff_id for p in people if p.rank == rank]))
    alerted = {p.staff_id for p in people}
    sups = [p.supervisor_id for p in people if p.supervisor_id is not None]
    sups = [s for s in dict.fromkeys(sups) if _reachable(session, s)]
    if sups:
        levels.append(("supervisor", sups))
    fallback = session.scalars(
        select(Staff.id).where(Staff.active.is_(True), Staff.role.in_(FALLBACK_ROLES)).order_by(Staff.id)
    ).all()
    fallback = [s for s in fallback if s not in sups and s not in alerted and _reachable(session, s)]
    if fallback:
        levels.append(("all supervisors and admins", fallback))
    return [(name, ids) for name, ids in levels if ids]


def _reachable(session: Session, staff_id: int) -> bool:
    staff = session.get(Staff, staff_id)
    return staff is not None and staff.active and bool(staff.phone or staff.viber_id)


# --- alerting -----------------------------------------------------------------------
def alert_text(case: Case, config: Config) -> str:
    url = f"{config.public_url}/console/cases/{case.id}"
    variables = {"case_id": case.id, "severity": case.severity, "url": url}
    try:
        from lanpya.content import Content

        return Content.load(config=config).answer("staff_alert", "en", **variables)
    except Exception:  # noqa: BLE001 - an alert must go even when content is broken
        logger.warning("staff_alert text unavailable; using the built-in text")
        return ALERT_FALLBACK.format(**variables)


def _alert_staff(session: Session, case: Case, staff: Staff, step: int, text: str) -> bool:
    """One Alert row + its outbox row(s), all or nothing. False if already alerted."""
    if not staff.active or not (staff.phone or staff.viber_id):
        return False
    base_key = f"alert:{case.id}:{step}:{staff.id}"
    try:
        with session.begin_nested():
            alert = Alert(case_id=case.id, step=step, staff_id=staff.id,
                          channel=Contact.SMS if staff.phone else Contact.VIBER, created_at=clock.now())
            session.add(alert)
            session.flush()
            first = None
            if staff.phone:
                first = enqueue(session, body=text, channel=Contact.SMS, staff_id=staff.id, kind=Outbox.ALERT,
                                case_id=case.id, dedupe_key=base_key)
            if staff.viber_id:
                row = enqueue(session, body=text, channel=Contact.VIBER, staff_id=staff.id, kind=Outbox.ALERT,
                              case_id=case.id, dedupe_key=base_key if first is None and not staff.phone
                              else base_key + ":viber")
                first = first or row
            alert.outbox_id = first.id if first is not None else None
            session.flush()
    except IntegrityError:
        return False
    return True


def _take_step(session: Session, case: Case, config: Config, step: int, now: datetime, actor: str) -> int:
    """Alert the ``step``-th level of the ladder; returns how many were alerted."""
    levels = ladder(session, now)
    text = alert_text(case, config)
    sent = 0
    level_name = None
    # climb past levels nobody can be reached on; the last level repeats
    while levels:
        index = min(step, len(levels) - 1)
        level_name, ids = levels[index]
        for staff_id in ids:
            staff = session.get(Staff, staff_id)
            if staff is not None and _alert_staff(session, case, staff, step, text):
                sent += 1
        if sent or step >= len(levels) - 1:
            break
        step += 1
    case.chase_step = step
    interval = timedelta(minutes=_deadline_minutes(config, case.severity))
    if step == 0:
        # the deadline by this process's configuration (open_case may have had none)
        case.deadline_at = (case.created_at or now) + interval
        case.next_chase_at = case.deadline_at
    else:
        case.next_chase_at = now + interval
    if sent and case.status == Case.NEW:
        case.status = Case.NOTIFIED
        case.notified_at = now
    case.updated_at = now
    if not levels:
        logger.error("case %s: nobody on the roster can be alerted (no phone or Viber id)", case.id)
    audit.record(session, "alert_sent" if step == 0 else "chase_step", "case", case.id, actor=actor,
                 detail={"step": step, "level": level_name, "alerted": sent})
    logger.info("case %s: step %s (%s) alerted %s staff", case.id, step, level_name, sent)
    return sent


def alert_on_call(session: Session, case: Case, config: Config) -> int:
    """Step 0: alert the staff on call now. Safe to call twice (no second alert)."""
    if case.status == Case.CLOSED or case.acknowledged_at is not None:
        return 0
    if session.scalar(select(Alert.id).where(Alert.case_id == case.id).limit(1)) is not None:
        return 0
    return _take_step(session, case, config, 0, clock.now(), audit.SYSTEM)


def chase_due(db: Database, config: Config, limit: int = 50) -> int:
    """Take the next chase step of every case past its ``next_chase_at``.

    Safe to run from several schedulers at once: each case is stepped under
    a row lock, and the Alert unique constraint refuses a second alert for
    the same step. Returns the number of cases stepped."""
    now = clock.now()
    with db.session() as s:
        due = s.scalars(
            select(Case.id).where(
                Case.status.in_([Case.NEW, Case.NOTIFIED]), Case.acknowledged_at.is_(None),
                Case.next_chase_at.is_not(None), Case.next_chase_at <= now,
            ).order_by(Case.next_chase_at).limit(limit)
        ).all()
    stepped = 0
    for case_id in due:
        try:
            with db.session() as s:
                q = select(Case).where(Case.id == case_id)
                if db.is_postgres:
                    q = q.with_for_update(skip_locked=True)
                case = s.scalar(q)
                if (case is None or case.acknowledged_at is not None or case.status not in (Case.NEW, Case.NOTIFIED)
                        or case.next_chase_at is None or case.next_chase_at > now):
                    continue  # another scheduler took it, or it was acknowledged meanwhile
                has_alerts = s.scalar(select(Alert.id).where(Alert.case_id == case.id).limit(1)) is not None
                step = case.chase_step + 1 if has_alerts else 0
                _take_step(s, case, config, step, now, audit.SCHEDULER)
                stepped += 1
        except Exception:  # one bad case must not stop the others
            logger.exception("case %s: chase step failed", case_id)
    return stepped


def alert_status(session: Session, case_id: int) -> list[dict]:
    """Every alert of a case and how its message fared (for the console)."""
    rows = session.execute(
        select(Alert, Staff.email, Outbox.state, Outbox.error_code, Outbox.attempts)
        .join(Staff, Staff.id == Alert.staff_id)
        .outerjoin(Outbox, Outbox.id == Alert.outbox_id)
        .where(Alert.case_id == case_id).order_by(Alert.step, Alert.id)
    ).all()
    return [
        {"step": a.step, "staff_id": a.staff_id, "staff": email, "channel": a.channel, "at": a.created_at,
         "state": state or "unknown", "error_code": code, "attempts": attempts or 0,
         "failed": state in (Outbox.FAILED, Outbox.UNDELIVERED) or bool(code)}
        for a, email, state, code, attempts in rows
    ]


def alert_safely(session: Session, case: Case, config: Config) -> int:
    """:func:`alert_on_call` in a savepoint: a failure never loses the case
    (it stays due, and the scheduler alerts on its next run)."""
    try:
        with session.begin_nested():
            return alert_on_call(session, case, config)
    except Exception:  # noqa: BLE001 - the case must survive; the chaser retries
        logger.exception("case %s: alerting on-call failed; the scheduler will retry", case.id)
        return 0


def raise_severity(session: Session, case: Case, severity: str, *, actor: str = "bot",
                   config: Config | None = None) -> bool:
    """Raise (never lower) a case's severity, bringing its deadline forward."""
    severity = normalise_severity(severity)
    if case.status == Case.CLOSED or SEVERITY_RANK[severity] <= SEVERITY_RANK.get(case.severity, 0):
        return False
    _join(session, case, case.category, severity, clock.now(), None, actor, config)
    return True
