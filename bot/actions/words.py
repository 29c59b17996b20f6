"""Small word lists the actions need, in every language (en, my, kac, shn).

These decide what an answer inside a form *means* (skip, stop, yes, no), not
what the person is told; the texts live in content/. The app's own keyword
list (content/keywords.yml) screens STOP/HELP before Rasa; this is the
second net for a keyword that reaches a form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

#: "skip this question" / "I don't know"
SKIP = {
    "skip", "-", "--", ".", "?", "pass", "next", "idk", "dont know", "don't know", "do not know",
    "not sure", "no idea", "n/a", "na", "unknown", "skip it", "skip please",
    # Burmese (Unicode and romanised)
    "မသိ", "မသိဘူး", "မသိပါ", "မသိပါဘူး", "ကျော်", "ကျော်ပါ", "ma thi bu", "mathibu", "ma thi",
    # Jinghpaw
    "n chye ai", "n chye", "nchye", "n chye ai law", "kau da",
    # Shan
    "ဢမ်ႇႁူႉ", "ဢမ်ႇႁူႉ ၶႃႈ", "ၶၢမ်ႈ",
}
#: opt-out words (the worker confirms the opt-out; the bot only ends the form)
STOP = {"stop", "stop all", "unsubscribe", "cancel all", "end", "quit", "ရပ်", "ရပ်ပါ", "ရပ်တန့်", "hkring", "hkring u", "ၵိုတ်း", "ၵိုတ်းၶႃႈ"}
#: a lone HELP inside a report: a person is needed, hand off
HELP = {"help", "help me", "အကူအညီ", "ကူညီပါ", "karum", "karum rit", "ၸွႆႈထႅမ်", "ၸွႆႈ"}
YES = {"yes", "y", "yeah", "yep", "ya", "ok", "okay", "sure", "yes please", "1", "ဟုတ်", "ဟုတ်ကဲ့", "ဟုတ်တယ်", "ဟုတ်ကဲ့ပါ",
       "ရတယ်", "houk", "hout kae", "ho", "re", "rai", "mai ai", "ၸႂ်ႈ", "ၸႂ်ႈယဝ်ႉ", "ဝၢႆး"}
NO = {"no", "n", "nope", "nah", "not", "no thanks", "2", "မဟုတ်", "မဟုတ်ဘူး", "မရ", "မရဘူး", "ma houk bu", "ma hout bu",
      "n re", "nre", "n mai", "ဢမ်ႇၸႂ်ႈ", "ဢမ်ႇ"}

_DIGITS = str.maketrans({chr(0x1040 + i): str(i) for i in range(10)} | {chr(0x1090 + i): str(i) for i in range(10)})
_TRIM = re.compile(r"^[\s.!?,;:။၊]+|[\s.!?,;:။၊]+$")


def fold(text: Optional[str]) -> str:
    """Lower-case, NFC, Burmese/Shan digits as 0-9, outer punctuation trimmed."""
    text = unicodedata.normalize("NFC", text or "").translate(_DIGITS).lower()
    if text.strip() in {"-", "--", ".", "?"}:
        return text.strip()
    return re.sub(r"\s+", " ", _TRIM.sub("", text))


def is_skip(text: Optional[str]) -> bool:
    return fold(text) in SKIP


def is_stop(text: Optional[str]) -> bool:
    return fold(text) in STOP


def is_help(text: Optional[str]) -> bool:
    return fold(text) in HELP


def yes_no(text: Optional[str]) -> Optional[str]:
    """"yes", "no" or None when the answer is neither."""
    folded = fold(text)
    if folded in YES:
        return "yes"
    if folded in NO:
        return "no"
    return None
