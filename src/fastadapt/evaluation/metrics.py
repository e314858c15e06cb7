"""Scores computed from prediction frames, so that every model is measured the same way.

Classification frames hold ``label`` (gold), ``predicted`` and optionally one ``proba__<class>``
column per class; NER frames hold ``tags`` (gold) and ``predicted`` as IOB2 lists per sentence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from seqeval.metrics import classification_report as seqeval_classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

PROBA_PREFIX = "proba__"
REPORT_COLUMNS = ["class", "precision", "recall", "f1", "support"]
_AVERAGE_ROWS = {"accuracy", "micro avg", "macro avg", "weighted avg"}


def class_labels(predictions: pd.DataFrame, labels: Sequence[str] | None = None) -> list[str]:
    """The class order to score and plot in: the given labels, else every class seen, sorted.

    Pass the full label set when a split may lack some classes, so that tables and matrices of
    different runs line up.
    """
    if labels is not None:
        return [str(label) for label in labels]
    seen = set(predictions["label"].astype(str)) | set(predictions["predicted"].astype(str))
    return sorted(seen)


def classification_metrics(
    predictions: pd.DataFrame, labels: Sequence[str] | None = None
) -> dict[str, float | int | None]:
    """Accuracy, macro and weighted F1, macro one-vs-rest ROC AUC and the row count.

    ``labels`` fixes the classes the F1 averages run over; the AUC uses the model's own
    ``proba__`` columns and is None where it is undefined (no probabilities, or a class that
    never occurs in the gold labels).
    """
    if predictions.empty:
        raise ValueError("classification_metrics: no predictions to score (the frame is empty)")
    gold = predictions["label"].astype(str)
    predicted = predictions["predicted"].astype(str)
    classes = class_labels(predictions, labels)
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(
            f1_score(gold, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(gold, predicted, labels=classes, average="weighted", zero_division=0)
        ),
        "roc_auc_ovr": _roc_auc_ovr(predictions),
        "n": len(predictions),
    }


def label_metrics(gold: Sequence[object], predicted: Sequence[object], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of predicted against gold labels (compared as text) over `labels`."""
    frame = pd.DataFrame({"label": np.asarray(gold, dtype=object).astype(str),
                          "predicted": np.asarray(predicted, dtype=object).astype(str)})
    metrics = classification_metrics(frame, labels)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def _roc_auc_ovr(predictions: pd.DataFrame) -> float | None:
    """Macro one-vs-rest AUC over the ``proba__`` columns, None where it is not defined.

    The columns are sorted by class because sklearn maps score columns to sorted labels.
    """
    proba_columns = sorted(
        column for column in predictions.columns if column.startswith(PROBA_PREFIX)
    )
    proba_classes = [column.removeprefix(PROBA_PREFIX) for column in proba_columns]
    gold = predictions["label"].astype(str)
    if len(proba_classes) < 2 or set(gold) != set(proba_classes):
        return None
    scores = predictions[proba_columns].to_numpy(dtype=float)
    if len(proba_classes) == 2:
        positive_class = proba_classes[1]
        return float(roc_auc_score(gold == positive_class, scores[:, 1]))
    return float(
        roc_auc_score(gold, scores, multi_class="ovr", average="macro", labels=proba_classes)
    )


def classification_report_frame(
    predictions: pd.DataFrame, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, one row per class, to find weak classes."""
    classes = class_labels(predictions, labels)
    report = classification_report(
        predictions["label"].astype(str),
        predictions["predicted"].astype(str),
        labels=classes,
        output_dict=True,
        zero_division=0,
    )
    return _report_frame(report)


def confusion_frame(
    predictions: pd.DataFrame, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Counts of gold class (``class`` column, one row each) by predicted class (one column each).

    The gold class is a column rather than the index so that it survives a CSV or Parquet save.
    """
    classes = class_labels(predictions, labels)
    counts = confusion_matrix(
        predictions["label"].astype(str), predictions["predicted"].astype(str), labels=classes
    )
    frame = pd.DataFrame(counts, columns=classes)
    frame.insert(0, "class", classes)
    return frame


def ner_metrics(predictions: pd.DataFrame) -> dict[str, float | int]:
    """Entity-level micro precision, recall and F1 (seqeval, strict IOB2), per-type F1 and
    token accuracy.

    Strict mode counts an entity only when its boundaries and type match exactly, so an ``I-``
    tag that does not continue a ``B-`` never forms an entity.
    """
    gold, predicted = _tag_sequences(predictions)
    report = _entity_report(gold, predicted)
    micro = report["micro avg"]
    metrics: dict[str, float | int] = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "entity_f1": float(micro["f1-score"]),
    }
    for entity_type, scores in report.items():
        if entity_type not in _AVERAGE_ROWS:
            metrics[f"f1__{entity_type}"] = float(scores["f1-score"])
    gold_tokens = [tag for sentence in gold for tag in sentence]
    predicted_tokens = [tag for sentence in predicted for tag in sentence]
    metrics["token_accuracy"] = float(accuracy_score(gold_tokens, predicted_tokens))
    metrics["n_sentences"] = len(gold)
    return metrics


