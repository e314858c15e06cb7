"""Reptile (Nichol, Achiam and Schulman 2018, "On First-Order Meta-Learning Algorithms", arXiv
1803.02999).

For each episode of a meta-batch, run `inner_steps` of SGD on the support set from the current
weights theta, reaching phi; then move theta towards the mean of the phis. The move is written as
a gradient, theta - mean(phi), handed to the outer optimiser: with `outer_optimizer="sgd"` and
`outer_lr=epsilon` it is exactly the paper's update theta <- theta + epsilon * mean(phi - theta);
with Adam it is the adaptive variant the paper also describes. No second-order term and no inner
graph are ever kept, so memory is that of plain fine-tuning. During meta-training the inner loop
walks minibatches of all the episode's rows (support and query); `adapt` trains on the support set.

    learner = MetaLearner(load_backbone("minilm-l6"), head="linear", n_way=5)
    reptile = Reptile(learner, inner_lr=1e-3, inner_steps=5, outer_lr=0.5, outer_optimizer="sgd")
    for step in range(100):
        reptile.meta_train_step([source.sample(np.random.default_rng([0, step, b])) for b in range(4)])
    predictor = reptile.adapt(support_texts, support_labels)   # predict / predict_proba
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fastadapt.meta.algorithm import _check_episodes
from fastadapt.meta.learner import MetaLearner, loss_and_accuracy
from fastadapt.meta.maml import MAML


class Reptile(MAML):
    """Reptile; adaptation (`adapt`) is the same SGD inner loop as MAML's (no Meta-SGD)."""

    name = "reptile"

    def __init__(self, learner: MetaLearner, inner_lr: float = 1e-3, inner_steps: int = 5,
                 inner_params: str = "all", outer_lr: float = 1.0, outer_optimizer: str = "sgd",
                 max_grad_norm: float | None = None, **options: Any) -> None:
        if options.pop("meta_sgd", False):
            raise ValueError("Reptile has no learned inner learning rates: meta_sgd must be false")
        options.pop("first_order", None)
        super().__init__(learner, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True,
                         meta_sgd=False, inner_params=inner_params, outer_lr=outer_lr,
                         outer_optimizer=outer_optimizer, max_grad_norm=max_grad_norm, **options)

    def outer_loss(self, batch):  # pragma: no cover - Reptile has no differentiable outer loss
        raise NotImplementedError("Reptile's outer update is an interpolation; use meta_train_step")

    def meta_train_step(self, episodes: Sequence) -> dict[str, float]:
        """Train on each episode's rows from theta, then step theta towards the adapted weights.

        The inner loop sees the episode's labelled rows (support and query) in minibatches of
        the support set's size, a new minibatch each step (reshuffled by the torch generator when
        exhausted): Reptile's meta-gradient only exists across different minibatches of a task
        (Nichol et al., section 5). The reported loss and accuracy are those of each minibatch
        just before the step that uses it, averaged (meta-validation measures adaptation proper).
        """
        episodes = _check_episodes(episodes)
        self.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses, accuracies = [], []
        for episode in episodes:
            phi, loss, accuracy = self._train_on_episode(episode)
            start = self.learner.fast_weights(self.inner_names, episode.n_way)
            # d/dtheta of 0.5 * ||theta - phi||^2 is theta - phi: the Reptile direction, as a gradient.
            surrogate = sum(0.5 * (start[n] - phi[n].detach()).pow(2).sum() for n in self.inner_names)
            (surrogate / len(episodes)).backward()
            losses.append(loss)
            accuracies.append(accuracy)
        self._outer_step()
        return {"loss": float(np.mean(losses)), "accuracy": float(np.mean(accuracies))}

    def _train_on_episode(self, episode) -> tuple[dict[str, torch.Tensor], float, float]:
        learner = self.learner
        texts = list(episode.support_texts) + list(episode.query_texts)
        targets = torch.as_tensor(np.concatenate([episode.targets("support"), episode.targets("query")]),
                                  device=learner.device)
        inputs = learner.batch(texts)
        features = None
        if self.head_only:
            with torch.no_grad():
                features = learner.encode(inputs)
        params = {n: p.detach().requires_grad_(True)
                  for n, p in learner.fast_weights(self.inner_names, episode.n_way).items()}
        size = max(len(episode.support_texts), 1)
        order, cursor = torch.randperm(len(texts)), 0
        losses, accuracies = [], []
        for _ in range(self.inner_steps):
            if cursor + size > len(texts):
                order, cursor = torch.randperm(len(texts)), 0
            index = order[cursor: cursor + size].to(learner.device)
            cursor += size
            if features is not None:
                logits = learner.head_logits(features[index], params)
            else:
                minibatch = {k: v[index] for k, v in inputs.items()}
                logits = learner.call(minibatch, params, use_checkpoint=self.gradient_checkpointing)
            loss, accuracy = loss_and_accuracy(logits, targets[index])
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True, materialize_grads=True)
            params = {n: (p - self.inner_lr * g).detach().requires_grad_(True)
                      for (n, p), g in zip(params.items(), grads)}
            losses.append(float(loss.detach()))
            accuracies.append(float(accuracy))
        return params, float(np.mean(losses)), float(np.mean(accuracies))
