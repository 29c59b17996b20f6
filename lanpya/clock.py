"""Injectable time. Every module asks ``clock.now()``; tests set a fake clock.

Times are naive UTC datetimes everywhere in the database.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 3, 0, 0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, **kwargs) -> datetime:
        with self._lock:
            self._now += timedelta(**kwargs)
            return self._now


_clock: Clock = Clock()


def now() -> datetime:
    return _clock.now()


def use(clock: Clock) -> Clock:
    """Install ``clock``; returns the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous
