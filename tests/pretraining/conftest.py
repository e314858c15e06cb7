"""A tiny corpus, a WordPiece tokeniser trained on it, and a tiny-bert config that trains in a blink."""

from __future__ import annotations

import itertools

import pytest
import torch

torch.set_num_threads(1)

SUBJECTS = ["the bank", "my card", "the transfer", "shares of apple", "the central bank", "an unexpected fee",
            "the quarterly report", "our savings account", "the exchange rate", "interest payments"]
VERBS = ["was declined", "rose sharply", "fell overnight", "is pending", "was refunded", "disappointed investors",
         "beat expectations", "looks unbelievably strong", "remains unchanged"]
TAILS = ["", "today", "after the announcement", "again this morning", "despite the downturn"]

TEXTS = [" ".join(part for part in (s, v, t) if part)
         for s, v, t in itertools.islice(itertools.product(SUBJECTS, VERBS, TAILS), 0, None, 3)]

TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64}


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return list(TEXTS)


@pytest.fixture(scope="session")
def tokenizer():
    from fastadapt.models.backbones import train_wordpiece_tokenizer

    # a small vocabulary, so that rarer words split into ## pieces
    return train_wordpiece_tokenizer(TEXTS, vocab_size=120, min_frequency=1)


def tiny_params(**overrides) -> dict:
    """`pretraining:` parameters for tiny-bert that train in well under a second."""
    training = {"max_steps": 8, "batch_size": 8, "lr": 1e-3, "warmup_ratio": 0.25, "eval_every": 4,
                "log_every": 2, "device": "cpu", "num_threads": 1, "seed": 0, **overrides.pop("training", {})}
    return {"backbone": "tiny-bert", "objectives": {"mlm": 1.0, "contrastive": 0.5}, "max_length": 32,
            "validation_fraction": 0.1, "backbone_config": dict(TINY_BERT), "training": training, **overrides}
