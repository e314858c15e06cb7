"""Monitoring nodes: score the stream, find entities, aggregate, alert, test drift, report.

Wiring only: each node builds `MonitoringSettings` from the `monitoring` parameter block (one
`ConfigError` naming the parameter for any mistake) and calls `fastadapt.monitoring`; the catalog
does every read and write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fastadapt.monitoring.aggregate import daily_counts
from fastadapt.monitoring.check import labelled_check as gold_label_check
from fastadapt.monitoring.drift import assess_drift as drift_verdict
from fastadapt.monitoring.drift import embed_drift_windows as embed_windows
from fastadapt.monitoring.report import monitoring_metrics, morning_report
from fastadapt.monitoring.scoring import (
    as_text_classifier,
    extract_entities,
    join_scores,
    score_stream,
    select_stream,
)
from fastadapt.monitoring.settings import MonitoringSettings
from fastadapt.monitoring.surge import alert_table

log = logging.getLogger(__name__)

ENTITY_COLUMN = "entities"
__all__ = [
    "aggregate_daily", "assemble_scored_stream", "assess_drift", "check_on_labelled", "detect_alerts",
    "embed_drift_windows", "extract_stream_entities", "monitoring_metrics", "score_sentiment", "write_report",
]


def _settings(monitoring: Mapping[str, Any]) -> MonitoringSettings:
    return MonitoringSettings.from_params(monitoring, where="monitoring")


def score_sentiment(
    news_stream: pd.DataFrame, model: Any, monitoring: Mapping[str, Any], model_name: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every headline's predicted label and negative score, in batches (any TextClassifier)."""
    from fastadapt.monitoring.registry import registered_version_of

    settings = _settings(monitoring)
    registered = registered_version_of(model)
    scores, stats = score_stream(select_stream(news_stream, settings.sources), as_text_classifier(model),
                                 settings.scoring)
    stats["model_dataset"] = model_name
    stats["registered_model"] = registered
    log.info("scored %d headlines in %.1f s (%.0f / s) with %s%s", stats["n_items"], stats["seconds"],
             stats["items_per_second"] or 0, model_name,
             f" (registered model {registered['name']} version {registered['version']})" if registered else "")
    return scores, stats


def extract_stream_entities(
    news_stream: pd.DataFrame, ner_model: Any | None, monitoring: Mapping[str, Any]
) -> pd.DataFrame:
    """Each headline's entities: its ticker where the source gives one, else the NER organisations."""
    settings = _settings(monitoring)
    entities = extract_entities(select_stream(news_stream, settings.sources), ner_model, settings.entities,
                                text_column=settings.scoring.text_column)
    log.info("entities: %s", entities["entity_source"].value_counts().to_dict())
    return entities


def assemble_scored_stream(
    news_stream: pd.DataFrame, sentiment_scores: pd.DataFrame, entities: pd.DataFrame,
    monitoring: Mapping[str, Any],
) -> pd.DataFrame:
    """The stream with its scores and entities: one row per headline."""
    return join_scores(select_stream(news_stream, _settings(monitoring).sources), sentiment_scores, entities)


def aggregate_daily(scored_stream: pd.DataFrame, monitoring: Mapping[str, Any]) -> pd.DataFrame:
    """Items, negatives, negative share and mean negative score per entity and day (and `__all__`)."""
    daily = daily_counts(scored_stream, ENTITY_COLUMN, _settings(monitoring).scoring.negative_label)
    log.info("daily aggregates: %d entities over %d days", daily["entity"].nunique(), daily["day"].nunique())
    return daily


def detect_alerts(
    daily: pd.DataFrame, scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], model_name: str
) -> pd.DataFrame:
    """Negative surges against each entity's own baseline, de-duplicated, with their headlines."""
    settings = _settings(monitoring)
    alerts, counts = alert_table(daily, scored_stream, ENTITY_COLUMN, settings.surge, settings.alerts, model_name)
    log.info("%d alert windows in %d tests, %d alerts after a %d-day cool-down", counts["windows"],
             counts["tests"], len(alerts), settings.surge.cooldown_days)
    return alerts


def embed_drift_windows(
    scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], model: Any | None = None
) -> dict[str, Any]:
    """Sentence embeddings of a sample of each drift window (the torch part of the drift test)."""
    settings = _settings(monitoring)
    return embed_windows(scored_stream, settings.drift, settings.scoring.text_column,
                         as_text_classifier(model) if model is not None else None)


def assess_drift(
    scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], drift_embeddings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Embedding drift (MMD, permutation p-value) and predicted-label shift, and the verdict."""
    report = drift_verdict(scored_stream, _settings(monitoring).drift, drift_embeddings)
    log.info(report["reason"])
    return report


def check_on_labelled(scored_stream: pd.DataFrame, monitoring: Mapping[str, Any]) -> dict[str, Any]:
    """Predicted surge days against the gold ones on the labelled source (PROTOCOL.md section 6)."""
    settings = _settings(monitoring)
    result = gold_label_check(scored_stream, settings.check, settings.surge, settings.scoring.negative_label)
    if result["status"] == "checked":
        log.info("labelled check on %s: precision %s, recall %s, control alerts %d (gold) / %d (predicted)",
                 result["source"], result["precision"], result["recall"], result["control_alerts_gold"],
                 result["control_alerts_predicted"])
    return result


def write_report(
    scored_stream: pd.DataFrame, daily: pd.DataFrame, alerts: pd.DataFrame, drift: dict[str, Any],
    labelled_check: dict[str, Any], scoring_stats: dict[str, Any], monitoring: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The morning HTML report, and one timeline figure per alerting entity (most severe first)."""
    import mlflow

    settings = _settings(monitoring)
    run = mlflow.active_run()
    outputs = {"scored_stream": scored_stream, "daily": daily, "alerts": alerts, "drift": drift,
               "labelled_check": labelled_check, "scoring_stats": scoring_stats}
    return morning_report(outputs, settings.surge, settings.report, run.info.run_id if run is not None else None)
