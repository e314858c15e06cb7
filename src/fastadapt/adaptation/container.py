"""CONTaiNER's contrastive token objective (Das et al. 2022, "CONTaiNER: Few-Shot Named Entity
Recognition via Contrastive Learning", ACL), added to a tagger's token fine-tuning.

Cross-entropy on the source tags shapes the encoder around the source's classes; a type the
source never had (a held-out CoNLL type, a CrossNER domain's `algorithm` or `band`) has no place
of its own in that space, which is what NNShot / StructShot then search. CONTaiNER instead trains
token embeddings so that tokens of one tag are close and tokens of different tags far apart: each
token is a Gaussian (a projection of its state to a mean and a diagonal variance, ELU + 1), the
distance of two tokens is the symmetric KL divergence of their Gaussians, and the loss of a
token is the negative log of its mean similarity `exp(-d)` to the tokens of its own tag over
its summed similarity to every other token of the batch. As in the paper, the projection is used
for training only: the nearest-neighbour learners read the encoder's states before it.

Here the objective is added, with `weight`, to the usual cross-entropy of the tagger's head, so a
source tagger trained with it is still a complete tagger (its head predicts the source tags, and
`finetune_*` strategies start from it). Written by hand because no maintained library implements
it: the authors' code (psunlpgroup/CONTaiNER) is a research repository on transformers 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from fastadapt.adaptation.ner import IGNORE_INDEX, token_cross_entropy
from fastadapt.config import Checks, Settings

VARIANCE_FLOOR = 1e-6  # the paper's ELU + 1 + epsilon keeps every variance positive


@dataclass(frozen=True)
class TokenContrastiveSettings(Settings):
    """The objective's settings: `weight` of the contrastive term beside the cross-entropy and the
    Gaussian embedding's `dim` (the paper's 128). Weight 10 was the best of 0.3 / 1 / 3 / 10 / 30 for
    StructShot on the unseen CrossNER domains and on CoNLL testa (benchmarks/README.md, "CONTaiNER's
    contrastive token objective")."""

    weight: float = 10.0
    dim: int = 128

    def validate(self, where: str = "token_contrastive") -> None:
        check = Checks(self, where)
        check.number("weight", 0, strict_low=True)
        check.integer("dim", 1)


class GaussianProjection(nn.Module):
    """Token states -> (mean, diagonal variance) of a `dim`-dimensional Gaussian."""

    def __init__(self, hidden_size: int, dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(hidden_size, dim)
        self.spread = nn.Linear(hidden_size, dim)

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(states), nn.functional.elu(self.spread(states)) + 1.0 + VARIANCE_FLOOR


def symmetric_kl(mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """[n, n] symmetric KL divergences, (KL(p || q) + KL(q || p)) / 2, between n diagonal Gaussians,
    in closed form and without an [n, n, dim] intermediate."""
    inverse = 1.0 / variance
    trace = variance @ inverse.T  # [p, q]: sum_d var_p / var_q
    squared = mean.pow(2)
    mahalanobis = (squared * inverse).sum(-1)[None, :] - 2.0 * mean @ (mean * inverse).T + squared @ inverse.T
    log_det = variance.log().sum(-1)
    kl = 0.5 * (trace + mahalanobis - mean.shape[-1] + log_det[None, :] - log_det[:, None])
    return (0.5 * (kl + kl.T)).clamp_min(0.0)  # rounding can leave tiny negatives on the diagonal


def container_loss(mean: torch.Tensor, variance: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the tokens that have another token of their tag in the batch of
    -log(mean_{q: same tag} exp(-d(p, q)) / sum_{q != p} exp(-d(p, q))); 0 (with a gradient path)
    when no token has one."""
    distances = symmetric_kl(mean.float(), variance.float())
    n = len(labels)
    itself = torch.eye(n, dtype=torch.bool, device=labels.device)
    same = (labels[:, None] == labels[None, :]) & ~itself
    anchors = same.any(dim=1)
    if not bool(anchors.any()):
        return mean.sum() * 0.0
    similarity = -distances
    log_denominator = torch.logsumexp(similarity.masked_fill(itself, -math.inf), dim=1)
    log_numerator = (torch.logsumexp(similarity.masked_fill(~same, -math.inf), dim=1)
                     - same.sum(dim=1).clamp_min(1).float().log())
    return -(log_numerator - log_denominator)[anchors].mean()


class ContrastiveTaggerModule(nn.Module):
    """What a tagger's token fine-tuning trains with the objective: the `TokenClassifierModule`
    (`tagger`) and the Gaussian projection; its forward is the loss, cross-entropy of the head
    plus `weight` times `container_loss` over the labelled (first-subword) tokens of the batch."""

    def __init__(self, tagger: nn.Module, settings: TokenContrastiveSettings, hidden_size: int) -> None:
        super().__init__()
        self.tagger = tagger
        self.projection = GaussianProjection(hidden_size, settings.dim)
        self.weight = settings.weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                casing: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.tagger.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        cross_entropy = token_cross_entropy(self.tagger.classify(hidden, casing), labels)
        labelled = labels != IGNORE_INDEX
        mean, variance = self.projection(hidden[labelled].float())
        return cross_entropy + self.weight * container_loss(mean, variance, labels[labelled])


def contrastive_tagger_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """`train_model`'s loss for a `ContrastiveTaggerModule` (its forward computes it)."""
    return model(**batch)
