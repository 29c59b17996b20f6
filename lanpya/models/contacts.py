"""People who text us. Their address (phone or Viber id) is encrypted; it is
found by a keyed hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lanpya.crypto import EncryptedText
from lanpya.models.base import Base, random_id, utcnow


class Contact(Base):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("channel", "address_hash"),
        Index("ix_contact_audience", "subscribed", "opted_out", "language", "township"),
        Index("ix_contact_joined", "joined_at"),  # insights: subscribers by period
        Index("ix_contact_opted_out_at", "opted_out_at"),  # insights: opt-outs by period
    )

    # channels
    SMS = "sms"
    VIBER = "viber"
    CHANNELS = (SMS, VIBER)
    # who they are (tags; more may be added as free tags)
    ROLES = ("planning", "family", "returnee")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: random id: the only identifier Rasa and logs ever see
    uuid: Mapped[str] = mapped_column(String(32), unique=True, default=random_id)
    channel: Mapped[str] = mapped_column(String(10))
    #: HMAC of the E.164 number or Viber user id; NULL once erased
    address_hash: Mapped[str | None] = mapped_column(String(64))
    #: the E.164 number or Viber user id, encrypted; NULL once erased
    address: Mapped[str | None] = mapped_column(EncryptedText)
    #: ISO country of the number (MM, TH, CN, MY ...), for quiet hours and pricing
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(40), default="Asia/Yangon")
    language: Mapped[str | None] = mapped_column(String(3))
    #: True when the contact chose the language (detection no longer overrides it)
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "unicode" or "zawgyi": how they write Burmese, so replies can match
    encoding: Mapped[str] = mapped_column(String(8), default="unicode")
    state: Mapped[str | None] = mapped_column(String(40))
    township: Mapped[str | None] = mapped_column(String(60))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: a permanent provider failure (invalid number, not on Viber ...)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: when the last Rasa session started (sessions reset after inactivity)
    session_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: asked to erase; waiting for their confirmation
    erase_requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __repr__(self) -> str:  # never the address
        return f"<Contact {self.id} {self.channel} {self.uuid[:8]}>"
