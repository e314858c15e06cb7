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


def _results_tables(metrics: list[dict]) -> list[str]:
    classification, ner = [], []
    for value in metrics:
        test = value["test"]
        row = {"domain": value["domain"], "model": value["model"]}
        if "entity_f1" in test:
            row.update({"entity F1": test["entity_f1"], "precision": test["precision"], "recall": test["recall"],
                        "token accuracy": test["token_accuracy"], "sentences": test["n_sentences"]})
            row.update({k.replace("f1__", "F1 "): v for k, v in test.items() if k.startswith("f1__")})
            ner.append(row)
        else:
            row.update({"accuracy": test["accuracy"], "macro F1": test["macro_f1"],
                        "ROC-AUC (OvR)": test["roc_auc_ovr"], "test rows": test["n"]})
            subsets = value.get("subsets") or {}
            row["subsets"] = "; ".join(
                f"{name}: acc {figures['accuracy']:.3f} (n={figures['n']})" for name, figures in subsets.items()
            ) or "-"
            classification.append(row)
    lines = ["## Test-set results, full training data", ""]
    if classification:
        lines += ["### Text classification", "", markdown_table(pd.DataFrame(classification)), ""]
    if ner:
        lines += ["### NER (seqeval, strict IOB2, micro over types)", "", markdown_table(pd.DataFrame(ner)), ""]
    lines += ["Per-class reports and confusion matrices: `data/08_reporting/<domain>/<model>/`.", ""]
    return lines


def _mean_sd(frame: pd.DataFrame, metric: str) -> pd.Series:
    return frame.apply(lambda r: f"{r[metric + '_mean']:.3f} ± {r[metric + '_std']:.3f}", axis=1)


def _new_service_lines(metrics: pd.DataFrame, calibration: pd.DataFrame | None) -> list[str]:
    """Figures of the suggester adapted to services no training dialogue uses, and the
    calibration-split measurement its abstention threshold was chosen from."""
    threshold = float(metrics["abstain_below"].iloc[0])
    figures = ["accuracy", "abstention_rate", "answered_accuracy", "reply_gold_rate"]
    summary = summarise_runs(metrics, ["k"], figures)
    for figure in figures:
        summary[figure] = _mean_sd(summary, figure)
    summary = summary.merge(metrics.groupby("k", as_index=False)[["n_classes", "n_support", "n_query"]].first(), on="k")
    lines = [f"### Services no training dialogue uses (PROTOCOL.md section 5): adapted from k conversations per intent",
             "", "The suggester adapts (`fastadapt.adapt.adapt`) from k labelled test conversations per intent of "
             "the unseen services (section 2 draws; those conversations are left out of the query) and abstains "
             f"under intent probability {threshold:.2f}. accuracy: predicted intent is the gold one (all queries); "
             "reply_gold_rate: share of all queries that get replies, all from pairs of the gold intent "
             "(an abstention counts as no). Mean ± sd over seeds.", ""]
    lines += [markdown_table(summary[["k", *figures, "n_runs", "n_classes", "n_support", "n_query"]]), ""]
    if calibration is not None and len(calibration):
        split = str(calibration["split"].iloc[0])
        mean_utility = calibration.groupby("abstain_below")["utility"].mean()
        shown = calibration[calibration["abstain_below"].round(2).isin(
            {round(threshold, 2), 0.0, 0.3, 0.6, round(float(mean_utility.idxmax()), 2)})]
        lines += [f"Abstention threshold measured on the `{split}` split (every service treated as new, "
                  f"{int(calibration['n_classes'].iloc[0])} intents), not on the test services. utility: right "
                  "minus 2 × wrong answers per message; highest mean utility over k at "
                  f"{float(mean_utility.idxmax()):.2f}; configured {threshold:.2f}.", ""]
        lines += [markdown_table(shown[["k", "abstain_below", "coverage", "answered_accuracy", "wrong_answer_rate",
                                        "utility"]]), ""]
    return lines


