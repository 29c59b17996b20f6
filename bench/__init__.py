"""Benchmarks. Each module ``bench/<name>.py`` exposes ``run(quick: bool) ->
list[Result]``; ``python -m bench`` (``make bench``) runs them all, prints one
table and writes it to docs/benchmarks.md with the date, machine and command."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    area: str
    figure: str
    target: str
    measured: str
    passed: bool | None  # None: reported, no target

    @property
    def verdict(self) -> str:
        return "-" if self.passed is None else ("pass" if self.passed else "FAIL")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


@dataclass
class ThreadTimes:
    """Thread CPU seconds spent in chosen functions, by label: a benchmark's
    per-phase profile (``time.thread_time`` on whichever thread runs them)."""

    spent: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def patch(self, owner, attr: str, label: str) -> None:
        """Replace ``owner.attr`` by a timed wrapper of itself."""
        original = getattr(owner, attr)
        self.spent.setdefault(label, 0.0)

        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self.spent[label] += time.thread_time() - t0

        setattr(owner, attr, timed)

    def reset(self) -> None:
        with self._lock:
            for label in self.spent:
                self.spent[label] = 0.0
