"""Per-channel sending rate, shared by every worker process.

A token bucket per channel in a :class:`~lanpya.models.RateBucket` row: the
bucket fills at ``rate`` tokens a second up to ``rate`` tokens (one second of
burst). A dispatcher locks the row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite every write transaction already holds the database's write lock from
``BEGIN IMMEDIATE``), refills it by the time elapsed on :mod:`lanpya.clock`,
and takes at most what it is about to send. Time comes from the injectable
clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.models import RateBucket


def capacity(rate: float) -> float:
    return max(1.0, rate)


def _bucket(session: Session, channel: str, rate: float) -> RateBucket:
    q = select(RateBucket).where(RateBucket.channel == channel)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    bucket = session.scalar(q)
    if bucket is not None:
        return bucket
    try:
        with session.begin_nested():
            session.add(RateBucket(channel=channel, tokens=capacity(rate), updated_at=clock.now()))
            session.flush()
    except IntegrityError:
        pass  # another worker made it first
    bucket = session.scalar(q)
    assert bucket is not None
    return bucket


def available(session: Session, channel: str, rate: float) -> int:
    """Lock the channel's bucket, refill it, and return the whole tokens in it.

    Call :func:`take` in the same transaction for what is actually used."""
    bucket = _bucket(session, channel, rate)
    now = clock.now()
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
    bucket.tokens = min(capacity(rate), bucket.tokens + elapsed * rate)
    bucket.updated_at = now
    return math.floor(bucket.tokens + 1e-9)


def take(session: Session, channel: str, n: int) -> None:
    """Use ``n`` tokens of the bucket locked by :func:`available`."""
    if n <= 0:
        return
    bucket = session.scalar(select(RateBucket).where(RateBucket.channel == channel))
    assert bucket is not None
    bucket.tokens = max(0.0, bucket.tokens - n)
