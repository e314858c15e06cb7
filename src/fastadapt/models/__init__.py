"""Models behind one interface: the predictor protocols, their evaluation tables, the baselines."""

from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression, repair_iob2
from fastadapt.models.predictor import (
    SequenceTagger,
    TextClassifier,
    classification_predictions,
    ner_predictions,
)

__all__ = [
    "CrfTagger",
    "SequenceTagger",
    "TextClassifier",
    "TfidfLogisticRegression",
    "classification_predictions",
    "ner_predictions",
    "repair_iob2",
]
