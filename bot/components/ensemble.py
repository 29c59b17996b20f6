"""An average of two intent classifiers (issue 4: compared in docs/nlu.md from
its fourth round, ``bot/pipelines/ensemble.yml`` at 0.5; served since the
seventh round, ``bot/config.yml`` at ``lr_weight: 0.7``).

The LR (bag of n-grams) and DIET (which sees word order) each rank every
intent. Rasa keeps only the last classifier's ``intent_ranking``, so
``RankingKeepingLogisticRegression`` (the served weighted LR) also stores its
ranking under ``lr_intent_ranking``; ``RankingAverage``, after DIET, sets the
intent to the best of ``lr_weight * LR + (1 - lr_weight) * DIET``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from components.classifier import ReportWeightedLogisticRegression

LR_RANKING = "lr_intent_ranking"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class RankingKeepingLogisticRegression(ReportWeightedLogisticRegression):
    """The served LR, its ranking also kept under ``lr_intent_ranking``."""

    def process(self, messages: List[Message]) -> List[Message]:
        messages = super().process(messages)
        for message in messages:
            message.set(LR_RANKING, list(message.get(INTENT_RANKING_KEY) or []))
        return messages


def average(lr: List[Dict[Text, Any]], other: List[Dict[Text, Any]], lr_weight: float) -> List[Dict[Text, Any]]:
    """Both rankings averaged (an intent missing from one counts 0 there), best first."""
    scores: Dict[Text, float] = {}
    for ranking, weight in ((lr, lr_weight), (other, 1.0 - lr_weight)):
        for item in ranking:
            name = item.get("name")
            if name:
                scores[name] = scores.get(name, 0.0) + weight * float(item.get("confidence") or 0.0)
    return [{"name": n, "confidence": c} for n, c in sorted(scores.items(), key=lambda kv: -kv[1])]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RankingAverage(GraphComponent):
    """The intent from the average of the LR's kept ranking and the last classifier's."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"lr_weight": 0.5, "ranking_length": 10}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.lr_weight = float(config.get("lr_weight", 0.5))
        self.ranking_length = int(config.get("ranking_length", 10))

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RankingAverage":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            lr = message.get(LR_RANKING)
            if not lr:
                continue
            ranking = average(lr, message.get(INTENT_RANKING_KEY) or [], self.lr_weight)
            if self.ranking_length:
                ranking = ranking[: self.ranking_length]
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
