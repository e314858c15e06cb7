"""Baseline nodes: TF-IDF + logistic regression per text domain, a CRF tagger for NER."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import pandas as pd
from tqdm.auto import tqdm

from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression
from fastadapt.models.predictor import classification_predictions, ner_predictions, set_predictions, with_set

log = logging.getLogger(__name__)


def _tfidf(params: Mapping[str, Any]) -> TfidfLogisticRegression:
    return TfidfLogisticRegression.from_params(params, "baselines.tfidf")


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


def _fit_per_set(sets, tfidf_params: Mapping[str, Any], description: str) -> list[pd.DataFrame]:
    """A TF-IDF model per (k, seed, support, query), each query's predictions tagged with its set."""
    frames = []
    for k, seed, support, query in tqdm(sets, desc=description, unit="set"):
        model = _tfidf(tfidf_params).fit(support["text"].tolist(), support["label"].tolist())
        frames.append(with_set(classification_predictions(model, query), k, seed))
    return frames


def kshot_tfidf(
    splits: pd.DataFrame, kshot_sets: pd.DataFrame, tfidf_params: Mapping[str, Any]
) -> pd.DataFrame:
    """One TF-IDF model per (k, seed) training set, each evaluated on the whole test split."""
    test = _split(splits, "test")
    rows_by_id = splits.set_index("row_id")
    sets = [(k, seed, rows_by_id.loc[chosen["row_id"]], test)
            for (k, seed), chosen in kshot_sets.groupby(["k", "seed"], sort=True)]
    return set_predictions(_fit_per_set(sets, tfidf_params, "k-shot TF-IDF"))


def fit_crf(splits: pd.DataFrame, crf_params: Mapping[str, Any]) -> CrfTagger:
    """Fit a feature CRF on the NER train split."""
    train = _split(splits, "train")
    started = time.perf_counter()
    model = CrfTagger.from_params(crf_params, "baselines.crf").fit(train["tokens"].tolist(), train["tags"].tolist())
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
    sets = [(k, seed, rows_by_id.loc[episode.loc[episode["role"] == "support", "row_id"]],
             rows_by_id.loc[episode.loc[episode["role"] == "query", "row_id"]].reset_index())
            for (k, seed), episode in unseen_kshot_sets.groupby(["k", "seed"], sort=True)]
    return pd.concat(_fit_per_set(sets, tfidf_params, "unseen-class k-shot TF-IDF"), ignore_index=True)
