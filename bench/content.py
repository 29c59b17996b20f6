"""Content figures: the risk lexicon on the held-out NLU sets (reports caught,
questions left alone), typo tolerance of the agency check, SMS fit, speed."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import yaml

from bench import Result
from lanpya.content import LANGUAGES, Content
from lanpya.text import segments_for

ROOT = Path(__file__).resolve().parent.parent
RISK = {"report_concern", "emergency"}
QUESTIONS = {
    "migrate_legally", "check_agency", "check_job_offer", "documents", "fees_debt", "rights_at_work",
    "marriage_broker", "trafficking_signs", "find_mrc", "greet", "menu", "thanks", "goodbye", "affirm",
    "deny", "subscribe", "choose_language", "out_of_scope", "bot_challenge", "delete_data",
}


def _examples(path: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in data.get("nlu") or []:
        for line in (item.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- ") and "intent" in item:
                yield item["intent"], re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line[2:])


def _typos(name: str, rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        chars = list(name)
        i = rng.randrange(1, len(chars) - 1)
        op = rng.choice(("drop", "swap", "double", "case"))
        if op == "drop":
            del chars[i]
        elif op == "swap":
            j = i + 1 if i + 1 < len(chars) else i - 1
            chars[i], chars[j] = chars[j], chars[i]
        elif op == "double":
            chars.insert(i, chars[i])
        else:
            chars = list(name.lower())
        out.append("".join(chars))
    return out


def run(quick: bool = False) -> list[Result]:
    content = Content(ROOT / "content", "", include_samples=True)  # hotline unset: the longer placeholder
    results: list[Result] = []
    for lang in LANGUAGES:
        path = ROOT / "bot" / "heldout" / f"{lang}.yml"
        if not path.exists():
            results.append(Result("content", f"risk lexicon, held-out {lang}", ">= 85% caught", "no held-out set", None))
            continue
        caught = missed = alarms = quiet = 0
        for intent, text in _examples(path):
            hit = content.lexicon_match(text, lang) is not None
            if intent in RISK:
                caught, missed = caught + hit, missed + (not hit)
            elif intent in QUESTIONS:
                alarms, quiet = alarms + hit, quiet + (not hit)
        recall = caught / max(caught + missed, 1)
        fa = alarms / max(alarms + quiet, 1)
        results.append(Result("content", f"risk lexicon: held-out {lang} reports/emergencies caught", ">= 85%",
                              f"{recall:.0%} ({caught}/{caught + missed})", recall >= 0.85))
        results.append(Result("content", f"risk lexicon: held-out {lang} questions escalated", "<= 6%",
                              f"{fa:.1%} ({alarms}/{alarms + quiet})", fa <= 0.06))

    rng = random.Random(7)
    found = total = 0
    names = [r["name"] for r in content._state.agencies]  # noqa: SLF001 - the bench reads the loaded list
    for name in names:
        for variant in _typos(name, rng, 10 if quick else 50):
            total += 1
            result = content.agency_check(variant)
            found += bool(result.matches and result.matches[0].name == name)
    share = found / max(total, 1)
    results.append(Result("content", "agency check: one-typo names found", ">= 95%",
                          f"{share:.0%} ({found}/{total})", share >= 0.95))

    over = 0
    for key in content.keys:
        for lang in LANGUAGES:
            text = content.answer(key, lang, case_id=123456, severity="emergency", url="https://x.org/c/123456")
            over += segments_for(text).segments > 3
    results.append(Result("content", "SMS answers over 3 segments (hotline unset)", "0",
                          str(over), over == 0))

    texts = [t for _, t in _examples(ROOT / "bot" / "heldout" / "en.yml")][:200] or ["my sister is missing"]
    started = time.perf_counter()
    for text in texts:
        content.lexicon_match(text, "en")
    per = (time.perf_counter() - started) / len(texts) * 1000
    results.append(Result("content", "risk lexicon time per message", "< 20 ms", f"{per:.1f} ms", per < 20))
    return results


if __name__ == "__main__":
    for r in run():
        print(r.figure, r.measured, r.verdict)

