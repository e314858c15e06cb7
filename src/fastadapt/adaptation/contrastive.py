"""SetFit's contrastive body step, before a head is fitted on the encoder's features.

Tunstall et al. 2022 ("Efficient Few-Shot Learning Without Prompts"): the encoder is fine-tuned so
that two support texts of one class embed close and two of different classes far apart, with
sentence-transformers' `CosineSimilarityLoss` (the squared error between the pair's cosine and 1
or 0), on `num_iterations * n` positive and as many negative pairs; then the head is fitted on
the tuned encoder's features. Here the head is any frozen-feature strategy of
`fastadapt.adaptation.fit` (`finetune_head`, `prototype`), so the prototype-initialised head and
the class names work on top of it.

The pairs are drawn here, not by `setfit.sampler.ContrastiveDataset`: that one enumerates all n^2
combinations of the support set under a fixed `RandomState(42)`, where this draws only the pairs
it trains on, from the fit's own seed. The optimisation is `fastadapt.models.training.train_model`
(warm-up, clipping, bf16 autocast where native, budgets), as for every other fit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fastadapt.config import Checks, Settings
from fastadapt.models.backbones import Backbone
from fastadapt.models.batching import pad_batch, tokenize
from fastadapt.models.encoder import pool_hidden_states


@dataclass(frozen=True)
class ContrastiveSettings(Settings):
    """The contrastive step's settings, under SetFit's names. The defaults are the setting measured
    in benchmarks/README.md ("SetFit's contrastive step"): 20 steps fit the ~30 s budget whatever
    the support size, and lr 1e-4 was the steadier of the two rates tried there."""

    num_iterations: int = 5  # positive and negative pairs drawn per support text (SetFit: 20)
    batch_size: int = 16  # pairs per step (SetFit's default)
    lr: float = 1e-4  # body learning rate (SetFit: 2e-5 over many more steps)
    max_steps: int | None = 20  # exact step count, as SetFit's; None: one pass over the pairs
    max_length: int = 64  # subword tokens per text
    seed: int = 0
    # When the step runs: at most `max_classes` classes and at least `min_per_class` support texts
    # per class on average (None: no limit). benchmarks/README.md ("SetFit's contrastive step")
    # has the table over 18 corpora that chose `new_task`'s 15 / 10.
    max_classes: int | None = None
    min_per_class: float | None = None

    def validate(self, where: str = "contrastive") -> None:
        check = Checks(self, where)
        check.integer("num_iterations", 1)
        check.integer("batch_size", 1)
        check.number("lr", 0, strict_low=True)
        check.integer("max_steps", 1, optional=True)
        check.integer("max_length", 2)
        check.integer("seed", 0)
        check.integer("max_classes", 2, optional=True)
        check.number("min_per_class", 1, optional=True)

    def skip_reason(self, n_texts: int, n_classes: int) -> str | None:
        """Why the step does not run on a support set of this size (None: it runs)."""
        if self.max_classes is not None and n_classes > self.max_classes:
            return f"{n_classes} classes > max_classes {self.max_classes}"
        if self.min_per_class is not None and n_texts < self.min_per_class * n_classes:
            return f"{n_texts / n_classes:.1f} texts per class < min_per_class {self.min_per_class:g}"
        return None

    def steps(self, n_texts: int) -> int:
        """Optimiser steps: `max_steps`, else one pass over the 2 * num_iterations * n pairs."""
        return self.max_steps or math.ceil(2 * self.num_iterations * n_texts / self.batch_size)


def support_pairs(labels: Sequence[str], num_iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, target): for each iteration and each text, a partner of its own class
    (target 1; itself when it is its class's only text) and one of another class (target 0)."""
    labels = np.asarray([str(label) for label in labels])
    rng = np.random.default_rng([seed, 7])
    members = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    others = {label: np.flatnonzero(labels != label) for label in members}
    first, second, target = [], [], []
    for _ in range(num_iterations):
        for i, label in enumerate(labels):
            same = members[label]
            partners = same[same != i] if len(same) > 1 else same
            first += [i, i]
            second += [int(rng.choice(partners)), int(rng.choice(others[label]))]
            target += [1.0, 0.0]
    return np.asarray(first), np.asarray(second), np.asarray(target, dtype=np.float32)


class PairBatches:
    """Shuffled batches of text pairs, both sides padded together: rows [0, B) are the first
    texts, [B, 2B) their partners; (epoch, index) fixes the batch."""

    def __init__(self, token_ids: list[list[int]], pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                 batch_size: int, seed: int, pad_token_id: int) -> None:
        self.token_ids, self.pad_token_id, self.seed = token_ids, pad_token_id, seed
        self.first, self.second, self.target = pairs
        self.batch_size = min(batch_size, len(self.target))
        self._epoch, self._order = -1, np.arange(0)

    def num_batches(self, epoch: int) -> int:
        return math.ceil(len(self.target) / self.batch_size)

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.target))
        chosen = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rows = [*self.first[chosen], *self.second[chosen]]
        batch = pad_batch([self.token_ids[i] for i in rows], self.pad_token_id)
        batch["labels"] = torch.from_numpy(self.target[chosen])
        return batch


class PairEncoder(nn.Module):
    """The encoder and its pooling: one feature vector per text."""

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder, self.pooling = encoder, pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool_hidden_states(hidden.float(), attention_mask, self.pooling)


def cosine_pair_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """sentence-transformers' CosineSimilarityLoss: MSE between cos(first, second) and the target."""
    features = model(batch["input_ids"], batch["attention_mask"])
    first, second = features.chunk(2)
    return nn.functional.mse_loss(nn.functional.cosine_similarity(first, second), batch["labels"].float())


def contrastive_tune(backbone: Backbone, texts: Sequence[str], labels: Sequence[str],
                     settings: ContrastiveSettings, pooling: str = "mean", device: str = "auto",
                     progress: bool = False) -> tuple[Backbone, dict[str, Any]]:
    """A copy of `backbone` whose encoder went through the contrastive step on (texts, labels),
    and the training summary (`TrainingResult.summary` and the pair count). `backbone` itself is
    not changed."""
    from fastadapt.models.training import TrainingConfig, train_model

    encoder = copy.deepcopy(backbone.model)
    for parameter in encoder.parameters():
        parameter.requires_grad_(True)
    module = PairEncoder(encoder, pooling).train()
    pairs = support_pairs(labels, settings.num_iterations, settings.seed)
    batches = PairBatches(tokenize(backbone.tokenizer, texts, settings.max_length), pairs, settings.batch_size,
                          settings.seed, backbone.tokenizer.pad_token_id)
    steps = settings.steps(len(texts))
    training = TrainingConfig(max_steps=steps, batch_size=settings.batch_size, lr=settings.lr, warmup_ratio=0.1,
                              seed=settings.seed, device=device, log_every=max(1, steps // 5))
    result = train_model(module, cosine_pair_loss, batches, training, description="contrastive step",
                         progress=progress)
    encoder.eval()
    summary = {**result.summary(), "pairs": len(pairs[2])}
    return Backbone(name=backbone.name, model=encoder, tokenizer=backbone.tokenizer), summary
