"""Second-order MAML's meta-gradient against finite differences, on a tiny BERT in float64."""

import numpy as np
import pytest
import torch

from fastadapt.meta import FOMAML, MAML, MetaLearner
from fastadapt.tasks.meta_episodes import LabelledEpisodeSource

from tests.meta.conftest import toy_rows


def float64_setup(tiny_backbone, algorithm=MAML, **options):
    # exact float64 arithmetic: a finite-difference check has no room for bf16 autocast
    learner = MetaLearner(tiny_backbone(seed=3), head="linear", n_way=3, max_length=16, precision="no")
    with torch.no_grad():  # a non-zero head, so the first inner step already moves the encoder
        learner.head.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
        learner.head.bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    maml = algorithm(learner, **options)
    maml.double().eval()
    episode = LabelledEpisodeSource(toy_rows(), n_way=3, k_shot=2, n_query=2).sample(np.random.default_rng(0))
    return maml, learner.prepare(episode)


def meta_parameters(maml):
    return [p for p in maml.parameters() if p.requires_grad]


def directional_derivatives(maml, batch, directions, eps=1e-6):
    """Central differences of the outer loss along each direction (a list per parameter)."""
    params = meta_parameters(maml)
    values = []
    for direction in directions:
        outs = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, v in zip(params, direction):
                    p.add_(sign * eps * v)
            outs.append(float(maml.outer_loss(batch)[0].detach()))
            with torch.no_grad():
                for p, v in zip(params, direction):
                    p.sub_(sign * eps * v)
        values.append((outs[0] - outs[1]) / (2 * eps))
    return np.asarray(values)


def analytic_derivatives(maml, batch, directions):
    loss, _ = maml.outer_loss(batch)
    grads = torch.autograd.grad(loss, meta_parameters(maml), allow_unused=True, materialize_grads=True)
    return np.asarray([sum(float((g * v).sum()) for g, v in zip(grads, d)) for d in directions])


def random_directions(maml, count=3):
    generator = torch.Generator().manual_seed(42)
    return [[torch.randn(p.shape, dtype=p.dtype, generator=generator) for p in meta_parameters(maml)]
            for _ in range(count)]


@pytest.mark.parametrize("options", [
    {"inner_params": "all"},
    {"inner_params": "all", "meta_sgd": True},
    {"inner_params": "all", "gradient_checkpointing": True},
    {"inner_params": "head", "meta_sgd": True},
])
def test_second_order_meta_gradient_matches_finite_differences(tiny_backbone, options):
    maml, batch = float64_setup(tiny_backbone, inner_steps=2, inner_lr=0.3, **options)
    directions = random_directions(maml)
    analytic = analytic_derivatives(maml, batch, directions)
    numeric = directional_derivatives(maml, batch, directions)
    assert np.all(np.abs(analytic) > 1e-3)  # a real signal, not zeros agreeing
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_first_order_gradient_differs_from_the_true_one(tiny_backbone):
    """The finite-difference check can tell: dropping second-order terms changes the gradient."""
    maml, batch = float64_setup(tiny_backbone, FOMAML, inner_steps=2, inner_lr=0.3)
    directions = random_directions(maml)
    first_order = analytic_derivatives(maml, batch, directions)
    numeric = directional_derivatives(maml, batch, directions)
    assert np.max(np.abs(first_order - numeric) / np.abs(numeric)) > 1e-2


def test_second_order_switches_the_encoder_to_eager_attention(tiny_backbone):
    learner = MetaLearner(tiny_backbone(), head="linear", n_way=3)
    learner.encoder.set_attn_implementation("sdpa")
    FOMAML(learner)
    assert learner.encoder.config._attn_implementation == "sdpa"  # first order keeps fused kernels
    MAML(learner, inner_params="head")
    assert learner.encoder.config._attn_implementation == "sdpa"  # ANIL never differentiates attention twice
    MAML(learner)
    assert learner.encoder.config._attn_implementation == "eager"
