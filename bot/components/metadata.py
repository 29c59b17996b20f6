"""NLU components that read what the worker sends with each message.

- ``MetadataLanguage`` adds a ``meta_language`` entity from
  ``metadata.language`` (the contact's language as the app knows it), which
  fills the ``language`` slot, so the NLG endpoint answers in that language.
  A language named in the text itself ("in Shan please") is the ``language``
  entity and wins.
- ``RiskRouter`` honours the app's risk lexicon: when ``metadata.risk`` is
  set (a trafficking word matched) the message is a report, even if the
  classifier picked another intent. Risk of severity ``emergency`` goes to
  the ``emergency`` intent. The classifier's own answer stays in
  ``intent_ranking`` and in ``risk_override``.
  It also settles doubt towards a human: when the FallbackClassifier found
  no confident intent but the classifier's best guess was a report or an
  emergency (at least ``report_floor``), the message is that report.
  One exception, from the app as well: ``metadata.reassured`` (the message
  says the relative is fine or back and takes none of it back; no risk word:
  lanpya.content ``Content.reassured``). Then a ``report_concern`` guess of
  the classifier alone becomes the best other intent ("my son is fine in
  Thailand, how does he renew his permit" is a question), and a doubtful one
  stays doubtful. An emergency guess is never reassured away.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

LANGUAGES = ("en", "my", "kac", "shn")
REPORT_INTENTS = ("report_concern", "emergency")
#: lexicon severities that mean "danger now" (lanpya Case.SEVERITIES: emergency, urgent, normal)
URGENT = ("emergency",)


def _metadata(message: Message) -> Dict[Text, Any]:
    metadata = message.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class MetadataLanguage(GraphComponent):
    """The contact's language from the message metadata, as an entity."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "MetadataLanguage":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            language = _metadata(message).get("language")
            if language not in LANGUAGES:
                continue
            entities = list(message.get(ENTITIES) or [])
            if any(e.get("entity") == "language" for e in entities):
                continue
            entities.append(
                {"entity": "meta_language", "value": language, "extractor": "MetadataLanguage",
                 "confidence_entity": 1.0}
            )
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RiskRouter(GraphComponent):
    """A risk-lexicon hit in the metadata makes the message a report; so does
    a doubtful message whose best guess is a report."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"report_floor": 0.15}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.report_floor = float(config.get("report_floor", 0.15))

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RiskRouter":
        return cls(config)

    def _doubtful_report(self, message: Message) -> Optional[Dict[Text, Any]]:
        """The report intent behind an nlu_fallback, if it was the best guess."""
        if (message.get(INTENT) or {}).get("name") != "nlu_fallback":
            return None
        ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != "nlu_fallback"]
        if ranking and ranking[0].get("name") in REPORT_INTENTS and (ranking[0].get("confidence") or 0) >= self.report_floor:
            return {"name": ranking[0]["name"], "confidence": ranking[0].get("confidence")}
        return None

    @staticmethod
    def _reassure(message: Message) -> None:
        """A report guess, in a message that says the relative is fine, becomes the best other intent."""
        predicted = message.get(INTENT) or {}
        if predicted.get("name") != "report_concern":
            return
        ranking = message.get(INTENT_RANKING_KEY) or []
        others = [r for r in ranking if r.get("name") not in (*REPORT_INTENTS, "nlu_fallback")]
        if not others:
            return
        message.set(
            "risk_override",
            {"from": predicted.get("name"), "confidence": predicted.get("confidence"), "reassured": True},
            add_to_output=True,
        )
        best = {"name": others[0]["name"], "confidence": others[0].get("confidence")}
        message.set(INTENT, best, add_to_output=True)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            predicted: Optional[Dict[Text, Any]] = message.get(INTENT) or {}
            metadata = _metadata(message)
            risk = metadata.get("risk")
            if not isinstance(risk, dict):
                if metadata.get("reassured") is True:
                    self._reassure(message)
                    continue
                doubtful = self._doubtful_report(message)
                if doubtful:
                    message.set("risk_override", {"from": "nlu_fallback", "doubtful": True}, add_to_output=True)
                    message.set(INTENT, doubtful, add_to_output=True)
                continue
            if predicted.get("name") in REPORT_INTENTS:
                continue
            target = "emergency" if str(risk.get("severity", "")).lower() in URGENT else "report_concern"
            message.set("risk_override", {"from": predicted.get("name"), "confidence": predicted.get("confidence")},
                        add_to_output=True)
            message.set(INTENT, {"name": target, "confidence": 1.0}, add_to_output=True)
            ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != target]
            message.set(INTENT_RANKING_KEY, [{"name": target, "confidence": 1.0}, *ranking], add_to_output=True)
        return messages
