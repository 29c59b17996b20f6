"""Cases: reports of trafficking, forced marriage, missing people, worked by
hotline staff. Narratives, notes and form answers are encrypted at rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lanpya.crypto import EncryptedJSON, EncryptedText
from lanpya.models.base import Base, utcnow


class Staff(Base):
    __tablename__ = "staff"

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    CAMPAIGNER = "campaigner"
    INSIGHTS = "insights"
    ROLES = (ADMIN, SUPERVISOR, AGENT, CAMPAIGNER, INSIGHTS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(12))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    viber_id: Mapped[str | None] = mapped_column(EncryptedText)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    #: sha256 of the API token (`lanpya staff token EMAIL`)
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Shift(Base):
    """One line of the weekly on-call roster, in Asia/Yangon time."""

    __tablename__ = "shift"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start: Mapped[datetime] = mapped_column(Time)
    end: Mapped[datetime] = mapped_column(Time)
    #: 1 = first called, 2 = next ...
    rank: Mapped[int] = mapped_column(Integer, default=1)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))


class Case(Base):
    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_queue", "status", "severity", "deadline_at"),
        Index("ix_case_created", "created_at"),  # insights: reports by period
    )

    # severity
    EMERGENCY = "emergency"
    URGENT = "urgent"
    NORMAL = "normal"
    SEVERITIES = (EMERGENCY, URGENT, NORMAL)
    # category
    CATEGORIES = ("trafficking", "forced_marriage", "missing_person", "labour_exploitation", "other")
    # status
    NEW = "new"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    STATUSES = (NEW, NOTIFIED, ACKNOWLEDGED, IN_PROGRESS, CLOSED)
    OPEN = (NEW, NOTIFIED, ACKNOWLEDGED, IN_PROGRESS)
    # opened by
    SOURCES = ("bot", "lexicon", "agent", "keyword")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    severity: Mapped[str] = mapped_column(String(10), default=URGENT)
    category: Mapped[str] = mapped_column(String(20), default="other")
    status: Mapped[str] = mapped_column(String(12), default=NEW)
    source: Mapped[str] = mapped_column(String(10), default="bot")
    language: Mapped[str | None] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(10))
    #: where the reporter is (for insights: township only, never more)
    township: Mapped[str | None] = mapped_column(String(60))
    narrative: Mapped[str | None] = mapped_column(EncryptedText)
    #: the bot form's answers: {field: value}
    answers: Mapped[dict | None] = mapped_column(EncryptedJSON)
    #: while True the contact's messages go to this case, not to Rasa
    handoff: Mapped[bool] = mapped_column(Boolean, default=True)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    #: how far up the roster the chase has climbed (0 = first alert)
    chase_step: Mapped[int] = mapped_column(Integer, default=0)
    next_chase_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(40))
    referral: Mapped[str | None] = mapped_column(String(120))
    anonymised: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CaseNote(Base):
    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Alert(Base):
    """One alert to one staff member for one chase step of a case.

    The unique constraint is what keeps two schedulers from alerting twice."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("case_id", "step", "staff_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditLog(Base):
    """Every view, change and export of sensitive data. Carries ids, not content."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    #: "system", "bot", "scheduler" when no person did it
    actor: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict | None] = mapped_column(JSON)
