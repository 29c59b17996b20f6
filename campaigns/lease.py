"""A named leader lease in the database, with a fencing epoch.

One row per lease (``Lease``). A holder renews it every few seconds; it
expires ``ttl`` after the last renewal. Anyone may take an expired lease; every
change of holder bumps ``epoch``. Work done under the lease re-checks
:func:`holds` (holder, epoch, not expired) *inside the transaction that
writes*, so a leader that stalled, lost its lease and wakes up again writes
nothing (fencing). On PostgreSQL the check takes ``FOR SHARE`` on the lease
row, so a takeover (an UPDATE of that row) waits until the fenced write has
committed; on SQLite ``BEGIN IMMEDIATE`` serialises writers anyway.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.db import Database
from lanpya.models import Lease

logger = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(seconds=20)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def acquire(db: Database, name: str, holder: str, ttl: timedelta = DEFAULT_TTL) -> int | None:
    """Take or renew the lease; the fencing epoch if ``holder`` now holds it, else None."""
    now = clock.now()
    for _attempt in range(2):
        try:
            with db.session() as s:
                q = select(Lease).where(Lease.name == name)
                if _is_pg(s):
                    q = q.with_for_update()
                lease = s.scalar(q)
                if lease is None:
                    s.add(Lease(name=name, holder=holder, expires_at=now + ttl, epoch=1))
                    s.flush()
                    logger.info("lease %s taken by %s (epoch 1)", name, holder)
                    return 1
                if lease.holder == holder:
                    lease.expires_at = now + ttl
                    return lease.epoch
                if lease.holder is None or lease.expires_at is None or lease.expires_at <= now:
                    lease.holder = holder
                    lease.expires_at = now + ttl
                    lease.epoch = (lease.epoch or 0) + 1
                    logger.info("lease %s taken over by %s (epoch %d)", name, holder, lease.epoch)
                    return lease.epoch
                return None
        except IntegrityError:
            continue  # two first-comers inserted at once: read again
    return None


def release(db: Database, name: str, holder: str) -> None:
    """Give the lease up at once (clean shutdown), so a standby need not wait."""
    with db.session() as s:
        q = select(Lease).where(Lease.name == name)
        if _is_pg(s):
            q = q.with_for_update()
        lease = s.scalar(q)
        if lease is not None and lease.holder == holder:
            lease.holder = None
            lease.expires_at = None


def holds(session: Session, name: str, holder: str, epoch: int) -> bool:
    """True when ``holder`` still holds lease ``name`` at ``epoch`` (call inside the writing transaction)."""
    q = select(Lease.holder, Lease.epoch, Lease.expires_at).where(Lease.name == name)
    if _is_pg(session):
        q = q.with_for_update(read=True)
    row = session.execute(q).first()
    if row is None:
        return False
    return row.holder == holder and row.epoch == epoch and row.expires_at is not None and row.expires_at > clock.now()


def current(db: Database, name: str) -> tuple[str | None, int, object]:
    """(holder, epoch, expires_at) for display and tests."""
    with db.session() as s:
        lease = s.get(Lease, name)
        if lease is None:
            return None, 0, None
        return lease.holder, lease.epoch, lease.expires_at
