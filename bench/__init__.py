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
