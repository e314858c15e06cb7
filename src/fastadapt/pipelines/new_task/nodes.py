"""`new_task` nodes: read a task folder, adapt a (meta-learned) model with a few shots, evaluate.

The folder is read and checked by `task_folder` (one-line errors naming the file); the `task:`
parameters are `fastadapt.adapt.TaskSettings` (errors naming `task.<key>`); the adaptation is
`fastadapt.adapt.adapt`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.adapt import TaskSettings, adapt, strategy_options
from fastadapt.config import ConfigError
from fastadapt.evaluation.metrics import classification_metrics, ner_metrics
from fastadapt.models.backbones import named_backbone
from fastadapt.models.baselines import repair_iob2
from fastadapt.models.predictor import classification_predictions, ner_predictions
from fastadapt.pipelines.new_task.task_folder import draw_support, read_task_folder
from fastadapt.readers.quarantine import quarantine_frame
from fastadapt.tasks.kshot import entity_mentions

log = logging.getLogger(__name__)

UNSET = "unset"  # the dataset name part while task.name is missing (the first node then stops)


def read_task(files: Mapping[str, bytes], task: Mapping[str, Any] | None
              ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The task folder's train and test rows, checked, and the reading's accounting."""
    settings = TaskSettings.from_params(task)
    return read_task_folder(files, settings.name, settings.kind)


def adapt_task(train: pd.DataFrame, test: pd.DataFrame, read_info: Mapping[str, Any], task: Mapping[str, Any] | None,
               strategies: Mapping[str, Any] | None, meta_learner: Any = None,
               pretrained_backbone: Any = None, ner_source_tagger: Any = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Adapt the model `task.model` names with `task.strategy` on the drawn support set, then score
    the test rows: (metrics, predictions in the evaluation contract). `task.model: meta_learner`
    means the released NER source tagger for an NER task when meta_training wrote one."""
    ner = "tags" in train
    kind = "ner" if ner else "text_classification"
    task = TaskSettings.from_params(task).resolved(kind)
    strategy = task.strategy
    options = strategy_options(strategies, strategy, "new_task.strategies", kind)
    support = draw_support(train, task.name, task.shots, task.seed)
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
        "task": task.name, "kind": kind, "strategy": strategy.value,
        "shots": task.shots, "seed": task.seed, "source_model": predictor.source,
        "model": task.model if strategy != "tfidf" else None,
        **quality,
        "n_train": int(len(support)), "n_train_available": int(len(train)), "n_test": int(len(test)),
        ("entity_types" if ner else "classes"): labels,
        "adaptation_seconds": round(float(predictor.adaptation_seconds), 4),
        # SetFit's contrastive step: its training summary, why it was skipped, or None (not configured).
        "contrastive": (getattr(predictor.model, "training", None) or {}).get("contrastive"),
        "quarantined": int(read_info.get("quarantined", 0)),
        "unseen_test_labels": list(read_info.get("unseen_test_labels", [])),
        "n_test_unseen_label": int(read_info.get("n_test_unseen_label", 0)),
        "n_test_in_train": int(read_info.get("n_test_in_train", 0)),
        "n_test_in_train_same_label": int(read_info.get("n_test_in_train_same_label", 0)),
    }
    headline = f"entity F1 {quality['entity_f1']:.3f}" if ner else \
        f"accuracy {quality['accuracy']:.3f}, macro-F1 {quality['macro_f1']:.3f}"
    log.info("task '%s': %s adapted on %d examples in %.2f s; %s on %d test rows", task.name, strategy,
             len(support), predictor.adaptation_seconds, headline, len(test))
    return _jsonable(metrics), predictions


def task_outputs(metrics: Mapping[str, Any], predictions: pd.DataFrame, read_info: Mapping[str, Any]) -> dict[str, Any]:
    """The files of the task's result folder, saved as one unit (`new_task.<name>.outputs`):
    metrics, predictions and the quarantined records (file, line, reason, raw) of the task's files."""
    quarantine = read_info.get("quarantine")
    quarantine = quarantine if isinstance(quarantine, pd.DataFrame) else quarantine_frame()
    return {"metrics.json": dict(metrics), "predictions.parquet": predictions, "quarantine.parquet": quarantine}


def _learner(task: TaskSettings, meta_learner: Any, pretrained_backbone: Any) -> Any:
    if task.strategy == "tfidf":
        return None
    if task.model == "meta_learner":
        if meta_learner is None:
            raise ConfigError("task.model is 'meta_learner' but no meta-learned model was given; run "
                              "`kedro run --pipeline meta_training` first, or set task.model: minilm-l6")
        return meta_learner
    if task.model == "pretrained":
        return named_backbone("pretrained", "task.model", pretrained_backbone=pretrained_backbone)
    return task.model  # a backbone name or directory: fastadapt.adapt loads it


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["adapt_task", "read_task", "task_outputs"]
