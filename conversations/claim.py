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

While the head waits for Rasa (in backoff after a failure), the messages
behind it are *screened* one at a time, in order: keywords (STOP …), risk
words (a case opens) and hand-off take effect at once; then the message goes
back to the queue (``screened_at`` set) to be answered in its turn.

The same screening happens out of turn under a backlog: a message still
queued ``BACKLOG_SCREEN_AFTER`` (5 s) after it arrived is screened by up to a
quarter of each pass's picks, newest first, so a report opens its case and
alerts on-call within seconds even when conversations queue for minutes
(found by the scale drill: 11 of 20 reports waited behind the queue).

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (see
lanpya.db), which serialises claim transactions the same way; one worker is
the supported set-up there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, lru_cache

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import aliased

from lanpya import clock
from lanpya.db import Database
from lanpya.models import Contact, Inbound

logger = logging.getLogger(__name__)

#: how long a claim is good for; a worker that dies loses it after this
LEASE = timedelta(seconds=90)


@dataclass(frozen=True)
class Claim:
    inbound_id: int
    #: True: only screen it (keywords, risk words, hand-off) because an earlier
    #: message of the same contact is waiting for Rasa; it goes back to the
    #: queue and is answered in order later
    screen: bool = False


# The statements are built once: building one costs more than running it.
PENDING = (Inbound.QUEUED, Inbound.PROCESSING)


@lru_cache(maxsize=128)
def _heads_statement(limit: int):
    """Contacts whose head (oldest pending message) is due."""
    now = bindparam("now")
    earlier = aliased(Inbound)
    no_earlier = ~(
        select(earlier.id)
        .where(earlier.contact_id == Inbound.contact_id, earlier.state.in_(PENDING), earlier.id < Inbound.id)
        .exists()
    )
    due = or_(
        and_(Inbound.state == Inbound.QUEUED, Inbound.next_attempt_at <= now),
        and_(Inbound.state == Inbound.PROCESSING, Inbound.lease_until < now),
    )
    return select(Inbound.contact_id, Inbound.id).where(due, no_earlier).order_by(Inbound.id).limit(limit)


@lru_cache(maxsize=128)
def _to_screen_statement(limit: int):
    """Contacts with an unscreened message behind a head that waits for Rasa."""
    waiting = aliased(Inbound)
    behind_waiting = (
        select(waiting.id)
        .where(
            waiting.contact_id == Inbound.contact_id,
            waiting.id < Inbound.id,
            waiting.state == Inbound.QUEUED,
            waiting.attempts > 0,
            waiting.next_attempt_at > bindparam("now"),
        )
        .exists()
    )
    return (
        select(Inbound.contact_id, Inbound.id)
        .where(Inbound.state == Inbound.QUEUED, Inbound.screened_at.is_(None), behind_waiting)
        .order_by(Inbound.id)
        .limit(limit)
    )


#: a message still queued this long after it arrived is behind a backlog: screen it
#: (keywords, risk words, hand-off) out of turn, so a report opens its case and
#: alerts on-call in seconds even when conversations queue for minutes
BACKLOG_SCREEN_AFTER = timedelta(seconds=5)


@lru_cache(maxsize=128)
def _backlog_statement(limit: int):
    """Unscreened messages queued longer than BACKLOG_SCREEN_AFTER, newest first
    (the oldest are next in line for their full turn anyway)."""
    return (
        select(Inbound.contact_id, Inbound.id)
        .where(
            Inbound.state == Inbound.QUEUED,
            Inbound.screened_at.is_(None),
            Inbound.kind == "text",
            Inbound.received_at < bindparam("before"),
        )
        .order_by(Inbound.id.desc())
        .limit(limit)
    )


@cache
def _pending_statement():
    """A contact's pending messages, oldest first (read under its lock)."""
    return (
        select(
            Inbound.id,
            Inbound.state,
            Inbound.next_attempt_at,
            Inbound.lease_until,
            Inbound.attempts,
            Inbound.screened_at,
        )
        .where(Inbound.contact_id == bindparam("contact_id"), Inbound.state.in_(PENDING))
        .order_by(Inbound.id)
        .limit(100)
    )


@cache
def _lock_statement(postgres: bool):
    """Lock the contacts (PostgreSQL: skipping those another worker holds)."""
    q = select(Contact.id).where(Contact.id.in_(bindparam("ids", expanding=True)))
    return q.with_for_update(skip_locked=True, key_share=True) if postgres else q


@cache
def _take_statement():
    return (
        update(Inbound)
        .where(Inbound.id == bindparam("inbound_id"))
        .values(state=Inbound.PROCESSING, lease_owner=bindparam("owner"), lease_until=bindparam("until"))
    )


def _backlog_pick(rows, waiting: int | None) -> Claim | None:
    """A screening claim for the contact's backlogged message, if it is still unscreened."""
    row = next((r for r in rows if r.id == waiting), None) if waiting is not None else None
    if row is not None and row.state == Inbound.QUEUED and row.screened_at is None:
        return Claim(row.id, screen=True)
    return None


def claim(db: Database, owner: str, limit: int, lease: timedelta = LEASE) -> list[Claim]:
    """Claim up to ``limit`` messages, at most one per contact."""
    if limit <= 0:
        return []
    now = clock.now()
    claimed: list[Claim] = []
    with db.session() as s:
        heads = s.execute(_heads_statement(limit * 2), {"now": now}).all()
        to_screen = s.execute(_to_screen_statement(limit * 2), {"now": now}).all()
        # a backlog: a quarter of the picks screen waiting messages out of turn
        backlog_budget = max(1, limit // 4)
        backlog = {
            row.contact_id: row.id
            for row in s.execute(
                _backlog_statement(backlog_budget * 2), {"before": now - BACKLOG_SCREEN_AFTER}
            ).all()
        }
        order: list[int] = list(backlog)
        for row in sorted([*heads, *to_screen], key=lambda r: r.id):
            if row.contact_id not in order:
                order.append(row.contact_id)
        if not order:
            return []
        locked = set(s.scalars(_lock_statement(db.is_postgres), {"ids": order}))
        for contact_id in order:
            if contact_id not in locked:
                continue
            # under the contact's lock: a fresh look at its pending messages
            rows = s.execute(_pending_statement(), {"contact_id": contact_id}).all()
            if not rows:
                continue
            if any(
                r.state == Inbound.PROCESSING and r.lease_until is not None and r.lease_until >= now
                for r in rows
            ):
                continue  # a worker has this contact
            head = rows[0]
            pick = _backlog_pick(rows, backlog.get(contact_id)) if backlog_budget > 0 else None
            if pick is not None:
                backlog_budget -= 1
            elif (
                head.state == Inbound.PROCESSING
                or head.next_attempt_at is None
                or head.next_attempt_at <= now
            ):
                if head.state == Inbound.PROCESSING:
                    logger.warning("inbound %s: lease expired, reclaiming", head.id)
                pick = Claim(head.id)
            elif head.attempts > 0:
                follower = next(
                    (r for r in rows[1:] if r.state == Inbound.QUEUED and r.screened_at is None), None
                )
                if follower is not None:
                    pick = Claim(follower.id, screen=True)
            if pick is None:
                continue
            s.execute(
                _take_statement(),
                {"inbound_id": pick.inbound_id, "owner": owner, "until": now + lease},
            )
            claimed.append(pick)
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
