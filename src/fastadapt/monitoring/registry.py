"""Champion / challenger in the MLflow Model Registry, every decision recorded.

A registered model (``finance_sentiment``, ``customer_intent``...) has one version per model
ever proposed; the alias ``champion`` points at the one in service (what
``mlflow models serve -m models:/<name>@champion`` serves). A challenger is always logged and
registered (as a :class:`~fastadapt.monitoring.serving.TextClassifierModel` pyfunc), scored
together with the champion on the same test rows, and becomes champion only when its score beats
the champion's by at least ``margin``; a registered model without a champion takes its first
model as champion. Every decision is an MLflow run (both scores as metrics, the decision as tags)
and a record the caller appends to the JSON-lines decision log (:func:`decision_line`: the
retraining nodes return it to the catalog's ``retraining.{name}.{step}_log``, the command line
appends it through the same kedro-datasets ``TextDataset``); the promoted version carries a ``previous_champion``
tag, which is what :func:`restore_previous_champion` follows back.

The registrations (``mlflow.pyfunc.log_model`` with ``registered_model_name``, then the alias)
happen here, inside the deciding call, not through a catalog dataset: the alias is set only after
both models are scored, on the version number the registration returns. kedro-mlflow 2.x has no
dataset for that: ``MlflowModelTrackingDataset`` logs a model when a node's output is saved (after
the node returned, so the node cannot see the version), and ``MlflowModelRegistryDataset`` only
loads.

The tracking and registry URIs are MLflow's current ones (``mlflow.set_tracking_uri``; in a
Kedro run, kedro-mlflow sets them from ``conf/<env>/mlflow.yml``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from fastadapt.evaluation.metrics import classification_metrics
from fastadapt.models.predictor import TextClassifier, classification_predictions
from fastadapt.monitoring.serving import (
    MODEL_ARTIFACT,
    TEXT_COLUMN,
    TextClassifierModel,
    save_model_artifact,
    text_signature,
)

log = logging.getLogger(__name__)

CHAMPION = "champion"
METRICS = ("macro_f1", "accuracy", "weighted_f1")
# Tags on model versions.
TAG_DECISION = "decision"            # first_champion | promoted | rejected
TAG_PREVIOUS = "previous_champion"   # on a promoted version: the champion it replaced
TAG_SCORE = "score"
TAG_METRIC = "metric"
TAG_DEMOTED = "demoted_at"           # on a version a restore took the alias from

INPUT_EXAMPLE = "Shares rose after the company raised its profit forecast"
_SERVING_PACKAGES = ("mlflow", "pandas", "numpy", "scikit-learn", "scipy")
_NEURAL_PACKAGES = ("torch", "transformers", "safetensors", "tokenizers", "peft")


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no champion, nothing to restore...)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _decision_run(run_name: str) -> Iterator[mlflow.ActiveRun]:
    """A run of its own for each decision (nested under the active one, e.g. kedro-mlflow's)."""
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        yield run


def _requirements(model: TextClassifier) -> list[str]:
    """Pinned requirements of the serving environment (no slow inference by MLflow)."""
    names = list(_SERVING_PACKAGES)
    if hasattr(model, "save_directory"):
        names += _NEURAL_PACKAGES
    if type(model).__name__ == "CrfTagger" or "crf" in type(model).__module__:
        names.append("sklearn-crfsuite")
    return pinned_requirements(names)


def pinned_requirements(names: list[str]) -> list[str]:
    """`name==version` for each installed package of `names`, as the serving environment's pins."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def fingerprint_rows(rows: pd.DataFrame) -> str:
    """A short fingerprint of the test rows (texts and labels, in order)."""
    digest = hashlib.sha256()
    for text, label in zip(rows["text"].astype(str), rows["label"].astype(str)):
        digest.update(text.encode())
        digest.update(b"\x1f")
        digest.update(label.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def evaluate_classifier(model: TextClassifier, test_rows: pd.DataFrame) -> dict[str, float | int | None]:
    """Accuracy, macro / weighted F1 (over the gold label set) of ``model`` on ``test_rows``."""
    if test_rows.empty:
        raise ValueError("the test set is empty: nothing to compare champion and challenger on")
    rows = test_rows.reset_index(drop=True)
    if "row_id" not in rows.columns:
        rows = rows.assign(row_id=range(len(rows)))
    predictions = classification_predictions(model, rows)
    labels = sorted(rows["label"].astype(str).unique())
    return classification_metrics(predictions, labels)


def log_classifier(
    model: TextClassifier,
    name: str,
    tags: Mapping[str, Any] | None = None,
    max_text_chars: int | None = None,
) -> ModelVersion:
    """Log ``model`` as a pyfunc model in the active run and register it as a version of ``name``."""
    if mlflow.active_run() is None:
        raise RegistryError("log_classifier needs an active MLflow run (mlflow.start_run())")
    classes = [str(c) for c in model.classes_]
    python_model = TextClassifierModel() if max_text_chars is None else TextClassifierModel(max_text_chars)
    with tempfile.TemporaryDirectory(prefix="fastadapt-model-") as folder:
        target = Path(folder) / "model"
        artifact = save_model_artifact(model, target)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            artifacts={MODEL_ARTIFACT: str(artifact)},
            signature=text_signature(classes),
            registered_model_name=name,
            pip_requirements=_requirements(model),
            input_example=pd.DataFrame({TEXT_COLUMN: [INPUT_EXAMPLE]}),
        )
    client = MlflowClient()
    version = str(info.registered_model_version)
    for key, value in {"model_class": f"{type(model).__module__}.{type(model).__name__}", **(tags or {})}.items():
        client.set_model_version_tag(name, version, key, str(value))
    return client.get_model_version(name, version)


def champion_version(name: str) -> ModelVersion | None:
    """The version the ``champion`` alias points at, or None (no such model, or no alias)."""
    client = MlflowClient()
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def load_classifier(name: str, alias_or_version: str = CHAMPION) -> TextClassifier:
    """The fastadapt classifier inside a registered pyfunc version (``@alias`` or version number)."""
    uri = f"models:/{name}/{alias_or_version}" if str(alias_or_version).isdigit() else f"models:/{name}@{alias_or_version}"
    pyfunc_model = mlflow.pyfunc.load_model(uri)
    wrapper = pyfunc_model.unwrap_python_model()
    if not isinstance(wrapper, TextClassifierModel) or wrapper.classifier is None:
        raise RegistryError(f"{uri} is not a fastadapt TextClassifierModel")
    return wrapper.classifier


def registered_version_of(model: Any) -> dict[str, Any] | None:
    """Name, version and aliases of the registered version a loaded pyfunc ``model`` came from.

    kedro-mlflow's ``MlflowModelRegistryDataset`` resolves ``models:/<name>@champion`` when it loads
    and hands over the model only; its MLflow run id (every version here is logged in a run of its
    own) finds the version, so the report names exactly the version that scored. None for a model
    that is not a registered pyfunc model (a pickle or a model directory from the catalog).
    """
    metadata = getattr(model, "metadata", None)
    run_id = getattr(metadata, "run_id", None)
    if not run_id:
        return None
    versions = MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    if len(versions) != 1:
        return {"run_id": run_id, "name": None, "version": None, "aliases": []}
    version = MlflowClient().get_model_version(versions[0].name, versions[0].version)  # with its aliases
    return {"run_id": run_id, "name": version.name, "version": str(version.version),
            "aliases": sorted(getattr(version, "aliases", []) or []),
            "decision": version.tags.get(TAG_DECISION), "model_class": version.tags.get("model_class")}


def decision_line(record: Mapping[str, Any] | None) -> str:
    """One decision as a line of the JSON-lines log; "" (nothing to append) for a `kept` champion."""
    if not record or record.get("action") == "kept":
        return ""
    return json.dumps(dict(record), sort_keys=True, default=str) + "\n"



def read_decisions(path: str | Path, name: str | None = None) -> list[dict[str, Any]]:
    """The decision log's records (of model ``name`` only, when given), oldest first."""
    path = Path(path)
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if name is None or r.get("name") == name]


