"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio and Vinyals 2020, "Rapid Learning or Feature
Reuse? Towards Understanding the Effectiveness of MAML", ICLR).

MAML whose inner loop adapts only the linear head: the encoder is meta-learned in the outer loop
but frozen during adaptation, so each episode runs the encoder once (support and query), the
inner steps touch a few thousand weights, and second-order gradients stay cheap. A thin
configuration of `MAML(inner_params="head")`; Meta-SGD and first order apply as in MAML.

    learner = MetaLearner(load_backbone("minilm-l6"), head="linear", n_way=5)
    anil = ANIL(learner, inner_lr=0.5, inner_steps=10, outer_lr=2e-5)
    for step in range(100):
        anil.meta_train_step([source.sample(np.random.default_rng([0, step, b])) for b in range(4)])
    predictor = anil.adapt(support_texts, support_labels)   # predict / predict_proba
"""

from __future__ import annotations

from typing import Any

from fastadapt.meta.learner import MetaLearner
from fastadapt.meta.maml import MAML


class ANIL(MAML):
    """`MAML` with `inner_params="head"` (second order unless `first_order=True`)."""

    name = "anil"

    def __init__(self, learner: MetaLearner, **options: Any) -> None:
        inner = options.pop("inner_params", "head")
        if inner != "head":
            raise ValueError(f"ANIL adapts only the head: inner_params must be 'head', got {inner!r}")
        super().__init__(learner, inner_params="head", **options)
