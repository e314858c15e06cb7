"""Each algorithm's training step on a tiny BERT and a trivially separable task; adaptation."""

import numpy as np
import pytest
import torch

from fastadapt.meta import (
    ANIL,
    FOMAML,
    MAML,
    MetaConfig,
    MetaLearner,
    ProtoNet,
    Reptile,
    build_algorithm,
    build_learner,
    episode_loss,
)
from fastadapt.models.predictor import TextClassifier
from fastadapt.tasks.meta_episodes import LabelledEpisodeSource

from tests.meta.conftest import KEYWORDS, toy_rows

SOURCE = LabelledEpisodeSource(toy_rows(), n_way=3, k_shot=3, n_query=4)
EPISODES = [SOURCE.sample(np.random.default_rng([0, b])) for b in range(2)]

SETTINGS = {
    "protonet": {"outer_lr": 1e-2},
    "maml": {"outer_lr": 1e-2, "inner_lr": 0.5, "inner_steps": 3},
    "maml_meta_sgd": {"algorithm": "maml", "outer_lr": 1e-2, "inner_lr": 0.5, "inner_steps": 3, "meta_sgd": True},
    "maml_lora_checkpointed": {"algorithm": "maml", "outer_lr": 1e-2, "inner_lr": 0.5, "inner_steps": 3,
                                   "inner_params": "lora", "lora": {"r": 2, "lora_alpha": 4, "lora_dropout": 0.0},
                                   "gradient_checkpointing": True},
    "fomaml": {"outer_lr": 1e-2, "inner_lr": 0.5, "inner_steps": 3},
    "anil": {"outer_lr": 1e-2, "inner_lr": 0.5, "inner_steps": 3},
    "reptile": {"outer_lr": 1e-2, "inner_lr": 0.05, "inner_steps": 5},
}


def make(tiny_backbone, name, **extra):
    settings = {"algorithm": name, **SETTINGS[name], **extra}
    config = MetaConfig.from_params({"n_way": 3, **settings})
    learner = build_learner(tiny_backbone(), config)
    return learner, build_algorithm(learner, config)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_meta_train_step_decreases_the_loss(tiny_backbone, name):
    _learner, algorithm = make(tiny_backbone, name)
    torch.manual_seed(0)
    losses = [algorithm.meta_train_step(EPISODES)["loss"] for _ in range(16)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:2]), losses


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_adapt_returns_a_text_classifier_and_leaves_the_learner_unchanged(tiny_backbone, name):
    learner, algorithm = make(tiny_backbone, name)
    algorithm.meta_train_step(EPISODES)
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    episode = EPISODES[0]
    predictor = algorithm.adapt(list(episode.support_texts), list(episode.support_labels))
    assert isinstance(predictor, TextClassifier)
    assert predictor.classes_ == sorted(set(episode.support_labels))
    proba = predictor.predict_proba(list(episode.query_texts))
    assert proba.shape == (len(episode.query_texts), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(predictor.predict(list(episode.query_texts))) <= set(predictor.classes_)
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())
    scores = algorithm.evaluate(episode)
    predicted = np.asarray(predictor.predict(list(episode.query_texts)))
    assert scores["accuracy"] == pytest.approx(np.mean(predicted == np.asarray(episode.query_labels)))
    assert np.isfinite(scores["loss"])


def test_a_five_way_head_adapts_to_more_classes(tiny_backbone):
    _learner, algorithm = make(tiny_backbone, "maml")
    big = LabelledEpisodeSource(toy_rows(), n_way=None, k_shot=2, n_query=2).sample(np.random.default_rng(1))
    predictor = algorithm.adapt(big.support_texts, big.support_labels)
    assert predictor.classes_ == sorted(KEYWORDS)
    assert predictor.predict_proba(big.query_texts).shape == (len(big.query_texts), len(KEYWORDS))


def test_anil_adapts_only_the_head_and_lora_only_adapters_and_head(tiny_backbone):
    episode = EPISODES[0]
    _, anil = make(tiny_backbone, "anil")
    assert set(anil.adapt(episode.support_texts, episode.support_labels).params) == {"head.weight", "head.bias"}
    _, lora = make(tiny_backbone, "maml_lora_checkpointed")
    names = set(lora.adapt(episode.support_texts, episode.support_labels).params)
    assert {"head.weight", "head.bias"} < names
    assert all(n.startswith("head.") or "lora_" in n for n in names)


