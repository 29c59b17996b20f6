"""What the assistant says, and the word lists it screens with.

Everything lives in ``content/`` as data that staff edit without retraining
Rasa (see ``content/README.md``):

- ``answers/*.yml``: ``key -> {sources: [...], en|my|kac|shn: {sms, viber?, review}}``
- ``referrals.yml``: the operator's choice of organisations people are sent to
- ``lexicon/<lang>.yml``: risk words -> category and severity
- ``keywords.yml``: STOP / START / HELP / language / DELETE / JOIN words
- ``agencies.csv`` (+ ``agencies.meta.yml``): the licensed-agency list
- ``sources.yml``: the source IDs answers cite (from the project's FACTS sheet)

:meth:`Content.load` validates everything and raises :class:`ContentError`
naming the file and key. One instance per content directory is kept per
process; it re-reads the files when one changes (mtime), and keeps serving the
last good version (logging an error) if an edit is broken.
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from lanpya.config import Config
from lanpya.text import SHAN_LETTERS, ascii_digits, normalise_text

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "my", "kac", "shn")
#: when the requested language has no text: requested -> my -> en
FALLBACK: tuple[str, ...] = ("my", "en")
CHANNELS = ("sms", "viber")
#: every answer must have a text in each of these
REQUIRED_LANGUAGES: tuple[str, ...] = LANGUAGES
CATEGORIES = ("trafficking", "forced_marriage", "missing_person", "labour_exploitation", "other")
SEVERITIES = ("emergency", "urgent", "normal")
SEVERITY_RANK = {"emergency": 3, "urgent": 2, "normal": 1}
REVIEW_STATUSES = ("draft", "reviewed")
AGENCY_STATUSES = ("licensed", "revoked", "suspended")

HOTLINE_PLACEHOLDER = "[HOTLINE NUMBER NOT SET]"
#: filled by the caller at render time (a missing one renders as "")
RUNTIME_VARS = frozenset({"case_id", "severity", "url", "township", "agency", "language_name"})

#: Rasa tracker slots that may fill a placeholder ({township} picks the MRC);
#: bot/channels/nlg.py has the same list (it cannot import this package)
SLOT_VARIABLES = ("township", "case_id")
#: answers whose Viber version offers YES / NO buttons
YES_NO_KEYS = frozenset({"utter_ask_in_danger", "utter_ask_callback", "utter_ask_consent", "utter_delete_confirm"})
_YES_NO_LABELS = {"en": ("Yes", "No"), "my": ("ဟုတ်ကဲ့", "မဟုတ်ပါ"), "kac": ("Re", "N re"), "shn": ("ၸႂ်ႈ", "ဢမ်ႇၸႂ်ႈ")}


def viber_buttons(key: str, language: str) -> list[dict]:
    """The Viber buttons offered with an answer (YES / NO for the form's questions).
    The report form reads the words (bot/actions/words.py), not intents."""
    if key in YES_NO_KEYS:
        yes, no = _YES_NO_LABELS.get(language, _YES_NO_LABELS["en"])
        return [{"title": yes, "payload": "yes"}, {"title": no, "payload": "no"}]
    return []


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_BRACE = re.compile(r"[{}]")


class ContentError(ValueError):
    """A content file is wrong; the message names the file and the key."""


# --- results -------------------------------------------------------------------
@dataclass(frozen=True)
class RiskHit:
    category: str
    severity: str
    #: the lexicon term that matched (as written in the lexicon)
    term: str
    language: str

    @property
    def matched(self) -> str:
        return self.term


@dataclass(frozen=True)
class AgencyMatch:
    name: str
    licence_no: str
    status: str
    score: float
    name_my: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "name_my": self.name_my,
            "licence_no": self.licence_no,
            "status": self.status,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class AgencyResult:
    status: str  # licensed | not_found | revoked
    matches: list[AgencyMatch] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status, "matches": [m.as_dict() for m in self.matches]}


@dataclass(frozen=True)
class Entry:
    sms: str
    viber: str | None
    review: dict
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Referral:
    id: str
    group: str
    names: dict  # language -> short name used in SMS
    phone: str
    placeholder: str
    sources: tuple[str, ...]
    enabled: bool
    townships: tuple[str, ...] = ()
    default: bool = False


# --- normalisation ---------------------------------------------------------------
_LATIN_JUNK = re.compile(r"[^a-z0-9\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff]+")
_MYANMAR = re.compile(r"[\u1000-\u109F\uAA60-\uAA7F\uA9E0-\uA9FF]")


def fold(text: str, zawgyi: bool = True) -> str:
    """Case-folded, digits ASCII, apostrophes dropped ("can't" -> "cant"),
    everything that is not a letter or digit a single space. ``zawgyi=False``
    for content written in Unicode (lexicon entries): the detector is for
    messages, and it takes a short Unicode word with a stacked consonant for
    Zawgyi ("လက္ခဏာလား", is it a sign?, came out as "လက်ခဏာလား" and never matched)."""
    if zawgyi:
        text = normalise_text(text).text
    text = unicodedata.normalize("NFC", ascii_digits(text)).casefold()
    text = text.replace("'", "").replace("\u2019", "")
    return _LATIN_JUNK.sub(" ", text).strip()


def squash(text: str) -> str:
    """:func:`fold` without any spaces (Burmese and Shan are written without
    word spaces, and people space them at random)."""
    return fold(text).replace(" ", "")


# --- the content -----------------------------------------------------------------
class _State:
    """One validated snapshot of the content directory."""

    def __init__(self, directory: Path, include_samples: bool, required: tuple[str, ...] = REQUIRED_LANGUAGES):
        self.directory = directory
        self.sources = _load_sources(directory)
        self.referrals = _load_referrals(directory, self.sources)
        self.answers = _load_answers(directory, self.sources, set(self.groups()), required)
        self.lexicon = _load_lexicon(directory)
        self.keywords = _load_keywords(directory)
        self.agencies = _load_agencies(directory, include_samples)
        self._every: dict[str | None, dict[str, list]] = {}

    def every(self, language: str | None) -> dict[str, list]:
        """``_every_language`` of this snapshot's lexicon, built once per language: every screened
        message asks it twice (``lexicon_match``, then ``reassured``)."""
        out = self._every.get(language)
        if out is None:
            out = self._every[language] = _every_language(self.lexicon, language)
        return out

    def groups(self) -> dict[str, list[Referral]]:
        out: dict[str, list[Referral]] = {}
        for r in self.referrals:
            out.setdefault(r.group, []).append(r)
        return out


def _signature(directory: Path) -> tuple:
    items = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".csv"):
            st = path.stat()
            items.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(items)


#: a staff edit to a content file applies within this many seconds
CHECK_EVERY_S = 1.0

_INSTANCES: dict[tuple, Content] = {}
_INSTANCES_LOCK = threading.Lock()
_WARNED: set[str] = set()


def _warn_once(key: str, message: str, *args) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message, *args)


class Content:
    """The loaded content directory. Build with :meth:`load`."""

    def __init__(
        self, directory: str | Path, hotline: str = "", include_samples: bool = False,
        require_all_languages: bool = True,
    ):
        """Prefer :meth:`load` (shared, reloading instance). ``require_all_languages``
        False accepts answers missing a language (they fall back: my, en)."""
        self.directory = Path(directory)
        self.hotline = (hotline or "").strip()
        self.include_samples = include_samples
        self.required = REQUIRED_LANGUAGES if require_all_languages else ("en",)
        self._lock = threading.Lock()
        self._sig = _signature(self.directory)
        self._checked_at = time.monotonic()
        self._bad_sig: tuple | None = None
        self._state = _State(self.directory, include_samples, self.required)

    # ------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path | None = None, config: Config | None = None) -> Content:
        """The content of ``directory`` (default ``config.content_dir``), validated.

        One instance per (directory, hotline) per process, reloaded when a
        file changes. ``config`` gives the hotline number and whether the
        fictional sample agencies count (never in production); without it the
        process's own configuration is read."""
        if config is None:
            config = _process_config()
        directory = Path(directory or config.content_dir).resolve()
        include_samples = not config.is_production
        key = (str(directory), config.hotline_number, include_samples)
        with _INSTANCES_LOCK:
            inst = _INSTANCES.get(key)
            if inst is None:
                inst = cls(directory, config.hotline_number, include_samples)
                _INSTANCES[key] = inst
        inst.refresh()
        return inst

    def _maybe_refresh(self) -> None:
        """Lookups look for edited files at most every CHECK_EVERY_S: each look
        lists and stats every content file, and a message makes several lookups."""
        now = time.monotonic()
        if now - self._checked_at >= CHECK_EVERY_S:
            self.refresh()

    def refresh(self) -> bool:
        """Re-read the files if one changed; True if reloaded. A broken edit
        is logged and the last good content kept."""
        self._checked_at = time.monotonic()
        sig = _signature(self.directory)
        if sig == self._sig or sig == self._bad_sig:
            return False
        with self._lock:
            if sig == self._sig or sig == self._bad_sig:
                return False
            try:
                state = _State(self.directory, self.include_samples, self.required)
            except ContentError as exc:
                # not re-read until the files change again
                self._bad_sig = sig
                logger.error("content edit rejected, keeping the previous version: %s", exc)
                return False
            self._state, self._sig = state, sig
            logger.info("content reloaded from %s", self.directory)
            return True

    # --- answers ----------------------------------------------------------
    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    @property
    def keys(self) -> list[str]:
        self._maybe_refresh()
        return sorted(self._state.answers)

    def entry(self, key: str, language: str) -> Entry | None:
        """The raw entry (no fallback), for tests and the console."""
        self._maybe_refresh()
        return self._state.answers.get(key, {}).get(language)

    def answer(self, key: str, language: str | None, channel: str = "sms", **variables: Any) -> str:
        """The text for ``key`` in ``language`` (fallback: my, then en), for
        ``channel`` ("sms" or "viber": Viber gets the longer text when there
        is one), placeholders filled. KeyError if the key does not exist."""
        self._maybe_refresh()
        state = self._state
        per_lang = state.answers.get(key)
        if per_lang is None:
            raise KeyError(key)
        chosen = None
        for lang in (language, *FALLBACK):
            if lang in per_lang:
                chosen = lang
                break
        if chosen is None:
            raise KeyError(f"{key}: no text in {language}, my or en")
        if chosen != language:
            logger.warning("answer %s: no %s text, fell back to %s", key, language, chosen)
        entry = per_lang[chosen]
        text = entry.viber if channel == "viber" and entry.viber else entry.sms
        return self._render(state, text, chosen, variables)

    def _render(self, state: _State, text: str, language: str, variables: dict) -> str:
        groups = state.groups()

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name in variables and variables[name] is not None:
                return str(variables[name])
            if name == "hotline":
                return self.hotline_text()
            if name in groups:
                return self._referral_text(groups[name], language, variables.get("township"))
            if name in RUNTIME_VARS:
                return ""
            # validated on load, so only a caller typo gets here
            logger.error("answer: unknown placeholder %s", name)
            return ""

        return _PLACEHOLDER.sub(repl, text)

    def hotline_text(self) -> str:
        if self.hotline:
            return self.hotline
        _warn_once("hotline", "HOTLINE_NUMBER is not set: answers show %s", HOTLINE_PLACEHOLDER)
        return HOTLINE_PLACEHOLDER

    def _referral_text(self, options: list[Referral], language: str, township: str | None) -> str:
        enabled = [r for r in options if r.enabled]
        if not enabled:
            # the operator refers no one of this kind: the hotline instead
            return self.hotline_text()
        chosen = None
        if township:
            want = squash(township)
            chosen = next((r for r in enabled if want in {squash(t) for t in r.townships}), None)
        if chosen is None:
            chosen = next((r for r in enabled if r.default), enabled[0])
        name = chosen.names.get(language) or chosen.names.get("en", "")
        phone = chosen.phone or chosen.placeholder
        return f"{name} {phone}".strip()

    def referrals(self) -> list[Referral]:
        self._maybe_refresh()
        return list(self._state.referrals)

    def sources(self) -> dict[str, dict]:
        self._maybe_refresh()
        return dict(self._state.sources)

    # --- keywords ---------------------------------------------------------
    @property
    def keywords(self) -> dict[str, dict]:
        """``{folded word: {"kind": ..., "language": ...}}``."""
        self._maybe_refresh()
        return self._state.keywords

    # --- risk lexicon -----------------------------------------------------
    def lexicon_match(self, text: str, language: str | None = None) -> RiskHit | None:
        """The most severe risk term in ``text``, or None.

        The contact's language is searched first, then every other language
        (people mix languages and scripts). Strong terms count (but see below). Weak
        terms (topic words such as "trafficking", "missing") count only in a
        message about someone ("my", "sister", "ငါ့" ... the personal_markers)
        that is not a general question ("what are the signs of ..."); so
        "what is trafficking" does not escalate, "my sister was trafficked" does.
        Help-seeking phrases ("what should I do": help_questions) do not make
        a message a general question.

        Narrower exemptions, so that escalation stays the default:

        - a term with ``not_after`` does not count where it directly follows
          one of those words (particles between allowed, and the term's
          ``gap`` words: a time phrase): "lost" after a thing ("the phone ...
          lost", "the dog, two days now, lost"), "phone off" after "my";
        - a term with ``not_with`` does not count in a message that also
          gives one of those harmless causes ("… battery flat", "… lost her
          phone") unless it says the silence is long (long_absence: "for a
          month", "weeks");
        - no term, even a strong one, counts when it is asked about as a topic
          or only supposed, and no personal marker is left outside the term
          ("my sister's phone was taken, is it trafficking?" still
          escalates): asked about = the message has a generic question
          (generic_questions: "... is it trafficking?", "... is it legal?")
          and every place of the term is nominalised ("taking phones -တာ",
          "-ရင်"); supposed = every place of it is followed by a conditional
          (conditionals: "if the broker asks for more money (-ရင်), do I pay?")."""
        if not text:
            return None
        self._maybe_refresh()
        folded = fold(text)
        if not folded:
            return None
        tokens = folded.split()
        squashed = folded.replace(" ", "")
        starts: dict[str, list[int]] = {}
        for i, tok in enumerate(tokens):
            starts.setdefault(tok[:1], []).append(i)
        order = [language] if language in LANGUAGES else []
        order += [lang for lang in LANGUAGES if lang not in order]
        state = self._state
        lexicon = state.lexicon
        every = state.every(language)
        q_folded, q_squashed = _without(every["help"], folded, squashed)
        is_question = any(_guard_hit(g, q_folded, q_squashed) for g in every["guards"])
        # words that only contain a personal marker's letters ("အများ", most, holds "အမ", sister) are
        # taken out before personal markers are looked for
        p_folded, p_squashed = _without(every["not_personal"], folded, squashed)
        personal = any(_guard_hit(g, p_folded, p_squashed) for g in every["personal"])
        if personal and any(_guard_hit(g, folded, squashed) for g in every["hearsay"]):
            # news or a rumour about people in general ("girls" — a marker followed by a plural) is
            # about nobody in particular; a sister named in it still is (issue 4, twelfth round)
            personal = any(_names_someone(g, p_folded, p_squashed, every["plurals"]) for g in every["personal"])
        generic = any(_guard_hit(g, folded, squashed) for g in every["generic"])
        weak_ok = personal and not is_question
        best: RiskHit | None = None
        for lang in order:
            for term in lexicon[lang]["terms"]:
                if term["weak"] and not weak_ok and not (term["alone"] and folded == term["folded"]):
                    continue
                if _term_hit(term, tokens, squashed, starts) and _term_counts(term, folded, squashed, every, generic):
                    hit = RiskHit(term["category"], term["severity"], term["term"], lang)
                    if best is None or SEVERITY_RANK[hit.severity] > SEVERITY_RANK[best.severity]:
                        best = hit
                        if hit.severity == "emergency":
                            return best
        return best

    def reassured(self, text: str, language: str | None = None) -> bool:
        """The message says someone is fine or back ("reassurances": "she is fine now", "came
        back") and takes none of it back ("contrasts": "but", "…ပေမဲ့"). The worker asks it only
        of a message the lexicon did not escalate and passes it to Rasa as ``metadata.reassured``,
        where a *report* guess of the classifier alone (never an emergency, never a lexicon hit)
        becomes the best other intent (bot/components/metadata.py RiskRouter). Issue 4, eighth
        round: "my son is fine in Thailand, how does he renew his permit" is a question."""
        if not text:
            return False
        self._maybe_refresh()
        folded = fold(text)
        if not folded:
            return False
        squashed = folded.replace(" ", "")
        every = self._state.every(language)
        return any(_guard_hit(g, folded, squashed) for g in every["reassurances"]) and not any(
            _guard_hit(g, folded, squashed) for g in every["contrasts"]
        )

    # --- agencies ---------------------------------------------------------
    def agency_check(self, query: str) -> AgencyResult:
        """Look up an agency by English or Burmese name (misspellings
        tolerated) or licence number. ``licensed`` / ``revoked`` (revoked or
        suspended) / ``not_found``."""
        self._maybe_refresh()
        q = (query or "").strip()
        if not q:
            return AgencyResult("not_found", [])
        q_licence = _licence_key(q)
        q_name = _name_key(q)
        scored: list[AgencyMatch] = []
        for row in self._state.agencies:
            score = 0.0
            if q_licence and len(q_licence) >= 3 and q_licence == row["licence_key"]:
                score = 1.0
            elif q_name:
                for key in row["name_keys"]:
                    if not key:
                        continue
                    score = max(score, _name_score(q_name, key))
            if score >= AGENCY_MIN_SCORE:
                scored.append(AgencyMatch(row["name"], row["licence_no"], row["status"], score, row["name_my"]))
        scored.sort(key=lambda m: -m.score)
        if not scored:
            return AgencyResult("not_found", [])
        top = scored[0]
        status = "licensed" if top.status == "licensed" else "revoked"
        return AgencyResult(status, scored[:5])


#: a name at least this similar counts as the same agency
AGENCY_MIN_SCORE = 0.82


# --- matching helpers ---------------------------------------------------------------
def _edits(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance, giving up above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=65536)
def _tok_eq(term_tok: str, msg_tok: str) -> bool:
    """Same word, or a misspelling of it: one slip in 5-7 letters, two in 8+,
    same first letter ("kidnaped", "traffiking"; not "trafficked" for
    "trafficking", not "kissing" for "missing")."""
    if term_tok == msg_tok:
        return True
    n = len(term_tok)
    if n < 5 or _MYANMAR.search(term_tok) or msg_tok[:1] != term_tok[:1]:
        return False
    return _edits(term_tok, msg_tok, 1 if n < 8 else 2) <= (1 if n < 8 else 2)


#: a "*" in a Latin term stands for up to this many words ("took * passport")
GAP_WORDS = 3


def _match_from(words: list[str], tokens: list[str], i: int) -> bool:
    if not words:
        return True
    head, rest = words[0], words[1:]
    if head == "*":
        return any(_match_from(rest, tokens, i + k) for k in range(GAP_WORDS + 1) if i + k <= len(tokens))
    return i < len(tokens) and _tok_eq(head, tokens[i]) and _match_from(rest, tokens, i + 1)


def _term_hit(term: dict, tokens: list[str], squashed: str, starts: dict[str, list[int]]) -> bool:
    if term["script"] == "myanmar":
        return term["squashed"] in squashed
    words = term["tokens"]
    # a word only matches a word with the same first letter: start there
    candidates = starts.get(words[0][:1], ()) if words[0] != "*" else range(len(tokens))
    if any(_match_from(words, tokens, i) for i in candidates):
        return True
    # "lockedin", "sold to  china" with odd spacing
    return "*" not in words and len(term["squashed"]) >= 8 and term["squashed"] in squashed


_GUARD_LISTS = (
    "guards", "personal", "generic", "help", "particles", "auxiliaries", "nominalisers", "conditionals", "long",
    "plurals", "not_personal", "reassurances", "contrasts", "hearsay",
)


def _every_language(lexicon: dict, language: str | None = None) -> dict[str, list]:
    """The guard lists of all languages together (people mix them). One
    exception: in a message whose language is known and not English, the
    Latin-script personal markers of a *third* language do not count: Jinghpaw
    "ya" (now) and "shi" (he) are everyday romanised Burmese ("ya lar", is it
    allowed; "shi lar", is there), so they made every romanised Burmese
    question "about someone". English markers and every Myanmar-script marker
    still count in any language, except, in a Burmese message, a Shan marker
    written without Shan letters: Shan "မေး" (wife) is Burmese "ask", so "…
    ယေဘုယျ မေးတာပါ" (I am only asking in general) was about someone."""
    out = {key: [item for lang in LANGUAGES for item in lexicon[lang].get(key, [])] for key in _GUARD_LISTS}
    if language in LANGUAGES and language != "en":
        out["personal"] = [
            item
            for lang in LANGUAGES
            for item in lexicon[lang]["personal"]
            if (item["script"] == "myanmar" or lang in (language, "en"))
            and not (language == "my" and lang == "shn" and not SHAN_LETTERS.search(item["term"]))
        ]
    return out


def _without(phrases: list[dict], folded: str, squashed: str) -> tuple[str, str]:
    for p in phrases:
        folded = f" {folded} ".replace(f" {p['folded']} ", " | ").strip()
        squashed = squashed.replace(p["squashed"], "|")
    return folded, squashed


def _places(needle: str, haystack: str) -> list[int]:
    found, i = [], haystack.find(needle)
    while i >= 0:
        found.append(i)
        i = haystack.find(needle, i + 1)
    return found


def _ends_with_after_strip(text: str, between: list[dict], words: tuple[str, ...], times: int = 5) -> bool:
    """``text`` ends with one of ``words`` once up to ``times`` of the ``between`` words are taken off its
    end, checked after each one: a thing whose own last letters are a between word ("ပါဆယ်", a parcel,
    ends in "ဆယ်", ten, a duration) is still found (issue 4, eighteenth round)."""
    for _ in range(times + 1):
        if text.endswith(words):
            return True
        word = next(
            (w["squashed"] for w in between if text.endswith(w["squashed"]) and text != w["squashed"]), None
        )
        if word is None:
            return False
        text = text[: -len(word)]
    return False


def _strip_start(text: str, words: list[dict], times: int = 3) -> str:
    for _ in range(times):
        word = next((w["squashed"] for w in words if text.startswith(w["squashed"])), None)
        if word is None:
            break
        text = text[len(word) :]
    return text


def _term_counts(term: dict, folded: str, squashed: str, every: dict, generic: bool) -> bool:
    """A term that matched still counts unless every place of it is exempt
    (see ``Content.lexicon_match``). A term matched only as separate words
    (a misspelling, a "*" gap) cannot be placed, so it counts."""
    places = _places(term["squashed"], squashed) if "*" not in term["tokens"] else []
    if not places:
        return True
    if term["not_after"]:
        between = every["particles"] + term["gap"]  # what may stand between the word and the term
        places = [i for i in places if not _ends_with_after_strip(squashed[:i], between, term["not_after"])]
        if not places:
            return False
    if (
        term["not_with"]
        and any(_guard_hit(w, folded, squashed) for w in term["not_with"])
        and not any(_guard_hit(g, folded, squashed) for g in every["long"])
    ):
        return False  # a harmless cause given ("… battery flat"), and not "for weeks"
    end = len(term["squashed"])

    def every_place_followed_by(words: list[dict]) -> bool:
        return all(
            any(_strip_start(squashed[i + end :], every["auxiliaries"]).startswith(w["squashed"]) for w in words)
            for i in places
        )

    # asked about as a topic (with a generic question), or only supposed ("if …"): unless
    # someone is named outside the term, it is not a report of it
    if (generic and every_place_followed_by(every["nominalisers"])) or (
        every["conditionals"] and every_place_followed_by(every["conditionals"])
    ):
        rest_folded, rest_squashed = _without([term, *every["not_personal"]], folded, squashed)
        if not any(_names_someone(g, rest_folded, rest_squashed, every["plurals"]) for g in every["personal"]):
            return False
    return True


def _names_someone(marker: dict, folded: str, squashed: str, plurals: list[dict]) -> bool:
    """A personal marker somewhere not followed by a plural ("girls" in general are nobody in particular).
    A marker that is a plural itself ("လူတွေ", people) names nobody either (fifteenth round: news of
    people missing in a landslide)."""
    if any(marker["squashed"].endswith(p["squashed"]) for p in plurals):
        return False
    if marker["script"] == "myanmar":
        end = len(marker["squashed"])
        return any(
            not any(squashed[i + end :].startswith(p["squashed"]) for p in plurals)
            for i in _places(marker["squashed"], squashed)
        )
    padded = f" {folded} "
    return any(
        not any(padded[i + len(marker["folded"]) + 2 :].startswith(p["folded"] + " ") for p in plurals)
        for i in _places(f" {marker['folded']} ", padded)
    )


def _guard_hit(guard: dict, folded: str, squashed: str) -> bool:
    if guard["script"] == "myanmar":
        return guard["squashed"] in squashed
    return f" {guard['folded']} " in f" {folded} "


_AGENCY_NOISE = {
    "co", "company", "ltd", "limited", "plc", "agency", "overseas", "employment", "service", "services",
    "the", "and", "international", "intl", "recruitment",
    "ကုမ္ပဏီ", "လီမိတက်", "အေဂျင်စီ",
}


def _name_score(query: str, key: str) -> float:
    """Similarity of a typed name to a listed one: whole-name ratio, or (for
    6+ characters) the best ratio against a same-length part of the listed
    name, slightly discounted, so "golden dragn" finds "Golden Dragon Star"."""
    ratio = difflib.SequenceMatcher(None, query, key).ratio()
    n = len(query)
    if n >= 6 and len(key) > n:
        best = 0.0
        for width in (n - 1, n, n + 1, n + 2):
            for i in range(0, max(len(key) - width, 0) + 1):
                best = max(best, difflib.SequenceMatcher(None, query, key[i:i + width]).ratio())
        ratio = max(ratio, best * (0.9 + 0.1 * n / len(key)))
    return ratio


def _name_key(text: str) -> str:
    words = [w for w in fold(text).split() if w not in _AGENCY_NOISE]
    key = "".join(words)
    for noise in ("ကုမ္ပဏီ", "လီမိတက်", "အေဂျင်စီ", "ကုမ္ပဏီလီမိတက်"):
        key = key.replace(noise, "")
    return key


def _licence_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", ascii_digits(text).casefold())


# --- loading -------------------------------------------------------------------
def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: file missing") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: not valid YAML: {exc}") from exc


def _load_sources(directory: Path) -> dict[str, dict]:
    path = directory / "sources.yml"
    data = _read_yaml(path) or {}
    sources = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise ContentError(f"{path}: expected a 'sources:' mapping of ID -> {{title, url, year}}")
    for sid, info in sources.items():
        if not isinstance(info, dict) or not info.get("title"):
            raise ContentError(f"{path}: source {sid}: needs a title")
    return sources


def _check_sources(path: Path, where: str, sources: Any, known: dict) -> tuple[str, ...]:
    if sources is None:
        return ()
    if not isinstance(sources, list):
        raise ContentError(f"{path}: {where}: 'sources' must be a list of source IDs")
    for sid in sources:
        if str(sid) not in known:
            raise ContentError(f"{path}: {where}: unknown source {sid!r} (not in sources.yml)")
    return tuple(str(s) for s in sources)


def _load_referrals(directory: Path, known_sources: dict) -> list[Referral]:
    path = directory / "referrals.yml"
    data = _read_yaml(path) or {}
    items = data.get("organisations") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ContentError(f"{path}: expected 'organisations:' as a list")
    out, seen = [], set()
    for i, item in enumerate(items):
        where = f"organisations[{i}]"
        if not isinstance(item, dict) or not item.get("id") or not item.get("group"):
            raise ContentError(f"{path}: {where}: needs id and group")
        rid = str(item["id"])
        if rid in seen:
            raise ContentError(f"{path}: {rid}: duplicate id")
        seen.add(rid)
        names = item.get("short") or {}
        missing = [lang for lang in LANGUAGES if not (isinstance(names, dict) and names.get(lang))]
        if missing:
            raise ContentError(f"{path}: {rid}: 'short' name missing for {', '.join(missing)}")
        phone = str(item.get("phone") or "").strip()
        sources = _check_sources(path, rid, item.get("sources"), known_sources)
        if phone and not sources and not item.get("operator_set"):
            raise ContentError(
                f"{path}: {rid}: a phone number needs 'sources' (or 'operator_set: true' for "
                "a number the operator confirmed)"
            )
        placeholder = str(item.get("placeholder", f"[{rid.upper()} NUMBER NOT SET]") or "")
        if _BRACE.search(placeholder) or _BRACE.search(phone):
            raise ContentError(f"{path}: {rid}: no braces in phone or placeholder")
        if not isinstance(item.get("enabled", True), bool):
            raise ContentError(f"{path}: {rid}: enabled must be true or false")
        out.append(Referral(
            id=rid, group=str(item["group"]), names={k: str(v) for k, v in names.items()},
            phone=phone, placeholder=placeholder, sources=sources,
            enabled=item.get("enabled", True), townships=tuple(str(t) for t in item.get("townships") or ()),
            default=bool(item.get("default", False)),
        ))
    return out


