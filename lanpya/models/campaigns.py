"""Audiences, campaigns and their fires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lanpya.models.base import Base, utcnow


class Audience(Base):
    """A saved filter over contacts: {languages, states, townships, roles, channels}."""

    __tablename__ = "audience"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    filter: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaign"

    # schedule kinds
    ONCE = "once"
    CRON = "cron"
    SEQUENCE = "sequence"
    # statuses
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    audience_id: Mapped[int] = mapped_column(ForeignKey("audience.id"))
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    schedule_kind: Mapped[str] = mapped_column(String(10), default=ONCE)
    run_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: cron expression, in Asia/Yangon
    cron: Mapped[str | None] = mapped_column(String(120))
    quiet_start: Mapped[str] = mapped_column(String(5), default="20:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CampaignMessage(Base):
    """The text of one step of a campaign in one language.

    For ``once`` and ``cron`` campaigns there is one step (0); for sequences,
    ``offset_days`` after the contact joined."""

    __tablename__ = "campaign_message"
    __table_args__ = (UniqueConstraint("campaign_id", "step", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer, default=0)
    offset_days: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(3))
    body: Mapped[str] = mapped_column(String(2000))


class CampaignFire(Base):
    """One firing of one step of a campaign. Unique, so re-firing adds nothing."""

    __tablename__ = "campaign_fire"
    __table_args__ = (UniqueConstraint("campaign_id", "step", "scheduled_for"),)

    PENDING = "pending"
    MATERIALISING = "materialising"
    QUEUED = "queued"  # outbox rows written
    DONE = "done"
    MISSED = "missed"  # past its grace time; reported, not sent

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_for: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(14), default=PENDING)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(200))
