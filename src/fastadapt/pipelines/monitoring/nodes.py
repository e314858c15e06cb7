"""Monitoring nodes: score the stream, find entities, aggregate, alert, test drift, report.

Thin wrappers over `fastadapt.monitoring`: each node validates its parameter block once and
calls the plain modules; the catalog does every read and write.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.monitoring.aggregate import ALL_ENTITY, daily_counts
from fastadapt.monitoring.check import (
    compare_surge_days,
    shuffled_dates_control,
    surge_days_from_labels,
)
from fastadapt.monitoring.drift import drift_report
from fastadapt.monitoring.plots import entity_timeline_figure
from fastadapt.monitoring.report import render_report
from fastadapt.monitoring.scoring import (
    EntityConfig,
    ScoringConfig,
    as_text_classifier,
    extract_entities,
    score_stream,
)
from fastadapt.monitoring.surge import SurgeConfig, attach_headlines, deduplicate_alerts, detect_surges

log = logging.getLogger(__name__)

ENTITY_COLUMN = "entities"
ALERT_COLUMNS = [
    "entity", "window_start", "window_end", "n", "n_negative", "observed_share", "expected_share",
    "baseline_n", "baseline_negative", "ratio", "p_value", "p_adjusted", "severity", "n_absorbed",
    "last_absorbed_end", "headlines", "model",
]
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
# The drift sample and permutation count where a config leaves them out: the values of
# conf/base/parameters_monitoring.yml, so that leaving a key out runs what users run.
DRIFT_MAX_SAMPLES, DRIFT_PERMUTATIONS = 500, 500
_STREAM_COLUMNS = ["row_id", "published_at", "source", "headline", "ticker", "label"]


def _block(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"monitoring.{key} must be a mapping of settings; got {value!r}")
    return dict(value)


def select_stream(stream: pd.DataFrame, sources: list[str] | None) -> pd.DataFrame:
    """The stream's rows from `sources` (all when None), in row_id order."""
    if sources:
        unknown = sorted(set(sources) - set(stream["source"].astype(str).unique()))
        if unknown:
            raise ValueError(
                f"monitoring.sources names {unknown}, which the stream does not have "
                f"(sources: {sorted(stream['source'].astype(str).unique())})"
            )
        stream = stream[stream["source"].isin(sources)]
    return stream.sort_values("row_id").reset_index(drop=True)


# ---- scoring ------------------------------------------------------------------------------------


