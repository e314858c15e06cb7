"""The learner every meta-learning algorithm trains: an encoder, a pooling and an episode head.

`MetaLearner` is a plain `nn.Module` (`encoder` + optional `head`), so the algorithms can run it
with other weights through `torch.func.functional_call(learner, params, ...)`: fast weights
are a dict of tensors that stay in the autograd graph of the meta-parameters, and nothing is
copied or monkey-patched. `cached_features(texts)` lets a frozen learner embed each text once
for many episodes. Two heads:

- `prototype`: no parameters; class scores come from the support features (ProtoNets): negative
  squared Euclidean distance to each class mean, or a scaled cosine;
- `linear`: a meta-learned `n_way x hidden` layer, zero-initialised so that no class index is
  favoured before adaptation. An episode with c classes uses its first c rows (c <= n_way) or
  its rows plus copies of their mean (c > n_way), so a head meta-trained 5-way adapts 27-way.

`episode_loss` scores the query set of one prepared episode under given fast weights; the
algorithms differ only in how they obtain those weights. `AdaptedClassifier` is what
`algorithm.adapt(texts, labels)` returns: the `TextClassifier` protocol (`classes_`,
`predict`, `predict_proba`) over a learner with fixed fast weights or prototypes.

    learner = MetaLearner(load_backbone("minilm-l6"), head="prototype", max_length=64)
    batch = learner.prepare(episode)                 # an EpisodeBatch of tensors
    loss, accuracy = episode_loss(learner, batch)    # ProtoNet query loss
    features = learner.encode(learner.batch(["my card is lost"]))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from fastadapt.adaptation.lora import LoraSettings, inject_lora
from fastadapt.models.backbones import Backbone
from fastadapt.models.batching import length_bucketed_batches, pad_batch, tokenize
from fastadapt.models.encoder import POOLINGS, pool_hidden_states
from fastadapt.models.precision import PRECISIONS, autocast
from fastadapt.tasks.meta_episodes import TextEpisode

log = logging.getLogger(__name__)

HEADS = ("linear", "prototype")
DISTANCES = ("euclidean", "cosine")
INNER_PARAMS = ("all", "head", "lora")

Params = dict[str, torch.Tensor]


@dataclass
class EpisodeBatch:
    """One episode as tensors on the learner's device: tokenised support and query, targets."""

    classes: tuple[str, ...]
    support: dict[str, torch.Tensor]
    support_targets: torch.Tensor
    query: dict[str, torch.Tensor]
    query_targets: torch.Tensor

    @property
    def n_classes(self) -> int:
        return len(self.classes)


