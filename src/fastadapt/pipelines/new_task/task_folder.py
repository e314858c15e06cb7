"""A new task's folder, read and checked for what adaptation needs, and its support set drawn.

A task is a folder `data/01_raw/tasks/<name>/` with `train.csv` and `test.csv` (columns
text,label) or `train.conll` and `test.conll` (NER), and optionally `task.yml` declaring how to
read them (`scheme: iob1 | iob2` for NER, `max_text_chars` for CSV). Every mistake a user can
make with it (no folder, a missing file, a single class, fewer examples than shots) stops the run
with one line naming the file (`UserInputError` subclasses); what is suspicious but usable
(quarantined records, test labels never seen in train, test rows also in train) is logged with
counts and returned for metrics.json. No torch here: only readers and tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import yaml

from fastadapt.readers import read_raw
from fastadapt.readers.quarantine import RawInputError
from fastadapt.tasks.cleaning import ner_key_and_label, overlap_with_training
from fastadapt.tasks.kshot import (
    KShotError,
    draw_kshot,
    draw_ner_kshot,
    entity_mentions,
)

log = logging.getLogger(__name__)

DECLARATION = "task.yml"
DECLARABLE = {"ner": {"scheme"}, "text_classification": {"max_text_chars"}}
QUARANTINE_LOG_LINES = 20
FORMAT_HINT = ("A new task is a folder data/01_raw/tasks/<name>/ with train.csv and test.csv (columns text,label), "
               "or train.conll and test.conll for NER.")


def _kind(files: Mapping[str, bytes], name: str, kind: str) -> str:
    if kind != "auto":
        return kind
    names = sorted(files)
    if any(name.endswith(".conll") for name in names):
        return "ner"
    if any(name.endswith(".csv") for name in names):
        return "text_classification"
    raise RawInputError(f"task '{name}': data/01_raw/tasks/{name}/ holds no .csv or .conll file "
                        f"(it holds {', '.join(names[:10])}). {FORMAT_HINT}")


def _declared_options(files: Mapping[str, bytes], kind: str, folder: str) -> dict[str, Any]:
    """The reader options the task folder's `task.yml` declares (empty without one)."""
    if DECLARATION not in files:
        return {}
    where = f"{folder}{DECLARATION}"
    try:
        declared = yaml.safe_load(files[DECLARATION].decode("utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise RawInputError(f"{where} is not valid YAML ({type(error).__name__}); write e.g. 'scheme: iob2'") from None
    if not isinstance(declared, dict) or set(declared) - DECLARABLE[kind]:
        raise RawInputError(f"{where} may only set {sorted(DECLARABLE[kind])} for a {kind} task; got {declared!r}")
    return declared


def _log_quarantine(corpus: str, quarantine: pd.DataFrame) -> list[dict[str, Any]]:
    """Log each quarantined record (file, line, reason; the first few) and return them all."""
    records = quarantine[["file", "line", "reason"]].to_dict("records")
    reasons = quarantine["reason"].value_counts().to_dict()
    log.warning("%s: %d record(s) quarantined (%s)", corpus, len(records), reasons)
    for record in records[:QUARANTINE_LOG_LINES]:
        log.warning("%s: %s line %d: %s", corpus, record["file"], record["line"], record["reason"])
    if len(records) > QUARANTINE_LOG_LINES:
        log.warning("%s: ... and %d more, all in quarantine.parquet beside metrics.json", corpus,
                    len(records) - QUARANTINE_LOG_LINES)
    return [{"file": str(r["file"]), "line": int(r["line"]), "reason": str(r["reason"])} for r in records]


def read_task_folder(files: Mapping[str, bytes], name: str, kind: str = "auto"
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The task's train and test rows (the generic readers' columns), checked for what adaptation
    needs: both files, at least two classes (NER: an entity type) in train, rows in test; and the
    reading's accounting (rows in, quarantined, the quarantine table)."""
    folder = f"data/01_raw/tasks/{name}/"
    if not files:
        raise RawInputError(f"task '{name}': the folder {folder} is missing or empty. {FORMAT_HINT}")
    kind = _kind(files, name, kind)
    corpus = f"task '{name}' ({folder})"
    options = {"source_hint": FORMAT_HINT, **_declared_options(files, kind, folder)}
    result = read_raw("conll" if kind == "ner" else "labelled_csv", files, options, corpus)
    if len(result.quarantine):
        _log_quarantine(corpus, result.quarantine)
    rows = result.rows
    train, test = rows[rows["origin"] == "train"].copy(), rows[rows["origin"] == "test"].copy()
    train_file, test_file = ("train.conll", "test.conll") if kind == "ner" else ("train.csv", "test.csv")
    if train.empty:
        raise RawInputError(f"task '{name}': {folder}{train_file} has no usable rows")
    if test.empty:
        raise RawInputError(f"task '{name}': {folder}{test_file} has no usable rows")
    if kind == "ner":
        types = sorted(set().union(*(entity_mentions(tags) for tags in train["tags"])))
        if not types:
            raise RawInputError(f"task '{name}': {folder}{train_file} tags no entity at all (only O); a tagger "
                                f"needs at least one entity type")
    else:
        classes = sorted(set(train["label"].astype(str)))
        if len(classes) < 2:
            raise RawInputError(f"task '{name}': {folder}{train_file} has a single class ({classes[0]!r}); a "
                                f"classifier needs examples of at least two classes")
    info = {"kind": kind, "records_in": int(result.n_in), "quarantined": int(len(result.quarantine)),
            "quarantine": result.quarantine.reset_index(drop=True),
            **_train_test_checks(train, test, kind, corpus, train_file, test_file)}
    return train.reset_index(drop=True), test.reset_index(drop=True), info


def _train_test_checks(train: pd.DataFrame, test: pd.DataFrame, kind: str, corpus: str, train_file: str,
                       test_file: str) -> dict[str, Any]:
    """Test labels (NER: entity types) never seen in train, and test rows also in train (PROTOCOL.md's
    duplicate key): counted, logged as warnings, and recorded in metrics.json."""
    if kind == "ner":
        seen = set().union(*(entity_mentions(tags) for tags in train["tags"]))
        test_labels = [entity_mentions(tags) for tags in test["tags"]]
        unseen = sorted(set().union(*test_labels) - seen)
        n_unseen_rows = sum(1 for labels in test_labels if set(labels) - seen)
    else:
        seen = set(train["label"].astype(str))
        unseen = sorted(set(test["label"].astype(str)) - seen)
        n_unseen_rows = int(test["label"].astype(str).isin(unseen).sum())
    if unseen:
        log.warning("%s: %d test row(s) of %s carry %s never seen in %s: %s; they cannot be predicted right",
                    corpus, n_unseen_rows, test_file, "entity types" if kind == "ner" else "labels", train_file,
                    unseen)
    both = pd.concat([train, test], ignore_index=True)
    key, label = ner_key_and_label(both) if kind == "ner" else (None, None)
    overlap = overlap_with_training(both, ["test"], key, label)
    if overlap["in_training"]:
        log.warning("%s: %d of %d test row(s) of %s also appear in %s (%d with the same label); scores on them "
                    "overstate the model", corpus, overlap["in_training"], overlap["test_rows"], test_file,
                    train_file, overlap["same_label"])
    return {"unseen_test_labels": unseen, "n_test_unseen_label": int(n_unseen_rows),
            "n_test_in_train": overlap["in_training"], "n_test_in_train_same_label": overlap["same_label"]}


def draw_support(train: pd.DataFrame, name: str, shots: int | None, seed: int) -> pd.DataFrame:
    """`task.shots` examples per class (greedy mentions per entity type for NER), drawn from the
    train rows as PROTOCOL.md sections 2 and 4 draw k-shot sets; all of train when shots is null."""
    if shots is None:
        return train
    kind_file = "train.conll" if "tags" in train else "train.csv"
    try:
        ids = draw_ner_kshot(train, shots, seed) if "tags" in train else draw_kshot(train, shots, seed)
    except KShotError as error:
        message = str(error).replace("in the train split", f"in {kind_file}")
        raise KShotError(f"task '{name}': task.shots={shots}: {message}; lower task.shots or add examples") from None
    return train.set_index("row_id", drop=False).loc[ids].reset_index(drop=True)


__all__ = ["FORMAT_HINT", "draw_support", "read_task_folder"]
