"""A tiny BERT (one layer, 32 dimensions) and its WordPiece vocabulary, learnt from the texts
below, for the backbone, batching and encoder tests: seconds, no downloaded weights."""

from __future__ import annotations

import pytest
import torch

from fastadapt.models.backbones import (
    Backbone,
    load_backbone,
    train_wordpiece_tokenizer,
)

CORPUS = ["my parcel has not arrived yet", "I was charged twice this month", "please reset my login password",
          "the refund for my order is missing", "where is my package today", "cancel the duplicate payment"]
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


@pytest.fixture(scope="session")
def wordpiece():
    return train_wordpiece_tokenizer(CORPUS, vocab_size=200, min_frequency=1)


@pytest.fixture(scope="session")
def tiny_backbone(wordpiece) -> Backbone:
    torch.set_num_threads(1)
    return load_backbone("tiny-bert", tokenizer=wordpiece, seed=0, config_overrides=TINY)