def _load_answers(
    directory: Path, known_sources: dict, groups: set[str], required: tuple[str, ...] = REQUIRED_LANGUAGES,
) -> dict[str, dict[str, Entry]]:
    folder = directory / "answers"
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise ContentError(f"{folder}: no answer files")
    known_placeholders = {"hotline"} | groups | RUNTIME_VARS
    answers: dict[str, dict[str, Entry]] = {}
    for path in files:
        data = _read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ContentError(f"{path}: expected a mapping of answer keys")
        for key, spec in data.items():
            if key in answers:
                raise ContentError(f"{path}: {key}: defined twice")
            if not isinstance(spec, dict):
                raise ContentError(f"{path}: {key}: expected a mapping with en, my, kac, shn")
            key_sources = _check_sources(path, key, spec.get("sources"), known_sources)
            missing = [lang for lang in required if lang not in spec]
            if missing:
                raise ContentError(f"{path}: {key}: missing language(s) {', '.join(missing)}")
            unknown = set(spec) - set(LANGUAGES) - {"sources", "note", "vars"}
            if unknown:
                raise ContentError(f"{path}: {key}: unknown field(s) {', '.join(sorted(unknown))}")
            per_lang = {}
            for lang in (lang for lang in LANGUAGES if lang in spec):
                item = spec[lang]
                where = f"{key}.{lang}"
                if not isinstance(item, dict) or not isinstance(item.get("sms"), str) or not item["sms"].strip():
                    raise ContentError(f"{path}: {where}: needs an 'sms' text")
                viber = item.get("viber")
                if viber is not None and (not isinstance(viber, str) or not viber.strip()):
                    raise ContentError(f"{path}: {where}: 'viber' must be text")
                review = item.get("review")
                if not isinstance(review, dict) or review.get("status") not in REVIEW_STATUSES:
                    raise ContentError(f"{path}: {where}: review.status must be draft or reviewed")
                if review["status"] == "reviewed" and not (review.get("by") and review.get("date")):
                    raise ContentError(f"{path}: {where}: a reviewed text names who reviewed it and when")
                for text in (item["sms"], viber or ""):
                    for name in _PLACEHOLDER.findall(text):
                        if name not in known_placeholders:
                            raise ContentError(f"{path}: {where}: unknown placeholder {{{name}}}")
                    if _BRACE.search(_PLACEHOLDER.sub("", text)):
                        raise ContentError(f"{path}: {where}: stray brace (placeholders look like {{hotline}})")
                sources = _check_sources(path, where, item.get("sources"), known_sources) or key_sources
                per_lang[lang] = Entry(item["sms"].strip(), viber.strip() if viber else None, review, sources)
            answers[key] = per_lang
    return answers


