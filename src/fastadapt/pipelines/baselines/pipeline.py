"""`kedro run --pipeline baselines`: classical models for every domain, full data and k-shot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Pipeline

from fastadapt.config import domain_configs
from fastadapt.pipelines.baselines.nodes import (
    fit_crf,
    fit_tfidf,
    kshot_tfidf,
    predict_classification_test,
    predict_ner_test,
    unseen_kshot_tfidf,
)
from fastadapt.pipelines.wiring import domain_node, from_run_parameters


def text_baselines(domain: str, unseen_classes: bool) -> Pipeline:
    tfidf = "params:baselines.tfidf"
    unseen = [
        domain_node(domain, unseen_kshot_tfidf, ["splits", "unseen_kshot_sets", tfidf],
                    "unseen_kshot_predictions.tfidf", "unseen_kshot_tfidf_node")
    ] if unseen_classes else []
    return Pipeline(
        [
            *unseen,
            domain_node(domain, fit_tfidf, ["splits", tfidf], "model.tfidf", "fit_tfidf_node"),
            domain_node(domain, predict_classification_test, ["model.tfidf", "splits"], "predictions.tfidf",
                        "predict_tfidf_node"),
            domain_node(domain, kshot_tfidf, ["splits", "kshot_sets", tfidf], "kshot_predictions.tfidf",
                        "kshot_tfidf_node"),
        ],
        tags=["cpu", "baselines"],
    )


def ner_baselines(domain: str) -> Pipeline:
    return Pipeline(
        [
            domain_node(domain, fit_crf, ["splits", "params:baselines.crf"], "model.crf", "fit_crf_node"),
            domain_node(domain, predict_ner_test, ["model.crf", "splits"], "predictions.crf", "predict_crf_node"),
        ],
        tags=["cpu", "baselines"],
    )


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    pipeline = Pipeline([])
    for name, config in domain_configs(parameters).items():
        if config.kind == "text_classification":
            pipeline += text_baselines(name, config.unseen_classes is not None)
        else:
            pipeline += ner_baselines(name)
    return pipeline
