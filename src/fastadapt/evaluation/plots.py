"""Figures for the evaluation report, returned unsaved (Kedro's MatplotlibWriter saves them).

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so no GUI backend and no
global figure registry is involved: nothing leaks when a pipeline draws many of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from fastadapt.evaluation.metrics import class_labels, confusion_frame

# Matrices up to this many classes get the share printed in each cell; beyond it they would
# be unreadable.
_ANNOTATE_MAX_CLASSES = 15


def confusion_matrix_figure(
    predictions: pd.DataFrame, labels: Sequence[str] | None = None, title: str = ""
) -> Figure:
    """Row-normalised confusion matrix, sized to the number of classes (readable for 77).

    Normalising by gold row shows each class's recall pattern regardless of class frequency.
    """
    classes = class_labels(predictions, labels)
    counts = confusion_frame(predictions, classes).drop(columns="class").to_numpy(dtype=float)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)

    n_classes = len(classes)
    side_inches = max(5.0, 0.22 * n_classes + 2.5)
    tick_fontsize = 9 if n_classes <= 20 else 6
    figure = Figure(figsize=(side_inches + 1.0, side_inches), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of gold class")

    positions = np.arange(n_classes)
    ax.set_xticks(positions, classes, rotation=90, fontsize=tick_fontsize)
    ax.set_yticks(positions, classes, fontsize=tick_fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    if n_classes <= _ANNOTATE_MAX_CLASSES:
        for row, column in np.ndindex(shares.shape):
            share = shares[row, column]
            ax.text(
                column,
                row,
                f"{share:.2f}",
                ha="center",
                va="center",
                fontsize=tick_fontsize,
                color="white" if share > 0.5 else "black",
            )
    ax.set_title(title)
    return figure


def learning_curve_figure(
    curves: pd.DataFrame, metric: str = "accuracy", title: str = ""
) -> Figure:
    """One line per model over k with a ±1 std band; full-data rows as dashed reference lines.

    Rows whose k is -1 or missing stand for training on the full data; they have no place on
    the k axis, so each becomes a horizontal line labelled "<model> (full data)".
    """
    mean_column, std_column = f"{metric}_mean", f"{metric}_std"
    points = curves.reset_index(drop=True)
    points["k"] = pd.to_numeric(points["k"], errors="coerce")
    is_full = points["k"].isna() | (points["k"] == -1)

    figure = Figure(figsize=(7.0, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for index, model in enumerate(pd.unique(points["model"])):
        colour = f"C{index % 10}"
        of_model = points["model"] == model
        few_shot = points.loc[of_model & ~is_full].sort_values("k")
        if not few_shot.empty:
            mean = few_shot[mean_column].to_numpy(dtype=float)
            std = np.nan_to_num(few_shot[std_column].to_numpy(dtype=float))
            ax.plot(few_shot["k"], mean, marker="o", color=colour, label=str(model))
            ax.fill_between(few_shot["k"], mean - std, mean + std, color=colour, alpha=0.2)
        for full_mean in points.loc[of_model & is_full, mean_column]:
            ax.axhline(
                float(full_mean), linestyle="--", color=colour, label=f"{model} (full data)"
            )

    shot_values = sorted(points.loc[~is_full, "k"].unique())
    if shot_values:
        # symlog rather than log so that k = 0 (zero-shot) still has a place on the axis.
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xticks(shot_values, [f"{k:g}" for k in shot_values])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("k (shots)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return figure


def validation_curve_figure(history: pd.DataFrame, title: str) -> Figure:
    """Meta-validation accuracy (held-out classes) and training episode accuracy against the step."""
    figure = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = figure.add_subplot()
    trained = history.dropna(subset=["accuracy"])
    if len(trained):
        ax.plot(trained["step"], trained["accuracy"], color="tab:blue", alpha=0.6,
                label="meta-training episodes (query accuracy)")
    validated = history.dropna(subset=["val_accuracy"])
    if len(validated):
        ax.plot(validated["step"], validated["val_accuracy"], "o-", color="tab:orange",
                label="meta-validation (held-out classes)")
        best = validated.loc[validated["val_accuracy"].idxmax()]
        ax.axvline(best["step"], color="tab:orange", linestyle=":", label=f"best: step {int(best['step'])}")
    ax.set_xlabel("outer step")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure
