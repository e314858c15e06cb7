"""The meta-learning report (data/08_reporting/meta_learning.md), its episode plot and figures.

The verdict first (paired differences against the same encoder without meta-training and against
TF-IDF + LR, `evaluation.paired`), then the class-split episode tables, the k-shot learning
curves, the leave-one-domain-out section (`evaluation.lodo`) and the wall times. Pure pandas and
matplotlib: the numbers come in as tables, the plan (`fastadapt.meta.plan.MetaTrainingPlan`) only
as the settings it names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fastadapt.evaluation.lodo import lodo_section
from fastadapt.evaluation.metrics import summarise_runs
from fastadapt.evaluation.paired import paired_differences, pooled_mean, verdict
from fastadapt.evaluation.report import markdown_table

if TYPE_CHECKING:  # pragma: no cover
    from fastadapt.meta.plan import MetaTrainingPlan

FROZEN, TFIDF = "frozen_prototypes", "tfidf"
EPISODE_DIFFERENCE_COLUMNS = ["method", "baseline", "setting", "split", "episodes", "difference", "ci95", "low",
                              "high"]


def meta_learning_report(plan: MetaTrainingPlan, runs: pd.DataFrame, results: pd.DataFrame, summary: pd.DataFrame,
                         diffs: pd.DataFrame, curves: pd.DataFrame, configured: int | None, environment: str,
                         lodo: pd.DataFrame | None = None, lodo_differences: pd.DataFrame | None = None) -> str:
    """The Markdown report: `results` are the episode results of every run and baseline,
    `summary` / `diffs` their `episode_summary` / `episode_differences`, `curves` the learning
    curves (maybe empty), `configured` the features pipeline's `episodes.n_episodes`."""
    algorithms = sorted({run.algorithm for run in plan.runs})
    n_episodes = results.groupby(["setting", "split"])["episode"].nunique()
    lines = _header(plan, algorithms, n_episodes, configured, environment)
    lines += _verdict_section(algorithms, diffs, curves, runs)
    lines += _episode_tables(plan, summary, diffs)
    if len(curves):
        lines += _curve_section(curves)
    if lodo is not None:
        lines += lodo_section(lodo, lodo_differences)
    lines += _wall_time(runs, results)
    return "\n".join(lines)


def episode_differences(results: pd.DataFrame, methods: Sequence[str], against: Sequence[str]) -> pd.DataFrame:
    """Per setting x split: method minus baseline accuracy paired over the same episodes (95 % CI),
    and per setting the mean over splits (split `mean`, `pooled_mean`)."""
    wide = results.pivot_table(index=["setting", "split", "episode"], columns="method", values="accuracy")
    table = paired_differences(wide, [(m, b) for m in methods for b in against], ["setting", "split"])
    table = table.rename(columns={"arm": "method", "n": "episodes"})
    table["split"] = [f"{int(split):02d}" for split in table["split"]]
    means = []
    for (method, baseline, setting), group in table.groupby(["method", "baseline", "setting"], sort=True):
        mean, half = pooled_mean(group["difference"], group["ci95"])
        means.append({"method": method, "baseline": baseline, "setting": setting, "split": "mean",
                      "episodes": int(group["episodes"].sum()), "difference": mean, "ci95": half,
                      "low": mean - half, "high": mean + half})
    return pd.concat([table[EPISODE_DIFFERENCE_COLUMNS], pd.DataFrame(means, columns=EPISODE_DIFFERENCE_COLUMNS)],
                     ignore_index=True)