def _load_lexicon(directory: Path) -> dict[str, dict]:
    out = {}
    for lang in LANGUAGES:
        path = directory / "lexicon" / f"{lang}.yml"
        data = _read_yaml(path) or {}
        if not isinstance(data, dict) or not isinstance(data.get("terms"), list):
            raise ContentError(f"{path}: expected 'terms:' as a list")
        terms = []
        for i, t in enumerate(data["terms"]):
            where = f"terms[{i}]"
            if not isinstance(t, dict) or not isinstance(t.get("term"), str):
                raise ContentError(f"{path}: {where}: needs 'term'")
            if t.get("category") not in CATEGORIES:
                raise ContentError(f"{path}: {where} ({t['term']}): category must be one of {CATEGORIES}")
            if t.get("severity") not in SEVERITIES:
                raise ContentError(f"{path}: {where} ({t['term']}): severity must be one of {SEVERITIES}")
            for option in ("not_after", "not_with", "gap"):
                words = t.get(option) or []
                if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
                    raise ContentError(f"{path}: {where} ({t['term']}): {option} must be a list of words")
            terms.append(_compile_term(path, t["term"], t))
        lists = {
            "guards": "question_guards",
            "personal": "personal_markers",
            "generic": "generic_questions",
            "help": "help_questions",
            "particles": "particles",
            "auxiliaries": "auxiliaries",
            "nominalisers": "nominalisers",
            "conditionals": "conditionals",
            "long": "long_absence",
            "plurals": "plurals",
            "not_personal": "not_personal",
            "reassurances": "reassurances",
            "contrasts": "contrasts",
            "hearsay": "hearsay",
        }
        out[lang] = {"terms": terms}
        for key, name in lists.items():
            words = data.get(name) or []
            if not isinstance(words, list):
                raise ContentError(f"{path}: {name}: expected a list")
            out[lang][key] = [_compile_term(path, g, {}) for g in words]
    return out


