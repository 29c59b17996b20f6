"""Keeping less: retention purges, erasure on request, key rotation.

- :func:`purge` runs nightly in the scheduler (and ``lanpya purge``): message
  bodies and finished outbox rows past ``RETENTION_MESSAGE_DAYS``, closed
  cases past ``RETENTION_CLOSED_CASE_DAYS`` anonymised, Rasa tracker events
  past ``RETENTION_TRACKER_DAYS``, audit entries past ``RETENTION_AUDIT_DAYS``,
  and the last identifiers of contacts whose erasure has been confirmed.
- :func:`erase_contact` erases one contact: messages, Rasa tracker,
  subscription and identifiers; cases are kept only anonymised.
- :func:`rotate_keys` re-encrypts every encrypted value under the first key
  of ``LANPYA_DATA_KEY`` and recomputes lookup hashes with ``LANPYA_LOOKUP_KEY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import LargeBinary, and_, delete, func, literal, select, type_coerce, update
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.config import Config
from lanpya.crypto import EncryptedJSON, EncryptedText, keyring
from lanpya.db import Database, make_engine
from lanpya.models import AuditLog, Base, Case, CaseNote, Contact, Inbound, Outbox

logger = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + int(n or 0)

    def lines(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        return [f"{verb} {n:>8}  {kind}" for kind, n in self.counts.items()]


def _count(session: Session, stmt) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def anonymise_case(session: Session, case: Case) -> None:
    """Keep the case for statistics; remove everything that identifies anyone."""
    case.contact_id = None
    case.narrative = None
    case.answers = None
    case.anonymised = True
    case.handoff = False
    session.execute(delete(CaseNote).where(CaseNote.case_id == case.id))
    session.execute(update(Inbound).where(Inbound.case_id == case.id).values(case_id=None))


def purge(db: Database, config: Config, dry_run: bool = False) -> PurgeReport:
    now = clock.now()
    report = PurgeReport(dry_run=dry_run)
    msg_cut = now - timedelta(days=config.retention_message_days)
    case_cut = now - timedelta(days=config.retention_closed_case_days)
    audit_cut = now - timedelta(days=config.retention_audit_days)
    with db.session() as s:
        # message bodies: inbound rows are deleted once answered and old;
        # unanswered ones are kept (nothing received is lost)
        inbound_q = select(Inbound.id).where(
            Inbound.received_at < msg_cut, Inbound.state.in_([Inbound.DONE, Inbound.HANDOFF, Inbound.FAILED])
        )
        outbox_q = select(Outbox.id).where(Outbox.created_at < msg_cut, Outbox.state.in_(Outbox.FINAL + (Outbox.SENT,)))
        report.add("inbound messages", _count(s, inbound_q))
        report.add("outbox messages", _count(s, outbox_q))
        closed_q = select(Case).where(Case.status == Case.CLOSED, Case.closed_at < case_cut, Case.anonymised.is_(False))
        closed = list(s.scalars(closed_q))
        report.add("closed cases anonymised", len(closed))
        audit_q = select(AuditLog.id).where(AuditLog.at < audit_cut)
        report.add("audit entries", _count(s, audit_q))
        wipe_q = select(Contact).where(Contact.erased_at.is_not(None), Contact.address.is_not(None))
        wipe = [c for c in s.scalars(wipe_q) if not _has_pending(s, c.id)]
        report.add("erased contacts' last identifiers", len(wipe))
        if not dry_run:
            s.execute(
                update(Outbox)
                .where(Outbox.inbound_id.in_(inbound_q.scalar_subquery()))
                .values(inbound_id=None)
                .execution_options(synchronize_session=False)
            )
            s.execute(delete(Outbox).where(Outbox.id.in_(outbox_q.scalar_subquery())).execution_options(synchronize_session=False))
            s.execute(delete(Inbound).where(Inbound.id.in_(inbound_q.scalar_subquery())).execution_options(synchronize_session=False))
            for case in closed:
                anonymise_case(s, case)
            s.execute(delete(AuditLog).where(AuditLog.at < audit_cut))
            for contact in wipe:
                # what arrived or was said during the erasure turn itself
                s.execute(update(Outbox).where(Outbox.contact_id == contact.id).values(inbound_id=None))
                s.execute(delete(Inbound).where(Inbound.contact_id == contact.id, Inbound.state != Inbound.PROCESSING))
                s.execute(delete(Outbox).where(Outbox.contact_id == contact.id, Outbox.state.in_(Outbox.FINAL + (Outbox.SENT,))))
                contact.address = None
                contact.address_hash = None
                purge_trackers(config, sender_id=contact.uuid)
    report.add("rasa tracker events", purge_trackers(config, days=config.retention_tracker_days, dry_run=dry_run))
    for line in report.lines():
        logger.info(line)
    return report


def _has_pending(session: Session, contact_id: int) -> bool:
    """A reply may still go to this contact: one is queued, or a turn is in hand."""
    queued = session.scalar(
        select(func.count()).where(Outbox.contact_id == contact_id, Outbox.state.in_([Outbox.QUEUED, Outbox.SENDING]))
    )
    in_hand = session.scalar(
        select(func.count()).where(Inbound.contact_id == contact_id, Inbound.state == Inbound.PROCESSING)
    )
    return bool(queued or in_hand)


def _tracker_engine(config: Config):
    url = config.rasa_tracker_url or f"sqlite:///{config.var_dir / 'rasa-tracker.db'}"
    if url.startswith("sqlite") and not (config.var_dir / "rasa-tracker.db").exists() and not config.rasa_tracker_url:
        return None
    return make_engine(url)


def purge_trackers(config: Config, *, days: int | None = None, sender_id: str | None = None, dry_run: bool = False) -> int:
    """Delete Rasa tracker events older than ``days``, or all of one sender's."""
    engine = _tracker_engine(config)
    if engine is None:
        return 0
    from sqlalchemy import MetaData, Table

    try:
        events = Table("events", MetaData(), autoload_with=engine)
    except Exception:  # noqa: BLE001 - no tracker table yet: nothing to purge
        engine.dispose()
        return 0
    cond = []
    if days is not None:
        cutoff = (clock.now() - timedelta(days=days)).timestamp()
        cond.append(events.c.timestamp < cutoff)
    if sender_id is not None:
        cond.append(events.c.sender_id == sender_id)
    where = and_(*cond) if cond else None
    with engine.begin() as conn:
        n = conn.scalar(select(func.count()).select_from(events).where(where)) or 0
        if not dry_run and n:
            conn.execute(delete(events).where(where))
    engine.dispose()
    return int(n)


