"""What every model looks like to evaluation and to `adapt(learner, support) -> predictor`.

Classical baselines and adapted neural models differ inside, so evaluation never looks inside:
it calls the protocols below and turns their outputs into the prediction tables that metrics
read. Keeping the table layout in one place means a new model needs no evaluation code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

PROBA_PREFIX = "proba__"


@runtime_checkable
class TextClassifier(Protocol):
    """A fitted text classifier; `predict_proba` columns follow `classes_` order."""

    classes_: list[str]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """One predicted class (a member of `classes_`) per text."""
        ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """An array (n_texts, n_classes) of class probabilities, columns in `classes_` order."""
        ...


@runtime_checkable
class SequenceTagger(Protocol):
    """A fitted token tagger returning one valid IOB2 tag per input token."""

    def predict(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        """One tag list per token list, of the same length."""
        ...


def _require_columns(rows: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValueError(
            f"rows must have columns {columns}; missing {missing} (found {list(rows.columns)})"
        )


def classification_predictions(model: TextClassifier, rows: pd.DataFrame) -> pd.DataFrame:
    """The evaluation table for a classifier on `rows` (columns row_id, text, label).

    Columns: row_id, label (gold), predicted, then `proba__<class>` for each class in
    `model.classes_`. `predicted` is the model's own `predict`, so a model whose decision rule
    is not the arg-max of its probabilities is scored on what it would really answer.
    """
    _require_columns(rows, ["row_id", "text", "label"])
    classes = [str(c) for c in model.classes_]
    if len(set(classes)) != len(classes):
        raise ValueError(f"model.classes_ must be distinct; got {classes}")
    texts = rows["text"].tolist()
    predicted = np.asarray(model.predict(texts), dtype=object)
    proba = np.asarray(model.predict_proba(texts), dtype=np.float64)
    if predicted.shape != (len(rows),):
        raise ValueError(
            f"model.predict returned shape {predicted.shape} for {len(rows)} texts; "
            f"expected ({len(rows)},)"
        )
    if proba.shape != (len(rows), len(classes)):
        raise ValueError(
            f"model.predict_proba returned shape {proba.shape} for {len(rows)} texts and "
            f"{len(classes)} classes; expected ({len(rows)}, {len(classes)})"
        )
    table = pd.DataFrame(
        {
            "row_id": rows["row_id"].to_numpy(),
            "label": rows["label"].astype("string").to_numpy(),
            "predicted": pd.array([str(p) for p in predicted], dtype="string"),
        }
    )
    probas = pd.DataFrame(proba, columns=[f"{PROBA_PREFIX}{c}" for c in classes])
    return pd.concat([table, probas], axis=1)


def ner_predictions(tagger: SequenceTagger, rows: pd.DataFrame) -> pd.DataFrame:
    """The evaluation table for a tagger on `rows` (columns row_id, tokens, tags).

    Columns: row_id, tags (gold), predicted; tag lists are plain Python lists. A predicted list
    whose length differs from its token list is an error, not something to score.
    """
    _require_columns(rows, ["row_id", "tokens", "tags"])
    token_lists = [[str(t) for t in tokens] for tokens in rows["tokens"]]
    predicted = tagger.predict(token_lists)
    if len(predicted) != len(token_lists):
        raise ValueError(
            f"tagger.predict returned {len(predicted)} tag lists for {len(token_lists)} rows"
        )
    for row_id, tokens, tags in zip(rows["row_id"], token_lists, predicted):
        if len(tags) != len(tokens):
            raise ValueError(
                f"tagger.predict returned {len(tags)} tags for {len(tokens)} tokens "
                f"(row_id {row_id!r})"
            )
    return pd.DataFrame(
        {
            "row_id": rows["row_id"].to_numpy(),
            "tags": [[str(t) for t in tags] for tags in rows["tags"]],
            "predicted": [[str(t) for t in tags] for tags in predicted],
        }
    )


def check_token_lists(token_lists: Sequence[Sequence[str]], name: str = "token_lists") -> list[list[str]]:
    """`token_lists` as lists of strings; a bare string or a non-string token raises `ValueError`."""
    checked = []
    for i, tokens in enumerate(token_lists):
        if isinstance(tokens, str):
            raise ValueError(f"{name}[{i}] must be a list of token strings, not a single string")
        tokens = list(tokens)
        for token in tokens:
            if not isinstance(token, str):
                raise ValueError(f"{name}[{i}] must hold strings; got {type(token).__name__} {token!r}")
        checked.append(tokens)
    return checked


def set_predictions(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The prediction tables of many (k, seed) support sets as one table, `k` and `seed` first
    (`with_set`). k-shot models may know fewer classes than the test set: missing probabilities are 0."""
    proba = sorted({c for f in frames for c in f.columns if c.startswith(PROBA_PREFIX)})
    return pd.concat(frames, ignore_index=True).fillna({c: 0.0 for c in proba})


def with_set(table: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """A prediction table with the (k, seed) of the support set it came from as its first columns."""
    table.insert(0, "seed", int(seed))
    table.insert(0, "k", int(k))
    return table
