"""Pretraining batches: no padding waste, reproducible (epoch, index), held-out validation texts."""

from __future__ import annotations

import numpy as np
import torch

from fastadapt.pretraining.config import PretrainingConfig
from fastadapt.pretraining.data import PretrainingBatches, build_batches, split_validation, tokenise_texts

from tests.pretraining.conftest import tiny_params


def test_batches_are_padded_only_to_their_own_longest_text(texts, tokenizer):
    tokenised = tokenise_texts(tokenizer, texts, max_length=32)
    batches = PretrainingBatches(tokenised, tokenizer, batch_size=8, seed=0)
    seen = []
    for index in range(batches.num_batches(0)):
        rows = batches.indices(0, index)
        batch = batches.batch(0, index)
        longest = max(len(tokenised.token_ids[i]) for i in rows)
        assert batch["input_ids"].shape == (len(rows), longest)
        assert batch["attention_mask"].sum(1).tolist() == [len(tokenised.token_ids[i]) for i in rows]
        assert batch["mlm_input_ids"].shape == batch["mlm_labels"].shape == batch["input_ids"].shape
        seen += rows
    assert sorted(seen) == list(range(len(texts)))  # an epoch covers every text once
    # length bucketing: far less padding than one pad-to-longest over the whole corpus
    lengths = np.array([len(ids) for ids in tokenised.token_ids])
    assert batches.padding_fraction(0) < 0.5 * (1 - lengths.mean() / lengths.max())


def test_the_same_position_always_gives_the_same_batch_and_epochs_differ(texts, tokenizer):
    tokenised = tokenise_texts(tokenizer, texts, max_length=32)
    first = PretrainingBatches(tokenised, tokenizer, batch_size=8, seed=0, whole_word_masking=True)
    second = PretrainingBatches(tokenised, tokenizer, batch_size=8, seed=0, whole_word_masking=True)
    second.batch(3, 1)  # another epoch cached in between changes nothing
    for key, value in first.batch(1, 2).items():
        assert torch.equal(value, second.batch(1, 2)[key])
    assert first.indices(0, 0) != first.indices(1, 0)
    other_seed = PretrainingBatches(tokenised, tokenizer, batch_size=8, seed=1)
    assert other_seed.indices(0, 0) != first.indices(0, 0)
    # dynamic masking: every epoch masks the same text anew
    whole = PretrainingBatches(tokenised, tokenizer, batch_size=len(texts), seed=0)
    masks = []
    for epoch in range(2):
        rows, labels = whole.indices(epoch, 0), whole.batch(epoch, 0)["mlm_labels"] != -100
        by_text = {text: labels[position, : len(tokenised.token_ids[text])] for position, text in enumerate(rows)}
        masks.append([by_text[text] for text in range(len(texts))])
    changed = sum(not torch.equal(a, b) for a, b in zip(*masks))
    assert changed > 0.8 * len(texts)


def test_validation_split_is_held_out_and_max_texts_caps_the_pool(texts, tokenizer):
    train, validation = split_validation(100, 0.1, seed=0)
    assert len(validation) == 10 and not set(train) & set(validation) and len(train) + len(validation) == 100
    assert np.array_equal(split_validation(100, 0.1, seed=0)[1], validation)
    assert len(split_validation(100, 0.0, seed=0)[1]) == 0

    config = PretrainingConfig.from_params(tiny_params(max_texts=60, validation_fraction=0.25))
    train_batches, validation_batches = build_batches(tokenizer, texts, config)
    assert len(train_batches.texts) == 45 and len(validation_batches.texts) == 15
    train_rows = {tuple(ids) for ids in train_batches.texts.token_ids}
    assert not train_rows & {tuple(ids) for ids in validation_batches.texts.token_ids}
    # validation batches are fixed: the same at every epoch
    assert torch.equal(validation_batches.batch(0, 0)["mlm_labels"], validation_batches.batch(5, 0)["mlm_labels"])
    no_mlm = PretrainingConfig.from_params(tiny_params(objectives={"contrastive": 1.0}, validation_fraction=0))
    train_only, none = build_batches(tokenizer, texts, no_mlm)
    assert none is None and set(train_only.batch(0, 0)) == {"input_ids", "attention_mask"}
