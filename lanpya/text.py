"""The text pipeline: what every inbound text goes through before anything
reads it, and how outbound text is measured in SMS segments.

- :func:`normalise_text`: NFC; Zawgyi detected with Google's ``myanmartools``
  detector and converted to Unicode only above a high-confidence threshold,
  so Unicode Burmese and Shan are never damaged.
- :func:`ascii_digits`: Burmese and Shan digits read as 0-9.
- :func:`syllables`: Burmese and Shan broken into syllables (space separated)
  for the NLU's whitespace tokenizer.
- :func:`detect_language`: en / my / kac / shn from script and vocabulary.
- :func:`segments_for`: GSM-7 (160/153) or UCS-2 (70/67) segments.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

#: P(zawgyi) above which we convert. The detector's authors suggest 0.95 for
#: high confidence; Unicode text with a few ambiguous syllables scores far below.
ZAWGYI_THRESHOLD = 0.95

_MYANMAR_BLOCK = re.compile(r"[\u1000-\u109F\uAA60-\uAA7F\uA9E0-\uA9FF]")
#: letters used by Shan and not by Burmese (Myanmar block, Shan extensions)
SHAN_LETTERS = re.compile(r"[\u1075-\u1081\u1082\u1086-\u108F\u109A-\u109D]")
_BURMESE_DIGITS = str.maketrans(
    {chr(0x1040 + i): str(i) for i in range(10)} | {chr(0x1090 + i): str(i) for i in range(10)}
)


@dataclass(frozen=True)
class Normalised:
    text: str
    #: "unicode" or "zawgyi": what the sender typed
    encoding: str
    zawgyi_probability: float


@lru_cache(maxsize=1)
def _detector():
    from myanmartools import ZawgyiDetector

    return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    if not _MYANMAR_BLOCK.search(text):
        return 0.0
    return float(_detector().get_zawgyi_probability(text))


#: python-myanmar's converter turns aa into tall aa after these, where Burmese
#: spells the round one (ဓား knife, ဓာတ် element; ဃ likewise)
_ROUND_AA_AFTER = ("\u1013", "\u1003")


_U_BEFORE_I = re.compile("([\u102f\u1030])([\u102d\u102e])")


def zawgyi_to_unicode(text: str) -> str:
    """Zawgyi to Unicode (python-myanmar), with three of its slips mended:
    a ya-pin after a killed consonant (Zawgyi ``က္်``, as in ေယာက္်ား "man")
    came out as a second asat; ဓ/ဃ + aa came out with the tall aa; and the
    ha-htoe+u sign before i (Zawgyi ``႐ႈိး``, as in Lashio) came out as u
    before i, which Unicode spells i before u (ရှိုး)."""
    from myanmar import converter

    out = converter.convert(text, "zawgyi", "unicode")
    # two asats in a row never occur in Unicode Burmese: the second was a ya-pin
    out = out.replace("\u103a\u103a", "\u103a\u103b")
    # Unicode order is i/ii (U+102D/E) before u/uu (U+102F/30)
    out = _U_BEFORE_I.sub(r"\2\1", out)
    for consonant in _ROUND_AA_AFTER:
        if consonant + "\u102b" not in text:
            out = out.replace(consonant + "\u102b", consonant + "\u102c")
    return out


_SPACES = re.compile(r"[ \t\u00a0\u200b\u200c\u200d\ufeff]+")


def normalise_text(text: str | None) -> Normalised:
    """NFC, invisible characters folded, Zawgyi converted when sure."""
    if not text:
        return Normalised("", "unicode", 0.0)
    text = unicodedata.normalize("NFC", text)
    # zero-width spaces and joiners are common in pasted Burmese
    text = _SPACES.sub(" ", text).strip()
    p = zawgyi_probability(text)
    if p >= ZAWGYI_THRESHOLD:
        text = unicodedata.normalize("NFC", zawgyi_to_unicode(text))
        return Normalised(text, "zawgyi", p)
    return Normalised(text, "unicode", p)


def ascii_digits(text: str) -> str:
    """Burmese (၀-၉) and Shan (႐-႙) digits as 0-9."""
    return text.translate(_BURMESE_DIGITS)


# --- syllable breaking (after Ye Kyaw Thu's sylbreak, with Shan letters) ----
_CONSONANTS = "\u1000-\u1021\u103f\u1050-\u1051\u105a-\u105d\u1061\u1065-\u1066\u106e-\u1070\u1075-\u1081\u108e"
_OTHER = "\u1023-\u102a\u104c-\u104f\u1040-\u1049\u1090-\u1099\u104a\u104b"
_ASAT = "\u103a"
_VIRAMA = "\u1039"
_BREAK = re.compile(
    rf"((?<!{_VIRAMA})[{_CONSONANTS}](?![{_ASAT}{_VIRAMA}])|[{_OTHER}])"
)


def syllables(text: str) -> str:
    """Space-separate Burmese/Shan syllables; other scripts pass through."""
    if not _MYANMAR_BLOCK.search(text):
        return text
    broken = _BREAK.sub(r" \1", text)
    return re.sub(r"\s+", " ", broken).strip()


# --- language detection ------------------------------------------------------
#: common Jinghpaw words that English (and romanised Burmese) do not use
JINGHPAW_MARKERS = frozenset(
    """
    ngai nang shi anhte nanhte shanhte ya hpa kaw gara n nre re rai ai sai mung
    gaw hte na ni lu ma mi hku kadai hpabaw shaloi kaning ngut ram chyeju dum
    kaja kaja wa grai mahkawng jinghpaw sha shaga htet bungli myit gumhpraw
    lakhpu rai ai kaja ai sa na mayu nga ai lu ai n lu ai ndai ndai hta e ga
    makawp maga shawng hkam nu wa kanau kana jan la kashu mahtang hpaji kasha
    num kasha la jahkrai matsan tsun dai majaw
    karum rit hkrit tsang lawan pru dut kau woi hkap matut shiga hkungran miwa
    mungdan mundan kade jaw hpyi teng masu galaw lai laisin madu hpe masha
    shinggyim htai hkum shamyit malap yawng hkring shani shata ning hpu jep sawk
    madun garan shang sharin jawng sadi ahkaw ahkang tara maren hpyen adup
    machyi hprawng lawt hkan mawdaw jahkrit hpang kaga mungkan nta makau raitim
    nna grau lata galai myen wunpawng hkying hkra yaw sahte kam kabu shaman
    karai kasang jahpawt shana hpawt labau poi manau marang htu mahkawn ngay
    kanin gumpraw cheju kaba kba chyejuu hka shap hpyet kap seng kasin htawt
    shangun shamat kajaai kja jinghku nhtoi tsaw jahpu hpaga ming krum khrit phe
    phu khap khungran chyezu
    """.split()
)
#: common English words, to weigh against the Jinghpaw markers
ENGLISH_MARKERS = frozenset(
    """
    the a an is are am i you he she we they my your his her to for of in on
    at how what where when who why can do does help job work agency passport
    visa please thanks thank hello hi yes no not with from go going want need
    sister brother daughter son mother father missing report china thailand
    malaysia marry marriage broker money fee fees sure bye goodbye
    options option language news menu info information about tell me show
    talk person human someone bot robot real stop start delete data
    subscribe unsubscribe alerts thank's thx pls plz cheers great good fine
    nope yeah yep right correct wrong nothing anything something today now
    and or but if so this that there here it its be been was were will would
    should could have has had get got know see ask call phone number office
    embassy rights salary pay contract document documents permit card
    """.split()
)
#: romanised Burmese words (written in Latin letters, meant as Burmese)
ROMANISED_BURMESE = frozenset(
    """
    mingalarbar mingalaba mingalar min ga lar par nay kaung lar kyay zu tin
    tinbade pr par bar lal lae thwar thwa chin chg ng nyi ma lay sa mal mhar
    mha hmar a lote alote pwel pwe thu thal shi shal ba lo bal lo lote ma ya
    tat pa dal ko kyi kyi bu ya mae mal ka yin khin bya pyaw pyar naing sone
    phone nan bat nan pat pat sa yar kyat ngway ngwe lo chin ll tl
    """.split()
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def detect_language(text: str, default: str | None = None) -> str | None:
    """Guess en / my / kac / shn from one message; ``default`` when unsure.

    Script first (Shan-only letters → shn; other Myanmar script → my), then
    vocabulary for Latin text (Jinghpaw markers versus English markers versus
    romanised Burmese). Short texts such as "ok" or "1" return ``default``.
    """
    if not text:
        return default
    myanmar = len(_MYANMAR_BLOCK.findall(text))
    if myanmar:
        shan = len(SHAN_LETTERS.findall(text))
        if shan >= 1 and shan / myanmar > 0.05:
            return "shn"
        return "my"
    words = _words(text)
    if not words:
        return default
    kac = sum(w in JINGHPAW_MARKERS for w in words)
    en = sum(w in ENGLISH_MARKERS for w in words)
    my = sum(w in ROMANISED_BURMESE for w in words)
    best = max(kac, en, my)
    if best == 0:
        return default
    if kac == best and kac > en:
        return "kac"
    if my == best and my > en:
        return "my"
    if en == best:
        return "en"
    return default


def next_language(current: str | None, text: str) -> str | None:
    """The contact's language after this message: ``current`` unless the
    message shows another language clearly.

    A change of script is clear (Myanmar script after Latin, or Shan letters).
    A short Latin message ("yes", "hi", "thanks", "no" — which Burmese,
    Jinghpaw and Shan speakers type in English every day) is not: it takes
    three words or more, or two marker words, to move a contact from one
    Latin-script language (or from a Myanmar-script one) to another.
    """
    detected = detect_language(text)
    if detected is None or current is None or detected == current:
        return detected or current
    if _MYANMAR_BLOCK.search(text):
        # Shan and Burmese share the script; a short message without Shan-only
        # letters ("ဢေႃ", a name) does not make a Shan speaker Burmese
        if current == "shn" and detected == "my" and len(_MYANMAR_BLOCK.findall(text)) < 12:
            return current
        return detected
    words = _words(text)
    markers = {"en": ENGLISH_MARKERS, "kac": JINGHPAW_MARKERS, "my": ROMANISED_BURMESE}[detected]
    if len(words) >= 3 or sum(w in markers for w in words) >= 2:
        return detected
    return current


# --- SMS segments ------------------------------------------------------------
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    #: characters left in the last segment
    remaining: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def segments_for(text: str) -> Segments:
    """How many SMS segments ``text`` costs: GSM-7 160/153, UCS-2 70/67.

    Burmese and Shan are never GSM-7, so they always cost UCS-2.
    """
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, multi, enc = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, enc = 70, 67, "UCS-2"
    if units <= single:
        count = 1 if units else 0
        return Segments(enc, units, count, single - units)
    count = -(-units // multi)
    return Segments(enc, units, count, count * multi - units)