class MetaLearner(nn.Module):
    """Encoder + pooling + head (see the module docstring); `lora` injects LoRA adapters.

    The encoder's weights are the backbone's own (not copied): meta-training changes them.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: str = "linear",
        pooling: str = "mean",
        max_length: int = 64,
        n_way: int = 5,
        distance: str = "euclidean",
        temperature: float = 10.0,
        lora: LoraSettings | None = None,
        precision: str = "auto",
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head is {head!r}; allowed: {list(HEADS)}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling is {pooling!r}; allowed: {list(POOLINGS)}")
        if distance not in DISTANCES:
            raise ValueError(f"distance is {distance!r}; allowed: {list(DISTANCES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision is {precision!r}; allowed: {list(PRECISIONS)}")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
        if not isinstance(n_way, int) or n_way < 1:
            raise ValueError(f"n_way must be an integer >= 1, got {n_way!r}")
        self.backbone_name, self.tokenizer = backbone.name, backbone.tokenizer
        self.encoder = backbone.model
        self.head_kind, self.pooling, self.max_length = head, pooling, max_length
        self.n_way, self.distance, self.temperature = n_way, distance, float(temperature)
        self.hidden_size = int(backbone.model.config.hidden_size)
        self.precision = precision  # the encoder's arithmetic (`fastadapt.models.precision`)
        self.head = None
        if head == "linear":
            self.head = nn.Linear(self.hidden_size, n_way)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self._feature_cache: tuple[dict[str, int], torch.Tensor] | None = None
        self.lora = lora
        if lora is not None:
            if not isinstance(lora, LoraSettings):
                raise ValueError(f"lora must be LoraSettings or None, got {lora!r}")
            inject_lora(self.encoder, lora)
            for parameter in self.encoder.parameters():  # the outer loop meta-learns everything
                parameter.requires_grad_(True)

    # ---- inputs -------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of `texts`, padded to the longest, on the learner's device."""
        if len(texts) == 0:
            empty = torch.zeros((0, 1), dtype=torch.long, device=self.device)
            return {"input_ids": empty, "attention_mask": empty.clone()}
        ids = tokenize(self.tokenizer, list(texts), self.max_length)
        return {k: v.to(self.device) for k, v in pad_batch(ids, self.tokenizer.pad_token_id).items()}

    def prepare(self, episode: TextEpisode) -> EpisodeBatch:
        """The tensors of one text episode (targets index `episode.classes`)."""
        device = self.device
        return EpisodeBatch(
            classes=tuple(episode.classes),
            support=self.batch(episode.support_texts),
            support_targets=torch.as_tensor(episode.targets("support"), device=device),
            query=self.batch(episode.query_texts),
            query_targets=torch.as_tensor(episode.targets("query"), device=device),
        )

    # ---- forward ------------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features_only: bool = False
                ) -> torch.Tensor:
        """Pooled features, then the linear head's logits unless `features_only` (or no head).

        The encoder runs under the learner's `precision` (bf16 autocast where it is native);
        the features, and all that is computed from them, are float32.
        """
        with autocast(self.precision, input_ids.device):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if hidden.dtype in (torch.bfloat16, torch.float16):
            hidden = hidden.float()
        features = pool_hidden_states(hidden, attention_mask, self.pooling)
        if features_only or self.head is None:
            return features
        return self.head(features)

    def encode(self, batch: Mapping[str, torch.Tensor], params: Params | None = None,
               use_checkpoint: bool = False) -> torch.Tensor:
        """Pooled features of a batch, with the encoder weights in `params` where given."""
        return self.call(batch, params, features_only=True, use_checkpoint=use_checkpoint)

    def call(self, batch: Mapping[str, torch.Tensor], params: Params | None = None,
             features_only: bool = False, use_checkpoint: bool = False) -> torch.Tensor:
        """`forward` with the weights of `params` (others stay the module's), optionally checkpointed.

        Checkpointing wraps the whole functional call, so the recomputation during backward
        sees the same fast weights, and double backward (second-order MAML) stays exact.
        """
        params = dict(params or {})
        names = list(params)
        kwargs = {"features_only": features_only}

        def run(input_ids: torch.Tensor, attention_mask: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
            return functional_call(self, dict(zip(names, tensors)), (input_ids, attention_mask), kwargs)

        args = (batch["input_ids"], batch["attention_mask"], *params.values())
        if use_checkpoint and torch.is_grad_enabled():
            return checkpoint(run, *args, use_reentrant=False)
        return run(*args)

    @contextmanager
    def cached_features(self, texts: Sequence[str], batch_size: int = 64) -> Iterator[None]:
        """Within the block, `embed` of these texts with the learner's own weights reads features
        computed once here: test episodes share rows, and a frozen encoder embeds each row once.
        Texts outside the set, or other weights (`params`), are embedded as usual."""
        unique = list(dict.fromkeys(str(t) for t in texts))
        self._feature_cache = ({text: i for i, text in enumerate(unique)}, self.embed(unique, batch_size=batch_size))
        try:
            yield
        finally:
            self._feature_cache = None

    def embed(self, texts: Sequence[str], params: Params | None = None, batch_size: int = 64) -> torch.Tensor:
        """Pooled features of `texts` in their order: eval mode, no gradient, bucketed batches."""
        texts = [str(t) for t in texts]
        if self._feature_cache is not None and not params:
            index, vectors = self._feature_cache
            if all(t in index for t in texts):
                return vectors[[index[t] for t in texts]]
        if len(texts) == 0:
            return torch.zeros(0, self.hidden_size, device=self.device)
        ids = tokenize(self.tokenizer, texts, self.max_length)
        dtype = next(self.encoder.parameters()).dtype
        output = torch.zeros(len(ids), self.hidden_size, dtype=dtype, device=self.device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for index in length_bucketed_batches([len(i) for i in ids], batch_size):
                    batch = pad_batch([ids[i] for i in index], self.tokenizer.pad_token_id)
                    output[index] = self.encode({k: v.to(self.device) for k, v in batch.items()}, params)
        finally:
            self.train(was_training)
        return output

    def head_logits(self, features: torch.Tensor, params: Params) -> torch.Tensor:
        """Linear-head logits of features under the fast weights `head.weight`, `head.bias`."""
        return F.linear(features, params["head.weight"], params["head.bias"])

    def prototype_logits(self, features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Negative squared Euclidean distance, or temperature * cosine, to each prototype."""
        if self.distance == "cosine":
            return self.temperature * F.normalize(features, dim=-1) @ F.normalize(prototypes, dim=-1).T
        return -torch.cdist(features, prototypes).pow(2)

    # ---- fast weights -------------------------------------------------------------------------

    def inner_param_names(self, which: str) -> list[str]:
        """Names of the parameters an inner loop adapts: all | head | lora (LoRA + head)."""
        if which not in INNER_PARAMS:
            raise ValueError(f"inner_params is {which!r}; allowed: {list(INNER_PARAMS)}")
        if self.head is None:
            raise ValueError(
                f"inner_params={which!r} needs the learner's linear head; this learner has "
                f"head='{self.head_kind}' (use head='linear')"
            )
        names = [name for name, p in self.named_parameters() if p.requires_grad]
        if which == "head":
            return [n for n in names if n.startswith("head.")]
        if which == "lora":
            lora = [n for n in names if "lora_" in n]
            if not lora:
                raise ValueError("inner_params='lora' needs LoRA adapters: build the learner with lora")
            return lora + [n for n in names if n.startswith("head.")]
        return names

    def fast_weights(self, names: Sequence[str], n_classes: int) -> Params:
        """The meta-parameters named, as graph-connected tensors sized for `n_classes` classes."""
        own = dict(self.named_parameters())
        return {name: fit_rows(own[name], n_classes) if name.startswith("head.") else own[name]
                for name in names}


def fit_rows(tensor: torch.Tensor, n_rows: int) -> torch.Tensor:
    """The first `n_rows` rows, or all rows plus copies of their mean: a head sized for an episode."""
    if n_rows <= tensor.shape[0]:
        return tensor[:n_rows]
    extra = tensor.mean(0, keepdim=True).expand(n_rows - tensor.shape[0], *tensor.shape[1:])
    return torch.cat([tensor, extra], 0)


def class_means(features: torch.Tensor, targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """One prototype per class: the mean of its support features (differentiable)."""
    sums = torch.zeros(n_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums = sums.index_add(0, targets, features)
    counts = torch.bincount(targets, minlength=n_classes).clamp(min=1).to(features.dtype)
    return sums / counts.unsqueeze(1)


def loss_and_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (mean) and accuracy (a detached scalar)."""
    loss = F.cross_entropy(logits, targets)
    accuracy = (logits.detach().argmax(-1) == targets).float().mean()
    return loss, accuracy


def episode_loss(
    learner: MetaLearner,
    batch: EpisodeBatch,
    params: Params | None = None,
    query_features: torch.Tensor | None = None,
    support_features: torch.Tensor | None = None,
    use_checkpoint: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query loss and accuracy of one episode under the fast weights `params`.

    Prototype head: prototypes are the class means of the support features. Linear head:
    `params` must hold the episode-sized `head.weight` and `head.bias`. Features already
    computed (ANIL encodes once) can be passed in.
    """
    params = dict(params or {})
    encoder_params = {k: v for k, v in params.items() if not k.startswith("head.")}
    if query_features is None:
        query_features = learner.encode(batch.query, encoder_params, use_checkpoint)
    if learner.head_kind == "prototype":
        if support_features is None:
            support_features = learner.encode(batch.support, encoder_params, use_checkpoint)
        prototypes = class_means(support_features, batch.support_targets, batch.n_classes)
        logits = learner.prototype_logits(query_features, prototypes)
    else:
        logits = learner.head_logits(query_features, params)
    return loss_and_accuracy(logits, batch.query_targets)


class AdaptedClassifier:
    """A learner adapted to one task: fixed fast weights or prototypes, `TextClassifier` protocol.

    Texts are scored by `MetaLearner.embed` (eval mode, no gradient, length-bucketed batches).
    """

    def __init__(
        self,
        learner: MetaLearner,
        classes: Sequence[str],
        params: Params | None = None,
        prototypes: torch.Tensor | None = None,
        batch_size: int = 64,
    ) -> None:
        if (params is None) == (prototypes is None):
            raise ValueError("AdaptedClassifier needs exactly one of params (linear head) or prototypes")
        self.learner, self.classes_ = learner, [str(c) for c in classes]
        self.params = None if params is None else {k: v.detach() for k, v in params.items()}
        self.prototypes = None if prototypes is None else prototypes.detach()
        self.batch_size = batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        encoder_params = {k: v for k, v in (self.params or {}).items() if not k.startswith("head.")}
        features = self.learner.embed(texts, encoder_params, self.batch_size)
        with torch.no_grad():
            if self.prototypes is not None:
                logits = self.learner.prototype_logits(features, self.prototypes)
            else:
                logits = self.learner.head_logits(features, self.params)
        return torch.softmax(logits.double(), -1).cpu().numpy()

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        proba = self.predict_proba(texts)
        return np.asarray([self.classes_[i] for i in proba.argmax(1)], dtype=object)


def support_classes(labels: Sequence[Any]) -> tuple[list[str], torch.Tensor]:
    """Sorted class names of a support set and the class index of each example."""
    names = [str(label) for label in labels]
    if not names:
        raise ValueError("the support set is empty; give at least one labelled text")
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return classes, torch.as_tensor([index[n] for n in names], dtype=torch.long)

