"""Per-sender abuse limits and the new-number flood circuit breaker.

- Throttle: a contact who sent more than ``sender_limit_per_min`` messages in
  the minute up to a message gets one notice per window and no other replies;
  every message is still stored (and still screened by the risk lexicon).
- Flood breaker: more than ``new_sender_limit_per_min`` new contacts in a
  minute trips it. Staff are alerted (log + an ALERT outbox message to each
  active admin and supervisor with a phone number) and numbers first seen
  while it is open are not auto-answered until it resets ``HOLD`` after the
  flood stops. Its state is a :class:`~lanpya.models.Lease` row, shared by
  every worker; the alert is deduplicated per trip (the lease epoch).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lanpya import outbox
from lanpya.models import Contact, Inbound, Lease, Outbox, Staff

logger = logging.getLogger(__name__)

WINDOW = timedelta(minutes=1)
#: one throttle notice per contact per this many seconds of throttling
NOTICE_WINDOW_S = 600
#: the breaker stays open this long after the last minute over the limit
HOLD = timedelta(minutes=10)
BREAKER = "flood-breaker"


def over_sender_limit(s: Session, msg: Inbound, limit: int) -> bool:
    if limit <= 0:
        return False
    count = s.scalar(
        select(func.count())
        .select_from(Inbound)
        .where(
            Inbound.contact_id == msg.contact_id,
            Inbound.id <= msg.id,
            Inbound.received_at > msg.received_at - WINDOW,
        )
    )
    return (count or 0) > limit


def throttle_window(at: datetime) -> int:
    return int(at.timestamp()) // NOTICE_WINDOW_S


def breaker_open(s: Session, now: datetime) -> bool:
    lease = s.get(Lease, BREAKER)
    return lease is not None and lease.expires_at is not None and lease.expires_at > now


def is_new_contact(contact: Contact, now: datetime) -> bool:
    """First seen recently enough to belong to the flood."""
    return contact.created_at is not None and contact.created_at >= now - HOLD


def check_flood(s: Session, now: datetime, limit: int) -> bool:
    """Trip (or keep open) the breaker when new contacts exceed ``limit`` a minute.

    Returns True when it tripped just now. Called by every worker's loop."""
    if limit <= 0:
        return False
    new = s.scalar(select(func.count()).select_from(Contact).where(Contact.created_at > now - WINDOW)) or 0
    if new <= limit:
        return False
    q = select(Lease).where(Lease.name == BREAKER)
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        q = q.with_for_update()
    lease = s.scalar(q)
    if lease is None:
        lease = Lease(name=BREAKER, holder="tripped", epoch=0)
        s.add(lease)
    was_open = lease.expires_at is not None and lease.expires_at > now
    lease.expires_at = now + HOLD
    if was_open:
        return False
    lease.epoch = (lease.epoch or 0) + 1
    lease.holder = "tripped"
    s.flush()
    logger.error(
        "flood breaker tripped: %d new numbers in the last minute (limit %d); "
        "new numbers are not auto-answered until %s UTC", new, limit, f"{lease.expires_at:%H:%M}",
    )
    body = (
        f"Lanpya: flood alert, {new} new numbers in 1 min. New numbers are not auto-answered "
        f"until {lease.expires_at:%H:%M} UTC. Check the console."
    )
    staff = s.scalars(
        select(Staff).where(
            Staff.active.is_(True), Staff.role.in_((Staff.ADMIN, Staff.SUPERVISOR)), Staff.phone.is_not(None)
        )
    ).all()
    for person in staff:
        outbox.enqueue(
            s, body=body, channel=Contact.SMS, staff_id=person.id, kind=Outbox.ALERT,
            dedupe_key=f"flood:{lease.epoch}:{person.id}",
        )
    return True
