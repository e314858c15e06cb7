"""A tiny BERT and a trivially separable few-shot task, small enough for seconds on a CPU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastadapt.models.backbones import load_backbone, train_wordpiece_tokenizer

KEYWORDS = {
    "sport": ["football", "goal", "match"],
    "money": ["bank", "loan", "cash"],
    "weather": ["rain", "snow", "wind"],
    "food": ["pizza", "bread", "soup"],
    "music": ["guitar", "song", "drums"],
    "travel": ["train", "flight", "hotel"],
}
FILLER = ["the", "a", "today", "we", "saw", "some", "very", "big", "and", "then", "it", "was"]
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
            "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def toy_rows(per_class: int = 20, seed: int = 0) -> pd.DataFrame:
    """Sentences of filler words with one keyword of their class: separable by the keyword."""
    rng = np.random.default_rng(seed)
    records = []
    for label, words in KEYWORDS.items():
        for _ in range(per_class):
            tokens = list(rng.choice(FILLER, size=5)) + [str(rng.choice(words))]
            rng.shuffle(tokens)
            records.append((len(records), " ".join(tokens), label))
    return pd.DataFrame(records, columns=["row_id", "text", "label"])


@pytest.fixture(scope="session")
def toy_tokenizer():
    """WordPiece trained on the toy sentences (sorted vocabulary: reproducible token ids)."""
    return train_wordpiece_tokenizer(toy_rows()["text"].tolist(), vocab_size=200, min_frequency=1)


@pytest.fixture
def tiny_backbone(toy_tokenizer):
    """A fresh one-layer BERT of width 16 (no dropout), identical for a given seed."""
    def make(seed: int = 0, **overrides):
        torch.manual_seed(seed)
        return load_backbone("tiny-bert", tokenizer=toy_tokenizer, seed=seed,
                             config_overrides={**TINY, **overrides})
    return make


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny models run faster than with threads fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
