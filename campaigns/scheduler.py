"""The scheduler process (``lanpya scheduler``).

One loop per process, every ``renew_every`` seconds (default 5):

1. take or renew the ``scheduler`` lease (:mod:`campaigns.lease`; expires 20 s
   after the last renewal, fencing epoch bumped on every takeover);
2. the leader runs APScheduler (``BackgroundScheduler``) over a persistent
   ``SQLAlchemyJobStore`` and keeps its jobs in step with the campaigns table
   (a campaign scheduled, paused or cancelled in the console is picked up
   within one loop); a process that loses the lease shuts its APScheduler
   down and becomes a standby;
3. every process, leader or standby, writes its ``Heartbeat`` (kind
   ``scheduler``, detail ``leader epoch N`` or ``standby``) for /healthz.

A standby takes over at most ttl + renew_every = 25 s after the leader died.

Jobs (all by text reference, see :mod:`campaigns.jobs`):

=========================  =====================================  =============  ========
job id                     trigger                                misfire grace  coalesce
=========================  =====================================  =============  ========
``campaign:<id>`` once     date ``run_at``                        CAMPAIGN_MISFIRE_GRACE_S (1 h)  yes
``campaign:<id>`` cron     cron in Asia/Yangon from ``run_at``    CAMPAIGN_MISFIRE_GRACE_S        yes
``campaign:<id>`` sequence every 60 s                             60 s            yes
``escalation.chase``       every 15 s                             10 s            yes
``retention.purge``        02:30 Asia/Yangon daily                6 h             yes
``campaigns.resume``       every 60 s                             60 s            yes
``campaigns.quiet``        every 30 s                             30 s            yes
=========================  =====================================  =============  ========

A fire missed while no scheduler ran therefore runs exactly once on restart if
it is within its grace time (coalesce: several missed cron times collapse into
the latest, the earlier ones are recorded as ``missed`` fires); past the grace
time APScheduler skips it and :func:`campaigns.jobs.record_missed` records a
``missed`` fire so the report shows it. See docs/campaigns.md.

APScheduler's own table is kept out of the application schema (and out of
Alembic's model comparison): on PostgreSQL it lives in schema
``lanpya_scheduler``; on SQLite in a sibling file ``<database>.jobs.db``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from campaigns import jobs, lease
from campaigns.engine import LEASE_NAME, Fence, cron_trigger
from lanpya import clock
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Campaign, Heartbeat

logger = logging.getLogger(__name__)

RENEW_EVERY_S = 5.0
LEASE_TTL = timedelta(seconds=20)
JOBSTORE_SCHEMA = "lanpya_scheduler"
JOBSTORE_TABLE = "apscheduler_jobs"
YANGON = ZoneInfo("Asia/Yangon")


def jobstore_for(db: Database):
    """A persistent SQLAlchemyJobStore kept apart from the application schema."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    if db.is_sqlite:
        path = db.url.split("///", 1)[-1]
        return SQLAlchemyJobStore(url=f"sqlite:///{Path(path).with_suffix('')}.jobs.db", tablename=JOBSTORE_TABLE)
    with db.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {JOBSTORE_SCHEMA}"))
    return SQLAlchemyJobStore(engine=db.engine, tablename=JOBSTORE_TABLE, tableschema=JOBSTORE_SCHEMA)


