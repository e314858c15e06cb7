"""The unlabelled text pool for domain-adaptive pretraining and unlabelled episodes.

Texts from several corpora are merged under the protocol's duplicate key, so a sentence that two
corpora share is seen once, and pretraining is not skewed towards repeated text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from fastadapt.config import Checks, Settings
from fastadapt.tasks.cleaning import duplicate_key

POOL_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class PoolSettings(Settings):
    """The `unlabelled_pool:` block: the news stream on or off, and the splits of every domain and
    of the dialogue logs whose texts join the pool (never `test`: pretraining must not see an
    evaluation text)."""

    stream: bool = True
    domain_splits: list[str] = field(default_factory=lambda: list(POOL_SPLITS))

    def validate(self, where: str = "unlabelled_pool") -> None:
        check = Checks(self, where)
        check.boolean("stream")
        splits = self.domain_splits
        if not isinstance(splits, (list, tuple)) or not splits or not set(splits) <= set(POOL_SPLITS):
            check.fail("domain_splits", f"allowed: a non-empty list of {list(POOL_SPLITS)}")


@dataclass(frozen=True)
class WordPieceSettings(Settings):
    """The `wordpiece_tokenizer:` block: tiny-bert's vocabulary, learnt from the pool."""

    vocab_size: int = 8000
    lowercase: bool = True
    min_frequency: int = 2

    def validate(self, where: str = "wordpiece_tokenizer") -> None:
        check = Checks(self, where)
        check.integer("vocab_size", 100)
        check.boolean("lowercase")
        check.integer("min_frequency", 1)


def unlabelled_pool(sources: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """One table (text, source) of distinct texts from named sources.

    Sources are read in the mapping's order and each source's texts in their order; a text is
    stripped, dropped when empty (or missing), and kept only from the first source where its
    duplicate key appears. The output keeps that order, so the same inputs always give the same
    pool; unordered collections (sets) are refused because their order changes between runs.
    """
    seen_keys: set[str] = set()
    texts: list[str] = []
    source_names: list[str] = []
    for source, source_texts in sources.items():
        if isinstance(source_texts, (set, frozenset, str)):
            raise TypeError(
                f"unlabelled_pool: source {source!r} must be an ordered collection of texts, "
                f"got {type(source_texts).__name__}"
            )
        for text in source_texts:
            if text is None or (isinstance(text, float) and math.isnan(text)):
                continue
            if not isinstance(text, str):
                raise TypeError(
                    f"unlabelled_pool: source {source!r} holds a {type(text).__name__}, "
                    f"not text: {text!r}"
                )
            stripped = text.strip()
            key = duplicate_key(stripped)
            if not stripped or key in seen_keys:
                continue
            seen_keys.add(key)
            texts.append(stripped)
            source_names.append(str(source))
    return pd.DataFrame(
        {"text": pd.Series(texts, dtype=str), "source": pd.Series(source_names, dtype=str)}
    )
