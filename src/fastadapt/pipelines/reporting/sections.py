"""The Markdown sections of the summary report (`summary_report` assembles them): data
accounting, full-data results, new-service figures and answer suggestions."""

from __future__ import annotations

import pandas as pd

from fastadapt.evaluation.metrics import summarise_runs
from fastadapt.evaluation.report import markdown_table


def accounting_table(accountings: dict[str, dict]) -> pd.DataFrame:
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


def results_section(metrics: list[dict]) -> list[str]:
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


def mean_sd(frame: pd.DataFrame, metric: str) -> pd.Series:
    return frame.apply(lambda r: f"{r[metric + '_mean']:.3f} ± {r[metric + '_std']:.3f}", axis=1)


def _new_service_lines(metrics: pd.DataFrame, calibration: pd.DataFrame | None) -> list[str]:
    """Figures of the suggester adapted to services no training dialogue uses, and the
    calibration-split measurement its abstention threshold was chosen from."""
    threshold = float(metrics["abstain_below"].iloc[0])
    figures = ["accuracy", "abstention_rate", "answered_accuracy", "reply_gold_rate"]
    summary = summarise_runs(metrics, ["k"], figures)
    for figure in figures:
        summary[figure] = mean_sd(summary, figure)
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


def suggestion_section(suggestions: list[dict], metrics: pd.DataFrame | None = None,
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


__all__ = ["accounting_table", "mean_sd", "results_section", "suggestion_section"]
