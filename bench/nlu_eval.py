"""NLU evaluation on the held-out sets (bot/heldout/<set>.yml, never trained on).

A set's language is its name up to the first "_" (``my_fresh`` is Burmese).
Per set: intent accuracy, report+emergency recall, harmless-escalated rate
(non-report messages predicted as report/emergency), parse latency median /
p95 (one parse at a time, in process, as the Rasa server does it) -- for the
classifier alone, and for the *system*: what the reporter experiences, where
the app's risk lexicon screens the message first (lanpya.content
``lexicon_match``, as conversations/handle.py does) and a hit both opens a
case and is passed to Rasa as ``metadata.risk`` (RiskRouter), and a message
with no risk word that says the relative is fine is passed with
``metadata.reassured`` (RiskRouter: a report guess becomes the best other
intent; issue 4, eighth round). Both columns
parse the text the worker sends Rasa (normalised at ingest: Zawgyi
converted). The lexicon runs in the app's venv: ``--screen`` is that half,
called as a subprocess.

    .venv-rasa/bin/python bench/nlu_eval.py              # the served model (bot/config.yml)
    .venv-rasa/bin/python bench/nlu_eval.py --misses     # + the reports missed / harmless escalated
    .venv-rasa/bin/python bench/nlu_eval.py --compare    # also train + score bot/pipelines/*.yml
    .venv-rasa/bin/python bench/nlu_eval.py --dev --config bot/pipelines/diet.yml   # tuning: no sealed set
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
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = ROOT / ".venv" / "bin" / "python"
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


def set_language(name: str) -> str:
    return name.split("_")[0]


def is_sealed(name: str) -> bool:
    """A sealed set (``my_sealed``, ``my_sealed2``): its sentences are never
    printed, only its figures, so that nothing in it steers tuning."""
    return any(part.startswith("sealed") for part in name.split("_")[1:])


def heldout_paths(dev: bool = False, heldout: Path = HELDOUT) -> list[Path]:
    """The held-out set files; ``dev``: without the sealed ones (a dev run
    that tunes on the others must not even score a sealed set)."""
    return [path for path in sorted(heldout.glob("*.yml")) if not (dev and is_sealed(path.stem))]


def _number(stem: str) -> int:
    digits = re.search(r"(\d+)$", stem)
    return int(digits.group(1)) if digits else 0


def _listed(stems: list[str]) -> str:
    quoted = [f"`{s}`" for s in stems]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def describe_sets(heldout: Path = HELDOUT) -> str:
    """Which Burmese look-alike sets are dev sets (and which sealed set each once
    was, from its header) and which are still blind, read from the files, so the
    doc's list cannot go stale when a round unseals or folds a set."""
    stems = sorted(
        (p.stem for p in heldout.glob("my_*.yml")), key=lambda s: (s.rstrip("0123456789"), _number(s))
    )
    dev = [s for s in stems if s.startswith("my_lookalikes")]
    blind = [s for s in stems if is_sealed(s) and s != "my_sealed"]
    parts = []
    if dev:
        was = []
        for stem in dev:
            found = re.search(
                r"\(bot/heldout/(my_sealed\d*)\.yml\)", (heldout / f"{stem}.yml").read_text(encoding="utf-8")
            )
            was.append(found.group(1) if found else None)
        once = f", once {_listed([w for w in was if w])}," if all(was) else ""
        verb = "was" if len(dev) == 1 else "were"
        parts.append(
            f"{_listed(dev)}{once} {verb} unsealed and tuned on after they were scored blind (earlier dev sets are "
            f"training data, bot/data/nlu/my/former_dev_sets*.yml)"
        )
    if blind:
        parts.append(f"{_listed(blind)} {'is' if len(blind) == 1 else 'are'} blind")
    return "; ".join(parts)


def load_heldout(dev: bool = False) -> dict:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    sets = {}
    for path in heldout_paths(dev):
        data = RasaYAMLReader().read(path)
        sets[path.stem] = [(m.get("text"), m.get("intent")) for m in data.intent_examples]
    return sets