def _suggestion_lines(suggestions: list[dict], metrics: pd.DataFrame | None = None,
                      calibration: pd.DataFrame | None = None) -> list[str]:
    lines = ["## Answer suggestions for real test messages (dialogue logs)", "",
             "Predicted intent, then the most representative agent replies that followed the nearest "
             "similar requests of that intent: in the training logs for a logged service, in the support "
             "conversations for a new one.", ""]
    if metrics is not None and len(metrics):
        lines += _new_service_lines(metrics, calibration)
        lines += ["### Examples", ""]
    for item in suggestions:
        verdict = "correct" if item["predicted_intent"] == item.get("gold_intent") else f"gold: {item.get('gold_intent')}"
        source = f"; {item['suggester']}" if item.get("suggester") else ""
        abstained = "; **abstained**, no replies" if item.get("abstained") else ""
        lines += [f"- **{item['message']}** → `{item['predicted_intent']}` "
                  f"(p = {item['intent_probability']:.2f}; {verdict}{source}{abstained})"]
        lines += [f"  - {reply['reply']}" for reply in item["replies"]]
    return lines + [""]


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
    lines += [markdown_table(_accounting_table(all_accountings)), ""]
    lines += ["Quarantined rows, with file, line and reason: `data/02_intermediate/<domain>/quarantine.parquet`.", ""]
    overlap_rows = [{"domain": d, **a["test_overlap"]} for d, a in accountings.items() if a.get("test_overlap", {}).get("test_rows")]
    if overlap_rows:
        lines += ["Official test rows whose duplicate key also occurs in training material "
                  "(kept as they are, PROTOCOL.md section 0):", ""]
        lines += [markdown_table(pd.DataFrame(overlap_rows)), ""]

    metrics = [value for key, value in sorted(inputs.items()) if key.startswith("metrics__")]
    if metrics:
        lines += _results_tables(metrics)

    curves = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("curves__")}
    if curves:
        lines += ["## k-shot learning curves (test accuracy, mean ± sd over seeds; PROTOCOL.md section 2)", ""]
        for domain, table in sorted(curves.items()):
            if table.empty:
                continue
            shown = table[table["k"] != FULL_DATA_K].assign(
                accuracy=lambda f: _mean_sd(f, "accuracy"), macro_f1=lambda f: _mean_sd(f, "macro_f1")
            )
            lines += [f"### {domain}", "", markdown_table(shown[["model", "k", "accuracy", "macro_f1", "n_runs"]]), ""]
            lines += [f"![{domain} learning curve]({domain}/learning_curve.png)", ""]

    unseen = {k.split("__", 1)[1]: v for k, v in inputs.items() if k.startswith("unseen__")}
    if unseen:
        lines += ["## k-shot on classes unseen in training (support from the test split, PROTOCOL.md section 5)", ""]
        for key, table in sorted(unseen.items()):
            domain, model = key.split("__", 1)
            summary = summarise_runs(table, ["k"], ["accuracy", "macro_f1"])
            summary = summary.assign(accuracy=_mean_sd(summary, "accuracy"), macro_f1=_mean_sd(summary, "macro_f1"))
            lines += [f"### {domain}: {model}", "", markdown_table(summary[["k", "accuracy", "macro_f1", "n_runs"]]), ""]

    suggestions = inputs.get("answer_suggestions")
    if suggestions:
        lines += _suggestion_lines(suggestions, inputs.get("new_service_metrics"),
                                   inputs.get("abstention_calibration"))

    episodes = inputs.get("episodes")
    if episodes is not None and len(episodes):
        counts = episodes.groupby(["setting", "split"])["episode"].nunique().unstack("split")
        counts.columns = [f"split {c}" for c in counts.columns]
        lines += ["## Class-split episodes prepared for meta-test (PROTOCOL.md section 3)", ""]
        lines += [markdown_table(counts.reset_index()), ""]
    return "\n".join(lines)
