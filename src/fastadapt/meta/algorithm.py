"""What every meta-learning algorithm shares: the interface, the outer optimiser, the inner loop.

An algorithm is an `nn.Module` that holds the learner (and its own meta-parameters, such as
Meta-SGD's learning rates) and answers the same four calls:

- `meta_train_step(episodes) -> {"loss", "accuracy"}`: one outer update from a meta-batch of
  `TextEpisode`s (loss and accuracy are the query set's, after adaptation, averaged);
- `adapt(support_texts, support_labels) -> AdaptedClassifier` (the `TextClassifier` protocol);
- `evaluate(episode) -> {"loss", "accuracy"}`: adapt on the support set, score the query set,
  exactly as meta-test does (meta-validation uses it);
- `training_state()` / `load_training_state(state)`: weights and optimiser state for checkpoints.

The inner loop (`inner_loop`) is plain gradient descent on fast weights with
`torch.func.functional_call`: `create_graph=True` keeps the graph for second-order MAML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fastadapt.meta.learner import (
    AdaptedClassifier,
    EpisodeBatch,
    MetaLearner,
    Params,
)
from fastadapt.tasks.meta_episodes import TextEpisode

OUTER_OPTIMIZERS = ("adam", "sgd")


class MetaAlgorithm(nn.Module):
    """The shared interface and outer loop; subclasses define `outer_loss` and `adapt`."""

    name = "base"

    def __init__(self, learner: MetaLearner, outer_lr: float = 1e-4, outer_optimizer: str = "adam",
                 max_grad_norm: float | None = 1.0) -> None:
        super().__init__()
        if not isinstance(learner, MetaLearner):
            raise TypeError(f"learner must be a MetaLearner, got {type(learner).__name__}")
        if outer_optimizer not in OUTER_OPTIMIZERS:
            raise ValueError(f"outer_optimizer is {outer_optimizer!r}; allowed: {list(OUTER_OPTIMIZERS)}")
        if not isinstance(outer_lr, (int, float)) or isinstance(outer_lr, bool) or outer_lr <= 0:
            raise ValueError(f"outer_lr must be a number > 0, got {outer_lr!r}")
        self.learner = learner
        self.outer_lr, self.outer_optimizer, self.max_grad_norm = float(outer_lr), outer_optimizer, max_grad_norm
        self._optimizer: torch.optim.Optimizer | None = None

    # ---- outer loop ---------------------------------------------------------------------------

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam (or SGD) over every trainable meta-parameter, built on first use."""
        if self._optimizer is None:
            parameters = [p for p in self.parameters() if p.requires_grad]
            if not parameters:
                raise ValueError(f"{self.name}: nothing to meta-train (no parameter requires grad)")
            if self.outer_optimizer == "adam":
                self._optimizer = torch.optim.Adam(parameters, lr=self.outer_lr)
            else:
                self._optimizer = torch.optim.SGD(parameters, lr=self.outer_lr)
        return self._optimizer

    def outer_loss(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The differentiable meta-objective of one episode (query loss after adaptation), accuracy."""
        raise NotImplementedError

    def meta_train_step(self, episodes: Sequence[TextEpisode]) -> dict[str, float]:
        """One outer update from a meta-batch: mean of the episodes' outer losses, one step.

        Each episode's loss is back-propagated as soon as it is computed (scaled by 1/B), so
        memory holds one episode's graph at a time, and the gradient is that of the mean.
        """
        episodes = _check_episodes(episodes)
        self.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses, accuracies = [], []
        for episode in episodes:
            loss, accuracy = self.outer_loss(self.learner.prepare(episode))
            (loss / len(episodes)).backward()
            losses.append(float(loss.detach()))
            accuracies.append(float(accuracy))
        self._outer_step()
        return {"loss": float(np.mean(losses)), "accuracy": float(np.mean(accuracies))}

    def _outer_step(self) -> None:
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for p in self.parameters() if p.requires_grad], self.max_grad_norm)
        self.optimizer.step()

    # ---- adaptation and meta-validation -------------------------------------------------------

    def adapt(self, support_texts: Sequence[str], support_labels: Sequence[Any]) -> AdaptedClassifier:
        raise NotImplementedError

    def evaluate(self, episode: TextEpisode) -> dict[str, float]:
        """Adapt on the episode's support set, then query loss and accuracy (as meta-test does)."""
        classifier = self.adapt(episode.support_texts, episode.support_labels)
        proba = classifier.predict_proba(episode.query_texts)
        column = {c: i for i, c in enumerate(classifier.classes_)}
        targets = np.asarray([column[label] for label in episode.query_labels])
        picked = proba[np.arange(len(targets)), targets]
        return {"loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
                "accuracy": float((proba.argmax(1) == targets).mean())}

    # ---- checkpoints --------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        """Weights (learner and the algorithm's own) and the outer optimiser's state."""
        return {"module": {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()},
                "optimizer": self.optimizer.state_dict()}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        self.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])


def _check_episodes(episodes: Sequence[TextEpisode]) -> list[TextEpisode]:
    episodes = list(episodes)
    if not episodes:
        raise ValueError("meta_train_step needs at least one episode")
    for episode in episodes:
        if not isinstance(episode, TextEpisode):
            raise TypeError(f"episodes must be TextEpisode records, got {type(episode).__name__}")
        if not episode.query_texts:
            raise ValueError("meta-training episodes need a query set (n_query >= 1)")
    return episodes


def inner_loop(
    learner: MetaLearner,
    support: Mapping[str, torch.Tensor],
    targets: torch.Tensor,
    params: Params,
    steps: int,
    lrs: Mapping[str, torch.Tensor | float],
    create_graph: bool,
    support_features: torch.Tensor | None = None,
    use_checkpoint: bool = False,
) -> Params:
    """`steps` of gradient descent on the support loss, from the fast weights `params`.

    With `support_features` (head-only adaptation) the encoder is not run again; otherwise the
    learner runs under `functional_call` with the fast weights at every step. With
    `create_graph` the returned weights are differentiable functions of the initial ones (and
    of the learning rates), second order; without it the inner gradients are constants, so
    the outer gradient is first order and no inner graph is kept.
    """
    names = list(params)
    for _ in range(steps):
        if support_features is not None:
            logits = learner.head_logits(support_features, params)
        else:
            logits = learner.call(support, params, use_checkpoint=use_checkpoint)
        loss = F.cross_entropy(logits, targets)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph,
                                    allow_unused=True, materialize_grads=True)
        params = {n: params[n] - lrs[n] * g for n, g in zip(names, grads)}
    return params

