"""Inbound queue and outbox. Every message received or to be sent is a row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lanpya.crypto import EncryptedJSON, EncryptedText
from lanpya.models.base import Base, utcnow


class Inbound(Base):
    """A message received from a provider, stored before it is acknowledged."""

    __tablename__ = "inbound"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        Index("ix_inbound_claim", "state", "next_attempt_at"),
        Index("ix_inbound_contact_order", "contact_id", "id"),
        Index("ix_inbound_received", "received_at"),
        #: insights: questions by period/topic/language/channel, read from the index alone
        Index("ix_inbound_insights", "received_at", "intent", "language", "channel", "contact_id"),
    )

    QUEUED = "queued"  # waiting for the worker
    PROCESSING = "processing"  # claimed by a worker (lease)
    DONE = "done"  # answered (or deliberately not answered)
    HANDOFF = "handoff"  # went to a human on a case, not to Rasa
    FAILED = "failed"  # gave up; staff can see it
    STATES = (QUEUED, PROCESSING, DONE, HANDOFF, FAILED)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    provider_id: Mapped[str] = mapped_column(String(80))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    #: normalised text (NFC, Zawgyi converted), encrypted
    body: Mapped[str | None] = mapped_column(EncryptedText)
    #: media URLs, stickers, locations: encrypted
    media: Mapped[dict | None] = mapped_column(EncryptedJSON)
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text, media, sticker, location, event
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(12), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: what the text looked like before normalisation: unicode / zawgyi
    encoding: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(String(3))
    #: keyword handled before Rasa (stop, start, help, language, delete ...)
    keyword: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(60))
    confidence: Mapped[float | None] = mapped_column(Float)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id", ondelete="SET NULL"))
    #: a holding reply was sent for this message while Rasa was away
    held_reply_sent: Mapped[bool] = mapped_column(default=False)
    #: checked for keywords and risk words while an earlier message of the
    #: same contact waited for Rasa (it is still answered in order later)
    screened_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(String(200))


class Outbox(Base):
    """A message to send. The row exists before any provider call."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        #: the claim reads due rows in (priority, id) order: the index gives that order, so
        #: a claim reads its batch instead of sorting every queued row (a 100k fire: 250 ms a claim)
        Index("ix_outbox_claim", "state", "channel", "priority", "id"),
        Index("ix_outbox_provider", "channel", "provider_id"),
        Index("ix_outbox_fire", "fire_id", "state"),
        Index("ix_outbox_contact", "contact_id"),
        #: insights: campaign reach by period, read from the index alone
        Index("ix_outbox_insights", "kind", "created_at", "state", "channel", "contact_id", "sent_at"),
    )

    # kinds, highest priority first
    REPLY = "reply"
    ALERT = "alert"
    AGENT = "agent"
    SYSTEM = "system"
    CAMPAIGN = "campaign"
    PRIORITY = {REPLY: 0, ALERT: 0, AGENT: 0, SYSTEM: 1, CAMPAIGN: 5}

    # states
    QUEUED = "queued"  # to be sent
    SENDING = "sending"  # claimed; a provider call may be in flight
    SENT = "sent"  # the provider accepted it (provider_id set)
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    UNSENT = "unsent"  # no provider configured: kept for `lanpya outbox`
    CANCELLED = "cancelled"  # e.g. the contact opted out before it went
    SKIPPED = "skipped"  # excluded at send time (quiet hours passed, case open ...)
    FINAL = (DELIVERED, READ, UNDELIVERED, FAILED, UNSENT, CANCELLED, SKIPPED)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(10), default=REPLY)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    body: Mapped[str | None] = mapped_column(EncryptedText)
    #: extra provider payload (Viber keyboard, media ...)
    extra: Mapped[dict | None] = mapped_column(JSON)
    encoding: Mapped[str | None] = mapped_column(String(6))  # GSM-7 / UCS-2
    segments: Mapped[int | None] = mapped_column(Integer)
    #: the engine's idempotency key, e.g. "fire:12:contact:34"
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id", ondelete="SET NULL"))
    fire_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_fire.id", ondelete="SET NULL"))
    #: order of replies to one inbound message
    seq: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(12), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    #: do not send before (quiet hours)
    not_before: Mapped[datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    provider_id: Mapped[str | None] = mapped_column(String(80))
    provider_status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