def _compile_term(path: Path, raw: Any, spec: dict) -> dict:
    if not isinstance(raw, str):
        raise ContentError(f"{path}: {raw!r}: expected text")
    folded = " ".join("*" if part == "*" else fold(part, zawgyi=False) for part in raw.split())
    folded = " ".join(folded.split())
    if not folded.replace("*", "").strip():
        raise ContentError(f"{path}: {raw!r}: empty after normalisation")
    return {
        "term": raw,
        "folded": folded,
        "tokens": folded.split(),
        "squashed": folded.replace(" ", "").replace("*", ""),
        "script": "myanmar" if _MYANMAR.search(folded) else "latin",
        "category": spec.get("category"),
        "severity": spec.get("severity"),
        "weak": bool(spec.get("weak", False)),
        "alone": bool(spec.get("alone", False)),
        # squashed words this term must not directly follow ("lost" after a thing)
        "not_after": tuple(fold(w, zawgyi=False).replace(" ", "") for w in spec.get("not_after") or ()),
        # words that, anywhere in the message, give a harmless cause ("battery flat")
        "not_with": tuple(_compile_term(path, w, {}) for w in spec.get("not_with") or ()),
        # more words allowed, besides particles, between a not_after word and the term: a time
        # phrase between a lost thing and "lost" ("ခွေးလေး နှစ်ရက်ရှိပြီ ပျောက်နေတယ်")
        "gap": [_compile_term(path, w, {}) for w in spec.get("gap") or ()],
    }