def screen_in_app_venv(sets: dict) -> dict:
    """{set: [(worker_text, risk or None)]} from the app venv (``--screen``)."""
    request = {name: [[text, set_language(name)] for text, _ in examples] for name, examples in sets.items()}
    out = subprocess.run(
        [str(APP_PYTHON), __file__, "--screen"],
        cwd=ROOT,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"lexicon screening failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)


def score(agent, examples: list, metadata_language: str, screened: list | None = None) -> dict:
    import asyncio

    from rasa.core.channels.channel import UserMessage

    loop = asyncio.get_event_loop()
    processor = agent.processor

    def parse(text: str, risk: dict | None, reassured: bool = False) -> str | None:
        metadata = {"language": metadata_language, "risk": risk}
        if reassured:
            metadata["reassured"] = True
        message = UserMessage(text, sender_id="bench", metadata=metadata)
        return (loop.run_until_complete(processor.parse_message(message)).get("intent") or {}).get("name")

    screened = screened or [(text, None, False) for text, _ in examples]
    correct = reports = reports_caught = harmless = harmless_escalated = 0
    system_caught = system_escalated = lexicon_hits = reassured_count = 0
    latencies = []
    errors, misses = [], []
    for (_, intent), (text, risk, reassured) in zip(examples, screened, strict=True):
        started = time.perf_counter()
        predicted = parse(text, None)
        latencies.append((time.perf_counter() - started) * 1000)
        # the system: a lexicon hit opens a case and reaches Rasa as metadata.risk
        system = predicted in REPORT
        if risk is None and reassured:
            # "she is fine": the worker sends metadata.reassured; a report guess may become a question
            reassured_count += 1
            system = parse(text, None, reassured=True) in REPORT
        if risk is not None:
            # the worker opened the case already; RiskRouter must still start the report flow
            lexicon_hits += 1
            system = True
            if parse(text, risk) not in REPORT:
                misses.append(("lexicon hit not routed by RiskRouter", intent, predicted, text))
        correct += predicted == intent
        if intent in REPORT:
            reports += 1
            reports_caught += predicted in REPORT
            system_caught += system
            if predicted not in REPORT or not system:
                misses.append(("missed" if not system else "classifier missed", intent, predicted, text))
        else:
            harmless += 1
            harmless_escalated += predicted in REPORT
            system_escalated += system
            if system:
                misses.append(
                    ("escalated" if predicted in REPORT else "lexicon escalated", intent, predicted, text)
                )
        if predicted != intent:
            errors.append((intent, predicted, text))
    latencies.sort()
    return {
        "n": len(examples),
        "accuracy": correct / len(examples) if examples else 0.0,
        "report_recall": reports_caught / reports if reports else None,
        "reports": reports,
        "harmless": harmless,
        "harmless_escalated": harmless_escalated / harmless if harmless else 0.0,
        "system_recall": system_caught / reports if reports else None,
        "system_harmless_escalated": system_escalated / harmless if harmless else 0.0,
        "lexicon_hits": lexicon_hits,
        "reassured": reassured_count,
        "median_ms": statistics.median(latencies) if latencies else 0.0,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
        "errors": errors,
        "misses": misses,
    }


def evaluate(model: Path, dev: bool = False) -> dict:
    import asyncio

    from rasa.core.agent import Agent

    os.chdir(BOT)  # custom components are imported relative to bot/
    sys.path.insert(0, str(BOT))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    agent = loop.run_until_complete(_load(Agent, model))
    sets = load_heldout(dev)
    screened = screen_in_app_venv(sets)
    # warm up (first parse builds caches)
    score(agent, [("hello", "greet")], "en")
    return {
        name: score(agent, examples, set_language(name), screened[name]) for name, examples in sets.items()
    }


async def _load(Agent, model: Path):
    return Agent.load(str(model))


def train_nlu(config: Path, out: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu as rasa_train_nlu

    sys.path.insert(0, str(BOT))
    os.chdir(BOT)
    started = time.monotonic()
    path = rasa_train_nlu(
        config=str(config),
        nlu_data=str(BOT / "data"),
        output=str(out),
        fixed_model_name=config.stem,
        domain=str(BOT / "domain.yml"),
    )
    return Path(path), time.monotonic() - started


def served_model() -> Path:
    sys.path.insert(0, str(BOT))
    import serve  # bot/serve.py

    return serve.train()


def table(name: str, results: dict, train_s: float | None = None) -> str:
    lines = [
        f"**{name}**" + (f" — training {train_s:.1f} s" if train_s is not None else ""),
        "",
        "| set | n | intent accuracy | report+emergency recall: classifier | system | "
        "harmless escalated: classifier | system | parse median | parse p95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, r in results.items():
        recall = "-" if r["report_recall"] is None else f"{r['report_recall']:.3f} ({r['reports']})"
        system = "-" if r.get("system_recall") is None else f"{r['system_recall']:.3f}"
        harmless = f"{r.get('system_harmless_escalated', 0.0):.3f} ({r.get('harmless', '?')})"
        lines.append(
            f"| {lang} | {r['n']} | {r['accuracy']:.3f} | {recall} | {system} | "
            f"{r['harmless_escalated']:.3f} | {harmless} "
            f"| {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms |"
        )
    return "\n".join(lines)


def write_doc(section: str) -> None:
    """Replace the text of the "## NLU" section, in place, up to the next
    heading of any level: other areas' sections (even a "###" one someone put
    after it) are left as they are."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if "\n## Notes" not in text:
        text = text.rstrip("\n") + "\n\n## Notes\n"
    block = "\n## NLU\n\n" + section.strip() + "\n"
    start = text.find("\n## NLU\n")
    if start < 0:
        DOC.write_text(text.rstrip("\n") + "\n" + block)
        return
    match = re.compile(r"\n#{1,6} ").search(text, start + len("\n## NLU\n"))
    rest = text[match.start() :] if match else ""
    DOC.write_text(text[:start] + block + rest)


# --- in the app venv: the worker's screening ----------------------------------------
def screen(request: dict) -> dict:
    """As the worker sees a message (lanpya.ingest, conversations/handle.py):
    normalised at ingest (Zawgyi converted), language detected (else the
    contact's, here the set's), whole-message keywords first, then the risk
    lexicon, then (no risk word) whether the message says the relative is fine
    (``Content.reassured``, sent as ``metadata.reassured``). Returns
    {set: [(text sent to Rasa, risk metadata or None, reassured)]}."""
    sys.path.insert(0, str(ROOT))
    from lanpya.config import Config
    from lanpya.content import Content
    from lanpya.keywords import match_keyword
    from lanpya.text import detect_language, normalise_text

    content = Content.load(ROOT / "content", Config(env="test"))
    out = {}
    for name, items in request.items():
        rows = []
        for raw, contact_language in items:
            text = normalise_text(raw).text
            language = detect_language(text) or contact_language
            risk = None
            reassured = False
            if match_keyword(text, content) is None:
                hit = content.lexicon_match(text, language)
                if hit is not None:
                    risk = {"category": hit.category, "severity": hit.severity, "case_id": None}
                else:
                    reassured = content.reassured(text, language)
            rows.append((text, risk, reassured))
        out[name] = rows
    return out


def main_rasa(argv: list[str]) -> int:
    if argv[:1] == ["--screen"]:
        print(json.dumps(screen(json.loads(sys.stdin.read()))))
        return 0
    parser = argparse.ArgumentParser(prog="bench/nlu_eval.py")
    parser.add_argument("--model", help="a trained model (default: train/reuse the served one)")
    parser.add_argument("--compare", action="store_true", help="also train and score bot/pipelines/*.yml")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="train (NLU only) and score this config instead of the served model; repeatable",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="a dev run: skip every sealed set (*_sealed*), not even scored; implies --no-write",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only (for python -m bench)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--errors", action="store_true", help="list the misclassified examples")
    parser.add_argument(
        "--misses",
        action="store_true",
        help="list reports/emergencies missed (classifier or system) and harmless ones escalated",
    )
    parser.add_argument(
        "--unseal",
        action="append",
        default=[],
        metavar="SET",
        help="also print this sealed set's sentences, e.g. my_sealed (post-hoc only: after that the set is "
        "no longer blind); repeatable, one set at a time so that another sealed set stays sealed",
    )
    args = parser.parse_args(argv)
    if args.dev:
        args.no_write = True  # docs/benchmarks.md "NLU" holds full runs only
    quiet()
    results = {}
    configs = [Path(c).resolve() for c in args.config]
    if args.compare:
        configs += sorted((BOT / "pipelines").glob("*.yml"))
    if not args.config:
        started = time.monotonic()
        model = Path(args.model) if args.model else served_model()
        train_s = time.monotonic() - started if not args.model else None
        results["bot/config.yml"] = (evaluate(model, args.dev), train_s)
    if configs:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="nlu-compare-"))
        for config in configs:
            path, seconds = train_nlu(config, out)
            # a config outside the repository (a tuning variant in /tmp) is named by its full path
            name = str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config) + " (NLU only)"
            results[name] = (evaluate(path, args.dev), seconds)
            print(table(name, results[name][0], seconds), flush=True)
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if args.json:
        print(
            json.dumps(
                {
                    k: {
                        "train_s": t,
                        "languages": {
                            lang: {x: y for x, y in r.items() if x not in ("errors", "misses")}
                            for lang, r in v.items()
                        },
                    }
                    for k, (v, t) in results.items()
                }
            )
        )
        return 0
    sections = []
    for name, (res, seconds) in results.items():
        sections.append(table(name, res, seconds))
        if args.errors:
            for lang, r in res.items():
                if is_sealed(lang) and lang not in args.unseal:
                    continue
                for intent, predicted, text in r["errors"]:
                    print(f"  {lang}: {intent} -> {predicted}: {text}")
        if args.misses:
            for lang, r in res.items():
                if is_sealed(lang) and lang not in args.unseal:  # figures only: must not steer tuning
                    print(f"  {lang}: {len(r['misses'])} misses/escalations (sealed: sentences not shown)")
                    continue
                for kind, intent, predicted, text in r["misses"]:
                    print(f"  {lang}: {kind}: {intent} -> {predicted}: {text}")
    command = (
        "`.venv-rasa/bin/python bench/nlu_eval.py"
        + (" --compare" if args.compare else "")
        + "".join(f" --config {c}" for c in args.config)
        + (" --dev" if args.dev else "")
        + "`"
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (
        f"Held-out sets bot/heldout/*.yml, never trained on (`my_fresh` and `my_sealed` were written "
        f"before the issue-4 tuning; {describe_sets()}: a sealed set's sentences are never printed); "
        f"metadata language = the "
        f"set's language; the text the worker sends "
        f"(Zawgyi converted at ingest). *classifier*: no risk metadata, the model alone (with its "
        f"doubtful-report rule); *system*: the app's risk lexicon (lanpya.content, as the worker screens) "
        f"OR the classifier, given metadata.reassured where the worker sends it (no risk word, 'she is "
        f"fine': a report guess becomes the best other intent) — what a reporter experiences. "
        f"Command: {command}, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
        f"load average {load} (1/5/15 min) at the end. "
        f"Targets: accuracy ≥0.90 en, ≥0.85 my/kac; report+emergency recall ≥{TARGET_RECALL}; "
        f"harmless escalated ≤{TARGET_HARMLESS:.0%}; median parse ≤{TARGET_MEDIAN_MS:.0f} ms.\n\n"
        + "\n\n".join(sections)
    )
    print(body)
    if not args.no_write:
        write_doc(body)
    return 0


# --- from the app venv (python -m bench) ---------------------------------------------------
def run(quick: bool = False) -> list:
    from bench import Result

    python = ROOT / ".venv-rasa" / "bin" / "python"
    out = subprocess.run(
        [str(python), __file__, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        return [Result("nlu", "evaluation ran", "completes", f"error: {out.stderr[-200:]}", False)]
    data = json.loads(out.stdout.strip().splitlines()[-1])["bot/config.yml"]
    results = []
    for lang, r in data["languages"].items():
        target = TARGET_ACCURACY.get(set_language(lang))
        results.append(
            Result(
                "nlu",
                f"intent accuracy {lang} (n={r['n']})",
                f">= {target:.2f}" if target else "-",
                f"{r['accuracy']:.3f}",
                r["accuracy"] >= target if target else None,
            )
        )
        if r["report_recall"] is not None:
            results.append(
                Result(
                    "nlu",
                    f"report+emergency recall {lang}",
                    f">= {TARGET_RECALL}",
                    f"{r['report_recall']:.3f}",
                    r["report_recall"] >= TARGET_RECALL,
                )
            )
            results.append(
                Result(
                    "nlu",
                    f"report+emergency recall {lang}, system (lexicon or classifier)",
                    f">= {TARGET_RECALL}",
                    f"{r['system_recall']:.3f}",
                    r["system_recall"] >= TARGET_RECALL,
                )
            )
        results.append(
            Result(
                "nlu",
                f"harmless escalated {lang}",
                f"<= {TARGET_HARMLESS:.0%}",
                f"{r['harmless_escalated']:.1%}",
                r["harmless_escalated"] <= TARGET_HARMLESS,
            )
        )
        results.append(
            Result(
                "nlu",
                f"harmless escalated {lang}, system",
                f"<= {TARGET_HARMLESS:.0%}",
                f"{r['system_harmless_escalated']:.1%}",
                r["system_harmless_escalated"] <= TARGET_HARMLESS,
            )
        )
        results.append(
            Result(
                "nlu",
                f"parse median {lang}",
                f"<= {TARGET_MEDIAN_MS:.0f} ms",
                f"{r['median_ms']:.1f} ms (p95 {r['p95_ms']:.1f})",
                r["median_ms"] <= TARGET_MEDIAN_MS,
            )
        )
    return results


if __name__ == "__main__":
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"  # no data off the machine
    sys.exit(main_rasa(sys.argv[1:]))
