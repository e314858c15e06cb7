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


def _accounting_table(accountings: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for corpus, accounting in accountings.items():
        reasons = ", ".join(f"{k} {v}" for k, v in accounting["quarantine_reasons"].items()) or "-"
        rows.append(
            {
                "corpus": corpus,
                "in": accounting["rows_in"],
                "out": accounting["rows_out"],
                "quarantined": accounting["rows_quarantined"],
                "reconciles": accounting["rows_in"] == accounting["rows_out"] + accounting["rows_quarantined"],
                "quarantine reasons": reasons,
            }
        )
    return pd.DataFrame(rows)


def _run_line(environment: str) -> str:
    run = mlflow.active_run()
    run_id = run.info.run_id if run else "none (MLflow tracking off)"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {now} by `kedro run` (config environment: `{environment}`), MLflow run `{run_id}`."


def summary_report(environment: str, **inputs: Any) -> str:
    """The report a person reads first: data accounting, then every model's figures.

    Inputs are named `accounting__<domain>`, `stream_accounting`, `metrics__<domain>__<model>`,
    `curves__<domain>` and `episodes`.
    """
    accountings = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("accounting__")}
    stream = inputs.get("stream_accounting")
    lines = ["# fastadapt summary report", "", _run_line(environment), ""]

    lines += ["## Data: rows in = rows out + rows quarantined", ""]
    all_accountings = dict(accountings)
    if stream:
        all_accountings.update({f"stream: {s['corpus']}": s for s in stream["sources"]})
    lines += [markdown_table(_accounting_table(all_accountings)), ""]
    overlap_rows = [
        {"domain": d, **{k: v for k, v in a["test_overlap"].items()}} for d, a in accountings.items() if a.get("test_overlap")
    ]
    if overlap_rows:
        lines += ["Official test rows whose duplicate key also occurs in training material (kept, as PROTOCOL.md section 0 says):", ""]
        lines += [markdown_table(pd.DataFrame(overlap_rows)), ""]

    metric_rows = []
    for key, value in sorted(inputs.items()):
        if not key.startswith("metrics__"):
            continue
        test = value["test"]
        row = {"domain": value["domain"], "model": value["model"]}
        if "entity_f1" in test:
            row.update({"entity F1": test["entity_f1"], "token accuracy": test["token_accuracy"], "n": test["n_sentences"]})
            row.update({k.replace("f1__", "F1 "): v for k, v in test.items() if k.startswith("f1__")})
        else:
            row.update({"accuracy": test["accuracy"], "macro F1": test["macro_f1"], "ROC-AUC (OvR)": test["roc_auc_ovr"], "n": test["n"]})
            for subset, figures in (value.get("subsets") or {}).items():
                row[f"accuracy ({subset})"] = figures["accuracy"]
        metric_rows.append(row)
    if metric_rows:
        lines += ["## Test-set results, full training data", ""]
        lines += [markdown_table(pd.DataFrame(metric_rows)), ""]
        lines += ["Per-class reports and confusion matrices: `data/08_reporting/<domain>/<model>/`.", ""]

    curves = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("curves__")}
    if curves:
        lines += ["## k-shot learning curves (test accuracy, mean ± sd over seeds)", ""]
        for domain, table in sorted(curves.items()):
            if table.empty:
                continue
            shown = table[table["k"] != FULL_DATA_K].copy()
            shown["accuracy"] = shown.apply(lambda r: f"{r.accuracy_mean:.3f} ± {r.accuracy_std:.3f}", axis=1)
            shown["macro F1"] = shown.apply(lambda r: f"{r.macro_f1_mean:.3f} ± {r.macro_f1_std:.3f}", axis=1)
            lines += [f"### {domain}", "", markdown_table(shown[["model", "k", "accuracy", "macro F1", "n_runs"]]), ""]
            lines += [f"![{domain} learning curve]({domain}/learning_curve.png)", ""]

    episodes = inputs.get("episodes")
    if episodes is not None and len(episodes):
        counts = episodes.groupby(["setting", "split"])["episode"].nunique().reset_index(name="episodes")
        lines += ["## Class-split episodes prepared for meta-test (PROTOCOL.md section 3)", ""]
        lines += [markdown_table(counts), ""]
    return "\n".join(lines)