KEYWORD_KINDS = ("stop", "start", "help", "language", "delete", "join")


def _load_keywords(directory: Path) -> dict[str, dict]:
    path = directory / "keywords.yml"
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ContentError(f"{path}: expected a mapping")
    out: dict[str, dict] = {}

    def add(word: Any, kind: str, language: str | None, where: str) -> None:
        if not isinstance(word, str) or not word.strip():
            raise ContentError(f"{path}: {where}: empty keyword")
        key = keyword_key(word)
        if key.isdigit():
            raise ContentError(f"{path}: {where}: {word!r}: digits are menu choices, not keywords")
        new = {"kind": kind, "language": language, "word": word}
        if key in out and (out[key]["kind"], out[key]["language"]) != (kind, language):
            raise ContentError(f"{path}: {where}: {word!r} is already a {out[key]['kind']} keyword")
        out[key] = new

    for kind in KEYWORD_KINDS:
        section = data.get(kind)
        if not isinstance(section, dict):
            raise ContentError(f"{path}: '{kind}:' missing (a mapping of language -> words)")
        for lang, words in section.items():
            if lang not in LANGUAGES:
                raise ContentError(f"{path}: {kind}.{lang}: unknown language")
            if not isinstance(words, list):
                raise ContentError(f"{path}: {kind}.{lang}: expected a list of words")
            for w in words:
                # language keywords switch to the language they name
                add(w, kind, lang if kind == "language" else None, f"{kind}.{lang}")
    return out