def score_sentiment(
    news_stream: pd.DataFrame, model: Any, monitoring: Mapping[str, Any], model_name: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every headline's predicted label and negative score, in batches (any TextClassifier)."""
    from fastadapt.monitoring.registry import registered_version_of

    config = ScoringConfig.from_dict(_block(monitoring, "scoring"))
    stream = select_stream(news_stream, monitoring.get("sources"))
    registered = registered_version_of(model)
    model = as_text_classifier(model)
    scores, stats = score_stream(stream, model, config)
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
    config = EntityConfig.from_dict(_block(monitoring, "entities"))
    text_column = _block(monitoring, "scoring").get("text_column", "headline")
    stream = select_stream(news_stream, monitoring.get("sources"))
    entities = extract_entities(stream, ner_model, config, text_column=text_column)
    log.info("entities: %s", entities["entity_source"].value_counts().to_dict())
    return entities


def assemble_scored_stream(
    news_stream: pd.DataFrame, sentiment_scores: pd.DataFrame, entities: pd.DataFrame,
    monitoring: Mapping[str, Any],
) -> pd.DataFrame:
    """The stream with its scores and entities: one row per headline."""
    stream = select_stream(news_stream, monitoring.get("sources"))
    kept = [c for c in _STREAM_COLUMNS if c in stream.columns]
    scored = stream[kept].merge(sentiment_scores, on="row_id", how="inner", validate="one_to_one")
    scored = scored.merge(entities, on="row_id", how="left", validate="one_to_one")
    if len(scored) != len(stream):
        raise ValueError(f"{len(stream)} headlines but {len(scored)} scored rows: the scores are stale")
    scored[ENTITY_COLUMN] = [list(e) if isinstance(e, (list, tuple, np.ndarray)) else [] for e in scored[ENTITY_COLUMN]]
    return scored


# ---- aggregates and alerts ----------------------------------------------------------------------


def _negative_label(monitoring: Mapping[str, Any]) -> str:
    return ScoringConfig.from_dict(_block(monitoring, "scoring")).negative_label


def aggregate_daily(scored_stream: pd.DataFrame, monitoring: Mapping[str, Any]) -> pd.DataFrame:
    """Items, negatives, negative share and mean negative score per entity and day (and `__all__`)."""
    daily = daily_counts(scored_stream, ENTITY_COLUMN, _negative_label(monitoring))
    log.info("daily aggregates: %d entities over %d days", daily["entity"].nunique(), daily["day"].nunique())
    return daily


def _day_strings(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d") for v in values]


def detect_alerts(
    daily: pd.DataFrame, scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], model_name: str
) -> pd.DataFrame:
    """Negative surges against each entity's own baseline, de-duplicated, with their headlines."""
    config = SurgeConfig.from_dict(_block(monitoring, "surge"))
    options = _block(monitoring, "alerts")
    entities = None
    if not options.get("include_all", True):
        entities = [e for e in daily["entity"].unique() if e != ALL_ENTITY]
    raw = detect_surges(daily, config, entities=entities)
    alerts = deduplicate_alerts(raw, config.cooldown_days)
    alerts = attach_headlines(alerts, scored_stream, ENTITY_COLUMN, int(options.get("headlines_per_alert", 5)))
    log.info("%d alert windows in %d tests, %d alerts after a %d-day cool-down", len(raw),
             raw.attrs.get("n_tests", 0), len(alerts), config.cooldown_days)
    if alerts.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    alerts = alerts.assign(
        window_start=_day_strings(alerts["window_start"]),
        window_end=_day_strings(alerts["window_end"]),
        last_absorbed_end=_day_strings(alerts["last_absorbed_end"]),
        model=model_name,
    )
    order = alerts["severity"].map(SEVERITY_RANK).fillna(3)
    alerts = alerts.assign(_order=order).sort_values(["window_end", "_order", "p_adjusted"],
                                                      ascending=[False, True, True], kind="stable")
    return alerts[ALERT_COLUMNS].reset_index(drop=True)


# ---- drift --------------------------------------------------------------------------------------


def drift_windows(scored_stream: pd.DataFrame, drift: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The reference and current rows: the stream's last `current_days` and the days before."""
    for key in ("current_days", "reference_days"):
        value = drift.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"monitoring.drift.{key} must be an integer >= 1; got {value!r}")
    rows = scored_stream
    if drift.get("sources"):
        rows = rows[rows["source"].isin(drift["sources"])]
    rows = rows[rows["published_at"].notna()]
    days = pd.to_datetime(rows["published_at"]).dt.normalize()
    if rows.empty:
        return rows, rows, {"current": None, "reference": None}
    last = days.max()
    current_start = last - pd.Timedelta(days=drift["current_days"] - 1)
    reference_start = current_start - pd.Timedelta(days=drift["reference_days"])
    current = rows[days >= current_start]
    reference = rows[(days >= reference_start) & (days < current_start)]
    info = {
        "reference": [reference_start.strftime("%Y-%m-%d"), (current_start - pd.Timedelta(days=1)).strftime("%Y-%m-%d")],
        "current": [current_start.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")],
        "n_reference": len(reference),
        "n_current": len(current),
    }
    return reference, current, info


def _sample(rows: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(rows) <= size:
        return rows
    return rows.iloc[np.sort(rng.choice(len(rows), size, replace=False))]


def embed_drift_windows(
    scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], model: Any | None = None
) -> dict[str, Any]:
    """Sentence embeddings of a sample of each drift window (the torch part of the drift test)."""
    drift = _block(monitoring, "drift")
    reference, current, info = drift_windows(scored_stream, drift)
    rng = np.random.default_rng(int(drift.get("seed", 0)))
    size = int(drift.get("max_samples", DRIFT_MAX_SAMPLES))
    reference, current = _sample(reference, size, rng), _sample(current, size, rng)
    text_column = _block(monitoring, "scoring").get("text_column", "headline")
    embedder = drift.get("embedder")
    texts = reference[text_column].astype(str).tolist() + current[text_column].astype(str).tolist()
    if embedder == "model":
        model = as_text_classifier(model) if model is not None else None
        if model is None or not hasattr(model, "embed"):
            raise ValueError(
                "monitoring.drift.embedder is 'model' but the scoring model has no `embed` method "
                f"({type(model).__name__}); use minilm-l6 or a backbone directory"
            )
        vectors = np.asarray(model.embed(texts), dtype=np.float32)
    else:
        import torch

        from fastadapt.models.backbones import load_backbone
        from fastadapt.models.encoder import embed_texts

        if drift.get("num_threads"):
            torch.set_num_threads(int(drift["num_threads"]))
        backbone = load_backbone(str(embedder))
        vectors = embed_texts(backbone, texts, batch_size=int(drift.get("batch_size", 64)),
                              max_length=int(drift.get("max_length", 64)), device=str(drift.get("device", "auto")),
                              progress=True)
    return {
        "embedder": str(embedder),
        "windows": info,
        "reference_row_ids": reference["row_id"].to_numpy(),
        "current_row_ids": current["row_id"].to_numpy(),
        "reference": vectors[: len(reference)],
        "current": vectors[len(reference):],
    }


def assess_drift(
    scored_stream: pd.DataFrame, monitoring: Mapping[str, Any], drift_embeddings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Embedding drift (MMD, permutation p-value) and predicted-label shift, and the verdict."""
    drift = _block(monitoring, "drift")
    reference, current, info = drift_windows(scored_stream, drift)
    if len(reference) < 2 or len(current) < 2:
        return {
            "windows": info, "retraining_recommended": False, "embedding_drift": False, "label_shift": False,
            "status": "insufficient_data",
            "reason": f"Not enough items to test drift ({len(reference)} reference, {len(current)} current).",
        }
    embeddings = drift_embeddings or {}
    report = drift_report(
        embeddings.get("reference"), embeddings.get("current"),
        reference["predicted"].astype(str).tolist(), current["predicted"].astype(str).tolist(),
        alpha=float(drift.get("alpha", 0.01)), n_permutations=int(drift.get("n_permutations", DRIFT_PERMUTATIONS)),
        seed=int(drift.get("seed", 0)), max_samples=int(drift.get("max_samples", DRIFT_MAX_SAMPLES)),
        min_label_shift=float(drift.get("min_label_shift", 0.05)),
    )
    report["windows"] = info
    report["embedder"] = embeddings.get("embedder")
    report["status"] = "tested"
    log.info(report["reason"])
    return report


# ---- the labelled check (PROTOCOL.md section 6) ---------------------------------------------------


def check_on_labelled(scored_stream: pd.DataFrame, monitoring: Mapping[str, Any]) -> dict[str, Any]:
    """Predicted surge days against the gold ones on the labelled source, and the shuffled control."""
    check = _block(monitoring, "check")
    surge = SurgeConfig.from_dict(_block(monitoring, "surge"))
    negative = _negative_label(monitoring)
    gold_column = check.get("gold_label_column", "label")
    gold_negative = check.get("gold_negative_label", "bearish")
    entity = check.get("entity_column", "ticker")
    source = check.get("source")
    rows = scored_stream
    if source:
        rows = rows[rows["source"] == source]
    if gold_column not in rows.columns or entity not in rows.columns:
        return {"status": "no_labelled_rows", "reason": f"the stream has no '{gold_column}' / '{entity}' columns"}
    rows = rows[rows[gold_column].notna() & rows[entity].notna()]
    date_from, date_until = check.get("date_from"), check.get("date_until")
    if date_from is not None or date_until is not None:
        days = pd.to_datetime(rows["published_at"])
        keep = pd.Series(True, index=rows.index)
        if date_from is not None:
            keep &= days >= pd.Timestamp(str(date_from))
        if date_until is not None:
            keep &= days < pd.Timestamp(str(date_until))
        rows = rows[keep]
    rows = rows.reset_index(drop=True)
    if rows.empty:
        return {"status": "no_labelled_rows", "source": source,
                "reason": f"no labelled rows from source '{source}' in the scored stream"
                          f" between {date_from} and {date_until}"}
    gold = surge_days_from_labels(rows, gold_column, gold_negative, entity, surge)
    predicted = surge_days_from_labels(rows, "predicted", negative, entity, surge)
    scores = compare_surge_days(gold, predicted, int(check.get("tolerance_days", 1)))
    shuffled = shuffled_dates_control(rows, entity, seed=int(check.get("control_seed", 0)))
    control_gold = surge_days_from_labels(shuffled, gold_column, gold_negative, entity, surge)
    control_predicted = surge_days_from_labels(shuffled, "predicted", negative, entity, surge)
    is_gold_negative = rows[gold_column].astype(str) == str(gold_negative)
    is_predicted_negative = rows["predicted"].astype(str) == str(negative)
    result = {
        "status": "checked",
        "source": source,
        "n_items": len(rows),
        "n_entities": int(rows[entity].nunique()),
        "date_from": None if date_from is None else str(date_from),
        "date_until": None if date_until is None else str(date_until),
        "gold_negative_label": gold_negative,
        "predicted_negative_label": negative,
        "tolerance_days": int(check.get("tolerance_days", 1)),
        **scores,
        "n_tests": int(gold.attrs.get("n_tests", 0)),
        "control_seed": int(check.get("control_seed", 0)),
        "control_alerts_gold": len(control_gold),
        "control_alerts_predicted": len(control_predicted),
        "control_n_tests": int(control_gold.attrs.get("n_tests", 0)),
        "item_agreement": {
            "gold_negative_share": float(is_gold_negative.mean()),
            "predicted_negative_share": float(is_predicted_negative.mean()),
            "predicted_negative_given_gold_negative": float(is_predicted_negative[is_gold_negative].mean())
            if is_gold_negative.any() else None,
            "predicted_negative_given_gold_other": float(is_predicted_negative[~is_gold_negative].mean())
            if (~is_gold_negative).any() else None,
        },
        "gold_days": _surge_day_list(gold),
        "predicted_days": _surge_day_list(predicted),
    }
    log.info("labelled check on %s: precision %s, recall %s, control alerts %d (gold) / %d (predicted)",
             source, result["precision"], result["recall"], result["control_alerts_gold"],
             result["control_alerts_predicted"])
    return result


def _surge_day_list(alerts: pd.DataFrame) -> list[list[str]]:
    if alerts.empty:
        return []
    days = pd.DataFrame({"entity": alerts["entity"].astype(str),
                         "day": _day_strings(alerts["window_end"])}).drop_duplicates()
    return days.sort_values(["day", "entity"]).values.tolist()


# ---- report and metrics -------------------------------------------------------------------------


def _file_name(entity: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", entity).strip("._") or "entity"
    name, i = f"{stem}.png", 1
    while name in taken:
        i += 1
        name = f"{stem}_{i}.png"
    taken.add(name)
    return name


def _alerts_for_plot(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alert episodes as windows from the first start to the last absorbed end."""
    if alerts.empty:
        return pd.DataFrame(columns=["entity", "window_start", "window_end", "severity"])
    end = alerts["last_absorbed_end"].where(alerts["last_absorbed_end"].notna(), alerts["window_end"])
    return pd.DataFrame({
        "entity": alerts["entity"].astype(str),
        "window_start": pd.to_datetime(alerts["window_start"]),
        "window_end": pd.to_datetime(end),
        "severity": alerts["severity"].astype(str),
    })


def write_report(
    scored_stream: pd.DataFrame,
    daily: pd.DataFrame,
    alerts: pd.DataFrame,
    drift: dict[str, Any],
    labelled_check: dict[str, Any],
    scoring_stats: dict[str, Any],
    monitoring: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The morning HTML report, and one timeline figure per alerting entity (most severe first)."""
    options = _block(monitoring, "report")
    surge = SurgeConfig.from_dict(_block(monitoring, "surge"))
    alerts = alerts.reindex(columns=ALERT_COLUMNS) if len(alerts.columns) else pd.DataFrame(columns=ALERT_COLUMNS)
    plot_alerts = _alerts_for_plot(alerts)
    ranked = alerts.assign(_rank=alerts["severity"].map(SEVERITY_RANK).fillna(3))
    ranked = ranked.sort_values(["_rank", "p_adjusted", "window_end"], ascending=[True, True, False], kind="stable")
    entities = list(dict.fromkeys(ranked["entity"].astype(str)))[: int(options.get("max_timelines", 12))]
    figures, names, taken = {}, {}, set()
    daily_days = daily.assign(day=pd.to_datetime(daily["day"]))
    for entity in entities:
        figure = entity_timeline_figure(daily_days, plot_alerts, entity, surge,
                                        title=f"{entity}: negative share and alerts")
        name = _file_name(entity, taken)
        figures[name], names[entity] = figure, name
    html = render_report(
        scored_stream=scored_stream, daily=daily, alerts=alerts, drift=drift, labelled_check=labelled_check,
        scoring_stats=scoring_stats, timelines={entity: figures[name] for entity, name in names.items()},
        timeline_files=names, surge=surge, options={**options, "mlflow_run_id": _active_run_id()},
    )
    return html, figures


def _active_run_id() -> str | None:
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, float]]:
    flat: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif isinstance(value, (bool, np.bool_)) or isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            flat[name] = {"value": float(value), "step": 0}
    return flat


def _version_number(registered: Mapping[str, Any] | None) -> int | None:
    version = (registered or {}).get("version")
    return int(version) if version is not None and str(version).isdigit() else None


def monitoring_metrics(
    scoring_stats: dict[str, Any], alerts: pd.DataFrame, drift: dict[str, Any], labelled_check: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """The run's headline figures for MLflow: throughput, alerts, drift and the labelled check."""
    severities = alerts["severity"].value_counts().to_dict() if "severity" in alerts.columns else {}
    metrics = {
        "items_scored": scoring_stats.get("n_items"),
        "model_version": _version_number(scoring_stats.get("registered_model")),
        "items_per_second": scoring_stats.get("items_per_second"),
        "alerts": len(alerts),
        "alerts_high": int(severities.get("high", 0)),
        "alerts_medium": int(severities.get("medium", 0)),
        "drift": {
            "retraining_recommended": bool(drift.get("retraining_recommended", False)),
            "embedding_drift": bool(drift.get("embedding_drift", False)),
            "label_shift": bool(drift.get("label_shift", False)),
            "mmd2": (drift.get("embedding") or {}).get("mmd2"),
            "mmd_p_value": (drift.get("embedding") or {}).get("p_value"),
            "label_p_value": (drift.get("labels") or {}).get("p_value"),
            "label_total_variation": (drift.get("labels") or {}).get("total_variation"),
        },
        "check": {k: labelled_check.get(k) for k in
                  ("precision", "recall", "n_gold", "n_predicted", "control_alerts_gold", "control_alerts_predicted")},
    }
    return _flatten({k: v for k, v in metrics.items() if v is not None})
