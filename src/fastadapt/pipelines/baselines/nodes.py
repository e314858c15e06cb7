"""Baseline nodes: TF-IDF + logistic regression per text domain, a CRF tagger for NER."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import pandas as pd
from tqdm.auto import tqdm

from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression
from fastadapt.models.predictor import classification_predictions, ner_predictions

log = logging.getLogger(__name__)


def _tfidf(params: Mapping[str, Any]) -> TfidfLogisticRegression:
    options = dict(params)
    if "ngram_range" in options:
        options["ngram_range"] = tuple(options["ngram_range"])
    return TfidfLogisticRegression(**options)


def _split(splits: pd.DataFrame, name: str) -> pd.DataFrame:
    return splits[splits["split"] == name].sort_values("row_id")


def fit_tfidf(splits: pd.DataFrame, tfidf_params: Mapping[str, Any]) -> TfidfLogisticRegression:
    """Fit on the whole train split."""
    train = _split(splits, "train")
    started = time.perf_counter()
    model = _tfidf(tfidf_params).fit(train["text"].tolist(), train["label"].tolist())
    log.info("TF-IDF fitted on %d rows in %.1f s", len(train), time.perf_counter() - started)
    return model


def predict_classification_test(model: Any, splits: pd.DataFrame) -> pd.DataFrame:
    """Predictions on the test split in the evaluation contract (any TextClassifier)."""
    return classification_predictions(model, _split(splits, "test"))


def kshot_tfidf(
    splits: pd.DataFrame, kshot_sets: pd.DataFrame, tfidf_params: Mapping[str, Any]
) -> pd.DataFrame:
    """One TF-IDF model per (k, seed) training set, each evaluated on the whole test split."""
    test = _split(splits, "test")
    rows_by_id = splits.set_index("row_id")
    frames = []
    groups = list(kshot_sets.groupby(["k", "seed"], sort=True))
    for (k, seed), chosen in tqdm(groups, desc="k-shot TF-IDF", unit="set"):
        support = rows_by_id.loc[chosen["row_id"]]
        model = _tfidf(tfidf_params).fit(support["text"].tolist(), support["label"].tolist())
        predictions = classification_predictions(model, test)
        predictions.insert(0, "seed", int(seed))
        predictions.insert(0, "k", int(k))
        frames.append(predictions)
    return pd.concat(frames, ignore_index=True).fillna({c: 0.0 for c in _proba_columns(frames)})


def _proba_columns(frames: list[pd.DataFrame]) -> list[str]:
    """k-shot models may know fewer classes than the test set; missing probabilities are 0."""
    return sorted({c for f in frames for c in f.columns if c.startswith("proba__")})


def fit_crf(splits: pd.DataFrame, crf_params: Mapping[str, Any]) -> CrfTagger:
    """Fit a feature CRF on the NER train split."""
    train = _split(splits, "train")
    started = time.perf_counter()
    model = CrfTagger(**crf_params).fit(train["tokens"].tolist(), train["tags"].tolist())
    log.info("CRF fitted on %d sentences in %.1f s", len(train), time.perf_counter() - started)
    return model


def predict_ner_test(model: Any, splits: pd.DataFrame) -> pd.DataFrame:
    """Tag predictions on the test split in the evaluation contract (any SequenceTagger)."""
    return ner_predictions(model, _split(splits, "test"))


def unseen_kshot_tfidf(
    splits: pd.DataFrame, unseen_kshot_sets: pd.DataFrame, tfidf_params: Mapping[str, Any]
) -> pd.DataFrame:
    """TF-IDF fitted on each unseen-class support set, scored on the rest of those classes."""
    rows_by_id = splits.set_index("row_id")
    frames = []
    groups = list(unseen_kshot_sets.groupby(["k", "seed"], sort=True))
    for (k, seed), episode in tqdm(groups, desc="unseen-class k-shot TF-IDF", unit="set"):
        support = rows_by_id.loc[episode.loc[episode["role"] == "support", "row_id"]]
        query = rows_by_id.loc[episode.loc[episode["role"] == "query", "row_id"]].reset_index()
        model = _tfidf(tfidf_params).fit(support["text"].tolist(), support["label"].tolist())
        predictions = classification_predictions(model, query)
        predictions.insert(0, "seed", int(seed))
        predictions.insert(0, "k", int(k))
        frames.append(predictions)
    return pd.concat(frames, ignore_index=True)
