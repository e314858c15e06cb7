"""Pretraining batches from the unlabelled pool: tokenised once, length-bucketed, masked per batch.

`PretrainingBatches` is a `BatchSource` (fastadapt.models.training): the batch at (epoch, index)
is always the same. Each epoch shuffles the texts with its own seed, cuts them into buckets of
similar length and pads every batch only to its own longest text, so compute goes to tokens and
not to padding. The masked-LM masks are drawn per batch from a generator seeded by (seed, epoch,
index): dynamic masking, reproducible and resumable. The validation batches are fixed (length
order, masks seeded by their index), so validation losses are comparable across a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from fastadapt.models.batching import length_bucketed_batches, pad_batch
from fastadapt.pretraining.config import PretrainingConfig
from fastadapt.pretraining.objectives import mask_tokens


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, index, stream...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class TokenisedTexts:
    """Token ids per text (special tokens added, truncated) and each token's word index (-1: special)."""

    token_ids: list[list[int]]
    word_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.token_ids)

    def subset(self, indices: Sequence[int]) -> TokenisedTexts:
        return TokenisedTexts([self.token_ids[i] for i in indices], [self.word_ids[i] for i in indices])


def tokenise_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> TokenisedTexts:
    """Tokenise without padding; words come from the fast tokeniser's word_ids, else from `##` pieces."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    token_ids = [list(ids) for ids in encoded["input_ids"]]
    special = set(tokenizer.all_special_ids)
    word_ids = []
    for row, ids in enumerate(token_ids):
        if getattr(encoded, "is_fast", False):
            words = [-1 if w is None or i in special else w for w, i in zip(encoded.word_ids(row), ids)]
        else:
            words = continuation_word_ids(tokenizer.convert_ids_to_tokens(ids), special_mask=[i in special for i in ids])
        word_ids.append(words)
    return TokenisedTexts(token_ids, word_ids)


def continuation_word_ids(tokens: Sequence[str], special_mask: Sequence[bool]) -> list[int]:
    """Word index per WordPiece token: a `##` piece continues the previous word; specials get -1."""
    words, current = [], -1
    for token, special in zip(tokens, special_mask):
        if special:
            words.append(-1)
            continue
        if not (token.startswith("##") and current >= 0):
            current += 1
        words.append(current)
    return words


def split_validation(n_texts: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): a seeded random `fraction` held out (at least one)."""
    order = np.random.default_rng(derived_seed(seed, 7)).permutation(n_texts)
    n_validation = 0 if fraction <= 0 or n_texts < 2 else min(max(1, round(n_texts * fraction)), n_texts - 1)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


class PretrainingBatches:
    """A `BatchSource` of padded (and, for the masked-LM, masked) batches of pool texts.

    Every batch holds `input_ids` and `attention_mask` (padded to the batch's own longest text);
    with `mlm`, also `mlm_input_ids` and `mlm_labels` (-100 where nothing is predicted).
    """

    def __init__(
        self,
        texts: TokenisedTexts,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int,
        seed: int = 0,
        mlm: bool = True,
        mlm_probability: float = 0.15,
        whole_word_masking: bool = False,
        shuffle: bool = True,
    ) -> None:
        if len(texts) == 0:
            raise ValueError("pretraining: no texts to make batches from")
        if mlm and tokenizer.mask_token_id is None:
            raise ValueError("pretraining.objectives.mlm: the tokeniser has no [MASK] token")
        self.texts = texts
        self.lengths = np.array([len(ids) for ids in texts.token_ids])
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.mlm, self.mlm_probability, self.whole_word_masking = mlm, mlm_probability, whole_word_masking
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.mask_token_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self._epoch_batches: tuple[int, list[list[int]]] | None = None

    def _batches(self, epoch: int) -> list[list[int]]:
        epoch = epoch if self.shuffle else 0
        if self._epoch_batches is None or self._epoch_batches[0] != epoch:
            batches = length_bucketed_batches(
                self.lengths, self.batch_size, shuffle=self.shuffle, seed=derived_seed(self.seed, epoch, 11)
            )
            self._epoch_batches = (epoch, batches)
        return self._epoch_batches[1]

    def num_batches(self, epoch: int) -> int:
        return len(self._batches(epoch))

    def indices(self, epoch: int, index: int) -> list[int]:
        """Which texts (positions in `texts`) make up batch (epoch, index)."""
        return self._batches(epoch)[index]

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        rows = self.indices(epoch, index)
        batch = pad_batch([self.texts.token_ids[i] for i in rows], self.pad_token_id)
        if self.mlm:
            input_ids, attention_mask = batch["input_ids"], batch["attention_mask"].bool()
            candidates = attention_mask & ~torch.isin(input_ids, self.special_ids)
            word_ids = None
            if self.whole_word_masking:
                word_ids = torch.full_like(input_ids, -1)
                for row, text in enumerate(rows):
                    words = self.texts.word_ids[text]
                    word_ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
            generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch if self.shuffle else 0, index, 13))
            batch["mlm_input_ids"], batch["mlm_labels"] = mask_tokens(
                input_ids, candidates, generator, self.mlm_probability, self.mask_token_id, self.vocab_size,
                word_ids=word_ids,
            )
        return batch

    def padding_fraction(self, epoch: int = 0) -> float:
        """The share of padding positions over one epoch's batches."""
        padded = real = 0
        for rows in self._batches(epoch):
            lengths = self.lengths[rows]
            padded += int(lengths.max()) * len(rows)
            real += int(lengths.sum())
        return 1 - real / padded


def build_batches(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], config: PretrainingConfig
) -> tuple[PretrainingBatches, PretrainingBatches | None]:
    """(training batches, validation batches or None) of `texts` as `config` sets them."""
    texts = list(texts)
    seed = config.training.seed
    if config.max_texts is not None and len(texts) > config.max_texts:
        chosen = np.random.default_rng(derived_seed(seed, 5)).choice(len(texts), config.max_texts, replace=False)
        texts = [texts[i] for i in np.sort(chosen)]
    if len(texts) < 2:
        raise ValueError(f"pretraining: the unlabelled pool has {len(texts)} text(s); at least 2 are needed")
    tokenised = tokenise_texts(tokenizer, texts, config.max_length)
    train_idx, validation_idx = split_validation(len(tokenised), config.validation_fraction, seed)
    options = {
        "tokenizer": tokenizer, "batch_size": config.training.batch_size, "seed": seed,
        "mlm": "mlm" in config.active_objectives, "mlm_probability": config.mlm_probability,
        "whole_word_masking": config.whole_word_masking,
    }
    train = PretrainingBatches(tokenised.subset(train_idx), shuffle=True, **options)
    validation = PretrainingBatches(tokenised.subset(validation_idx), shuffle=False, **options) \
        if len(validation_idx) else None
    return train, validation


def validation_loss(model: torch.nn.Module, batches: PretrainingBatches) -> float:
    """The mean objective loss over the validation batches, weighted by batch size."""
    device = next(model.parameters()).device
    total, rows = 0.0, 0
    for index in range(batches.num_batches(0)):
        batch = {k: v.to(device) for k, v in batches.batch(0, index).items()}
        count = len(batch["input_ids"])
        total += float(model(**batch)["loss"]) * count
        rows += count
    return total / rows