class Scheduler:
    def __init__(self, config: Config, db: Database, name: str | None = None, *,
                 renew_every: float = RENEW_EVERY_S, ttl: timedelta = LEASE_TTL):
        self.config = config
        self.db = db
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.renew_every = renew_every
        self.ttl = ttl
        self.epoch: int | None = None
        self.aps = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    # --- leadership ----------------------------------------------------------------
    def fence(self) -> Fence | None:
        with self._lock:
            return Fence(self.name, self.epoch) if self.epoch else None

    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def _become_leader(self, epoch: int) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        with self._lock:
            self.epoch = epoch
        jobs.install(self.config, self.db, self.fence)
        if self.aps is not None:
            return
        aps = BackgroundScheduler(
            jobstores={"default": jobstore_for(self.db)},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": self.config.campaign_misfire_grace_s},
            timezone=UTC,
        )
        aps.add_listener(self._on_missed, EVENT_JOB_MISSED)
        aps.add_listener(self._on_error, EVENT_JOB_ERROR)
        aps.start(paused=True)
        self.aps = aps
        self._add_fixed_jobs()
        self.sync_jobs()
        aps.resume()
        logger.info("scheduler %s is the leader (epoch %d)", self.name, epoch)

    def _step_down(self, why: str) -> None:
        with self._lock:
            was = self.epoch
            self.epoch = None
        if self.aps is not None:
            try:
                self.aps.shutdown(wait=False)
            except Exception:  # noqa: BLE001 - already stopped
                logger.debug("apscheduler shutdown", exc_info=True)
            self.aps = None
        if was is not None:
            logger.warning("scheduler %s stepped down (%s)", self.name, why)

    def _on_missed(self, event) -> None:
        if event.job_id.startswith("campaign:"):
            jobs.record_missed(int(event.job_id.split(":", 1)[1]), event.scheduled_run_time)
        else:
            logger.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)

    def _on_error(self, event) -> None:
        logger.error("job %s failed: %s", event.job_id, type(event.exception).__name__)

    # --- jobs ---------------------------------------------------------------------------
    def _add_fixed_jobs(self) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        self.aps.add_job("campaigns.jobs:chase_due", IntervalTrigger(seconds=15), id="escalation.chase",
                         name="escalation.chase", replace_existing=True, misfire_grace_time=10)
        self.aps.add_job("campaigns.jobs:retention_purge", CronTrigger(hour=2, minute=30, timezone=YANGON),
                         id="retention.purge", name="retention.purge", replace_existing=True,
                         misfire_grace_time=6 * 3600)
        self.aps.add_job("campaigns.jobs:quiet_hours", IntervalTrigger(seconds=30), id="campaigns.quiet",
                         name="campaigns.quiet", replace_existing=True, misfire_grace_time=30)
        self.aps.add_job("campaigns.jobs:resume_fires", IntervalTrigger(seconds=60), id="campaigns.resume",
                         name="campaigns.resume", replace_existing=True, misfire_grace_time=60,
                         next_run_time=clock.now().replace(tzinfo=UTC))

    @staticmethod
    def _trigger(c: Campaign):
        from apscheduler.triggers.date import DateTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if c.schedule_kind == Campaign.ONCE:
            return DateTrigger(run_date=c.run_at.replace(tzinfo=UTC)), None
        if c.schedule_kind == Campaign.CRON:
            trig = cron_trigger(c.cron)
            if c.run_at is not None:
                trig.start_date = c.run_at.replace(tzinfo=UTC).astimezone(YANGON)
            return trig, None
        return IntervalTrigger(seconds=60), 60

    def sync_jobs(self) -> int:
        """Make APScheduler's campaign jobs match the campaigns table; returns changes."""
        if self.aps is None:
            return 0
        with self.db.session() as s:
            wanted = {
                f"campaign:{c.id}": c
                for c in s.scalars(select(Campaign).where(Campaign.status == Campaign.SCHEDULED))
            }
        changes = 0
        current = {j.id: j for j in self.aps.get_jobs() if j.id.startswith("campaign:")}
        for job_id in current:
            if job_id not in wanted:
                self.aps.remove_job(job_id)
                changes += 1
        for job_id, c in wanted.items():
            version = f"v:{c.schedule_kind}:{c.run_at}:{c.cron}:{c.updated_at}"
            if job_id in current and current[job_id].name == version:
                continue
            trigger, grace = self._trigger(c)
            self.aps.add_job("campaigns.jobs:fire_campaign", trigger, args=[c.id], id=job_id, name=version,
                             replace_existing=True,
                             misfire_grace_time=grace or self.config.campaign_misfire_grace_s)
            changes += 1
        if changes:
            logger.info("scheduler: %d campaign job(s) changed", changes)
        return changes

    # --- heartbeat -------------------------------------------------------------------------
    def beat(self, detail: str | None = None) -> None:
        detail = detail or (f"leader epoch {self.epoch}" if self.is_leader else "standby")
        with self.db.session() as s:
            hb = s.get(Heartbeat, self.name)
            if hb is None:
                hb = Heartbeat(name=self.name, kind="scheduler")
                s.add(hb)
            hb.kind = "scheduler"
            hb.pid = os.getpid()
            hb.beat_at = clock.now()
            hb.detail = detail[:200]

    # --- the loop ---------------------------------------------------------------------------
    def tick(self) -> None:
        """One round: lease, jobs, heartbeat."""
        try:
            epoch = lease.acquire(self.db, LEASE_NAME, self.name, self.ttl)
        except Exception as exc:  # noqa: BLE001 - database away: not the leader until it is back
            logger.warning("scheduler: lease check failed (%s)", type(exc).__name__)
            epoch = None
        if epoch is not None and epoch != self.epoch:
            if self.aps is not None:
                self._step_down("epoch changed")
            self._become_leader(epoch)
        elif epoch is None and self.is_leader:
            self._step_down("lease lost")
        if self.is_leader:
            try:
                self.sync_jobs()
            except Exception:  # noqa: BLE001 - try again next round
                logger.exception("scheduler: job sync failed")
        try:
            self.beat()
        except Exception as exc:  # noqa: BLE001
            logger.warning("scheduler: heartbeat failed (%s)", type(exc).__name__)

    def run(self) -> None:
        logger.info("scheduler %s starting (renew every %.0fs, lease %ds)", self.name, self.renew_every,
                    self.ttl.total_seconds())
        while not self.stopping.is_set():
            self.tick()
            self.stopping.wait(self.renew_every)
        self._step_down("stopping")
        try:
            lease.release(self.db, LEASE_NAME, self.name)
            self.beat("stopped")
        except Exception as exc:  # noqa: BLE001
            logger.warning("scheduler: could not release the lease (%s)", type(exc).__name__)
        logger.info("scheduler %s stopped", self.name)

    def stop(self, *_args) -> None:
        self.stopping.set()


def main(config: Config, db: Database, name: str | None = None) -> None:
    """``lanpya scheduler`` (the schema is migrated by ``lanpya web`` / ``lanpya run``, as for the worker)."""
    scheduler = Scheduler(config, db, name=name)
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    scheduler.run()
