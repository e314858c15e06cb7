"""Any fastadapt text classifier as an MLflow pyfunc model: a DataFrame of texts in, labels out.

The model itself travels as an artifact, so the wrapper is the same for every kind:

a model folder written by :func:`fastadapt.models.persistence.save_model` (what
``ModelDirectoryDataset`` writes): safetensors and JSON for ``EncoderClassifier`` and friends, a
skops file with trusted types only for the TF-IDF baselines. Pickles are refused, never loaded.

Input: a DataFrame with a string column ``text`` (other columns are ignored). Output: a DataFrame
with ``label`` (the predicted class), ``score`` (its probability) and one ``proba__<class>``
column per class. The logged signature makes MLflow check the input before ``predict`` runs, and
``predict`` checks what a signature cannot (missing or non-string texts, oversized texts,
oversized batches); each problem raises an ``MlflowException`` with
``INVALID_PARAMETER_VALUE``, which ``mlflow models serve`` answers with HTTP 400 and the message.

Usage::

    python_model = TextClassifierModel(max_text_chars=20_000)
    mlflow.pyfunc.log_model(name="model", python_model=python_model,
                            artifacts={"model": "tfidf"}, signature=text_signature(classes))
    mlflow models serve -m models:/finance_sentiment@champion --env-manager local
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import ColSpec, Schema

from fastadapt.models.persistence import MANIFEST, load_model, save_model
from fastadapt.models.predictor import PROBA_PREFIX, TextClassifier

MODEL_ARTIFACT = "model"
TEXT_COLUMN = "text"
DIRECTORY_MANIFEST = MANIFEST
DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_BATCH = 10_000


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def load_model_artifact(path: str | Path) -> TextClassifier:
    """The classifier saved at ``path`` (see :func:`fastadapt.models.persistence.load_model`)."""
    return load_model(path)


def save_model_artifact(model: TextClassifier, path: str | Path) -> Path:
    """Write ``model`` as a folder where :func:`load_model_artifact` reads it; returns the path."""
    return save_model(model, path)


def text_signature(classes: Sequence[str]) -> ModelSignature:
    """Input: a required string column ``text``; output: label, score and the class probabilities."""
    outputs = [ColSpec("string", "label"), ColSpec("double", "score")]
    outputs += [ColSpec("double", f"{PROBA_PREFIX}{c}") for c in classes]
    return ModelSignature(inputs=Schema([ColSpec("string", TEXT_COLUMN)]), outputs=Schema(outputs))


def validate_texts(
    model_input: Any, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, max_batch: int = DEFAULT_MAX_BATCH
) -> list[str]:
    """The texts of ``model_input`` (a DataFrame with a ``text`` column), or an MlflowException.

    Also accepts a dict ``{"text": [...]}`` or a list of strings (what ``mlflow.pyfunc`` may hand
    over without a signature).
    """
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    elif isinstance(model_input, (list, tuple)) and all(isinstance(t, str) for t in model_input):
        model_input = pd.DataFrame({TEXT_COLUMN: list(model_input)})
    if not isinstance(model_input, pd.DataFrame):
        raise _invalid(
            f"input must be a table with a '{TEXT_COLUMN}' column, e.g. "
            f'{{"dataframe_split": {{"columns": ["{TEXT_COLUMN}"], "data": [["..."]]}}}}; '
            f"got {type(model_input).__name__}"
        )
    if TEXT_COLUMN not in model_input.columns:
        raise _invalid(
            f"input must have a '{TEXT_COLUMN}' column; got columns {list(map(str, model_input.columns))}"
        )
    if len(model_input) == 0:
        raise _invalid("input has no rows: send at least one text")
    if len(model_input) > max_batch:
        raise _invalid(f"input has {len(model_input)} rows; at most {max_batch} texts per request")
    texts = []
    for i, value in enumerate(model_input[TEXT_COLUMN].tolist()):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            raise _invalid(f"text of row {i} is missing")
        if not isinstance(value, str):
            raise _invalid(f"text of row {i} must be a string; got {type(value).__name__}")
        if len(value) > max_text_chars:
            raise _invalid(
                f"text of row {i} has {len(value)} characters; at most {max_text_chars} are accepted"
            )
        texts.append(value)
    return texts


def predictions_frame(model: TextClassifier, texts: Sequence[str]) -> pd.DataFrame:
    """``label, score, proba__<class>...`` for ``texts`` (label = the arg-max class)."""
    classes = [str(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(list(texts)), dtype=np.float64)
    if proba.shape != (len(texts), len(classes)):
        raise ValueError(f"model.predict_proba returned shape {proba.shape}; expected {(len(texts), len(classes))}")
    best = proba.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "label": np.asarray(classes, dtype=object)[best],
            "score": proba[np.arange(len(texts)), best],
        }
    )
    probas = pd.DataFrame(proba, columns=[f"{PROBA_PREFIX}{c}" for c in classes])
    return pd.concat([frame, probas], axis=1)


def request_texts(model: PythonModel, loaded: bool, context: PythonModelContext | None, model_input: Any) -> list[str]:
    """The bounded texts of a request to a fastadapt pyfunc ``model``, its artifacts loaded first
    when they are not yet (``loaded`` False: a model unpickled without ``load_context``)."""
    if not loaded:
        if context is None:
            raise MlflowException("the model is not loaded: load it with mlflow.pyfunc.load_model")
        model.load_context(context)
    return validate_texts(model_input, model.max_text_chars, model.max_batch)


class TextClassifierModel(PythonModel):
    """An MLflow pyfunc wrapper of any fastadapt ``TextClassifier`` (see the module docstring).

    ``max_text_chars`` and ``max_batch`` bound a request; a longer text or a larger batch is
    refused with a 400 rather than tying up the server.
    """

    def __init__(self, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.max_text_chars = int(max_text_chars)
        self.max_batch = int(max_batch)
        self.classifier: TextClassifier | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.classifier = load_model_artifact(context.artifacts[MODEL_ARTIFACT])

    def predict(
        self, context: PythonModelContext | None, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        texts = request_texts(self, self.classifier is not None, context, model_input)
        return predictions_frame(self.classifier, texts)

    def __getstate__(self) -> dict[str, Any]:
        # The classifier travels as the artifact, never inside python_model.pkl.
        return {**self.__dict__, "classifier": None}
