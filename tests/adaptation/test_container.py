"""`fastadapt.adaptation.container`: CONTaiNER's Gaussian contrastive token objective, checked
against the divergence written out per pair, and as an option of a tagger's token fine-tuning."""

from __future__ import annotations

import math

import pytest
import torch

from fastadapt.adaptation import AdaptationConfig, fit_tagger
from fastadapt.adaptation.container import (
    ContrastiveTaggerModule,
    GaussianProjection,
    TokenContrastiveSettings,
    container_loss,
    symmetric_kl,
)
from fastadapt.config import ConfigError

from .conftest import SENTENCES, TRAINING


def kl_by_hand(mean_p, var_p, mean_q, var_q) -> float:
    """KL(N(mean_p, var_p) || N(mean_q, var_q)) for diagonal Gaussians, one dimension at a time."""
    return 0.5 * sum(vp / vq + (mq - mp) ** 2 / vq - 1.0 + math.log(vq / vp)
                     for mp, vp, mq, vq in zip(mean_p, var_p, mean_q, var_q))


def test_symmetric_kl_equals_the_pairwise_formula():
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    variance = torch.rand(4, 3, generator=generator, dtype=torch.float64) + 0.2
    distances = symmetric_kl(mean, variance)
    for p in range(4):
        for q in range(4):
            expected = 0.5 * (kl_by_hand(mean[p].tolist(), variance[p].tolist(), mean[q].tolist(), variance[q].tolist())
                              + kl_by_hand(mean[q].tolist(), variance[q].tolist(), mean[p].tolist(), variance[p].tolist()))
            assert distances[p, q].item() == pytest.approx(expected, abs=1e-9)
    assert torch.allclose(distances.diagonal(), torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_loss_is_the_log_ratio_of_same_tag_to_all_other_similarities():
    mean = torch.tensor([[0.0], [0.1], [3.0]], dtype=torch.float64)
    variance = torch.ones(3, 1, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    d = symmetric_kl(mean, variance)
    # Tokens 0 and 1 share a tag; token 2 has no partner, so it is no anchor.
    expected = [-math.log(math.exp(-d[0, 1]) / (math.exp(-d[0, 1]) + math.exp(-d[0, 2]))),
                -math.log(math.exp(-d[1, 0]) / (math.exp(-d[1, 0]) + math.exp(-d[1, 2])))]
    assert container_loss(mean, variance, labels).item() == pytest.approx(sum(expected) / 2)
    # Pulling the two apart from the third lowers the loss.
    far = torch.tensor([[0.0], [0.1], [9.0]], dtype=torch.float64)
    assert container_loss(far, variance, labels) < container_loss(mean, variance, labels)


def test_loss_without_any_same_tag_pair_is_zero_and_keeps_a_gradient():
    mean = torch.randn(3, 2, requires_grad=True)
    loss = container_loss(mean, torch.ones(3, 2), torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and mean.grad is not None


def test_projection_variances_are_positive():
    _, variance = GaussianProjection(8, 4)(torch.full((5, 8), -50.0))
    assert torch.all(variance > 0)


def test_settings_parse_and_errors_name_the_parameter():
    config = AdaptationConfig.from_params({"strategy": "full", "token_contrastive": {"weight": 0.5},
                                           "training": {"max_steps": 2}})
    assert config.token_contrastive == TokenContrastiveSettings(weight=0.5, dim=128)
    with pytest.raises(ConfigError, match=r"adaptation\.strategy\.token_contrastive\.weight is 0"):
        AdaptationConfig.from_params({"strategy": "full", "token_contrastive": {"weight": 0}})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['token_contrastive'\]"):
        AdaptationConfig.from_params({"strategy": "head", "token_contrastive": {}})


def test_a_tagger_trained_with_the_objective_separates_tags_and_records_it(tiny_backbone):
    tokens, tags = [t for t, _ in SENTENCES], [t for _, t in SENTENCES]
    training = {**TRAINING, "max_steps": 30, "lr": 0.005}
    plain = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": "full", "device": "cpu", "training": training}))
    contrastive = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": "full", "device": "cpu", "training": training, "token_contrastive": {"dim": 8}}))
    assert contrastive.training["token_contrastive"] == {"weight": 10.0, "dim": 8}
    assert "token_contrastive" not in plain.training
    # Same data, seed and steps: only the objective differs, so the encoders differ.
    plain_states = plain.word_features(tokens)[0]
    contrastive_states = contrastive.word_features(tokens)[0]
    assert not all(torch.allclose(torch.as_tensor(a), torch.as_tensor(b)) for a, b in zip(plain_states, contrastive_states))
    # The head was trained beside the objective: the tagger still tags its training sentences.
    predicted = contrastive.predict(tokens)
    correct = sum(p == t for ps, ts in zip(predicted, tags) for p, t in zip(ps, ts))
    assert correct / sum(map(len, tags)) > 0.8


def test_the_trained_module_is_the_tagger_plus_a_projection(tiny_backbone):
    from fastadapt.adaptation.classifier import LinearHead
    from fastadapt.adaptation.ner import TokenClassifierModule

    tagger = TokenClassifierModule(tiny_backbone.model, LinearHead(tiny_backbone.hidden_size, 3, 0.0))
    module = ContrastiveTaggerModule(tagger, TokenContrastiveSettings(weight=2.0, dim=4), tiny_backbone.hidden_size)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    labels = torch.tensor([[-100, 0, 1, 0, -100]])
    tiny_backbone.model.eval()
    with torch.no_grad():
        loss = module(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        hidden = tiny_backbone.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        cross_entropy = torch.nn.functional.cross_entropy(tagger.classify(hidden).reshape(-1, 3), labels.reshape(-1),
                                                          ignore_index=-100)
        contrastive = container_loss(*module.projection(hidden[0, 1:4]), torch.tensor([0, 1, 0]))
    assert contrastive.item() > 0
    assert loss.item() == pytest.approx(cross_entropy.item() + 2.0 * contrastive.item(), rel=1e-5)


def test_early_stopping_validates_the_tagger_on_its_cross_entropy(tiny_backbone):
    """With the objective, validation scores the tagger inside the trained module (its head's
    cross-entropy on the validation sentences), so early stopping works as without it."""
    tokens, tags = [t for t, _ in SENTENCES], [t for _, t in SENTENCES]
    training = {**TRAINING, "max_steps": 12, "eval_every": 4, "early_stop_patience": 5}
    tagger = fit_tagger(tiny_backbone, tokens[:4], tags[:4], AdaptationConfig.from_params(
        {"strategy": "full", "device": "cpu", "training": training, "token_contrastive": {"dim": 8}}),
        validation=(tokens[4:], tags[4:]))
    assert tagger.training["best_step"] in (4, 8, 12)
    assert tagger.training["token_contrastive"] == {"weight": 10.0, "dim": 8}
