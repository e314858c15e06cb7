"""Leave-one-domain-out statistics, plot and report section (PROTOCOL.md section 8).

Input: one row per (fold, model, strategy, k, seed) with the accuracy on the fold domain's test
split. The claim "meta-learning helped" is a paired difference over the same k-shot draws:
meta-trained minus pretrained-only under the same strategy, with a 95 % t-interval over seeds
(`evaluation.paired.paired_differences(..., "t")`, scipy's Student t quantile), and "helped" only
where the whole interval is above zero.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fastadapt.evaluation.paired import paired_differences, verdict
from fastadapt.evaluation.report import markdown_table

DIFFERENCE_COLUMNS = ["fold", "strategy", "k", "against", "n_seeds", "mean_difference", "ci_low", "ci_high",
                      "verdict"]


def lodo_differences(results: pd.DataFrame) -> pd.DataFrame:
    """Meta-trained minus pretrained (same strategy) and minus TF-IDF, paired over seeds."""
    wide = results.pivot_table(index=["fold", "k", "seed"], columns=["model", "strategy"], values="accuracy")
    pairs = [((model, strategy), other) for model, strategy in wide.columns if model == "meta_trained"
             for other in (("pretrained", strategy), ("tfidf", "tfidf"))]
    table = paired_differences(wide, pairs, ["fold", "k"], "t")
    return pd.DataFrame({
        "fold": table["fold"], "strategy": [arm[1] for arm in table["arm"]], "k": table["k"].astype(int),
        "against": [baseline[0] for baseline in table["baseline"]], "n_seeds": table["n"],
        "mean_difference": table["difference"], "ci_low": table["low"], "ci_high": table["high"],
        "verdict": ["one seed: no interval" if math.isnan(low) else verdict(low, high)
                    for low, high in zip(table["low"], table["high"])]}, columns=DIFFERENCE_COLUMNS)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd accuracy per fold, model and strategy (rows) and k (columns)."""
    grouped = results.groupby(["fold", "model", "strategy", "k"])["accuracy"]
    cells = grouped.agg(["mean", "std", "count"]).reset_index()
    cells["cell"] = [f"{m:.3f} ± {0 if math.isnan(s) else s:.3f}" for m, s in zip(cells["mean"], cells["std"])]
    pivot = cells.pivot(index=["fold", "model", "strategy"], columns="k", values="cell").reset_index()
    pivot.columns = [f"k={c}" if isinstance(c, (int, np.integer)) else str(c) for c in pivot.columns]
    return pivot


def lodo_figure(results: pd.DataFrame) -> Figure:
    """Accuracy against k per fold: meta-trained and pretrained for each strategy, and TF-IDF."""
    folds = sorted(results["fold"].unique()) if len(results) else []
    figure = Figure(figsize=(6.0 * max(len(folds), 1), 4.0), layout="constrained")
    axes = figure.subplots(1, max(len(folds), 1), squeeze=False)[0]
    for ax, fold in zip(axes, folds):
        part = results[results["fold"] == fold]
        for (model, strategy), group in part.groupby(["model", "strategy"], sort=True):
            curve = group.groupby("k")["accuracy"].agg(["mean", "std"]).reset_index()
            style = "-" if model == "meta_trained" else "--" if model == "pretrained" else ":"
            ax.errorbar(curve["k"], curve["mean"], yerr=curve["std"].fillna(0), fmt="o" + style, capsize=3,
                        label=f"{model} / {strategy}" if model != "tfidf" else "TF-IDF + LR")
        ax.set_title(f"left out: {fold} (never seen in meta-training)")
        ax.set_xlabel("k (examples per class)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure


def lodo_section(results: pd.DataFrame, differences: pd.DataFrame) -> list[str]:
    """Markdown lines: the accuracy table, the paired differences and what they say."""
    lines = ["## Leave one domain out: tasks the meta-learner has never seen (PROTOCOL.md section 8)", "",
             "Each fold's meta-learner was trained on every source except the fold's domain (and corpora made "
             "from its data, and its texts in the SMLMT pool), then adapted on the domain's k-shot sets "
             "(PROTOCOL.md section 2 draws) and scored on its whole test split, beside the pretrained encoder "
             "under the same strategy and TF-IDF + LR on the same draws.", "",
             "![leave one domain out](meta_training/lodo.png)", "", markdown_table(summary_table(results)), ""]
    if len(differences):
        shown = differences.assign(
            difference=[f"{100 * m:+.1f}" for m in differences["mean_difference"]],
            ci=[f"{100 * lo:+.1f} to {100 * hi:+.1f}" if not math.isnan(lo) else "n/a"
                for lo, hi in zip(differences["ci_low"], differences["ci_high"])])
        lines += ["Paired differences (points; meta-trained minus the other arm, 95 % t-interval over seeds):", "",
                  markdown_table(shown[["fold", "strategy", "k", "against", "n_seeds", "difference", "ci",
                                        "verdict"]]), ""]
        for row in differences[differences["against"] == "pretrained"].itertuples(index=False):
            lines.append(f"- {row.fold}, {row.strategy}, k={row.k}: meta-learning {row.verdict} "
                         f"({100 * row.mean_difference:+.1f} points).")
        lines.append("")
    seconds = results.groupby(["model", "strategy"])["adaptation_seconds"].mean().reset_index()
    lines += ["Mean adaptation seconds per fit (the fit alone, this machine):", "",
              markdown_table(seconds, "{:.2f}"), ""]
    return lines


__all__ = ["lodo_differences", "lodo_figure", "lodo_section", "summary_table"]
