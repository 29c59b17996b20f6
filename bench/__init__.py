"""Benchmarks. Each module ``bench/<name>.py`` exposes ``run(quick: bool) ->
list[Result]``; ``python -m bench`` (``make bench``) runs them all, prints one
table and writes it to docs/benchmarks.md with the date, machine and command."""

from __future__ import annotations

from dataclasses import dataclass


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
