"""Waking the worker when a message arrives, instead of polling for it.

On PostgreSQL, :func:`notify` (called by :func:`lanpya.ingest.receive` in the
transaction that stores the message) sends ``NOTIFY lanpya_inbound``.
PostgreSQL delivers a notification only when that transaction commits, so a
woken worker always finds the row: there is no "woken before it is visible"
race, and a rolled-back message wakes no one. The worker's
:class:`Listener` holds one extra connection in ``LISTEN`` and sets an event.

Polling stays as the fallback (SQLite, a lost listening connection, retries
that come due, leases that expire): the listener only makes the common case
immediate. A Redis channel was not used: a publish cannot be tied to the
commit of the web's transaction, and several workers need PostgreSQL anyway.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

#: the channel a stored inbound message is announced on (the payload is empty:
#: nothing about the message leaves the row)
INBOUND = "lanpya_inbound"


def notify(session: Session, channel: str = INBOUND) -> None:
    """Announce, when this transaction commits, that work is waiting (PostgreSQL only)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://…`` → the ``postgresql://…`` psycopg connects to."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """A thread that sets ``event`` on every notification of ``channel``.

    ``listening`` says whether the connection is up: while it is not, the
    worker polls at its short interval. Reconnects by itself (PostgreSQL
    restarted), and sets the event once after each (re)connection, so what
    arrived while it was away is looked at."""

    #: how often the thread looks at ``stop`` while no notification comes
    TICK_S = 1.0

    def __init__(self, url: str, event: threading.Event, channel: str = INBOUND):
        self.url = libpq_url(url)
        self.event = event
        self.channel = channel
        self.listening = False
        self.woken = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        pause = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening = True
                    pause = 1.0
                    self.event.set()  # look once at what came while not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=self.TICK_S, stop_after=1):
                            self.woken += 1
                            self.event.set()
            except Exception as exc:  # noqa: BLE001 - the worker polls meanwhile
                if self.listening:
                    logger.warning(
                        "listening for new messages stopped (%s); polling until it is back",
                        type(exc).__name__,
                    )
                self.listening = False
                self._stop.wait(pause)
                pause = min(pause * 2, 15.0)
        self.listening = False
