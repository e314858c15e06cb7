"""Reporting nodes: learning curves and the human-readable summary in 08_reporting."""

from __future__ import annotations

import datetime as dt
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from fastadapt.evaluation.metrics import summarise_runs
from fastadapt.evaluation.plots import learning_curve_figure
from fastadapt.evaluation.report import markdown_table
from fastadapt.pipelines.reporting.sections import (
    accounting_table,
    mean_sd,
    results_section,
    suggestion_section,
)

FULL_DATA_K = -1  # the k that marks full-data rows in a learning-curve table


def learning_curve_table(**inputs: Any) -> pd.DataFrame:
    """Mean and sd over seeds per (model, k), plus each model's full-data figure at k = -1.

    Inputs are named `kshot__<model>` (a k-shot metrics table) and `full__<model>` (a metrics dict).
    """
    frames = []
    for key, value in sorted(inputs.items()):
        kind, model = key.split("__", 1)
        if kind == "kshot":
            summary = summarise_runs(value, ["k"], ["accuracy", "macro_f1"])
            frames.append(summary.assign(model=model))
        elif kind == "full" and "accuracy" in value["test"]:
            test = value["test"]
            frames.append(
                pd.DataFrame(
                    [{"model": model, "k": FULL_DATA_K, "accuracy_mean": test["accuracy"], "accuracy_std": 0.0,
                      "macro_f1_mean": test["macro_f1"], "macro_f1_std": 0.0, "n_runs": 1}]
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def learning_curve_plot(curves: pd.DataFrame, domain: str) -> Figure:
    """Accuracy against k for every model, full-data figures as dashed reference lines."""
    return learning_curve_figure(curves, metric="accuracy", title=f"{domain}: accuracy against k (test split)")


def _run_line(environment: str) -> str:
    run = mlflow.active_run()
    run_id = run.info.run_id if run else "none (MLflow tracking off)"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {now} by `kedro run` (config environment: `{environment}`), MLflow run `{run_id}`."


def summary_report(environment: str, **inputs: Any) -> str:
    """The report a person reads first: data accounting, then every model's figures.

    Inputs are named `accounting__<domain>`, `stream_accounting`, `dialogue_accounting`, `metrics__<domain>__<model>`,
    `curves__<domain>`, `unseen__<domain>__<model>`, `answer_suggestions`, `new_service_metrics`,
    `abstention_calibration` and `episodes`.
    """
    accountings = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("accounting__")}
    stream = inputs.get("stream_accounting")
    lines = ["# fastadapt summary report", "", _run_line(environment), ""]

    lines += ["## Data: rows in = rows out + rows quarantined", ""]
    all_accountings = dict(accountings)
    if stream:
        all_accountings.update({f"stream: {s['corpus']}": s for s in stream["sources"]})
    dialogue = inputs.get("dialogue_accounting")
    if dialogue:
        all_accountings.update({f"dialogue turns: {s['corpus']}": s for s in dialogue["sources"]})
    lines += [markdown_table(accounting_table(all_accountings)), ""]
    lines += ["Quarantined rows, with file, line and reason: `data/02_intermediate/<domain>/quarantine.parquet`.", ""]
    overlap_rows = [{"domain": d, **a["test_overlap"]} for d, a in accountings.items() if a.get("test_overlap", {}).get("test_rows")]
    if overlap_rows:
        lines += ["Official test rows whose duplicate key also occurs in training material "
                  "(kept as they are, PROTOCOL.md section 0):", ""]
        lines += [markdown_table(pd.DataFrame(overlap_rows)), ""]

    metrics = [value for key, value in sorted(inputs.items()) if key.startswith("metrics__")]
    if metrics:
        lines += results_section(metrics)

    curves = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("curves__")}
    if curves:
        lines += ["## k-shot learning curves (test accuracy, mean ± sd over seeds; PROTOCOL.md section 2)", ""]
        for domain, table in sorted(curves.items()):
            if table.empty:
                continue
            shown = table[table["k"] != FULL_DATA_K].assign(
                accuracy=lambda f: mean_sd(f, "accuracy"), macro_f1=lambda f: mean_sd(f, "macro_f1")
            )
            lines += [f"### {domain}", "", markdown_table(shown[["model", "k", "accuracy", "macro_f1", "n_runs"]]), ""]
            lines += [f"![{domain} learning curve]({domain}/learning_curve.png)", ""]

    unseen = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("unseen__")}
    if unseen:
        lines += ["## k-shot on classes unseen in training (support from the test split, PROTOCOL.md section 5)", ""]
        for key, table in sorted(unseen.items()):
            domain, model = key.split("__", 1)
            summary = summarise_runs(table, ["k"], ["accuracy", "macro_f1"])
            summary = summary.assign(accuracy=mean_sd(summary, "accuracy"), macro_f1=mean_sd(summary, "macro_f1"))
            lines += [f"### {domain}: {model}", "", markdown_table(summary[["k", "accuracy", "macro_f1", "n_runs"]]), ""]

    suggestions = inputs.get("answer_suggestions")
    if suggestions:
        lines += suggestion_section(suggestions, inputs.get("new_service_metrics"),
                                   inputs.get("abstention_calibration"))

    episodes = inputs.get("episodes")
    if episodes is not None and len(episodes):
        counts = episodes.groupby(["setting", "split"])["episode"].nunique().unstack("split")
        counts.columns = [f"split {c}" for c in counts.columns]
        lines += ["## Class-split episodes prepared for meta-test (PROTOCOL.md section 3)", ""]
        lines += [markdown_table(counts.reset_index()), ""]
    return "\n".join(lines)