def erase_contact(session: Session, contact: Contact, config: Config, *, staff_id: int | None = None) -> dict:
    """Erase what we hold about ``contact``. The caller commits.

    Messages, subscription, profile and Rasa tracker go now; cases stay only
    anonymised (an open case keeps running for the hotline, with an audit
    note). The address itself is wiped by the next purge once any pending
    confirmation has been sent, so the contact can still be told it is done.
    """
    from lanpya import audit

    counts = {}
    counts["outbox"] = session.execute(
        delete(Outbox).where(
            Outbox.contact_id == contact.id, Outbox.state.notin_([Outbox.QUEUED, Outbox.SENDING])
        )
    ).rowcount
    session.execute(update(Outbox).where(Outbox.contact_id == contact.id).values(inbound_id=None))
    counts["inbound"] = session.execute(
        delete(Inbound).where(Inbound.contact_id == contact.id, Inbound.state != Inbound.PROCESSING)
    ).rowcount
    # the message in hand (the DELETE confirmation itself) stays, emptied, until the purge
    session.execute(
        update(Inbound)
        .where(Inbound.contact_id == contact.id, Inbound.state == Inbound.PROCESSING)
        .values(body=None, media=None)
    )
    cases = list(session.scalars(select(Case).where(Case.contact_id == contact.id)))
    for case in cases:
        if case.status in Case.OPEN:
            audit.record(session, "reporter_erased", "case", case.id, staff_id=staff_id, actor=None if staff_id else "contact")
        anonymise_case(session, case)
    counts["cases_anonymised"] = len(cases)
    counts["tracker_events"] = purge_trackers(config, sender_id=contact.uuid)
    contact.subscribed = False
    contact.roles = []
    contact.state = None
    contact.township = None
    contact.language = None
    contact.joined_at = None
    contact.erase_requested_at = None
    contact.erased_at = clock.now()
    contact.opted_out = True
    if not _has_pending(session, contact.id):
        contact.address = None
        contact.address_hash = None
    audit.record(session, "contact_erased", "contact", contact.id, staff_id=staff_id,
                 actor=None if staff_id else "contact", detail=counts)
    logger.info("contact %s erased: %s", contact.id, counts)
    return counts


# --- key rotation --------------------------------------------------------------------
def encrypted_columns() -> list[tuple[type, str]]:
    out = []
    for mapper in Base.registry.mappers:
        for col in mapper.columns:
            if isinstance(col.type, EncryptedText | EncryptedJSON):
                out.append((mapper.class_, col.key))
    return out


def rotate_keys(db: Database, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every value under the first data key; recompute lookup hashes."""
    ring = keyring()
    counts: dict[str, int] = {}
    for model, attr in encrypted_columns():
        col = getattr(model, attr)
        pk = model.__mapper__.primary_key[0]
        raw = type_coerce(col, LargeBinary)
        last = None
        n = 0
        while True:
            with db.session() as s:
                q = select(pk, raw.label("v")).where(col.is_not(None)).order_by(pk).limit(batch)
                if last is not None:
                    q = q.where(pk > last)
                rows = s.execute(q).all()
                for row in rows:
                    s.execute(update(model.__table__).where(pk == row[0]).values({col.name: literal(ring.rotate(row.v), LargeBinary)}))
                n += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1][0]
        counts[f"{model.__tablename__}.{attr}"] = n
    with db.session() as s:
        rehashed = 0
        for contact in s.scalars(select(Contact).where(Contact.address.is_not(None))):
            new = ring.lookup_hash(contact.address)
            if new != contact.address_hash:
                contact.address_hash = new
                rehashed += 1
        counts["contact.address_hash"] = rehashed
    return counts


def count_under_old_keys(db: Database) -> int:
    """How many values are not encrypted under the first key (0 after rotation)."""
    first = keyring().fernets[0]
    n = 0
    with db.session() as s:
        for model, attr in encrypted_columns():
            col = getattr(model, attr)
            for value in s.scalars(select(type_coerce(col, LargeBinary)).where(col.is_not(None))):
                try:
                    first.decrypt(bytes(value))
                except Exception:  # noqa: BLE001 - InvalidToken: another key
                    n += 1
    return n


