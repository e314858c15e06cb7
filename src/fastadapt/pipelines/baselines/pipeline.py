"""`kedro run --pipeline baselines`: classical models for every domain, full data and k-shot."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, project_parameters
from fastadapt.pipelines.baselines.nodes import (
    fit_crf,
    fit_tfidf,
    kshot_tfidf,
    predict_classification_test,
    predict_ner_test,
)


def text_baselines(domain: str) -> Pipeline:
    template = Pipeline(
        [
            Node(fit_tfidf, ["splits", "params:tfidf"], "model.tfidf", name="fit_tfidf_node"),
            Node(
                predict_classification_test,
                ["model.tfidf", "splits"],
                "predictions.tfidf",
                name="predict_tfidf_node",
            ),
            Node(
                kshot_tfidf,
                ["splits", "kshot_sets", "params:tfidf"],
                "kshot_predictions.tfidf",
                name="kshot_tfidf_node",
            ),
        ],
        tags=["cpu", "baselines"],
    )
    return Pipeline(
        template, namespace=domain, parameters={"params:tfidf": "params:baselines.tfidf"}
    )


def ner_baselines(domain: str) -> Pipeline:
    template = Pipeline(
        [
            Node(fit_crf, ["splits", "params:crf"], "model.crf", name="fit_crf_node"),
            Node(predict_ner_test, ["model.crf", "splits"], "predictions.crf", name="predict_crf_node"),
        ],
        tags=["cpu", "baselines"],
    )
    return Pipeline(template, namespace=domain, parameters={"params:crf": "params:baselines.crf"})


def create_pipeline(**kwargs) -> Pipeline:
    pipeline = Pipeline([])
    for name, config in domain_configs(project_parameters()).items():
        pipeline += text_baselines(name) if config.kind == "text_classification" else ner_baselines(name)
    return pipeline
