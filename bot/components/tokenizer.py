"""LanpyaTokenizer: Latin words, and Burmese/Shan broken into syllables.

Burmese and Shan are written without spaces between words, so a whitespace
tokenizer sees a whole sentence as one token. This tokenizer splits every
run of Myanmar-script letters into syllables (after Ye Kyaw Thu's sylbreak,
with the Shan letters), keeping character offsets so entity extraction
still works, and splits everything else into words like Rasa's
WhitespaceTokenizer.

The syllable regex is a copy of ``lanpya/text.py`` (``_BREAK``,
``syllables``): the bot runs in its own Python and must not import the app.
Change both together.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

# --- twin of lanpya/text.py (syllable breaking) --------------------------------
_MYANMAR_BLOCK = "\u1000-\u109F\uAA60-\uAA7F\uA9E0-\uA9FF"
_CONSONANTS = "\u1000-\u1021\u103f\u1050-\u1051\u105a-\u105d\u1061\u1065-\u1066\u106e-\u1070\u1075-\u1081\u108e"
_OTHER = "\u1023-\u102a\u104c-\u104f\u1040-\u1049\u1090-\u1099\u104a\u104b"
_ASAT = "\u103a"
_VIRAMA = "\u1039"
_BREAK = re.compile(rf"((?<!{_VIRAMA})[{_CONSONANTS}](?![{_ASAT}{_VIRAMA}])|[{_OTHER}])")
# -------------------------------------------------------------------------------

#: a run of Myanmar-script characters, or of word characters (Latin, digits)
_RUN = re.compile(rf"[{_MYANMAR_BLOCK}]+|[^\W_]+(?:['’][^\W_]+)*")
_MYANMAR_PUNCT = re.compile("[\u104a\u104b]")


def syllable_spans(text: str, start: int = 0, end: Optional[int] = None) -> List[tuple]:
    """(start, end) of each syllable of the Myanmar-script run text[start:end]."""
    end = len(text) if end is None else end
    run = text[start:end]
    cuts = sorted({0, *(m.start() for m in _BREAK.finditer(run))})
    spans = []
    for i, cut in enumerate(cuts):
        stop = cuts[i + 1] if i + 1 < len(cuts) else len(run)
        if stop > cut:
            spans.append((start + cut, start + stop))
    return spans


def split(text: str) -> List[tuple]:
    """Token spans: Latin words whole, Myanmar-script runs as syllables."""
    spans: List[tuple] = []
    for match in _RUN.finditer(text):
        if re.match(f"[{_MYANMAR_BLOCK}]", match.group()):
            for s, e in syllable_spans(text, match.start(), match.end()):
                if not _MYANMAR_PUNCT.fullmatch(text[s:e]):
                    spans.append((s, e))
        else:
            spans.append((match.start(), match.end()))
    return spans


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class LanpyaTokenizer(Tokenizer):
    """Whitespace words for Latin script, syllables for Burmese and Shan."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LanpyaTokenizer":
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute) or ""
        spans = split(text)
        if not spans:
            # only punctuation or emoji: one token, so featurizers see something
            return [Token(text, 0, len(text))] if text else []
        tokens = [Token(text[s:e], s, e) for s, e in spans]
        return self._apply_token_pattern(tokens)