def summary_metrics(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The episode summary as MLflow metrics `<method>.<setting>.split_<split>.accuracy`."""
    return {f"{row.method}.{row.setting}.split_{row.split}.accuracy": {"value": float(row.accuracy), "step": 0}
            for row in summary.itertuples(index=False)}


def _header(plan: MetaTrainingPlan, algorithms: list[str], n_episodes: pd.Series, configured: int | None,
            environment: str) -> list[str]:
    """The title, what was run and the limits of this configuration."""
    lines = ["# Meta-learning: does learning to learn help?", ""]
    lines += [f"Configuration environment `{environment}`; backbone `{plan.backbone}`; algorithms "
              f"{', '.join(f'`{a}`' for a in algorithms)}; Banking77 class splits {', '.join(plan.splits)} "
              f"(PROTOCOL.md section 3: meta-training on each split's 25 train classes, meta-validation with early "
              f"stopping on its 25 valid classes, meta-test on its 27 test classes, never seen before).", ""]
    limits = []
    if int(n_episodes.min()) < 600:
        limits.append(f"{int(n_episodes.min())} test episodes per setting and split, not the protocol's 600 "
                      f"(features pipeline `episodes.n_episodes: {configured}`"
                      + (f", `meta_training.evaluation.max_episodes: {plan.evaluation.max_episodes}`"
                         if plan.evaluation.max_episodes else "") + ")")
    if len(plan.splits) < 5:
        limits.append(f"class split(s) {', '.join(plan.splits)} only, not all five")
    meta = plan.meta_config
    limits.append(f"meta-training budget: at most {meta.max_steps} outer steps of {meta.meta_batch_size} "
                  f"{meta.n_way}-way {meta.k_shot}-shot episodes"
                  + (f" or {meta.max_seconds:g} s" if meta.max_seconds else ""))
    if plan.curves.max_test_rows or plan.curves.ks or plan.curves.seeds:
        limits.append(f"learning curves on k = {plan.curves.ks or 'all'}, seeds {plan.curves.seeds or 'all'}"
                      + (f", at most {plan.curves.max_test_rows} test rows per domain (a fixed random sample)"
                         if plan.curves.max_test_rows else ""))
    if environment == "base":
        lines += ["**Quick configuration.** These figures come from the quick config (`conf/base`), so they are "
                  "indicative: " + "; ".join(limits) + ". `kedro run --pipeline meta_training --env full` runs the "
                  "protocol in full.", ""]
    else:
        lines += ["Limits of this run: " + "; ".join(limits) + ".", ""]
    return lines


def _verdict_section(algorithms: list[str], diffs: pd.DataFrame, curves: pd.DataFrame, runs: pd.DataFrame
                     ) -> list[str]:
    """Plain sentences: episodes against each baseline, the curves, meta-validation of each run."""
    lines = ["## Verdict", ""]
    for algorithm in algorithms:
        mean_rows = diffs[(diffs["method"] == algorithm) & (diffs["split"] == "mean")]
        against_frozen = mean_rows[mean_rows["baseline"] == FROZEN]
        helped = against_frozen[against_frozen["low"] > 0]["setting"].tolist()
        hurt = against_frozen[against_frozen["high"] < 0]["setting"].tolist()
        unclear = against_frozen[(against_frozen["low"] <= 0) & (against_frozen["high"] >= 0)]["setting"].tolist()
        sentence = f"**{algorithm}** against the same encoder without meta-training (frozen prototypes), paired over " \
                   f"the same episodes: "
        parts = []
        for label, settings in (("helped in", helped), ("hurt in", hurt), ("made no clear difference in", unclear)):
            if settings:
                parts.append(f"{label} {', '.join(sorted(settings, key=_setting_order))}")
        best = against_frozen.loc[against_frozen["difference"].idxmax()] if len(against_frozen) else None
        lines.append(sentence + "; ".join(parts) + "."
                     + (f" Largest change: {100 * best['difference']:+.1f} points ({best['setting']})."
                        if best is not None else ""))
        lines += [""] + _verdict(diffs, algorithm, FROZEN) + [""]
        lines += ["Against TF-IDF + logistic regression fitted on each support set:", ""]
        lines += _verdict(diffs, algorithm, TFIDF) + [""]
    if len(curves):
        lines += ["k-shot learning curves (meta-trained against pretrained-only, paired over the same k-shot "
                  "sets; details below):", ""]
        for domain in sorted(curves["domain"].unique()):
            verdicts = _curve_verdicts(curves[curves["domain"] == domain])
            if not verdicts:
                continue
            groups = {}
            for k, word, mean, _ in verdicts:
                groups.setdefault(word, []).append(f"k={k} ({100 * mean:+.1f})")
            lines.append(f"- {domain}: " + "; ".join(f"{word} at {', '.join(ks)}" for word, ks in groups.items())
                         + ".")
        lines.append("")
    if len(runs):
        lines += ["Meta-validation (held-out valid classes) before and after meta-training:", ""]
        for row in runs.itertuples(index=False):
            initial = "n/a" if row.initial_val_accuracy is None or pd.isna(row.initial_val_accuracy) \
                else f"{row.initial_val_accuracy:.3f}"
            best = "n/a" if row.best_val_accuracy is None or pd.isna(row.best_val_accuracy) \
                else f"{row.best_val_accuracy:.3f}"
            lines.append(f"- `{row.run}`: {initial} at step 0, best {best} at step {row.best_step} "
                         f"({row.steps} steps, stop: {row.stop_reason}, {row.seconds:.0f} s)"
                         + (" — selected as `meta_learner`" if row.selected else ""))
        lines.append("")
        if (runs["best_step"] == 0).any():
            lines += ["A run whose best step is 0 never beat its starting weights on meta-validation, so the "
                      "model kept is the pretrained encoder itself.", ""]
    return lines


def _episode_tables(plan: MetaTrainingPlan, summary: pd.DataFrame, diffs: pd.DataFrame) -> list[str]:
    """Accuracy with 95 % CI per setting, the paired differences and the adaptation times."""
    lines = ["## Class-split episodes: accuracy with 95 % CI", "",
              "Mean query accuracy over the fixed episodes (episode i of split s drawn with `rng([s, i])`, "
              "the same for every method); CI = 1.96 sd / sqrt(n). Split `mean` is the mean of the split means.", "",
              "![episode accuracy](meta_training/episode_accuracy.png)", ""]
    wide = summary.assign(cell=[f"{a:.3f} ± {c:.3f}" for a, c in zip(summary["accuracy"], summary["ci95"])])
    for setting in sorted(summary["setting"].unique(), key=_setting_order):
        part = wide[wide["setting"] == setting].pivot(index="method", columns="split", values="cell")
        if len(plan.splits) == 1:
            part = part.drop(columns="mean")
        part = part.loc[sorted(part.index, key=_method_order)].reset_index()
        lines += [f"### {setting}", "", markdown_table(part)]
    shown = diffs if len(plan.splits) > 1 else diffs[diffs["split"] != "mean"]
    lines += ["### Paired differences (method − baseline, same episodes)", "",
              markdown_table(shown.drop(columns=["low", "high"]), "{:.4f}"), ""]
    seconds = summary[summary["split"] == "mean"].pivot(index="method", columns="setting",
                                                         values="adaptation_seconds").reset_index()
    lines += ["Mean adaptation time per episode (seconds; features of the frozen encoders cached, so prototypes "
              "cost only the class means):", "", markdown_table(seconds, "{:.4f}")]
    return lines


def _curve_section(curves: pd.DataFrame) -> list[str]:
    """Mean ± sd per arm and k, and the paired verdicts, per domain."""
    lines = ["## k-shot learning curves per domain", "",
              "Each k-shot set (PROTOCOL.md section 2) adapted by: `random_init` (tiny-bert with random weights, "
              "frozen), `pretrained` (MiniLM-L6 frozen, no meta-training), `meta_trained` (the selected "
              "`meta_learner`), `tfidf` (TF-IDF + LR). Accuracy on the test split, mean ± sd over seeds.", ""]
    table = summarise_runs(curves, ["domain", "model", "k"], ["accuracy", "macro_f1"])
    for domain in sorted(curves["domain"].unique()):
        part = table[table["domain"] == domain]
        cells = part.assign(cell=[f"{m:.3f} ± {s:.3f}" for m, s in zip(part["accuracy_mean"],
                                                                       part["accuracy_std"])])
        pivot = cells.pivot(index="model", columns="k", values="cell").reset_index()
        pivot.columns = [str(c) if c == "model" else f"k={c}" for c in pivot.columns]
        lines += [f"### {domain}", "", f"![{domain}](meta_training/curves/{domain}.png)", "",
                  markdown_table(pivot)]
        lines += _curve_verdict(curves[curves["domain"] == domain]) + [""]
    if "customer_intent" in set(curves["domain"]):
        lines += ["Banking77 (`customer_intent`) is the domain meta-training drew from: its 77-way curve "
                  "includes the split's 25 meta-training classes (from train and validation rows only; "
                  "the test rows were never seen), so it is not an unseen-class figure — the class-split "
                  "episodes above are.", ""]
    return lines


def _wall_time(runs: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    lines = ["## Wall time", ""]
    for row in runs.itertuples(index=False):
        lines.append(f"- meta-training `{row.run}`: {row.seconds:.0f} s")
    for (run, method), group in results.groupby(["run", "method"], sort=True):
        lines.append(f"- meta-test `{method}` ({run}): {group['eval_seconds'].iloc[0]:.0f} s for {len(group)} episodes")
    lines.append("")
    return lines


def episode_figure(summary: pd.DataFrame) -> Figure:
    """Accuracy with 95 % CI per setting (one panel each), one bar per method and split."""
    settings = sorted(summary["setting"].unique(), key=_setting_order)
    methods = list(dict.fromkeys(sorted(summary["method"].unique(), key=_method_order)))
    splits = sorted(summary["split"].unique(), key=lambda s: (s == "mean", s))
    if len(splits) == 2:  # one split: its mean is the same bar again
        splits = [s for s in splits if s != "mean"]
    figure = Figure(figsize=(4.2 * len(settings), 4.0), layout="constrained")
    axes = figure.subplots(1, len(settings), squeeze=False)[0]
    width = 0.8 / max(len(methods), 1)
    for ax, setting in zip(axes, settings):
        for m, method in enumerate(methods):
            part = summary[(summary["setting"] == setting) & (summary["method"] == method)].set_index("split")
            values = [part["accuracy"].get(s, np.nan) for s in splits]
            errors = [part["ci95"].get(s, 0.0) for s in splits]
            ax.bar(np.arange(len(splits)) + (m - (len(methods) - 1) / 2) * width, values, width, yerr=errors,
                   capsize=3, color=f"C{m}", label=method)
        ax.set_xticks(np.arange(len(splits)), [f"split {s}" if s != "mean" else "mean" for s in splits])
        ax.set_ylim(0, 1)
        ax.set_title(setting)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("query accuracy (95 % CI)")
    axes[-1].legend(fontsize=8, loc="lower right")
    return figure


def _setting_order(setting: str) -> tuple:
    digits = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in setting.split("_")]
    return tuple(digits)


def _method_order(method: str) -> tuple:
    return (method in (FROZEN, TFIDF), method == TFIDF, method)


def _verdict(diffs: pd.DataFrame, method: str, baseline: str) -> list[str]:
    """Plain sentences: where the method beat the baseline (CI above 0), lost, or could not be told apart."""
    part = diffs[(diffs["method"] == method) & (diffs["baseline"] == baseline)]
    if part["split"].nunique() == 2:  # one split: its mean row says the same again
        part = part[part["split"] != "mean"]
    lines = []
    for row in part.itertuples(index=False):
        where = f"{row.setting}, " + ("mean over splits" if row.split == "mean" else f"split {row.split}")
        change = f"{100 * row.difference:+.1f} points (95 % CI {100 * row.low:+.1f} to {100 * row.high:+.1f})"
        lines.append(f"- {where}: **{verdict(row.low, row.high)}**, {change}.")
    return lines


def _curve_verdicts(curves: pd.DataFrame) -> list[tuple[int, str, float, float]]:
    """(k, helped | hurt | no clear difference, mean, CI half-width) of meta-trained minus
    pretrained-only accuracy, paired over the same k-shot sets (seeds)."""
    wide = curves.pivot_table(index=["k", "seed"], columns="model", values="accuracy")
    table = paired_differences(wide, [("meta_trained", "pretrained")], ["k"])
    return [(int(row.k), verdict(row.low, row.high), row.difference, row.ci95) for row in table.itertuples(index=False)]


def _curve_verdict(curves: pd.DataFrame) -> list[str]:
    """Where meta-training beat pretrained-only on the curve (paired over the same k-shot sets)."""
    n_seeds = curves["seed"].nunique()
    return [f"- k={k}: meta-trained vs pretrained-only {100 * mean:+.1f} points (95 % CI ±{100 * half:.1f}, "
            f"{n_seeds} seeds): {word}." for k, word, mean, half in _curve_verdicts(curves)]


def history_metrics(history: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """The history as kedro-mlflow metric series {name: [{value, step}, ...]} (NaNs left out)."""
    metrics = {}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        points = [{"value": float(v), "step": int(s)} for s, v in zip(history["step"], history[name])
                  if math.isfinite(float(v))]
        if points:
            metrics[name] = points
    return metrics