def ner_report_frames(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The entity report (per type, strict IOB2) and the token report (per tag, ``O`` included).

    The token report shows where tagging goes wrong (a ``B-`` read as ``I-``) even when the
    entity report only says that an entity was missed.
    """
    gold, predicted = _tag_sequences(predictions)
    entity_frame = _report_frame(_entity_report(gold, predicted))
    gold_tokens = [tag for sentence in gold for tag in sentence]
    predicted_tokens = [tag for sentence in predicted for tag in sentence]
    token_report = classification_report(
        gold_tokens, predicted_tokens, output_dict=True, zero_division=0
    )
    return entity_frame, _report_frame(token_report)


def subset_metrics(
    predictions: pd.DataFrame,
    mask: Sequence[bool] | pd.Series | np.ndarray,
    labels: Sequence[str] | None = None,
) -> dict[str, float | int | None]:
    """Classification metrics on the rows where ``mask`` is true (e.g. Financial PhraseBank's
    AllAgree sentences of the test split).

    The mask is positional and must have one entry per prediction row.
    """
    selected = np.asarray(mask, dtype=bool)
    if selected.shape != (len(predictions),):
        raise ValueError(
            f"subset_metrics: the mask has {selected.size} entries for {len(predictions)} rows"
        )
    return classification_metrics(predictions.loc[selected], labels)


def mean_confidence_interval(
    values: Iterable[float], distribution: Literal["normal", "t"] = "normal"
) -> tuple[float, float]:
    """Mean and 95 % half-width, quantile * sd / sqrt(n) with sd over the values (ddof=1).

    The one place the project's intervals are computed:
    - ``normal``: quantile 1.96 (PROTOCOL.md section 3, episodes and k-shot seeds). The literal
      1.96 the protocol names rather than scipy's 1.95996, so reported figures keep their digits;
      a single value has width 0 (a readable spread over a handful of seeds, not an exact interval).
    - ``t``: scipy's Student t quantile with n - 1 degrees of freedom (PROTOCOL.md section 8,
      paired differences over seeds); a single value has no interval (half-width nan).
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("mean_confidence_interval: no values")
    if distribution not in ("normal", "t"):
        raise ValueError(f"mean_confidence_interval: distribution must be normal or t, not {distribution!r}")
    mean = float(array.mean())
    if array.size < 2:
        return mean, 0.0 if distribution == "normal" else math.nan
    quantile = 1.96 if distribution == "normal" else stats.t.ppf(0.975, array.size - 1)
    return mean, float(quantile * array.std(ddof=1) / math.sqrt(array.size))


def summarise_runs(
    frame: pd.DataFrame, group_cols: Sequence[str], metric_cols: Sequence[str]
) -> pd.DataFrame:
    """Mean and std (ddof=1) of each metric per group, plus ``n_runs``, e.g. k-shot over seeds.

    Groups with a missing key (k = NaN for full data) are kept; the std of a single run is 0 and
    missing metric values (an undefined AUC) are skipped.
    """
    numeric = frame[list(group_cols)].copy()
    for metric in metric_cols:
        numeric[metric] = pd.to_numeric(frame[metric], errors="coerce")
    grouped = numeric.groupby(list(group_cols), dropna=False, sort=True)
    summary = grouped.size().rename("n_runs").to_frame()
    for metric in metric_cols:
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    ordered = [f"{metric}_{stat}" for metric in metric_cols for stat in ("mean", "std")]
    return summary[ordered + ["n_runs"]].reset_index()


def _tag_sequences(predictions: pd.DataFrame) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tags as lists of str, checking that each pair has the same length."""
    gold = [[str(tag) for tag in sentence] for sentence in predictions["tags"]]
    predicted = [[str(tag) for tag in sentence] for sentence in predictions["predicted"]]
    for row_id, gold_tags, predicted_tags in zip(
        predictions["row_id"], gold, predicted, strict=True
    ):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"row_id {row_id}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )
    return gold, predicted


def _entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """seqeval's strict IOB2 report, the entity-level standard for CoNLL-style NER."""
    return seqeval_classification_report(
        gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )


def _report_frame(report: dict) -> pd.DataFrame:
    """Per-class rows of a classification_report dict (averages dropped) in REPORT_COLUMNS."""
    rows = [
        {
            "class": name,
            "precision": float(scores["precision"]),
            "recall": float(scores["recall"]),
            "f1": float(scores["f1-score"]),
            "support": int(scores["support"]),
        }
        for name, scores in report.items()
        if name not in _AVERAGE_ROWS
    ]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)
