"""`kedro run --pipeline monitoring`: the dated news stream scored, aggregated, alerted on, reported.

The models are parameters (catalog dataset names): `monitoring.model` (any TextClassifier) and
`monitoring.ner_model` (any SequenceTagger, or null for tickers only). Nodes that run torch are
tagged `gpu`, the others `cpu`: the scoring and NER nodes follow `model_tag` / `ner_tag` (auto:
cpu for the classical models, gpu otherwise) and the drift embedding is `gpu`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.config import ConfigError
from fastadapt.monitoring.settings import MonitoringSettings
from fastadapt.pipelines.monitoring.nodes import (
    aggregate_daily,
    assemble_scored_stream,
    assess_drift,
    check_on_labelled,
    detect_alerts,
    embed_drift_windows,
    extract_stream_entities,
    monitoring_metrics,
    score_sentiment,
    write_report,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters

CLASSICAL_MODELS = ("tfidf", "crf")
NAMESPACE = "monitoring"
PARAMS = "params:monitoring"


def device_tag(dataset: str | None, setting: str = "auto") -> str:
    """`cpu` or `gpu` for a node running the model in `dataset` (`setting` auto | cpu | gpu)."""
    if setting not in ("auto", "cpu", "gpu"):
        raise ConfigError(f"monitoring model tag is {setting!r}; allowed: auto, cpu, gpu")
    if setting != "auto":
        return setting
    return "cpu" if dataset is None or dataset.rsplit(".", 1)[-1] in CLASSICAL_MODELS else "gpu"


def _node(func, inputs, outputs, name: str, tag: str, **bound: Any) -> Node:
    return Node(bind(func, **bound) if bound else func, inputs, outputs, name=name, namespace=NAMESPACE,
                tags=[tag, "monitoring"])


def monitoring_pipeline(params: Mapping[str, Any]) -> Pipeline:
    """The nodes for the `monitoring` block `params` (its models and embedder shape them)."""
    settings = MonitoringSettings.from_params(params, where="monitoring")
    model, ner_model, embedder = settings.model, settings.ner_model, settings.drift.embedder
    model_tag = device_tag(model, settings.model_tag)
    ner_tag = device_tag(ner_model, settings.ner_tag)

    nodes = [
        _node(score_sentiment, ["news_stream", model, PARAMS],
              ["monitoring.sentiment_scores", "monitoring.scoring_stats"], "score_sentiment_node", model_tag,
              model_name=model),
        _node(extract_stream_entities, ["news_stream", ner_model, PARAMS] if ner_model else
              {"news_stream": "news_stream", "monitoring": PARAMS},
              "monitoring.entities", "extract_entities_node", ner_tag if ner_model else "cpu",
              **({} if ner_model else {"ner_model": None})),
        _node(assemble_scored_stream, ["news_stream", "monitoring.sentiment_scores", "monitoring.entities", PARAMS],
              "monitoring.scored_stream", "assemble_scored_stream_node", "cpu"),
        _node(aggregate_daily, ["monitoring.scored_stream", PARAMS], "monitoring.daily", "aggregate_daily_node", "cpu"),
        _node(detect_alerts, ["monitoring.daily", "monitoring.scored_stream", PARAMS], "monitoring.alerts",
              "detect_alerts_node", "cpu", model_name=model),
        _node(check_on_labelled, ["monitoring.scored_stream", PARAMS], "monitoring.labelled_check",
              "check_on_labelled_node", "cpu"),
    ]
    if embedder:
        embed_inputs = {"scored_stream": "monitoring.scored_stream", "monitoring": PARAMS}
        if embedder == "model":
            embed_inputs["model"] = model
        nodes += [
            _node(embed_drift_windows, embed_inputs, "monitoring.drift_embeddings", "embed_drift_windows_node", "gpu"),
            _node(assess_drift, ["monitoring.scored_stream", PARAMS, "monitoring.drift_embeddings"], "monitoring.drift",
                  "assess_drift_node", "cpu"),
        ]
    else:
        nodes.append(_node(assess_drift, ["monitoring.scored_stream", PARAMS], "monitoring.drift",
                           "assess_drift_node", "cpu", drift_embeddings=None))
    nodes += [
        _node(write_report, ["monitoring.scored_stream", "monitoring.daily", "monitoring.alerts", "monitoring.drift",
                             "monitoring.labelled_check", "monitoring.scoring_stats", PARAMS],
              ["monitoring.report", "monitoring.timelines"], "write_report_node", "cpu"),
        _node(monitoring_metrics, ["monitoring.scoring_stats", "monitoring.alerts", "monitoring.drift",
                                   "monitoring.labelled_check"],
              "monitoring.mlflow_metrics", "log_monitoring_metrics_node", "cpu"),
    ]
    return Pipeline(nodes)


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    settings = parameters.get("monitoring")
    if not settings:
        return Pipeline([])
    return monitoring_pipeline(settings)