def _check_decision_args(metric: str, margin: float) -> None:
    if metric not in METRICS:
        raise ValueError(f"retraining metric '{metric}' is unknown; allowed: {list(METRICS)}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
        raise ValueError(f"retraining margin must be a number >= 0, got {margin!r}")


def champion_challenger(
    challenger: TextClassifier,
    name: str,
    test_rows: pd.DataFrame,
    margin: float = 0.01,
    metric: str = "macro_f1",
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Register ``challenger`` and promote it to champion when it beats the champion by ``margin``.

    Both are scored with ``metric`` on ``test_rows`` (columns text, label). The challenger is
    promoted when ``challenger_score - champion_score >= margin`` and the difference is > 0
    (so margin 0 still asks for a strict improvement); with no champion yet it becomes the first
    champion. Returns the decision record, which is also logged as an MLflow run (``decision.json``).
    ``context`` adds fields to the record and the run's params (data sizes, the challenger's
    training set...).
    """
    _check_decision_args(metric, margin)
    client = MlflowClient()
    test_hash = fingerprint_rows(test_rows)
    with _decision_run(f"champion-challenger {name}") as run:
        current = champion_version(name)
        challenger_metrics = evaluate_classifier(challenger, test_rows)
        challenger_score = float(challenger_metrics[metric])
        champion_metrics = champion_score = delta = None
        if current is None:
            action, promote = "first_champion", True
            reason = f"'{name}' had no champion: the first model becomes champion"
        else:
            champion_metrics = evaluate_classifier(load_classifier(name, current.version), test_rows)
            champion_score = float(champion_metrics[metric])
            delta = challenger_score - champion_score
            promote = delta >= margin and delta > 0
            action = "promoted" if promote else "rejected"
            reason = (
                f"challenger {metric} {challenger_score:.4f} vs champion (version {current.version}) "
                f"{champion_score:.4f}: difference {delta:+.4f}, "
                + (f"beats the margin {margin}: promoted" if promote
                   else f"does not beat the margin {margin}: champion kept")
            )
        tags = {TAG_DECISION: action, TAG_METRIC: metric, TAG_SCORE: f"{challenger_score:.6f}",
                "test_set_hash": test_hash}
        if current is not None and promote:
            tags[TAG_PREVIOUS] = current.version
        version = log_classifier(challenger, name, tags=tags)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
        record = {
            "timestamp": _now(),
            "name": name,
            "action": action,
            "promoted": bool(promote),
            "challenger_version": version.version,
            "champion_version_before": current.version if current else None,
            "champion_version_after": version.version if promote else current.version,
            "metric": metric,
            "challenger_score": challenger_score,
            "champion_score": champion_score,
            "delta": delta,
            "margin": float(margin),
            "n_test": len(test_rows),
            "test_set_hash": test_hash,
            "reason": reason,
            "mlflow_run_id": run.info.run_id,
            **dict(context or {}),
        }
        mlflow.set_tags({"fastadapt.decision": action, "fastadapt.registered_model": name})
        mlflow.log_params({"registered_model": name, "metric": metric, "margin": margin,
                           "challenger_version": version.version,
                           "champion_version_before": record["champion_version_before"],
                           "test_set_hash": test_hash, "n_test": len(test_rows)})
        scores = {f"challenger_{k}": v for k, v in challenger_metrics.items() if isinstance(v, (int, float))}
        if champion_metrics is not None:
            scores.update({f"champion_{k}": v for k, v in champion_metrics.items() if isinstance(v, (int, float))})
        mlflow.log_metrics({k: float(v) for k, v in scores.items()} | {"promoted": float(promote)})
        mlflow.log_dict(record, "decision.json")
    log.info("%s: %s", name, reason)
    return record


def ensure_champion(
    model: TextClassifier,
    name: str,
    test_rows: pd.DataFrame | None = None,
    metric: str = "macro_f1",
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Register ``model`` as the first champion of ``name`` unless it already has one.

    Returns the decision record (action ``first_champion``, or ``kept`` when a champion existed:
    then nothing is registered and nothing is logged).
    """
    current = champion_version(name)
    if current is not None:
        return {"timestamp": _now(), "name": name, "action": "kept", "promoted": False,
                "champion_version_after": current.version,
                "reason": f"'{name}' already has a champion (version {current.version})"}
    if test_rows is None or test_rows.empty:
        _check_decision_args(metric, 0.0)
        with _decision_run(f"first champion {name}") as run:
            version = log_classifier(model, name, tags={TAG_DECISION: "first_champion"})
            MlflowClient().set_registered_model_alias(name, CHAMPION, version.version)
            record = {"timestamp": _now(), "name": name, "action": "first_champion", "promoted": True,
                      "challenger_version": version.version, "champion_version_before": None,
                      "champion_version_after": version.version, "metric": metric,
                      "challenger_score": None, "champion_score": None, "delta": None,
                      "reason": f"'{name}' had no champion: the first model becomes champion",
                      "mlflow_run_id": run.info.run_id, **dict(context or {})}
            mlflow.set_tags({"fastadapt.decision": "first_champion", "fastadapt.registered_model": name})
        return record
    return champion_challenger(model, name, test_rows, 0.0, metric, context)


def restore_previous_champion(
    name: str, decision_log: str | Path | None = None, reason: str = ""
) -> dict[str, Any]:
    """Point ``champion`` back at the version the current champion replaced.

    The previous version comes from the current champion's ``previous_champion`` tag, else from
    the decision log's promotion record of that version (read only: the caller appends the
    returned record). Restoring again walks further back. Raises RegistryError when there is no
    champion or nothing to go back to.
    """
    client = MlflowClient()
    current = champion_version(name)
    if current is None:
        raise RegistryError(f"registered model '{name}' has no '{CHAMPION}' alias: nothing to restore")
    previous = current.tags.get(TAG_PREVIOUS)
    if not previous and decision_log is not None:
        for record in reversed(read_decisions(decision_log, name)):
            if record.get("action") == "promoted" and str(record.get("challenger_version")) == str(current.version):
                previous = record.get("champion_version_before")
                break
    if not previous:
        raise RegistryError(
            f"champion version {current.version} of '{name}' replaced no earlier champion "
            f"(no '{TAG_PREVIOUS}' tag, no promotion in the decision log): nothing to restore"
        )
    previous = str(previous)
    try:
        client.get_model_version(name, previous)
    except MlflowException as error:
        raise RegistryError(f"previous champion version {previous} of '{name}' no longer exists") from error
    with _decision_run(f"restore champion {name}") as run:
        client.set_registered_model_alias(name, CHAMPION, previous)
        client.set_model_version_tag(name, current.version, TAG_DEMOTED, _now())
        record = {
            "timestamp": _now(),
            "name": name,
            "action": "restored",
            "promoted": False,
            "champion_version_before": current.version,
            "champion_version_after": previous,
            "reason": reason or f"champion restored from version {current.version} to {previous}",
            "mlflow_run_id": run.info.run_id,
        }
        mlflow.set_tags({"fastadapt.decision": "restored", "fastadapt.registered_model": name})
        mlflow.log_params({"registered_model": name, "champion_version_before": current.version,
                           "champion_version_after": previous})
        mlflow.log_dict(record, "decision.json")
    log.info("%s: champion restored from version %s to %s", name, current.version, previous)
    return record


def model_versions(name: str) -> pd.DataFrame:
    """Every version of ``name`` with its aliases and decision tags, newest first."""
    client = MlflowClient()
    versions = client.search_model_versions(f"name = '{name}'")
    rows = [
        {
            "version": int(v.version),
            "aliases": ",".join(getattr(v, "aliases", []) or []),
            "decision": v.tags.get(TAG_DECISION),
            "score": v.tags.get(TAG_SCORE),
            "previous_champion": v.tags.get(TAG_PREVIOUS),
            "demoted_at": v.tags.get(TAG_DEMOTED),
            "run_id": v.run_id,
        }
        for v in versions
    ]
    frame = pd.DataFrame(rows, columns=["version", "aliases", "decision", "score", "previous_champion",
                                        "demoted_at", "run_id"])
    return frame.sort_values("version", ascending=False).reset_index(drop=True)


__all__: Sequence[str] = [
    "CHAMPION",
    "RegistryError",
    "champion_challenger",
    "champion_version",
    "decision_line",
    "ensure_champion",
    "evaluate_classifier",
    "fingerprint_rows",
    "load_classifier",
    "log_classifier",
    "model_versions",
    "read_decisions",
    "registered_version_of",
    "restore_previous_champion",
]
