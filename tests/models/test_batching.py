"""Length-bucketed batches: every item exactly once, little padding, reproducible from the seed."""

from __future__ import annotations

import pytest
import torch

from fastadapt.models.batching import length_bucketed_batches, pad_batch, tokenize

LENGTHS = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 1, 5]


def flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


def test_tokenize_adds_special_tokens_truncates_and_does_not_pad(wordpiece):
    ids = tokenize(wordpiece, ["where is my package today", "refund"], max_length=4)
    assert len(ids[0]) == 4 and len(ids[1]) < 4  # truncated / unpadded
    assert ids[0][0] == wordpiece.cls_token_id and ids[0][-1] == wordpiece.sep_token_id
    assert wordpiece.pad_token_id not in ids[1]


def test_without_shuffle_batches_follow_the_length_order():
    batches = length_bucketed_batches(LENGTHS, batch_size=5)
    assert [len(b) for b in batches] == [5, 5, 2]
    assert [LENGTHS[i] for i in flat(batches)] == sorted(LENGTHS)
    assert flat(batches) == sorted(range(len(LENGTHS)), key=lambda i: (LENGTHS[i], i))  # stable: ties keep order


def test_shuffled_batches_hold_every_item_once_sorted_within_buckets_and_follow_the_seed():
    lengths = list(range(40, 0, -1))
    batches = length_bucketed_batches(lengths, batch_size=4, shuffle=True, seed=3, bucket_factor=2)
    assert sorted(flat(batches)) == list(range(40)) and all(1 <= len(b) <= 4 for b in batches)
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)
    assert batches == length_bucketed_batches(lengths, batch_size=4, shuffle=True, seed=3, bucket_factor=2)
    assert batches != length_bucketed_batches(lengths, batch_size=4, shuffle=True, seed=4, bucket_factor=2)
    in_order = length_bucketed_batches(lengths, batch_size=4, shuffle=False)
    assert max(lengths[b[-1]] - lengths[b[0]] for b in in_order) == 3  # distinct lengths: the least spread


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        length_bucketed_batches(LENGTHS, batch_size=0)


def test_pad_batch_pads_to_this_batch_only():
    padded = pad_batch([[2, 7, 8, 3], [2, 9, 3]], pad_token_id=0)
    assert torch.equal(padded["input_ids"], torch.tensor([[2, 7, 8, 3], [2, 9, 3, 0]]))
    assert torch.equal(padded["attention_mask"], torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    assert padded["input_ids"].dtype == torch.long
