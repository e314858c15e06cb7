"""A prototype-initialised head is the prototype classifier before its first step (text classes
and NER tags); class names join the support set only where the labels are words."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastadapt.adaptation import AdaptationConfig, fit_classifier, fit_tagger
from fastadapt.adaptation.classifier import LinearHead, PrototypeHead
from fastadapt.adaptation.fit import initialise_from_prototypes
from fastadapt.config import ConfigError
from tests.adaptation.conftest import SENTENCES, labelled_texts


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_prototype_initialised_head_equals_the_prototype_classifier(metric):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(30, 8, generator=generator)
    targets = torch.arange(30) % 3
    config = AdaptationConfig.from_params({"strategy": "head", "head_init": "prototype", "metric": metric,
                                           "temperature": 7.0, "training": {"max_steps": 1}})
    x = torch.nn.functional.normalize(features, dim=-1) if config.normalize_features else features
    head = LinearHead(8, 3, dropout=0.0)
    initialise_from_prototypes(head, x, targets, config)
    prototype = PrototypeHead.from_features(x, targets, 3, metric, 7.0)
    queries = torch.randn(50, 8, generator=generator)
    queries = torch.nn.functional.normalize(queries, dim=-1) if config.normalize_features else queries
    head.eval()
    with torch.no_grad():
        expected = torch.softmax(prototype(queries), dim=-1)
        got = torch.softmax(head(queries), dim=-1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_full_fine_tuning_starts_from_the_prototype_classifier(tiny_backbone):
    texts, labels = labelled_texts()
    zero_steps = {"max_steps": 1, "lr": 1e-12, "warmup_ratio": 0.0, "batch_size": 4}
    tuned = fit_classifier(tiny_backbone, texts, labels, AdaptationConfig.from_params(
        {"strategy": "full", "head_init": "prototype", "dropout": 0.0, "training": zero_steps}))
    prototypes = fit_classifier(tiny_backbone, texts, labels, AdaptationConfig.from_params(
        {"strategy": "prototype", "normalize": True}))
    queries = ["where is my parcel", "reset my password", "I was charged twice"]
    assert np.allclose(tuned.predict_proba(queries), prototypes.predict_proba(queries), atol=1e-4)


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_a_token_head_starts_as_the_token_prototype_classifier(tiny_backbone, strategy):
    tokens, tags = [list(t) for t, _ in SENTENCES], [list(g) for _, g in SENTENCES]
    zero_steps = {"max_steps": 1, "lr": 1e-12, "warmup_ratio": 0.0, "batch_size": 4}
    tagger = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": strategy, "head_init": "prototype", "dropout": 0.0, "training": zero_steps}))
    prototypes = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": "prototype", "normalize": True}))
    assert tagger.tags_ == prototypes.tags_
    queries = [["Jane", "visited", "Paris", "."], ["Globex", "hired", "Alice", "Jones", "."]]
    got = np.concatenate(tagger.log_probs_features(*tagger.word_features(queries)))
    expected = np.concatenate(prototypes.log_probs_features(*prototypes.word_features(queries)))
    assert np.allclose(np.exp(got), np.exp(expected), atol=1e-4)
    random_start = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": strategy, "dropout": 0.0, "training": zero_steps}))
    other = np.concatenate(random_start.log_probs_features(*random_start.word_features(queries)))
    assert not np.allclose(np.exp(other), np.exp(expected), atol=1e-2)


def test_label_names_add_one_support_text_per_worded_class(tiny_backbone):
    texts, labels = labelled_texts()
    config = AdaptationConfig.from_params({"strategy": "prototype", "label_names": True})
    with_names = fit_classifier(tiny_backbone, texts[:2] + texts[6:8] + texts[12:14],
                                labels[:2] + labels[6:8] + labels[12:14], config)
    without = fit_classifier(tiny_backbone, texts[:2] + texts[6:8] + texts[12:14],
                             labels[:2] + labels[6:8] + labels[12:14],
                             AdaptationConfig.from_params({"strategy": "prototype"}))
    assert not torch.allclose(with_names.head.prototypes, without.head.prototypes)


def test_head_init_is_validated():
    with pytest.raises(ConfigError, match="head_init"):
        AdaptationConfig.from_params({"strategy": "full", "head_init": "zeros", "training": {}})
