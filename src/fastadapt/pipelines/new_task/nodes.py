"""`new_task` nodes: read a task folder, adapt a (meta-learned) model with a few shots, evaluate.

A task is a folder `data/01_raw/tasks/<name>/` with `train.csv` and `test.csv` (columns
text,label) or `train.conll` and `test.conll` (NER), and optionally `task.yml` declaring how to
read them (`scheme: iob1 | iob2` for NER, `max_text_chars` for CSV). Every mistake a user can
make with it (no task name, no folder, a missing file, a single class, fewer examples than shots)
stops the run with one line naming the file or parameter (`UserInputError` subclasses); what is
suspicious but usable (quarantined records, test labels never seen in train, test rows also in
train) is logged with counts and recorded in metrics.json.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fastadapt.adapt import adapt, check_strategy, resolve_strategy
from fastadapt.config import ConfigError
from fastadapt.evaluation.metrics import classification_metrics, ner_metrics
from fastadapt.models.backbones import named_backbone
from fastadapt.models.baselines import repair_iob2
from fastadapt.models.predictor import classification_predictions, ner_predictions
from fastadapt.readers import read_raw
from fastadapt.readers.quarantine import RawInputError, quarantine_frame
from fastadapt.tasks.cleaning import ner_key_and_label, overlap_with_training
from fastadapt.tasks.kshot import KShotError, draw_kshot, draw_ner_kshot, entity_mentions

log = logging.getLogger(__name__)

TASK_KEYS = {"name", "shots", "seed", "strategy", "kind", "model"}
KINDS = ("auto", "text_classification", "ner")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
UNSET = "unset"  # the dataset name part while task.name is missing (the first node then stops)
DECLARATION = "task.yml"
DECLARABLE = {"ner": {"scheme"}, "text_classification": {"max_text_chars"}}
QUARANTINE_LOG_LINES = 20
FORMAT_HINT = ("A new task is a folder data/01_raw/tasks/<name>/ with train.csv and test.csv (columns text,label), "
               "or train.conll and test.conll for NER.")


def task_settings(task: Mapping[str, Any] | None) -> dict[str, Any]:
    """The validated `task:` block (defaults filled in); errors name `task.<key>`."""
    if task is not None and not isinstance(task, Mapping):
        raise ConfigError(f"task must be a mapping (name, shots, seed, strategy, kind, model); got {task!r}")
    task = {"name": None, "shots": None, "seed": 0, "strategy": "auto", "kind": "auto",
            "model": "meta_learner", **dict(task or {})}
    unknown = sorted(set(task) - TASK_KEYS)
    if unknown:
        raise ConfigError(f"task: unknown setting(s) {unknown}; allowed: {sorted(TASK_KEYS)}")
    name = task["name"]
    if name is None or name == "":
        raise ConfigError('task.name is missing: name the task folder, e.g. kedro run --pipeline new_task '
                          '--params "task.name=<folder under data/01_raw/tasks>"')
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"task.name is {name!r}; allowed: the name of a folder under data/01_raw/tasks "
                          f"(letters, digits, _ and -)")
    shots = task["shots"]
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise ConfigError(f"task.shots is {shots!r}; allowed: an integer >= 1 (examples per class, or mentions "
                          f"per entity type for NER), or null for the whole train file")
    seed = task["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"task.seed is {seed!r}; allowed: an integer >= 0")
    if task["strategy"] != "auto":
        task["strategy"] = check_strategy(task["strategy"], "task.strategy")
    if task["kind"] not in KINDS:
        raise ConfigError(f"task.kind is {task['kind']!r}; allowed: {list(KINDS)}")
    if not isinstance(task["model"], str) or not task["model"]:
        raise ConfigError(f"task.model is {task['model']!r}; allowed: meta_learner, pretrained, minilm-l6 or a "
                          f"model directory")
    return task


def _kind(files: Mapping[str, bytes], task: Mapping[str, Any]) -> str:
    if task["kind"] != "auto":
        return task["kind"]
    names = sorted(files)
    if any(name.endswith(".conll") for name in names):
        return "ner"
    if any(name.endswith(".csv") for name in names):
        return "text_classification"
    raise RawInputError(f"task '{task['name']}': data/01_raw/tasks/{task['name']}/ holds no .csv or .conll file "
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


def read_task(files: Mapping[str, bytes], task: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The task's train and test rows (the generic readers' columns), checked for what adaptation
    needs: both files, at least two classes (NER: an entity type) in train, rows in test; and the
    reading's accounting (rows in, quarantined, the quarantine table)."""
    task = task_settings(task)
    name = task["name"]
    folder = f"data/01_raw/tasks/{name}/"
    if not files:
        raise RawInputError(f"task '{name}': the folder {folder} is missing or empty. {FORMAT_HINT}")
    kind = _kind(files, task)
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


