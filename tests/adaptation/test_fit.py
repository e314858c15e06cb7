"""The batch sources of `adaptation.fit` (the model-level behaviour is in test_classifier.py and
test_ner.py): each epoch covers every item once, and (seed, epoch, index) alone fixes a batch, so
a resumed run meets the same batches as an uninterrupted one."""

from __future__ import annotations

import torch

from fastadapt.adaptation.fit import FeatureBatches, SequenceBatches, collate
from fastadapt.adaptation.ner import IGNORE_INDEX, OTHER_CASING

TOKENS = [[2, 5, 3], [2, 6, 7, 8, 3], [2, 9, 3], [2, 10, 11, 3], [2, 12, 13, 14, 15, 3], [2, 16, 3], [2, 17, 18, 3]]


def epoch_items(source, epoch: int) -> list:
    return [source.batch(epoch, index) for index in range(source.num_batches(epoch))]


def test_feature_batches_cover_each_row_once_per_epoch_in_an_order_fixed_by_seed_and_epoch():
    features, targets = torch.arange(14.0).reshape(7, 2), torch.arange(7)
    source = FeatureBatches(features, targets, batch_size=3, seed=0)
    assert source.num_batches(0) == 3
    first = torch.cat([b["labels"] for b in epoch_items(source, 0)])
    assert sorted(first.tolist()) == list(range(7))
    batch = source.batch(0, 1)
    torch.testing.assert_close(batch["features"], features[batch["labels"]])  # rows stay with their targets
    assert batch["attention_mask"].shape == (3, 1)
    second = torch.cat([b["labels"] for b in epoch_items(source, 1)])
    assert sorted(second.tolist()) == list(range(7)) and not torch.equal(first, second)
    fresh = FeatureBatches(features, targets, batch_size=3, seed=0)  # a resumed run: epoch 1 first
    assert torch.equal(fresh.batch(1, 2)["labels"], source.batch(1, 2)["labels"])
    assert torch.equal(fresh.batch(0, 0)["labels"], first[:3])
    assert FeatureBatches(features, targets, batch_size=50, seed=0).num_batches(0) == 1  # capped at the rows


def test_sequence_batches_are_length_bucketed_and_reproducible_from_seed_and_epoch():
    labels = list(range(len(TOKENS)))
    source = SequenceBatches(TOKENS, labels, batch_size=2, seed=4, pad_token_id=0, per_token=False)
    batches = epoch_items(source, 0)
    assert len(batches) == source.num_batches(0) == 4
    assert sorted(torch.cat([b["labels"] for b in batches]).tolist()) == labels
    for batch in batches:
        for row, label in zip(batch["input_ids"], batch["labels"]):
            assert row[: len(TOKENS[label])].tolist() == TOKENS[label]  # each sequence with its own label
        assert batch["input_ids"].shape[1] == max(len(TOKENS[label]) for label in batch["labels"])
    fresh = SequenceBatches(TOKENS, labels, batch_size=2, seed=4, pad_token_id=0, per_token=False)
    assert torch.equal(fresh.batch(0, 3)["input_ids"], batches[3]["input_ids"])
    other = SequenceBatches(TOKENS, labels, batch_size=2, seed=5, pad_token_id=0, per_token=False)
    assert [b["labels"].tolist() for b in epoch_items(other, 0)] != [b["labels"].tolist() for b in batches]


def test_per_token_labels_and_casing_are_padded_with_their_ignore_values():
    batch = collate([[2, 5, 3], [2, 3]], [[IGNORE_INDEX, 1, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX]],
                    pad_token_id=0, per_token=True, casing=[[0, 1, 0], [0, 0]])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 1, IGNORE_INDEX], [IGNORE_INDEX] * 3]
    assert batch["casing"].tolist() == [[0, 1, 0], [0, 0, OTHER_CASING]]
    assert collate([[2, 3]], [4], pad_token_id=0, per_token=False)["labels"].tolist() == [4]
