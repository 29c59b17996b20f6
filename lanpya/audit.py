"""The audit trail: every view, change and export of sensitive data.

An entry carries ids and short codes, never content (no names, numbers or
message bodies): ``detail`` is for things like ``{"from": "new", "to":
"acknowledged"}`` or ``{"step": 2}``.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.models import AuditLog

logger = logging.getLogger(__name__)

#: the actors that are not a person
SYSTEM = "system"
BOT = "bot"
SCHEDULER = "scheduler"
API = "api"


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: int | None,
    staff_id: int | None = None,
    actor: str | None = None,
    detail: dict | None = None,
) -> AuditLog:
    """Add one audit entry to ``session`` (committed with the caller's work).

    ``actor`` names who acted when it was not a staff member ("system",
    "bot", "scheduler", "contact"); with a ``staff_id`` it defaults to
    "staff"."""
    if not action or not object_type:
        raise ValueError("audit.record needs an action and an object type")
    entry = AuditLog(
        at=clock.now(),
        staff_id=staff_id,
        actor=(actor or ("staff" if staff_id is not None else SYSTEM))[:20],
        action=action[:40],
        object_type=object_type[:20],
        object_id=object_id,
        detail=detail,
    )
    session.add(entry)
    logger.info("audit %s %s:%s by %s", action, object_type, object_id,
                f"staff {staff_id}" if staff_id is not None else entry.actor)
    return entry
