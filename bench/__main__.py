"""Run every benchmark and print one table: figure, target, measured, pass/fail.

    python -m bench                 # all, full size (writes docs/benchmarks.md)
    python -m bench --quick         # smaller sizes, for a smoke run
    python -m bench --only campaigns,e2e
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import Result

ROOT = Path(__file__).resolve().parent.parent
#: run in this order; each module is bench/<name>.py with run(quick) -> list[Result]
MODULES = ["nlu_eval", "content", "e2e", "channels", "escalation", "campaigns", "insights", "drills"]


def table(results: list[Result]) -> str:
    rows = [("area", "figure", "target", "measured", "result")]
    rows += [(r.area, r.figure, r.target, r.measured, r.verdict) for r in results]
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    only = [m for m in args.only.split(",") if m]
    results: list[Result] = []
    started = time.monotonic()
    durations: dict[str, float] = {}
    for name in MODULES:
        if only and name not in only:
            continue
        if not (ROOT / "bench" / f"{name}.py").exists():
            continue
        print(f"--- {name}", flush=True)
        module_started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            results += module.run(quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken bench must not hide the others
            traceback.print_exc()
            results.append(Result(name, "benchmark ran", "completes", f"error: {exc}"[:80], False))
        durations[name] = (time.monotonic() - module_started) / 60
        print(f"--- {name}: {durations[name]:.1f} min", flush=True)
    elapsed = time.monotonic() - started
    out = table(results)
    print(out)
    print(f"total {elapsed / 60:.1f} min")
    if not args.no_write and not only:
        command = "make bench" + (" (--quick)" if args.quick else "")
        doc = ROOT / "docs" / "benchmarks.md"
        head = (
            "# Benchmarks\n\nWritten by `python -m bench` (`make bench`); do not edit the table by hand.\n\n"
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n- machine: {machine()}\n"
            f"- command: `{command}`\n- duration: {elapsed / 60:.1f} min "
            f"({', '.join(f'{n} {m:.1f}' for n, m in durations.items())})\n\n"
        )
        notes = ""
        if doc.exists() and "\n## Notes" in doc.read_text():
            notes = doc.read_text()[doc.read_text().index("\n## Notes"):]
        doc.write_text(head + out + "\n" + notes)
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
