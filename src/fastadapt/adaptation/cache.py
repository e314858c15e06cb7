"""A domain's frozen-encoder features, computed once and read back by row id or by text.

The adaptation pipeline encodes a text domain once (`<domain>.embeddings.<backbone>`: columns
row_id, embedding); every frozen-encoder fit (finetune_head, prototype) on that domain, on the full
train split and on each k-shot set, and their test predictions read these features instead of
running the encoder again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fastadapt.adaptation.classifier import EncoderClassifier
from fastadapt.adaptation.strategies import FROZEN_STRATEGIES
from fastadapt.models.predictor import classification_predictions

EMBEDDING_COLUMN = "embedding"


def cached_features(embeddings: pd.DataFrame | None, row_ids: Sequence[int]) -> np.ndarray | None:
    """The cached features of `row_ids`, in that order (None without a cache)."""
    if embeddings is None:
        return None
    table = embeddings.set_index("row_id")[EMBEDDING_COLUMN]
    missing = sorted(set(row_ids) - set(table.index))
    if missing:
        raise ValueError(f"the embedding cache has no rows {missing[:5]}...; rerun the embedding node")
    return np.stack(table.loc[list(row_ids)].to_numpy()).astype(np.float32)


class CachedFeatures:
    """A `TextClassifier` view of an `EncoderClassifier` that reads cached features by text, so
    `classification_predictions` builds the evaluation table without encoding again."""

    def __init__(self, model: EncoderClassifier, texts: Sequence[str], features: np.ndarray) -> None:
        self.model, self.classes_ = model, model.classes_
        self.lookup = {text: i for i, text in enumerate(texts)}
        self.features = features

    def _rows(self, texts: Sequence[str]) -> np.ndarray:
        return self.features[[self.lookup[text] for text in texts]]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba_features(self._rows(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_features(self._rows(texts))


def classification_table(model: EncoderClassifier, rows: pd.DataFrame, features: np.ndarray | None) -> pd.DataFrame:
    """`classification_predictions` of `rows`, from their cached `features` when the model can
    (a frozen encoder that fitting left as it was)."""
    if features is not None and model.strategy in FROZEN_STRATEGIES and not model.encoder_tuned:
        return classification_predictions(CachedFeatures(model, rows["text"].tolist(), features), rows)
    return classification_predictions(model, rows)


__all__ = ["EMBEDDING_COLUMN", "CachedFeatures", "cached_features", "classification_table"]
