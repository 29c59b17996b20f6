"""Process bookkeeping: leader leases, heartbeats, rate buckets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lanpya.models.base import Base, utcnow


class Lease(Base):
    """A named lease (e.g. "scheduler"): one holder at a time, renewed while alive."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(80))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: bumped on every change of holder (fencing token)
    epoch: Mapped[int] = mapped_column(Integer, default=0)


class Heartbeat(Base):
    """Each running worker and scheduler writes here, for /healthz."""

    __tablename__ = "heartbeat"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    pid: Mapped[int | None] = mapped_column(Integer)
    beat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(String(200))


class RateBucket(Base):
    """A token bucket per channel, shared by every worker through the database."""

    __tablename__ = "rate_bucket"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
