"""What providers tell us after a message went: Twilio status callbacks,
Viber delivered / seen / failed, Viber (un)subscriptions.

Shared by the webhooks and the spool replay. Callbacks arrive late and out
of order, so a message's status only ever moves forward in :data:`RANK`.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.channels.errors import OPTED_OUT, PERMANENT, TWILIO_CODES, UNREACHABLE
from lanpya.crypto import lookup_hash
from lanpya.models import Contact, Outbox

logger = logging.getLogger(__name__)

#: provider status → rank; a callback with a rank not above the stored one is ignored
RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}
TWILIO_STATUSES = frozenset(RANK)
#: provider status → outbox state (statuses not listed leave the state as it is)
STATE = {
    "delivered": Outbox.DELIVERED,
    "undelivered": Outbox.UNDELIVERED,
    "failed": Outbox.FAILED,
    "canceled": Outbox.CANCELLED,
    "read": Outbox.READ,
}
#: Viber events → the Twilio-style status they mean
VIBER_EVENT_STATUS = {"delivered": "delivered", "seen": "read", "failed": "failed"}


def _mark_contact(session: Session, contact_id: int | None, flag: str | None) -> None:
    if contact_id is None or flag is None:
        return
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    if flag == OPTED_OUT and not contact.opted_out:
        contact.opted_out = True
        contact.opted_out_at = clock.now()
    elif flag == UNREACHABLE:
        contact.unreachable = True


def _advance(session: Session, row: Outbox, status: str, error_code: str | None) -> bool:
    current = RANK.get(row.provider_status or "", -1)
    moved = RANK[status] > current
    if moved:
        row.provider_status = status
        # a row still in flight keeps "sending": the dispatcher records the outcome
        if status in STATE and row.state not in (Outbox.QUEUED, Outbox.SENDING):
            row.state = STATE[status]
    if error_code and moved:
        row.error_code = error_code[:32]
    return moved


def apply_twilio_status(
    session: Session, sid: str, status: str, error_code: str | None = None, ref: int | None = None
) -> str:
    """Record one Twilio status callback. Returns "updated", "stale" or "unknown".

    ``status`` must be in :data:`TWILIO_STATUSES` (the webhook refuses others).
    Error 21610 (recipient opted out) marks the contact opted out, whatever
    the order the callbacks came in.
    """
    row = session.scalar(
        select(Outbox).where(Outbox.channel == Contact.SMS, Outbox.provider_id == sid).limit(1)
    )
    if row is None and ref is not None:
        # the callback overtook the commit of the sid (``ref`` is the outbox id
        # we put in the StatusCallback URL, which Twilio signed)
        candidate = session.get(Outbox, ref)
        if candidate is not None and candidate.channel == Contact.SMS and candidate.provider_id in (None, sid):
            row = candidate
    if row is None:
        return "unknown"
    code = f"twilio:{error_code}" if error_code else None
    moved = _advance(session, row, status, code)
    if error_code:
        try:
            kind, flag = TWILIO_CODES.get(int(error_code), (None, None))
        except ValueError:
            kind, flag = None, None
        if kind == PERMANENT:
            _mark_contact(session, row.contact_id, flag)
    return "updated" if moved else "stale"


def apply_viber_status(session: Session, token: str, event: str, user_id: str | None) -> str:
    """Viber delivered / seen / failed for one message token (a broadcast's
    token is shared by its receivers: ``user_id`` picks the row)."""
    status = VIBER_EVENT_STATUS[event]
    rows = session.scalars(
        select(Outbox).where(Outbox.channel == Contact.VIBER, Outbox.provider_id == token).limit(400)
    ).all()
    if len(rows) > 1 and user_id:
        h = lookup_hash(user_id)
        ids = {
            c.id
            for c in session.scalars(
                select(Contact).where(Contact.id.in_([r.contact_id for r in rows if r.contact_id]))
            )
            if c.address_hash == h
        }
        rows = [r for r in rows if r.contact_id in ids]
    if not rows:
        return "unknown"
    moved = False
    for row in rows:
        moved = _advance(session, row, status, "viber:failed" if event == "failed" else None) or moved
    return "updated" if moved else "stale"


def viber_subscription(session: Session, user_id: str, subscribed: bool) -> None:
    """``unsubscribed``: the contact left the bot, so nothing can be sent and
    campaigns stop (opted out). ``subscribed``: reachable again (campaigns
    resume only with START or a new subscription through the bot)."""
    contact = session.scalar(
        select(Contact).where(Contact.channel == Contact.VIBER, Contact.address_hash == lookup_hash(user_id))
    )
    if contact is None:  # never wrote to us: nothing to record (store less)
        return
    if subscribed:
        contact.unreachable = False
    else:
        contact.opted_out = True
        contact.opted_out_at = clock.now()
        contact.unreachable = True
    contact.last_seen_at = clock.now()