def test_meta_sgd_learns_the_inner_learning_rates(tiny_backbone):
    _, algorithm = make(tiny_backbone, "maml_meta_sgd")
    before = {k: v.clone() for k, v in algorithm.inner_lrs.items()}
    algorithm.meta_train_step(EPISODES)
    assert any(not torch.equal(before[k], v) for k, v in algorithm.inner_lrs.items())


def test_reptile_with_sgd_and_unit_step_moves_to_the_mean_adapted_weights(tiny_backbone):
    learner, reptile = make(tiny_backbone, "reptile", outer_optimizer="sgd", outer_lr=1.0)
    torch.manual_seed(7)
    phis = [reptile._train_on_episode(e)[0] for e in EPISODES]
    torch.manual_seed(7)
    reptile.meta_train_step(EPISODES)
    own = dict(learner.named_parameters())
    for name in reptile.inner_names:
        expected = (phis[0][name] + phis[1][name]) / 2
        torch.testing.assert_close(own[name].detach(), expected.detach(), rtol=1e-5, atol=1e-6)


def test_protonet_adaptation_is_the_class_means(tiny_backbone):
    learner, protonet = make(tiny_backbone, "protonet")
    episode = EPISODES[0]
    predictor = protonet.adapt(episode.support_texts, episode.support_labels)
    features = learner.embed(episode.support_texts)
    targets = torch.as_tensor(episode.targets("support"))
    expected = torch.stack([features[targets == c].mean(0) for c in range(3)])
    torch.testing.assert_close(predictor.prototypes, expected)
    loss, accuracy = episode_loss(learner.eval(), learner.prepare(episode))
    predicted = np.asarray(predictor.predict(list(episode.query_texts)))
    assert loss.requires_grad
    assert float(accuracy) == pytest.approx(np.mean(predicted == np.asarray(episode.query_labels)))


def test_algorithms_check_their_learner(tiny_backbone):
    with pytest.raises(ValueError, match="head='prototype'"):
        ProtoNet(MetaLearner(tiny_backbone(), head="linear"))
    with pytest.raises(ValueError, match="head='linear'"):
        MAML(MetaLearner(tiny_backbone(), head="prototype"))
    with pytest.raises(ValueError, match="needs LoRA adapters: build the learner with lora"):
        MAML(MetaLearner(tiny_backbone(), head="linear"), inner_params="lora")
    with pytest.raises(ValueError, match="inner_params must be 'head'"):
        ANIL(MetaLearner(tiny_backbone(), head="linear"), inner_params="all")
    with pytest.raises(ValueError, match="meta_sgd"):
        Reptile(MetaLearner(tiny_backbone(), head="linear"), meta_sgd=True)
    assert FOMAML(MetaLearner(tiny_backbone(), head="linear")).first_order


def test_smlmt_episodes_in_a_mixture_train_with_the_tokenizers_mask(tiny_backbone):
    from fastadapt.tasks.meta_episodes import MixtureSource, SmlmtSource

    learner, protonet = make(tiny_backbone, "protonet")
    mask = learner.tokenizer.mask_token
    smlmt = SmlmtSource(toy_rows()["text"].tolist(), n_way=3, k_shot=2, n_query=2, min_word_count=5,
                        mask_token=mask)
    episode = smlmt.sample(np.random.default_rng(0))
    ids = learner.batch(episode.support_texts)["input_ids"]
    assert (ids == learner.tokenizer.mask_token_id).sum() >= len(episode.support_texts)
    mixture = MixtureSource({"intents": SOURCE, "smlmt": smlmt}, {"intents": 1.0, "smlmt": 1.0})
    drawn = [mixture.sample(np.random.default_rng([2, i])) for i in range(4)]
    assert {e.source for e in drawn} == {"intents", "smlmt"}
    assert np.isfinite(protonet.meta_train_step(drawn)["loss"])