def keyword_key(text: str) -> str:
    """How a whole message is compared with keywords: folded, spaces and
    punctuation removed ("Stop!" == "STOP", "ရပ် ပါ" == "ရပ်ပါ")."""
    return squash(text)


def _load_agencies(directory: Path, include_samples: bool) -> list[dict]:
    path = directory / "agencies.csv"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: file missing") from exc
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(body)
    need = {"licence_no", "name_en", "name_my", "status", "sample"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise ContentError(f"{path}: header must include {', '.join(sorted(need))}")
    rows = []
    for i, row in enumerate(reader, start=1):
        status = (row.get("status") or "").strip().lower()
        if status not in AGENCY_STATUSES:
            raise ContentError(f"{path}: row {i}: status must be one of {AGENCY_STATUSES}")
        sample = (row.get("sample") or "").strip().lower() in ("true", "1", "yes")
        if sample and not include_samples:
            continue
        name_en = (row.get("name_en") or "").strip()
        name_my = (row.get("name_my") or "").strip()
        rows.append({
            "name": name_en or name_my,
            "name_my": name_my,
            "licence_no": (row.get("licence_no") or "").strip(),
            "licence_key": _licence_key(row.get("licence_no") or ""),
            "status": status,
            "name_keys": [k for k in (_name_key(name_en), _name_key(name_my)) if k],
        })
    return rows


_PROCESS_CONFIG: list[Config] = []


def _process_config() -> Config:
    if not _PROCESS_CONFIG:
        _PROCESS_CONFIG.append(Config.from_env())
    return _PROCESS_CONFIG[0]
