"""The one way a received message enters the system.

Provider webhooks, the disk spool's replay and ``lanpya say`` all call
:func:`receive`: find or create the contact by keyed hash, normalise the
text, store one :class:`~lanpya.models.Inbound` row keyed by
(channel, provider id). A repeat delivery finds the existing row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock, wakeup
from lanpya.crypto import lookup_hash
from lanpya.models import Contact, Inbound
from lanpya.phone import country_of, timezone_of
from lanpya.text import normalise_text

logger = logging.getLogger(__name__)


@dataclass
class Received:
    inbound_id: int
    contact_id: int
    created: bool  # False: a repeat delivery, already stored


def get_or_create_contact(session: Session, channel: str, address: str) -> Contact:
    """The contact for (channel, address); ``address`` is E.164 or a Viber id."""
    h = lookup_hash(address)
    contact = session.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == h))
    if contact is not None:
        return contact
    contact = Contact(channel=channel, address_hash=h, address=address)
    if channel == Contact.SMS:
        contact.country = country_of(address)
        contact.timezone = timezone_of(address)
    try:
        with session.begin_nested():
            session.add(contact)
            session.flush()
    except IntegrityError:
        # another process created it between our select and insert
        contact = session.scalar(
            select(Contact).where(Contact.channel == channel, Contact.address_hash == h)
        )
        assert contact is not None
    return contact


def receive(
    session: Session,
    *,
    channel: str,
    provider_id: str,
    address: str,
    text: str | None,
    kind: str = "text",
    media: dict | None = None,
) -> Received:
    """Store one inbound message (idempotent on channel + provider_id).

    The caller commits. Raises only on database errors (the caller spools).
    """
    existing = session.execute(
        select(Inbound.id, Inbound.contact_id).where(
            Inbound.channel == channel, Inbound.provider_id == provider_id
        )
    ).first()
    if existing is not None:
        return Received(existing.id, existing.contact_id, False)
    contact = get_or_create_contact(session, channel, address)
    norm = normalise_text(text)
    now = clock.now()
    inbound = Inbound(
        channel=channel,
        provider_id=provider_id,
        contact_id=contact.id,
        body=norm.text,
        media=media,
        kind=kind,
        encoding=norm.encoding if norm.zawgyi_probability > 0 else None,
        received_at=now,
        next_attempt_at=now,
    )
    if norm.encoding == "zawgyi":
        contact.encoding = "zawgyi"
    elif norm.zawgyi_probability and norm.zawgyi_probability < 0.05:
        contact.encoding = "unicode"
    contact.last_seen_at = now
    try:
        with session.begin_nested():
            session.add(inbound)
            session.flush()
    except IntegrityError:
        row = session.execute(
            select(Inbound.id, Inbound.contact_id).where(
                Inbound.channel == channel, Inbound.provider_id == provider_id
            )
        ).one()
        return Received(row.id, row.contact_id, False)
    wakeup.notify(session)  # the worker wakes when this commits (PostgreSQL)
    return Received(inbound.id, contact.id, True)
