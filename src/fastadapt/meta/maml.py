"""Model-agnostic meta-learning (Finn, Abbeel and Levine 2017, "Model-Agnostic Meta-Learning for
Fast Adaptation of Deep Networks", ICML), its first-order approximation (same paper, FOMAML),
and learned per-parameter inner learning rates (Li, Zhou, Chen and Li 2017, "Meta-SGD: Learning
to Learn Quickly for Few-Shot Learning").

The inner loop runs gradient descent on the support loss with fast weights passed to
`torch.func.functional_call`; the outer loss is the query loss of the adapted weights. Second
order: the inner gradients are taken with `create_graph=True`, so back-propagating the query loss
differentiates through the whole inner loop (Hessian-vector products included) without copying a
module. First order (`first_order=True`): the inner gradients are constants, so the outer
gradient is the query gradient at the adapted weights, and no inner graph is kept.

Memory stays bounded by choosing what adapts (`inner_params`): `all` the encoder and head;
`head` only the linear head (ANIL: the encoder runs once per episode); `lora` LoRA adapters plus
the head (build the learner with `lora`). `gradient_checkpointing` recomputes each encoder
pass during backward instead of storing its activations (exact for second order). Second order
through an encoder needs attention that is twice differentiable: PyTorch's fused
scaled-dot-product kernels are not, so the encoder is switched to eager attention.

    learner = MetaLearner(load_backbone("minilm-l6"), head="linear", n_way=5)
    maml = MAML(learner, inner_lr=1e-2, inner_steps=3, inner_params="lora", meta_sgd=True)
    for step in range(100):
        maml.meta_train_step([source.sample(np.random.default_rng([0, step, b])) for b in range(4)])
    predictor = maml.adapt(support_texts, support_labels)   # predict / predict_proba
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fastadapt.meta.algorithm import MetaAlgorithm, inner_loop
from fastadapt.meta.learner import (
    INNER_PARAMS,
    AdaptedClassifier,
    EpisodeBatch,
    MetaLearner,
    Params,
    episode_loss,
    fit_rows,
    support_classes,
)

log = logging.getLogger(__name__)


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} > 0, got {value!r}")


class MAML(MetaAlgorithm):
    """MAML / FOMAML / Meta-SGD over a `MetaLearner` with `head="linear"` (see module docstring)."""

    name = "maml"

    def __init__(
        self,
        learner: MetaLearner,
        inner_lr: float = 1e-2,
        inner_steps: int = 1,
        first_order: bool = False,
        meta_sgd: bool = False,
        inner_params: str = "all",
        gradient_checkpointing: bool = False,
        eval_inner_steps: int | None = None,
        outer_lr: float = 1e-4,
        outer_optimizer: str = "adam",
        max_grad_norm: float | None = 1.0,
        batch_size: int = 64,
    ) -> None:
        super().__init__(learner, outer_lr, outer_optimizer, max_grad_norm)
        if inner_params not in INNER_PARAMS:
            raise ValueError(f"inner_params is {inner_params!r}; allowed: {list(INNER_PARAMS)}")
        _check_positive("inner_lr", inner_lr)
        _check_positive("inner_steps", inner_steps, integer=True)
        if eval_inner_steps is not None:
            _check_positive("eval_inner_steps", eval_inner_steps, integer=True)
        self.inner_names = learner.inner_param_names(inner_params)
        self.inner_lr, self.inner_steps, self.first_order = float(inner_lr), inner_steps, bool(first_order)
        self.inner_params, self.meta_sgd = inner_params, bool(meta_sgd)
        self.gradient_checkpointing, self.batch_size = bool(gradient_checkpointing), batch_size
        self.eval_inner_steps = eval_inner_steps or inner_steps
        own = dict(learner.named_parameters())
        # Meta-SGD: one learned learning rate per adapted weight, initialised at inner_lr.
        self.inner_lrs = nn.ParameterDict({
            _key(name): nn.Parameter(torch.full_like(own[name].detach(), self.inner_lr))
            for name in self.inner_names
        }) if self.meta_sgd else None
        if not self.first_order and inner_params != "head":
            _eager_attention(learner)

    @property
    def head_only(self) -> bool:
        return self.inner_params == "head"

    def learning_rates(self, n_classes: int, detach: bool = False) -> dict[str, torch.Tensor | float]:
        """The inner learning rate of each adapted weight (Meta-SGD: tensors sized for the episode)."""
        if self.inner_lrs is None:
            return {name: self.inner_lr for name in self.inner_names}
        lrs = {}
        for name in self.inner_names:
            lr = self.inner_lrs[_key(name)]
            lr = fit_rows(lr, n_classes) if name.startswith("head.") else lr
            lrs[name] = lr.detach() if detach else lr
        return lrs

    def adapted_weights(self, batch: EpisodeBatch, steps: int, create_graph: bool,
                        detach: bool = False) -> tuple[Params, torch.Tensor | None]:
        """Fast weights after `steps` on the support set, and the query features if already known.

        `detach` starts from constant copies of the meta-parameters (adaptation at test time).
        """
        learner = self.learner
        params = learner.fast_weights(self.inner_names, batch.n_classes)
        if detach:
            params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        lrs = self.learning_rates(batch.n_classes, detach=detach)
        support_features = query_features = None
        if self.head_only:
            # ANIL: the encoder is not adapted, so its features are computed once. First order
            # needs no gradient through the support features at all.
            with torch.set_grad_enabled(torch.is_grad_enabled() and create_graph and not detach):
                support_features = learner.encode(batch.support, use_checkpoint=self.gradient_checkpointing)
            if detach:
                support_features = support_features.detach()
            if batch.query["input_ids"].shape[0]:
                query_features = learner.encode(batch.query, use_checkpoint=self.gradient_checkpointing)
        with torch.enable_grad():
            params = inner_loop(learner, batch.support, batch.support_targets, params, steps, lrs,
                                create_graph=create_graph, support_features=support_features,
                                use_checkpoint=self.gradient_checkpointing)
        return params, query_features

    def outer_loss(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        params, query_features = self.adapted_weights(batch, self.inner_steps, create_graph=not self.first_order)
        return episode_loss(self.learner, batch, params, query_features=query_features,
                            use_checkpoint=self.gradient_checkpointing)

    def adapt(self, support_texts: Sequence[str], support_labels: Sequence[Any]) -> AdaptedClassifier:
        """`eval_inner_steps` of (Meta-)SGD from the meta-learned weights, learner in eval mode."""
        classes, targets = support_classes(support_labels)
        if len(support_texts) != len(targets):
            raise ValueError(f"support_texts ({len(support_texts)}) and support_labels ({len(targets)}) differ in length")
        learner = self.learner
        was_training = learner.training
        learner.eval()
        try:
            batch = EpisodeBatch(tuple(classes), learner.batch(support_texts), targets.to(learner.device),
                                 learner.batch([]), targets[:0].to(learner.device))
            params, _ = self.adapted_weights(batch, self.eval_inner_steps, create_graph=False, detach=True)
        finally:
            learner.train(was_training)
        return AdaptedClassifier(learner, classes, params={k: v.detach() for k, v in params.items()},
                                 batch_size=self.batch_size)


class FOMAML(MAML):
    """First-order MAML (Finn et al. 2017, section 5.2): `MAML(first_order=True)`."""

    name = "fomaml"

    def __init__(self, learner: MetaLearner, **options: Any) -> None:
        options.pop("first_order", None)
        super().__init__(learner, first_order=True, **options)


def _key(name: str) -> str:
    """A parameter name as a `ParameterDict` key (no dots allowed there)."""
    return name.replace(".", "__")


def _eager_attention(learner: MetaLearner) -> None:
    """Second-order gradients through attention need the eager (twice differentiable) kernel."""
    config = learner.encoder.config
    if getattr(config, "_attn_implementation", "eager") != "eager":
        log.info("second-order MAML: switching %s to eager attention (fused SDPA backward is "
                 "not twice differentiable)", learner.backbone_name)
        learner.encoder.set_attn_implementation("eager")
