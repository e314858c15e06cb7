"""Self-supervised objectives: masked-LM and unsupervised contrastive (SimCSE), alone or mixed.

- Masked-LM: dynamic masking per batch from a seeded generator (`mask_tokens`): a fraction
  `mlm_probability` of the tokens (or, with whole-word masking, of the words: every piece of a
  chosen word) is selected, at least one per text; 80 % of them become [MASK], 10 % a random
  token, 10 % stay. A fresh BERT-style head (dense, activation, LayerNorm, decoder tied to the
  input embeddings, own bias) predicts them, computed on the selected positions only.
- Contrastive (SimCSE): every text goes through the encoder twice; dropout makes the two views
  differ; the loss is the cross-entropy of view-1 vs view-2 cosine similarities over temperature,
  with the other texts of the batch as negatives.

`PretrainingModel` runs all the rows an objective needs (masked texts, two views) through the
encoder in one forward pass and returns the weighted sum as `loss`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from fastadapt.models.encoder import pool_hidden_states
from fastadapt.pretraining.config import validate_objectives

IGNORE_INDEX = -100


def mask_tokens(
    input_ids: torch.Tensor,
    candidates: torch.Tensor,
    generator: torch.Generator,
    mlm_probability: float,
    mask_token_id: int,
    vocab_size: int,
    word_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, labels with -100 where nothing is predicted).

    `candidates` (bool, like input_ids) marks the maskable tokens (not padding or special tokens).
    With `word_ids` (the word index of each token, -1 for non-candidates), words are chosen, and
    all tokens of a chosen word are masked. Every row with a candidate gets at least one.
    """
    rows, width = input_ids.shape
    if word_ids is not None:
        word_ids = torch.where(candidates, word_ids, torch.full_like(word_ids, -1))
        n_words = int(word_ids.max().item()) + 1 if word_ids.numel() else 0
        if n_words == 0:
            selected = torch.zeros_like(candidates)
        else:
            # column n_words collects the non-candidates, so they never mark a real word
            index = torch.where(word_ids >= 0, word_ids, torch.full_like(word_ids, n_words))
            exists = torch.zeros(rows, n_words + 1, dtype=torch.bool)
            exists.scatter_(1, index, torch.ones_like(candidates))
            exists[:, n_words] = False
            draw = torch.rand(rows, n_words + 1, generator=generator)
            chosen = (draw < mlm_probability) & exists
            fallback = torch.where(exists, draw, torch.full_like(draw, 2.0)).argmin(1)
            needs = ~chosen.any(1) & exists.any(1)
            chosen[needs, fallback[needs]] = True
            selected = torch.gather(chosen, 1, index) & candidates
    else:
        draw = torch.rand(rows, width, generator=generator)
        selected = (draw < mlm_probability) & candidates
        fallback = torch.where(candidates, draw, torch.full_like(draw, 2.0)).argmin(1)
        needs = ~selected.any(1) & candidates.any(1)
        selected[needs, fallback[needs]] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    decide = torch.rand(rows, width, generator=generator)
    random_tokens = torch.randint(vocab_size, (rows, width), generator=generator, dtype=input_ids.dtype)
    masked = torch.where(selected & (decide < 0.8), torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(selected & (decide >= 0.8) & (decide < 0.9), random_tokens, masked)
    return masked, labels


class MLMHead(nn.Module):
    """BERT's masked-LM head (transform + decoder), its decoder weight tied to the input embeddings."""

    def __init__(self, embeddings: nn.Embedding, hidden_size: int, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, initializer_range: float = 0.02) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACT2FN[hidden_act] if isinstance(hidden_act, str) else hidden_act
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, embeddings.num_embeddings, bias=False)
        self.decoder.weight = embeddings.weight  # tied: one parameter
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))
        nn.init.normal_(self.dense.weight, std=initializer_range)
        nn.init.zeros_(self.dense.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden)))) + self.bias


def simcse_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch contrastive loss: row i of `first` should match row i of `second`."""
    first, second = F.normalize(first.float(), dim=-1), F.normalize(second.float(), dim=-1)
    logits = first @ second.T / temperature
    return F.cross_entropy(logits, torch.arange(len(first), device=first.device))


class PretrainingModel(nn.Module):
    """An encoder with the heads of the chosen objectives; `forward` returns the losses."""

    def __init__(self, encoder: nn.Module, objectives: Mapping[str, float], temperature: float = 0.05,
                 pooling: str = "mean") -> None:
        super().__init__()
        weights = validate_objectives(objectives)  # unknown name -> error naming pretraining.objectives
        self.weights = {name: weight for name, weight in weights.items() if weight > 0}
        self.encoder = encoder
        self.temperature = float(temperature)
        self.pooling = pooling
        if "mlm" in self.weights:
            config = encoder.config
            self.mlm_head = MLMHead(
                encoder.get_input_embeddings(), config.hidden_size, getattr(config, "hidden_act", "gelu"),
                getattr(config, "layer_norm_eps", 1e-12), getattr(config, "initializer_range", 0.02),
            )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                mlm_input_ids: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        parts = []
        if "mlm" in self.weights:
            if mlm_input_ids is None or mlm_labels is None:
                raise ValueError("the mlm objective needs mlm_input_ids and mlm_labels in the batch")
            parts.append(mlm_input_ids)
        if "contrastive" in self.weights:
            parts += [input_ids, input_ids]  # two dropout views
        hidden = self.encoder(
            input_ids=torch.cat(parts), attention_mask=attention_mask.repeat(len(parts), 1)
        ).last_hidden_state
        rows = len(input_ids)
        losses: dict[str, torch.Tensor] = {}
        offset = 0
        if "mlm" in self.weights:
            selected = mlm_labels != IGNORE_INDEX
            masked_hidden = hidden[:rows][selected]
            if len(masked_hidden):
                losses["mlm"] = F.cross_entropy(self.mlm_head(masked_hidden).float(), mlm_labels[selected])
            else:
                losses["mlm"] = hidden[:rows].sum() * 0.0
            offset = rows
        if "contrastive" in self.weights:
            mask = attention_mask
            first = pool_hidden_states(hidden[offset:offset + rows], mask, self.pooling)
            second = pool_hidden_states(hidden[offset + rows:offset + 2 * rows], mask, self.pooling)
            losses["contrastive"] = simcse_loss(first, second, self.temperature)
        losses["loss"] = sum(self.weights[name] * losses[name] for name in self.weights)
        return losses


def pretraining_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The `loss_fn` for `train_model`: the weighted objective loss of one batch."""
    return model(**batch)["loss"]
