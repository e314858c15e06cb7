"""Evaluation nodes: metrics, per-class reports and plots from any model's predictions."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from matplotlib.figure import Figure

from fastadapt.config import DomainConfig
from fastadapt.evaluation.metrics import (
    classification_metrics,
    classification_report_frame,
    ner_metrics,
    ner_report_frames,
    subset_metrics,
)
from fastadapt.evaluation.plots import confusion_matrix_figure


def mlflow_metrics(metrics: Mapping[str, Any], prefix: str = "", step: int = 0) -> dict:
    """Flatten numeric metrics into kedro-mlflow's `{name: {value, step}}` form."""
    flat: dict[str, dict] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(mlflow_metrics(value, name, step))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = {"value": float(value), "step": step}
    return flat


def evaluate_classification(
    predictions: pd.DataFrame, splits: pd.DataFrame, domain_params: Mapping[str, Any], domain: str, model: str
) -> tuple[dict, pd.DataFrame, Figure, dict]:
    """Test-set metrics, the per-class report and a confusion matrix, plus configured subsets."""
    config = DomainConfig.from_params(domain, domain_params)
    labels = sorted(splits["label"].unique())
    metrics: dict[str, Any] = {"domain": domain, "model": model, "test": classification_metrics(predictions, labels)}
    test_rows = splits.set_index("row_id").loc[predictions["row_id"]]
    subsets = {name: test_rows.eval(query).to_numpy() for name, query in config.report_subsets.items()}
    seen = predictions["label"].isin(set(splits.loc[splits["split"] == "train", "label"])).to_numpy()
    if not seen.all():
        # Test classes that training never saw cannot be predicted by a closed-set model: the
        # figure on the seen classes says how well it does where it can.
        subsets["classes_seen_in_train"] = seen
    if subsets:
        metrics["subsets"] = {name: subset_metrics(predictions, mask) for name, mask in subsets.items()}
    figure = confusion_matrix_figure(predictions, labels, title=f"{domain}: {model} (test)")
    return metrics, classification_report_frame(predictions, labels), figure, mlflow_metrics(metrics)


def evaluate_ner(
    predictions: pd.DataFrame, domain: str, model: str
) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """seqeval entity-level (strict IOB2) and token-level reports."""
    metrics = {"domain": domain, "model": model, "test": ner_metrics(predictions)}
    entity_report, token_report = ner_report_frames(predictions)
    return metrics, entity_report, token_report, mlflow_metrics(metrics)


def evaluate_kshot(kshot_predictions: pd.DataFrame) -> pd.DataFrame:
    """One row of test metrics per (k, seed) training set."""
    rows = []
    for (k, seed), group in kshot_predictions.groupby(["k", "seed"], sort=True):
        proba = [c for c in group.columns if c.startswith("proba__")]
        metrics = classification_metrics(group[["row_id", "label", "predicted", *proba]])
        rows.append({"k": int(k), "seed": int(seed), **{m: metrics[m] for m in ("accuracy", "macro_f1", "n")}})
    return pd.DataFrame(rows)
