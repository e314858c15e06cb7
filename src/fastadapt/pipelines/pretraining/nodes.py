"""Pretraining node: a backbone pretrained on the unlabelled pool, its history and loss curve."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fastadapt.config import ConfigError
from fastadapt.models.backbones import Backbone, BackboneError
from fastadapt.pretraining import PretrainingConfig, pretrain

log = logging.getLogger(__name__)

MLFLOW_METRICS = ("loss", "val_loss", "lr", "tokens_per_second")


def history_metrics(history: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """The history as kedro-mlflow metric series {name: [{value, step}, ...]} (NaNs left out)."""
    metrics = {}
    for name in MLFLOW_METRICS:
        points = [{"value": float(value), "step": int(step)}
                  for step, value in zip(history["step"], history[name]) if math.isfinite(float(value))]
        if points:
            metrics[name] = points
    return metrics


def loss_curve_figure(history: pd.DataFrame, title: str = "pretraining") -> Figure:
    """Training loss (and validation loss where measured) against the optimiser step."""
    figure = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(history["step"], history["loss"], label="training loss", color="tab:blue")
    validated = history.dropna(subset=["val_loss"])
    if len(validated):
        ax.plot(validated["step"], validated["val_loss"], "o-", label="validation loss", color="tab:orange")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (weighted objectives)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return figure


def pretrain_backbone_node(
    unlabelled_pool: pd.DataFrame, params: Mapping[str, Any], wordpiece_tokenizer: Any = None
) -> tuple[Backbone, pd.DataFrame, dict, Figure]:
    """Pretrain the backbone of `params` (the `pretraining:` block) on the pool's texts."""
    config = PretrainingConfig.from_params(params)
    if config.backbone == "tiny-bert" and wordpiece_tokenizer is None:
        raise ConfigError(
            "pretraining.backbone is 'tiny-bert', which needs the WordPiece tokeniser (dataset "
            "`wordpiece_tokenizer`, written by `kedro run --pipeline features`)"
        )
    if "text" not in unlabelled_pool:
        raise ValueError("unlabelled_pool has no `text` column; run `kedro run --pipeline features`")
    try:
        output = pretrain(unlabelled_pool["text"].tolist(), config, tokenizer=wordpiece_tokenizer)
    except BackboneError as error:  # a backbone that cannot be loaded: say which parameter
        raise ConfigError(f"pretraining.backbone: {error}") from None
    history = output.result.history.copy()
    objectives = " + ".join(f"{w:g} {name}" for name, w in config.active_objectives.items())
    log.info("pretraining finished: %s after %d steps, %.0f s", output.result.stop_reason,
             int(history["step"].max()) if len(history) else 0, output.result.seconds)
    figure = loss_curve_figure(history, f"pretraining {config.backbone}: {objectives} "
                                        f"(stop: {output.result.stop_reason})")
    return output.backbone, history, history_metrics(history), figure
