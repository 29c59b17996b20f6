"""Claiming inbound messages: in arrival order per contact, never two of one
contact at once, across any number of worker processes.

The race and how it is closed
-----------------------------
Every claim of a contact's message happens inside a transaction that first
locks that contact's row (PostgreSQL: ``FOR NO KEY UPDATE SKIP LOCKED``, so
webhooks inserting new messages, which take ``FOR KEY SHARE``, are not
blocked, and a second worker skips the contact instead of waiting). Under
the lock the worker re-reads the contact's *head* — its oldest message that
is queued or processing — with a fresh statement; READ COMMITTED means it
sees what the previous lock holder committed. It claims the head only if it
is queued and due (or a processing message whose lease expired: its worker
died). So for one contact the claims are serialised by the row lock, and at
most one message is ``processing`` at a time; the next one becomes the head
only after the previous one left ``processing``.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (see
lanpya.db), which serialises claim transactions the same way; one worker is
the supported set-up there.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, func, or_, select, update

from lanpya import clock
from lanpya.db import Database
from lanpya.models import Contact, Inbound

logger = logging.getLogger(__name__)

#: how long a claim is good for; a worker that dies loses it after this
LEASE = timedelta(seconds=90)


def claim(db: Database, owner: str, limit: int, lease: timedelta = LEASE) -> list[int]:
    """Claim up to ``limit`` messages, at most one per contact; returns inbound ids."""
    if limit <= 0:
        return []
    now = clock.now()
    claimed: list[int] = []
    with db.session() as s:
        due = or_(
            and_(Inbound.state == Inbound.QUEUED, Inbound.next_attempt_at <= now),
            and_(Inbound.state == Inbound.PROCESSING, Inbound.lease_until < now),
        )
        first = func.min(Inbound.id).label("first")
        candidates = s.execute(
            select(Inbound.contact_id, first)
            .where(due)
            .group_by(Inbound.contact_id)
            .order_by(first)
            .limit(limit * 4)
        ).all()
        if not candidates:
            return []
        order = [c.contact_id for c in candidates]
        q = select(Contact.id).where(Contact.id.in_(order))
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True, key_share=True)
        locked = set(s.scalars(q))
        for contact_id in order:
            if contact_id not in locked:
                continue
            head = s.execute(
                select(Inbound.id, Inbound.state, Inbound.next_attempt_at, Inbound.lease_until)
                .where(
                    Inbound.contact_id == contact_id,
                    Inbound.state.in_((Inbound.QUEUED, Inbound.PROCESSING)),
                )
                .order_by(Inbound.id)
                .limit(1)
            ).first()
            if head is None:
                continue
            if head.state == Inbound.PROCESSING:
                if head.lease_until is not None and head.lease_until >= now:
                    continue  # another worker has this contact
                logger.warning("inbound %s: lease expired, reclaiming", head.id)
            elif head.next_attempt_at is not None and head.next_attempt_at > now:
                continue  # waiting for a retry: later messages wait behind it
            s.execute(
                update(Inbound)
                .where(Inbound.id == head.id)
                .values(state=Inbound.PROCESSING, lease_owner=owner, lease_until=now + lease)
            )
            claimed.append(head.id)
            if len(claimed) >= limit:
                break
    return claimed


def release(db: Database, owner: str) -> int:
    """Give back every message this worker still holds (on shutdown)."""
    with db.session() as s:
        result = s.execute(
            update(Inbound)
            .where(Inbound.state == Inbound.PROCESSING, Inbound.lease_owner == owner)
            .values(state=Inbound.QUEUED, lease_owner=None, lease_until=None)
        )
        return result.rowcount or 0
