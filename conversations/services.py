"""The core services the worker uses, reached through one place.

Each is another part's module (content, keywords, escalation, channels).
They are imported when first used, so the worker starts and keeps answering
even while a part is missing from a deployment; what is missing is logged
once, never silently skipped.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

logger = logging.getLogger(__name__)


@cache
def module(path: str) -> Any | None:
    try:
        return importlib.import_module(path)
    except ImportError as exc:
        logger.error("core module %s is not available: %s", path, exc)
        return None


@dataclass(frozen=True)
class KeywordHit:
    """A keyword, reduced to what the worker needs."""

    kind: str  # stop | start | help | lang | delete | join | ...
    value: str | None = None  # the language for "lang"


def match_keyword(text: str) -> KeywordHit | None:
    mod = module("lanpya.keywords")
    if mod is None or not text:
        return None
    hit = mod.match_keyword(text)
    if hit is None:
        return None
    kind = getattr(hit, "kind", None) or getattr(hit, "name", None) or str(hit)
    value = getattr(hit, "value", None) or getattr(hit, "language", None)
    return KeywordHit(str(kind).lower(), value)


class Answers:
    """App-side answers (holding, case_ack, throttled ...) from ``lanpya.content``."""

    def __init__(self, config):
        self.config = config
        self._content = None

    @property
    def content(self):
        if self._content is None:
            mod = module("lanpya.content")
            if mod is None:
                return None
            self._content = mod.Content.load(self.config.content_dir)
        return self._content

    def answer(self, key: str, language: str, channel: str = "sms", **variables) -> str | None:
        content = self.content
        if content is None:
            return None
        try:
            return content.answer(key, language, channel=channel, **variables)
        except KeyError:
            logger.error("content has no answer %r", key)
            return None

    def lexicon_match(self, text: str, language: str):
        content = self.content
        if content is None or not text:
            return None
        return content.lexicon_match(text, language)
