"""Shape of the Jinghpaw (kac) NLU data: agreed intent names only, enough
examples per intent, a held-out set that never copies a training sentence,
and the review header on every file. Pure YAML checks (no Rasa needed)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TRAIN = sorted((ROOT / "bot" / "data" / "nlu" / "kac").glob("*.yml"))
HELDOUT = ROOT / "bot" / "heldout" / "kac.yml"
HEADER = "# review: draft — written by the Lanpya team, needs native-speaker review (Jinghpaw)"
AGREED = set(
    """greet menu choose_language migrate_legally check_agency check_job_offer documents
    fees_debt rights_at_work marriage_broker trafficking_signs trouble_abroad find_mrc
    report_concern emergency talk_to_person subscribe delete_data thanks affirm deny
    goodbye out_of_scope bot_challenge""".split()
)
ENTITY_TYPES = {"destination", "language", "agency", "township", "relationship"}
CANONICAL = {
    "destination": {"thailand", "malaysia", "china"},
    "language": {"en", "my", "kac", "shn"},
}
_ANNOTATION = re.compile(r"\[([^\]]+)\]\(([^:)]+)(?::([^)]+))?\)")


def examples(paths: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    found[block["intent"]].append(line.strip()[2:])
    return found


def plain(example: str) -> str:
    return _ANNOTATION.sub(r"\1", example).lower().strip(" ?!.")


def test_every_file_carries_the_review_header():
    for path in [*TRAIN, HELDOUT]:
        assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER, path.name


def test_training_uses_only_agreed_intents_with_30_examples_each():
    train = examples(TRAIN)
    assert set(train) == AGREED
    short = {i: len(e) for i, e in train.items() if len(e) < 30}
    assert not short, short
    assert len(train["report_concern"]) >= 50
    assert len(train["emergency"]) >= 50


def test_heldout_has_8_per_intent_and_copies_nothing():
    train = {plain(e) for exs in examples(TRAIN).values() for e in exs}
    held = examples([HELDOUT])
    assert set(held) == AGREED
    assert all(len(e) >= 8 for e in held.values()), {i: len(e) for i, e in held.items()}
    copies = [e for exs in held.values() for e in exs if plain(e) in train]
    assert not copies, copies


def test_no_sentence_is_taught_under_two_intents():
    seen: dict[str, str] = {}
    clashes = []
    for intent, exs in examples(TRAIN).items():
        for e in exs:
            key = plain(e)
            if key in seen and seen[key] != intent:
                clashes.append((e, seen[key], intent))
            seen[key] = intent
    assert not clashes, clashes


def test_entities_are_agreed_types_with_canonical_values():
    for exs in [*examples(TRAIN).values(), *examples([HELDOUT]).values()]:
        for e in exs:
            for text, entity, value in _ANNOTATION.findall(e):
                assert entity in ENTITY_TYPES, e
                if entity in CANONICAL:
                    assert (value or text) in CANONICAL[entity], e
