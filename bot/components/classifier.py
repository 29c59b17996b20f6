"""ReportWeightedLogisticRegression: Rasa's LogisticRegressionClassifier with
the report intents weighted up.

Rasa's classifier fits scikit-learn's LogisticRegression with
``class_weight="balanced"`` and no way to change it. Missing a report costs
far more than sending a harmless question to a person, so this variant keeps
the balanced weights and multiplies those of ``report_intents`` by
``report_weight``; ``C`` (inverse regularisation, scikit-learn's default 1.0)
is configurable too. Everything else (features, persistence, process) is
Rasa's. Compared with the plain classifier in docs/nlu.md
(``bench/nlu_eval.py --config bot/pipelines/lr-report-weight.yml``).
"""

from __future__ import annotations

from typing import Any, Dict, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class ReportWeightedLogisticRegression(LogisticRegressionClassifier):
    """Balanced class weights, times ``report_weight`` for the report intents."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **LogisticRegressionClassifier.get_default_config(),
            "report_intents": ["report_concern", "emergency"],
            "report_weight": 2.0,
            "C": 1.0,
        }

    def train(self, training_data: TrainingData) -> Resource:
        X, y = self._create_training_matrix(training_data)
        if X.shape[0] == 0:
            return self._resource
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        # scikit-learn's "balanced": n_samples / (n_classes * count). Plain str and
        # float (not numpy scalars): skops only loads types it trusts.
        weights = {
            str(label): float(len(y) / (len(labels) * count))
            for label, count in zip(labels, counts, strict=True)
        }
        for intent in self.config["report_intents"]:
            if intent in weights:
                weights[intent] *= float(self.config["report_weight"])
        self.clf.set_params(class_weight=weights, C=float(self.config["C"]))
        self.clf.fit(X, y)
        self.persist()
        return self._resource
