"""The worker process (``lanpya worker``).

One loop per process:

- replays the disk spool (what the web process wrote while the database was
  down), if the channels part provides the replayer;
- claims inbound messages, at most one per contact at a time
  (:mod:`conversations.claim`), and hands each to a small thread pool
  (:mod:`conversations.handle`): different contacts proceed in parallel.
  On PostgreSQL it is woken by ``NOTIFY lanpya_inbound`` when the web stores a
  message (:mod:`lanpya.wakeup`), and by its own threads finishing; it polls
  only as a fallback (every ``POLL_LISTENING_S`` while listening, ``POLL_S``
  otherwise);
- sends the outbox through ``lanpya.channels.dispatch_due`` in a thread of
  its own, woken as soon as a conversation thread has stored replies (so a
  reply leaves right after Rasa answered) and polling for what other
  processes queue (agent replies, campaigns, alerts);
- checks the new-number flood breaker;
- writes its :class:`~lanpya.models.Heartbeat` (kind "worker") for /healthz.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from conversations import claim, limits
from conversations.handle import Handler
from conversations.rasa import RasaClient, RasaReplicas, rasa_for
from conversations.services import Answers, module
from lanpya import clock, leases, wakeup
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Heartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0
FLOOD_CHECK_EVERY_S = 2.0
SPOOL_EVERY_S = 5.0
#: how often to look for dead workers' held rows (lanpya.leases)
RECLAIM_EVERY_S = 10.0
#: idle wait between polls of the inbound queue and the outbox
POLL_S = 0.05
#: outbox rows sent per channel per dispatch pass
DISPATCH_BATCH = 200
#: the dispatch loop's wait when nothing woke it: this worker's replies wake it at
#: once; what others queue (agent replies, alerts, campaigns) and retries coming
#: due are found within this (each idle pass is a claim transaction)
DISPATCH_IDLE_S = 0.25
#: requeueing abandoned rows and marking unconfigured channels' rows unsent: a
#: transaction each, once a second rather than on every pass
DISPATCH_HOUSEKEEPING_S = 1.0
#: database connections a worker process keeps (plus one listening)
POOL_CONNECTIONS = 15
#: idle wait between polls of the inbound queue while LISTEN wakes the worker
#: (retries and holding replies come due in whole seconds)
POLL_LISTENING_S = 0.5


class Worker:
    def __init__(
        self,
        config: Config,
        db: Database,
        name: str | None = None,
        *,
        threads: int | None = None,
        rasa: RasaClient | RasaReplicas | None = None,
        dispatch: bool = True,
    ):
        self.config = config
        self.db = db
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        # SQLite has one writer: more threads only queue on its lock
        self.threads = 1 if db.is_sqlite else max(1, threads or config.worker_threads)
        self.rasa = rasa or rasa_for(
            config.rasa_urls, timeout=config.rasa_timeout_s, auth_token=config.rasa_auth_token
        )
        self.handler = Handler(config, db, self.rasa, self.name, Answers(config))
        self.dispatch_enabled = dispatch
        self.stopping = threading.Event()
        self.wake = threading.Event()
        #: set when a conversation thread has finished (it may have queued replies)
        self.outbox_ready = threading.Event()
        self.listener: wakeup.Listener | None = None
        self._dispatcher: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="conv")
        self._inflight: set[Future] = set()
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        #: outcomes, counted (for tests and the heartbeat detail)
        self.outcomes: dict[str, int] = {}
        #: since when this worker's heartbeats have succeeded without a break (None: failing)
        self.beating_since = None

    # ------------------------------------------------------------------
    def _due(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(what, 0.0) >= every:
            self._last[what] = now
            return True
        return False

    def _done(self, fut: Future) -> None:
        with self._lock:
            self._inflight.discard(fut)
            try:
                outcome = fut.result()
            except Exception:  # handle() catches its own; this is a bug
                logger.exception("worker thread failed")
                outcome = "crash"
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.outbox_ready.set()
        self.wake.set()

    def free_slots(self) -> int:
        with self._lock:
            return self.threads - len(self._inflight)

    def claim_and_submit(self) -> int:
        free = self.free_slots()
        if free <= 0:
            return 0
        claims = claim.claim(self.db, self.name, free)
        for c in claims:
            fut = self._pool.submit(self.handler.handle, c.inbound_id, c.screen)
            with self._lock:
                self._inflight.add(fut)
            fut.add_done_callback(self._done)
        return len(claims)

    def dispatch(self) -> int:
        if not self.dispatch_enabled:
            return 0
        channels = module("lanpya.channels")
        if channels is None or not hasattr(channels, "dispatch_due"):
            return 0
        try:
            housekeeping = self._due("dispatch housekeeping", DISPATCH_HOUSEKEEPING_S)
            return (
                channels.dispatch_due(
                    self.db, self.config, self.name, DISPATCH_BATCH, housekeeping=housekeeping
                )
                or 0
            )
        except Exception:
            logger.exception("dispatching the outbox failed")
            return 0

    def replay_spool(self) -> int:
        for path in ("lanpya.spool", "lanpya.channels.spool"):
            mod = module(path) if _importable(path) else None
            if mod is not None and hasattr(mod, "replay"):
                try:
                    return mod.replay(self.db, self.config) or 0
                except Exception:
                    logger.exception("replaying the spool failed")
                    return 0
        return 0

    def heartbeat(self) -> None:
        detail = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))[:200]
        try:
            with self.db.session() as s:
                s.merge(
                    Heartbeat(
                        name=self.name, kind="worker", pid=os.getpid(), beat_at=clock.now(), detail=detail
                    )
                )
        except Exception:
            self.beating_since = None
            logger.exception("heartbeat failed")
            return
        if self.beating_since is None:
            self.beating_since = clock.now()

    def reclaim_dead(self) -> None:
        """Requeue what workers that stopped beating still hold (a kill -9)."""
        try:
            leases.reclaim_from_dead(self.db, self.name, self.beating_since)
        except Exception:
            logger.exception("reclaiming from dead workers failed")

    def check_flood(self) -> None:
        try:
            with self.db.session() as s:
                limits.check_flood(s, clock.now(), self.config.new_sender_limit_per_min)
        except Exception:
            logger.exception("flood check failed")

    # ------------------------------------------------------------------
    def step(self, dispatch: bool = True) -> int:
        """One pass of the loop; returns how much work it found. ``dispatch``:
        also send the outbox (``run`` sends it from its own thread instead)."""
        work = 0
        if self._due("spool", SPOOL_EVERY_S):
            work += self.replay_spool()
        if self._due("flood", FLOOD_CHECK_EVERY_S):
            self.check_flood()
        try:
            work += self.claim_and_submit()
        except Exception:
            logger.exception("claiming failed")
            time.sleep(1)
        if dispatch:
            work += self.dispatch()
        if self._due("heartbeat", HEARTBEAT_EVERY_S):
            self.heartbeat()
        if self._due("reclaim", RECLAIM_EVERY_S):
            self.reclaim_dead()
        return work

    def poll_interval(self) -> float:
        return POLL_LISTENING_S if self.listener is not None and self.listener.listening else POLL_S

    def _dispatch_loop(self) -> None:
        while not self.stopping.is_set():
            self.outbox_ready.clear()
            # a full batch: more may be due at once; otherwise the next reply wakes it
            # (an empty pass after each send cost ~10 statements a message)
            if self.dispatch() < DISPATCH_BATCH:
                self.outbox_ready.wait(DISPATCH_IDLE_S)

    def run(self) -> None:
        if self.db.is_postgres:
            self.listener = wakeup.Listener(self.db.url, self.wake).start()
        if self.dispatch_enabled:
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)
            self._dispatcher.start()
        logger.info("worker %s started (%d threads)", self.name, self.threads)
        self.heartbeat()
        while not self.stopping.is_set():
            # cleared before looking: a wake-up during the pass is not lost. After a
            # pass there is nothing more to claim until something happens (a message
            # stored: NOTIFY; a thread done: _done), so wait even when it found work
            self.wake.clear()
            self.step(dispatch=False)
            self.wake.wait(self.poll_interval())
        self.shutdown()

    def drain(self, timeout: float = 30.0) -> None:
        """Run until nothing is queued, in flight or due (tests and ``lanpya say``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # in flight *before* the claim: a thread finishing after the claim looked
            # may have freed its contact's next message, so look again
            with self._lock:
                was_busy = bool(self._inflight)
            work = self.step()
            with self._lock:
                busy = bool(self._inflight)
            if not work and not busy and not was_busy:
                return
            if busy:
                self.wake.wait(POLL_S)
                self.wake.clear()
        raise TimeoutError("worker did not drain")

    def stop(self, *_args) -> None:
        self.stopping.set()
        self.wake.set()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        if self._dispatcher is not None:
            self.outbox_ready.set()
            self._dispatcher.join(30)
            self.dispatch()  # what the last conversations queued
        if self.listener is not None:
            self.listener.stop()
        released = claim.release(self.db, self.name)
        if released:
            logger.info("released %d claimed messages", released)
        self.heartbeat()
        logger.info("worker %s stopped", self.name)


def _importable(path: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(path) is not None
    except ModuleNotFoundError:
        return False


def worker_database(url: str) -> Database:
    """The worker's PostgreSQL engine.

    As many connections as before at most (the default pool of 5 + 10 overflow),
    but all kept open: the overflow ones were closed and opened again per message,
    a PostgreSQL backend started each time. Threads hold one only for their short
    transactions, never while Rasa thinks.

    No pre-ping: it was a round trip per transaction, 4 of the worker's 15 ms of
    CPU a message (bench.worker_cpu). After a database restart the first statement
    on a stale connection fails instead; SQLAlchemy then renews the whole pool, and
    every caller here already retries (a message is requeued, a loop logs)."""
    return Database(url, pool_size=POOL_CONNECTIONS, max_overflow=0, pool_pre_ping=False)


def lower_priority(nice: int) -> None:
    """Let the web process's webhook acknowledgements go first on a busy CPU
    (BACKGROUND_NICE); the worker's work is queued, an acknowledgement is awaited."""
    if nice > 0 and hasattr(os, "nice"):
        try:
            os.nice(min(nice, 19))
        except OSError as exc:  # not allowed here: run as we are
            logger.warning("could not lower the worker's priority: %s", exc)


def main(config: Config, db: Database, name: str | None = None) -> None:
    lower_priority(config.background_nice)
    if db.is_postgres:
        db.dispose()
        db = worker_database(config.database_url)
    worker = Worker(config, db, name=name)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()
