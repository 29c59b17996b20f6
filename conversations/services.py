"""The core services the worker uses, reached through one place.

Each is another part's module (content, keywords, escalation, channels).
They are imported when first used, so the worker starts and keeps answering
even while a part is missing from a deployment; what is missing is logged
once, never silently skipped.
"""

from __future__ import annotations

import importlib
import logging
import time
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

    kind: str  # stop | start | help | language | delete | join
    value: str | None = None  # the language for "language"


#: after a failed content load, try again this much later
RELOAD_AFTER_S = 30.0


class Answers:
    """App-side answers (holding, case_ack, throttled ...), keywords and the
    risk lexicon, from ``lanpya.content`` / ``lanpya.keywords``.

    If the content cannot be loaded the worker keeps answering through Rasa
    (logged loudly); it does not stop every conversation for a bad file."""

    def __init__(self, config):
        self.config = config
        self._content = None
        self._failed_at: float | None = None

    @property
    def content(self):
        if self._content is None:
            if self._failed_at is not None and time.monotonic() - self._failed_at < RELOAD_AFTER_S:
                return None
            mod = module("lanpya.content")
            if mod is None:
                return None
            try:
                self._content = mod.Content.load(self.config.content_dir, self.config)
            except Exception:
                logger.exception("content could not be loaded from %s", self.config.content_dir)
                self._failed_at = time.monotonic()
                return None
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
        except Exception:
            logger.exception("content answer %r failed", key)
            return None

    def buttons(self, key: str, language: str) -> list[dict]:
        """The Viber buttons that go with an answer (none if content is missing)."""
        mod = module("lanpya.content")
        return mod.viber_buttons(key, language) if mod is not None else []

    def lexicon_match(self, text: str, language: str):
        content = self.content
        if content is None or not text:
            return None
        try:
            return content.lexicon_match(text, language)
        except Exception:  # Rasa's own report intent still catches reports
            logger.exception("risk lexicon failed; going on without it")
            return None

    def reassured(self, text: str, language: str) -> bool:
        """The message says the relative is fine (``Content.reassured``); False on any failure,
        which leaves a report guess a report."""
        content = self.content
        if content is None or not text:
            return False
        try:
            return bool(content.reassured(text, language))
        except Exception:
            logger.exception("reassurance check failed; going on without it")
            return False

    def keyword(self, text: str) -> KeywordHit | None:
        mod = module("lanpya.keywords")
        content = self.content
        if mod is None or content is None or not text:
            return None
        try:
            hit = mod.match_keyword(text, content=content)
        except Exception:
            logger.exception("keyword matching failed; going on without it")
            return None
        if hit is None:
            return None
        kind = getattr(hit, "kind", None) or str(hit)
        value = getattr(hit, "language", None) or getattr(hit, "value", None)
        return KeywordHit(str(kind).lower(), value)