def draw_support(train: pd.DataFrame, task: Mapping[str, Any]) -> pd.DataFrame:
    """`task.shots` examples per class (greedy mentions per entity type for NER), drawn from the
    train rows as PROTOCOL.md sections 2 and 4 draw k-shot sets; all of train when shots is null."""
    shots, name = task["shots"], task["name"]
    if shots is None:
        return train
    kind_file = "train.conll" if "tags" in train else "train.csv"
    try:
        ids = draw_ner_kshot(train, shots, task["seed"]) if "tags" in train else draw_kshot(train, shots, task["seed"])
    except KShotError as error:
        message = str(error).replace("in the train split", f"in {kind_file}")
        raise KShotError(f"task '{name}': task.shots={shots}: {message}; lower task.shots or add examples") from None
    return train.set_index("row_id", drop=False).loc[ids].reset_index(drop=True)


def adapt_task(train: pd.DataFrame, test: pd.DataFrame, read_info: Mapping[str, Any], task: Mapping[str, Any],
               strategies: Mapping[str, Any] | None, meta_learner: Any = None,
               pretrained_backbone: Any = None, ner_source_tagger: Any = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Adapt the model `task.model` names with `task.strategy` on the drawn support set, then score
    the test rows: (metrics, predictions in the evaluation contract). `task.model: meta_learner`
    means the released NER source tagger for an NER task when meta_training wrote one."""
    task = task_settings(task)
    ner = "tags" in train
    strategy = resolve_strategy(task["strategy"], "ner" if ner else "text_classification")
    task["strategy"] = strategy
    options = dict((strategies or {}).get(strategy) or {})
    support = draw_support(train, task)
    learner = _learner(task, ner_source_tagger if ner and ner_source_tagger is not None else meta_learner,
                       pretrained_backbone)
    columns = ["tokens", "tags"] if ner else ["text", "label"]
    predictor = adapt(learner, support[columns], strategy, where="task.strategy", **options)
    if ner:
        predictions = ner_predictions(predictor, test)
        scores = ner_metrics(predictions)
        quality = {"entity_f1": scores["entity_f1"], "precision": scores["precision"], "recall": scores["recall"],
                   "accuracy": scores["token_accuracy"], "token_accuracy": scores["token_accuracy"],
                   "per_type_f1": {k.removeprefix("f1__"): v for k, v in scores.items() if k.startswith("f1__")},
                   "valid_iob2": float(np.mean([repair_iob2(list(p)) == list(p) for p in predictions["predicted"]]))}
        labels = sorted(set().union(*(entity_mentions(tags) for tags in support["tags"])))
    else:
        predictions = classification_predictions(predictor, test)
        labels = sorted(set(train["label"].astype(str)) | set(test["label"].astype(str)))
        scores = classification_metrics(predictions, labels)
        quality = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                   "weighted_f1": scores["weighted_f1"]}
        labels = list(predictor.classes_)
    metrics = {
        "task": task["name"], "kind": "ner" if ner else "text_classification", "strategy": strategy,
        "shots": task["shots"], "seed": task["seed"], "source_model": predictor.source,
        "model": task["model"] if strategy != "tfidf" else None,
        **quality,
        "n_train": int(len(support)), "n_train_available": int(len(train)), "n_test": int(len(test)),
        ("entity_types" if ner else "classes"): labels,
        "adaptation_seconds": round(float(predictor.adaptation_seconds), 4),
        "quarantined": int(read_info.get("quarantined", 0)),
        "unseen_test_labels": list(read_info.get("unseen_test_labels", [])),
        "n_test_unseen_label": int(read_info.get("n_test_unseen_label", 0)),
        "n_test_in_train": int(read_info.get("n_test_in_train", 0)),
        "n_test_in_train_same_label": int(read_info.get("n_test_in_train_same_label", 0)),
    }
    headline = f"entity F1 {quality['entity_f1']:.3f}" if ner else \
        f"accuracy {quality['accuracy']:.3f}, macro-F1 {quality['macro_f1']:.3f}"
    log.info("task '%s': %s adapted on %d examples in %.2f s; %s on %d test rows", task["name"], strategy,
             len(support), predictor.adaptation_seconds, headline, len(test))
    return _jsonable(metrics), predictions


def task_outputs(metrics: Mapping[str, Any], predictions: pd.DataFrame, read_info: Mapping[str, Any]) -> dict[str, Any]:
    """The files of the task's result folder, saved as one unit (`new_task.<name>.outputs`):
    metrics, predictions and the quarantined records (file, line, reason, raw) of the task's files."""
    quarantine = read_info.get("quarantine")
    quarantine = quarantine if isinstance(quarantine, pd.DataFrame) else quarantine_frame()
    return {"metrics.json": dict(metrics), "predictions.parquet": predictions, "quarantine.parquet": quarantine}


def _learner(task: Mapping[str, Any], meta_learner: Any, pretrained_backbone: Any) -> Any:
    if task["strategy"] == "tfidf":
        return None
    if task["model"] == "meta_learner":
        if meta_learner is None:
            raise ConfigError("task.model is 'meta_learner' but no meta-learned model was given; run "
                              "`kedro run --pipeline meta_training` first, or set task.model: minilm-l6")
        return meta_learner
    if task["model"] == "pretrained":
        return named_backbone("pretrained", "task.model", pretrained_backbone=pretrained_backbone)
    return task["model"]  # a backbone name or directory: fastadapt.adapt loads it


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["adapt_task", "draw_support", "read_task", "task_outputs", "task_settings"]
