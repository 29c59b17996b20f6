"""Writing to the outbox. Sending is the worker's job (``lanpya.channels``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.models import Contact, Outbox
from lanpya.text import segments_for


def enqueue(
    session: Session,
    *,
    body: str,
    channel: str,
    contact: Contact | None = None,
    staff_id: int | None = None,
    kind: str = Outbox.REPLY,
    inbound_id: int | None = None,
    case_id: int | None = None,
    fire_id: int | None = None,
    seq: int = 0,
    dedupe_key: str | None = None,
    not_before=None,
    extra: dict | None = None,
    guarded: bool = False,
) -> Outbox | None:
    """Add one message to send; returns None when ``dedupe_key`` was already used.

    ``guarded``: the caller holds the lock that makes ``dedupe_key`` unused (the
    worker answering the inbound message it has locked and leases): the row is
    added without the look-up and savepoint, and written with the transaction's
    other rows. The unique constraint still stands behind it: a duplicate fails
    the whole transaction instead of being skipped."""
    seg = segments_for(body)
    now = clock.now()
    row = Outbox(
        channel=channel,
        kind=kind,
        priority=Outbox.PRIORITY.get(kind, 1),
        contact_id=contact.id if contact is not None else None,
        staff_id=staff_id,
        body=body,
        encoding=seg.encoding,
        segments=seg.segments,
        inbound_id=inbound_id,
        case_id=case_id,
        fire_id=fire_id,
        seq=seq,
        dedupe_key=dedupe_key,
        not_before=not_before,
        next_attempt_at=not_before or now,
        created_at=now,
        extra=extra,
    )
    if guarded:
        session.add(row)
        return row
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return None
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row
