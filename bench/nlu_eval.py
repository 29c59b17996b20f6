"""NLU evaluation on the held-out sets (bot/heldout/<lang>.yml, never trained on).

Per language: intent accuracy, report+emergency recall, harmless-escalated
rate (non-report messages predicted as report/emergency), parse latency
median / p95 (one parse at a time, in process, as the Rasa server does it).

    .venv-rasa/bin/python bench/nlu_eval.py              # the served model (bot/config.yml)
    .venv-rasa/bin/python bench/nlu_eval.py --compare    # also train + score bot/pipelines/*.yml
    python -m bench --only nlu_eval                      # from the app venv (subprocess)

Writes the figures to docs/benchmarks.md, section "NLU" (kept after the
runner's table, like the Notes). Targets: accuracy >= 0.90 en, >= 0.85 my
and kac; report+emergency recall >= 0.97; harmless escalated <= 5 %;
median parse <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
HELDOUT = BOT / "heldout"
DOC = ROOT / "docs" / "benchmarks.md"
REPORT = ("report_concern", "emergency")
TARGET_ACCURACY = {"en": 0.90, "my": 0.85, "kac": 0.85, "shn": 0.80}
TARGET_RECALL = 0.97
TARGET_HARMLESS = 0.05
TARGET_MEDIAN_MS = 20.0


# --- in the Rasa venv ---------------------------------------------------------------
def quiet() -> None:
    import asyncio
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.ERROR)
    configure_structlog(logging.ERROR)
    asyncio.set_event_loop(asyncio.new_event_loop())


def load_heldout() -> dict:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    sets = {}
    for path in sorted(HELDOUT.glob("*.yml")):
        data = RasaYAMLReader().read(path)
        sets[path.stem] = [(m.get("text"), m.get("intent")) for m in data.intent_examples]
    return sets


def score(agent, examples: list, metadata_language: str) -> dict:
    import asyncio

    from rasa.core.channels.channel import UserMessage

    loop = asyncio.get_event_loop()
    processor = agent.processor
    correct = reports = reports_caught = harmless = harmless_escalated = 0
    latencies = []
    errors = []
    for text, intent in examples:
        message = UserMessage(text, sender_id="bench", metadata={"language": metadata_language, "risk": None})
        started = time.perf_counter()
        parsed = loop.run_until_complete(processor.parse_message(message))
        latencies.append((time.perf_counter() - started) * 1000)
        predicted = (parsed.get("intent") or {}).get("name")
        correct += predicted == intent
        if intent in REPORT:
            reports += 1
            reports_caught += predicted in REPORT
        else:
            harmless += 1
            harmless_escalated += predicted in REPORT
        if predicted != intent:
            errors.append((intent, predicted, text))
    latencies.sort()
    return {
        "n": len(examples),
        "accuracy": correct / len(examples) if examples else 0.0,
        "report_recall": reports_caught / reports if reports else None,
        "reports": reports,
        "harmless_escalated": harmless_escalated / harmless if harmless else 0.0,
        "median_ms": statistics.median(latencies) if latencies else 0.0,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
        "errors": errors,
    }


def evaluate(model: Path) -> dict:
    import asyncio

    from rasa.core.agent import Agent

    os.chdir(BOT)  # custom components are imported relative to bot/
    sys.path.insert(0, str(BOT))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    agent = loop.run_until_complete(_load(Agent, model))
    sets = load_heldout()
    # warm up (first parse builds caches)
    score(agent, [("hello", "greet")], "en")
    return {lang: score(agent, examples, lang) for lang, examples in sets.items()}


async def _load(Agent, model: Path):
    return Agent.load(str(model))


def train_nlu(config: Path, out: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu as rasa_train_nlu

    sys.path.insert(0, str(BOT))
    os.chdir(BOT)
    started = time.monotonic()
    path = rasa_train_nlu(config=str(config), nlu_data=str(BOT / "data"), output=str(out),
                          fixed_model_name=config.stem, domain=str(BOT / "domain.yml"))
    return Path(path), time.monotonic() - started


def served_model() -> Path:
    sys.path.insert(0, str(BOT))
    import serve  # bot/serve.py

    return serve.train()


def table(name: str, results: dict, train_s: float | None = None) -> str:
    lines = [f"**{name}**" + (f" — training {train_s:.1f} s" if train_s is not None else ""), "",
             "| language | n | intent accuracy | report+emergency recall | harmless escalated | parse median | parse p95 |",
             "|---|---|---|---|---|---|---|"]
    for lang, r in results.items():
        recall = "-" if r["report_recall"] is None else f"{r['report_recall']:.3f} ({r['reports']})"
        lines.append(f"| {lang} | {r['n']} | {r['accuracy']:.3f} | {recall} | {r['harmless_escalated']:.3f} "
                     f"| {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms |")
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if "\n## Notes" not in text:
        text = text.rstrip("\n") + "\n\n## Notes\n"
    start = text.find("\n## NLU\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + text[end:] if end >= 0 else text[:start]
    DOC.write_text(text.rstrip("\n") + "\n\n## NLU\n\n" + section.strip() + "\n")


def main_rasa(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/nlu_eval.py")
    parser.add_argument("--model", help="a trained model (default: train/reuse the served one)")
    parser.add_argument("--compare", action="store_true", help="also train and score bot/pipelines/*.yml")
    parser.add_argument("--config", action="append", default=[],
                        help="train (NLU only) and score this config instead of the served model; repeatable")
    parser.add_argument("--json", action="store_true", help="print JSON only (for python -m bench)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--errors", action="store_true", help="list the misclassified examples")
    args = parser.parse_args(argv)
    quiet()
    results = {}
    configs = [Path(c).resolve() for c in args.config]
    if args.compare:
        configs += sorted((BOT / "pipelines").glob("*.yml"))
    if not args.config:
        started = time.monotonic()
        model = Path(args.model) if args.model else served_model()
        train_s = time.monotonic() - started if not args.model else None
        results["bot/config.yml"] = (evaluate(model), train_s)
    if configs:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="nlu-compare-"))
        for config in configs:
            path, seconds = train_nlu(config, out)
            name = str(config.relative_to(ROOT)) + " (NLU only)"
            results[name] = (evaluate(path), seconds)
            print(table(name, results[name][0], seconds), flush=True)
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if args.json:
        print(json.dumps({k: {"train_s": t, "languages": {lang: {x: y for x, y in r.items() if x != "errors"}
                                                          for lang, r in v.items()}}
                          for k, (v, t) in results.items()}))
        return 0
    sections = []
    for name, (res, seconds) in results.items():
        sections.append(table(name, res, seconds))
        if args.errors:
            for lang, r in res.items():
                for intent, predicted, text in r["errors"]:
                    print(f"  {lang}: {intent} -> {predicted}: {text}")
    command = "`.venv-rasa/bin/python bench/nlu_eval.py" + (" --compare" if args.compare else "") + "".join(
        f" --config {c}" for c in args.config) + "`"
    body = (f"Held-out sets bot/heldout/*.yml (never trained on); metadata language = the set's language, "
            f"no risk metadata (the classifier alone). Command: {command}, "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores. "
            f"Targets: accuracy ≥0.90 en, ≥0.85 my/kac; report+emergency recall ≥{TARGET_RECALL}; "
            f"harmless escalated ≤{TARGET_HARMLESS:.0%}; median parse ≤{TARGET_MEDIAN_MS:.0f} ms.\n\n"
            + "\n\n".join(sections))
    print(body)
    if not args.no_write:
        write_doc(body)
    return 0


# --- from the app venv (python -m bench) ---------------------------------------------------
def run(quick: bool = False) -> list:
    from bench import Result

    python = ROOT / ".venv-rasa" / "bin" / "python"
    out = subprocess.run([str(python), __file__, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        return [Result("nlu", "evaluation ran", "completes", f"error: {out.stderr[-200:]}", False)]
    data = json.loads(out.stdout.strip().splitlines()[-1])["bot/config.yml"]
    results = []
    for lang, r in data["languages"].items():
        target = TARGET_ACCURACY.get(lang)
        results.append(Result("nlu", f"intent accuracy {lang} (n={r['n']})",
                              f">= {target:.2f}" if target else "-", f"{r['accuracy']:.3f}",
                              r["accuracy"] >= target if target else None))
        if r["report_recall"] is not None:
            results.append(Result("nlu", f"report+emergency recall {lang}", f">= {TARGET_RECALL}",
                                  f"{r['report_recall']:.3f}", r["report_recall"] >= TARGET_RECALL))
        results.append(Result("nlu", f"harmless escalated {lang}", f"<= {TARGET_HARMLESS:.0%}",
                              f"{r['harmless_escalated']:.1%}", r["harmless_escalated"] <= TARGET_HARMLESS))
        results.append(Result("nlu", f"parse median {lang}", f"<= {TARGET_MEDIAN_MS:.0f} ms",
                              f"{r['median_ms']:.1f} ms (p95 {r['p95_ms']:.1f})", r["median_ms"] <= TARGET_MEDIAN_MS))
    return results


if __name__ == "__main__":
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"  # no data off the machine
    sys.exit(main_rasa(sys.argv[1:]))
