"""What the scheduler's APScheduler runs. Jobs are stored by *text reference*
(``"campaigns.jobs:fire_campaign"``) with plain JSON-able arguments, so the
persistent job store survives restarts and code reloads; the running process
installs its database, configuration and lease (the fencing token) here with
:func:`install` before APScheduler starts.

Every job is idempotent and fenced: it re-checks the scheduler lease inside
the transaction that writes, so a leader that lost its lease writes nothing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from campaigns import engine
from lanpya.config import Config
from lanpya.db import Database

logger = logging.getLogger(__name__)


@dataclass
class Context:
    config: Config
    db: Database
    #: returns the current fence, or None while this process is not the leader
    fence: Callable[[], engine.Fence | None]


_ctx: Context | None = None
_missing_warned: set[str] = set()


def install(config: Config, db: Database, fence: Callable[[], engine.Fence | None]) -> None:
    global _ctx
    _ctx = Context(config, db, fence)


def _context() -> tuple[Context, engine.Fence] | None:
    if _ctx is None:
        logger.error("scheduler job ran before campaigns.jobs.install()")
        return None
    fence = _ctx.fence()
    if fence is None:
        logger.info("not the leader: job skipped")
        return None
    return _ctx, fence


def fire_campaign(campaign_id: int) -> None:
    """A campaign's schedule came due: fire what is due (once, cron or sequence)."""
    got = _context()
    if got is None:
        return
    ctx, fence = got
    try:
        results = engine.fire_due(ctx.db, ctx.config, campaign_id, fence=fence)
    except engine.LostLease as exc:
        logger.warning("campaign %s: %s; fire left to the new leader", campaign_id, exc)
        return
    for r in results:
        logger.info("campaign %s fire %s (step %s): %d rows, %s", campaign_id, r.fire_id, r.step, r.inserted,
                    r.stopped or r.state)


def record_missed(campaign_id: int, scheduled_run_time: datetime) -> None:
    """APScheduler skipped a run past its misfire grace time: report it as a missed fire."""
    got = _context()
    if got is None:
        return
    ctx, fence = got
    when = scheduled_run_time.astimezone(UTC).replace(tzinfo=None) if scheduled_run_time.tzinfo else scheduled_run_time
    try:
        engine.missed(ctx.db, campaign_id, when, fence=fence)
    except engine.LostLease as exc:
        logger.warning("campaign %s: %s", campaign_id, exc)


def resume_fires() -> None:
    """Finish fires a crash or a pause left half-written (idempotent)."""
    got = _context()
    if got is None:
        return
    ctx, fence = got
    try:
        for r in engine.resume_unfinished(ctx.db, ctx.config, fence=fence):
            logger.info("fire %s resumed: %d more rows", r.fire_id, r.inserted)
    except engine.LostLease as exc:
        logger.warning("resume_fires: %s", exc)


def quiet_hours() -> None:
    """Hold queued campaign rows whose recipients' quiet hours have begun."""
    got = _context()
    if got is None:
        return
    ctx, fence = got
    try:
        engine.enforce_quiet_hours(ctx.db, fence=fence)
    except engine.LostLease as exc:
        logger.warning("quiet_hours: %s", exc)


def _call_optional(ref: str) -> object:
    """Call another part's periodic function ``module:function(db, config)``;
    a part not in the code base yet is logged once and skipped, so the
    scheduler still starts without it."""
    got = _context()
    if got is None:
        return None
    ctx, _fence = got
    module_path, _, name = ref.partition(":")
    try:
        func = getattr(importlib.import_module(module_path), name)
    except (ImportError, AttributeError):
        if ref not in _missing_warned:
            _missing_warned.add(ref)
            logger.warning("periodic job %s is not available yet: skipped", ref)
        return None
    return func(ctx.db, ctx.config)


def chase_due() -> None:
    """Escalation: chase unacknowledged cases up the on-call list (every 15 s)."""
    n = _call_optional("lanpya.escalation:chase_due")
    if n:
        logger.info("escalation: %s case(s) chased", n)


def retention_purge() -> None:
    """Nightly retention purge."""
    report = _call_optional("lanpya.retention:purge")
    if report is not None:
        for line in getattr(report, "lines", lambda: [])():
            logger.info("purge: %s", line)
