"""Prototypical networks (Snell, Swersky and Zemel 2017, "Prototypical Networks for Few-shot
Learning", NeurIPS).

A class is represented by the mean of its support embeddings; a query is scored by the negative
squared Euclidean distance to each prototype (or a scaled cosine), and the encoder is trained
end to end on the query cross-entropy of episodes. Adaptation needs no gradient at all: one
forward pass over the support set, which is why it is the fastest adapter here.

    learner = MetaLearner(load_backbone("minilm-l6"), head="prototype")
    protonet = ProtoNet(learner, outer_lr=2e-5)
    for step in range(100):
        protonet.meta_train_step([source.sample(np.random.default_rng([0, step]))])
    predictor = protonet.adapt(support_texts, support_labels)   # predict / predict_proba
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fastadapt.meta.algorithm import MetaAlgorithm
from fastadapt.meta.learner import (
    AdaptedClassifier,
    EpisodeBatch,
    MetaLearner,
    class_means,
    episode_loss,
    support_classes,
)


class ProtoNet(MetaAlgorithm):
    """ProtoNets over a `MetaLearner` with `head="prototype"`; the metric is the learner's."""

    name = "protonet"

    def __init__(self, learner: MetaLearner, outer_lr: float = 2e-5, outer_optimizer: str = "adam",
                 max_grad_norm: float | None = 1.0, gradient_checkpointing: bool = False,
                 batch_size: int = 64) -> None:
        super().__init__(learner, outer_lr, outer_optimizer, max_grad_norm)
        if learner.head_kind != "prototype":
            raise ValueError(
                f"ProtoNet scores by prototypes: build the learner with head='prototype' "
                f"(it has head='{learner.head_kind}')"
            )
        self.gradient_checkpointing, self.batch_size = gradient_checkpointing, batch_size

    def outer_loss(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return episode_loss(self.learner, batch, use_checkpoint=self.gradient_checkpointing)

    def adapt(self, support_texts: Sequence[str], support_labels: Sequence[Any]) -> AdaptedClassifier:
        """Prototypes of the support set (learner in eval mode, no gradient)."""
        classes, targets = support_classes(support_labels)
        if len(support_texts) != len(targets):
            raise ValueError(f"support_texts ({len(support_texts)}) and support_labels ({len(targets)}) differ in length")
        features = self.learner.embed(support_texts, batch_size=self.batch_size)
        prototypes = class_means(features, targets.to(features.device), len(classes))
        return AdaptedClassifier(self.learner, classes, prototypes=prototypes, batch_size=self.batch_size)
