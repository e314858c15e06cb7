"""A tiny BERT (one layer, 32 dimensions) with a WordPiece vocabulary learnt from the sentences
below: every adaptation test runs in seconds and needs no downloaded weights."""

from __future__ import annotations

import pytest
import torch

from fastadapt.adaptation import AdaptationConfig
from fastadapt.models.backbones import (
    Backbone,
    load_backbone,
    train_wordpiece_tokenizer,
)

TEXTS = {
    "account": ["I forgot my password and cannot log in", "please reset my login password",
                "my account is locked after three attempts", "how do I change the email on my account",
                "I cannot sign in to my profile", "update the phone number on my account"],
    "billing": ["I was charged twice this month", "the refund for my order is missing",
                "why is there an extra fee on my bill", "my invoice shows the wrong amount",
                "cancel the duplicate payment please", "the charge on my statement is wrong"],
    "delivery": ["my parcel has not arrived yet", "where is my package today",
                 "the courier left the box at the wrong door", "track my delivery please",
                 "the shipment is late by a week", "my order was sent to the old address"],
}
SENTENCES = [
    (["Jane", "Smith", "joined", "Acme", "Corp", "."], ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O"]),
    (["Acme", "opened", "an", "office", "in", "Paris", "."], ["B-ORG", "O", "O", "O", "O", "B-LOC", "O"]),
    (["Bob", "lives", "in", "London", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
    (["Alice", "Jones", "visited", "New", "York", "."], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]),
    (["Globex", "hired", "Bob", "."], ["B-ORG", "O", "B-PER", "O"]),
    (["Paris", "and", "London", "are", "cities", "."], ["B-LOC", "O", "B-LOC", "O", "O", "O"]),
]


TRAINING = {"max_steps": 40, "batch_size": 8, "lr": 0.01, "device": "cpu", "num_threads": 1, "log_every": 5}


def config(strategy: str, **settings) -> AdaptationConfig:
    """A small validated `AdaptationConfig` (CPU, a few training steps unless `training=` says)."""
    params = {"strategy": strategy, "batch_size": 8, "device": "cpu", **settings}
    if strategy != "prototype":
        params.setdefault("training", TRAINING)
    return AdaptationConfig.from_params(params)


def labelled_texts() -> tuple[list[str], list[str]]:
    texts = [text for items in TEXTS.values() for text in items]
    labels = [label for label, items in TEXTS.items() for _ in items]
    return texts, labels


@pytest.fixture(scope="session")
def tiny_backbone() -> Backbone:
    torch.set_num_threads(1)
    corpus = [text for items in TEXTS.values() for text in items] + [" ".join(tokens) for tokens, _ in SENTENCES]
    tokenizer = train_wordpiece_tokenizer(corpus, vocab_size=300, min_frequency=1)
    return load_backbone("tiny-bert", tokenizer=tokenizer, seed=0, config_overrides={
        "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64})
