"""Work held by a worker that died: handed back as soon as its death is sure.

Inbound messages a worker claims carry a 90 s lease and outbox rows it is
sending a 5-minute one; a ``kill -9`` leaves them held until the lease runs
out — and a contact's later messages wait behind the held one. Every worker
writes a heartbeat every few seconds (``Heartbeat``, kind "worker"), so a
worker that has not beaten for ``STALE_AFTER`` is dead, and its rows can go
back to the queue at once — exactly what the lease's expiry would do later,
so the guarantees are unchanged: a reply or campaign row that was in flight
at the kill may be sent again (counted as in flight), nothing is lost.

One guard: a database outage stops every heartbeat, so right after one all
beats look old. A worker judges others only after its own heartbeats have
succeeded without a break for ``STALE_AFTER`` — by then every live worker
has beaten again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from lanpya import clock
from lanpya.db import Database
from lanpya.models import Heartbeat, Inbound, Outbox

logger = logging.getLogger(__name__)

#: six missed heartbeats (the worker beats every 5 s)
STALE_AFTER = timedelta(seconds=30)
#: heartbeat rows of dead workers are forgotten after this (names are host-pid)
FORGET_AFTER = timedelta(hours=1)


def reclaim_from_dead(
    db: Database, me: str, beating_since: datetime | None, stale_after: timedelta = STALE_AFTER
) -> tuple[int, int]:
    """Requeue the inbound messages and outbox rows held by dead workers.

    ``beating_since``: when this worker's own heartbeats last started to
    succeed without a break (None: they are failing). Returns
    (inbound requeued, outbox requeued).
    """
    now = clock.now()
    if beating_since is None or now - beating_since < stale_after:
        return 0, 0
    with db.session() as s:
        dead = [
            name
            for name in s.scalars(
                select(Heartbeat.name).where(Heartbeat.kind == "worker", Heartbeat.beat_at < now - stale_after)
            )
            if name != me
        ]
        if not dead:
            return 0, 0
        inbound = s.execute(
            update(Inbound)
            .where(Inbound.state == Inbound.PROCESSING, Inbound.lease_owner.in_(dead))
            .values(state=Inbound.QUEUED, lease_owner=None, lease_until=None)
        ).rowcount or 0
        outbox = s.execute(
            update(Outbox)
            .where(Outbox.state == Outbox.SENDING, Outbox.lease_owner.in_(dead))
            .values(state=Outbox.QUEUED, lease_owner=None, lease_until=None, next_attempt_at=now)
        ).rowcount or 0
        s.execute(
            delete(Heartbeat).where(
                Heartbeat.kind == "worker", Heartbeat.name.in_(dead), Heartbeat.beat_at < now - FORGET_AFTER
            )
        )
    if inbound or outbox:
        logger.warning(
            "%d worker(s) silent for %ds: %d inbound message(s) and %d outbox row(s) requeued",
            len(dead), stale_after.total_seconds(), inbound, outbox,
        )
    return inbound, outbox
