"""Whole-message keywords (content/keywords.yml): STOP, START, HELP, a
language name, DELETE, JOIN — in every language.

Only the whole message counts, after trimming, case-folding, Burmese/Shan
digits read as ASCII and spaces/punctuation removed: "Stop!" unsubscribes,
"please don't stop sending" does not. Digits are never keywords (a lone digit
is a menu choice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lanpya.config import Config
from lanpya.content import Content, keyword_key

logger = logging.getLogger(__name__)

#: a message longer than this is a sentence, never a keyword
MAX_KEYWORD_CHARS = 40


@dataclass(frozen=True)
class Keyword:
    kind: str  # stop | start | help | language | delete | join
    #: for kind == "language": en | my | kac | shn
    language: str | None = None
    #: the keyword as written in keywords.yml
    word: str = ""

    @property
    def value(self) -> str | None:
        return self.language


def match_keyword(
    text: str | None, content: Content | None = None, config: Config | None = None,
    directory: str | Path | None = None,
) -> Keyword | None:
    """The keyword the whole of ``text`` is, or None."""
    if not text or len(text.strip()) > MAX_KEYWORD_CHARS:
        return None
    key = keyword_key(text)
    if not key or key.isdigit():
        return None
    if content is None:
        content = Content.load(directory, config)
    hit = content.keywords.get(key)
    if hit is None:
        return None
    return Keyword(hit["kind"], hit["language"], hit["word"])
