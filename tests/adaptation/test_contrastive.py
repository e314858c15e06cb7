"""SetFit's contrastive step: pairs as its paper draws them, from the fit's seed; a tuned copy of
the encoder that pulls a class together, while the learner passed in stays as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastadapt.adaptation import AdaptationConfig, fit_classifier
from fastadapt.adaptation.contrastive import ContrastiveSettings, contrastive_tune, support_pairs
from fastadapt.config import ConfigError
from fastadapt.models.encoder import embed_texts
from tests.adaptation.conftest import config, labelled_texts


def test_each_text_gets_one_partner_of_its_class_and_one_of_another_per_iteration():
    labels = ["a", "a", "b", "b", "b", "c"]
    first, second, target = support_pairs(labels, num_iterations=3, seed=0)
    assert len(target) == 2 * 3 * len(labels) and target.sum() == 3 * len(labels)
    for i, j, t in zip(first, second, target):
        same = labels[i] == labels[j]
        assert same == (t == 1.0)
        if t == 1.0 and labels.count(labels[i]) > 1:
            assert i != j  # a text pairs with itself only when it is its class's only one
    assert sorted(np.bincount(first)) == [6] * len(labels)
    again = support_pairs(labels, 3, seed=0)
    other = support_pairs(labels, 3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((first, second, target), again))
    assert not np.array_equal(second, other[1])


def _class_separation(backbone, texts, labels) -> float:
    """Mean cosine within classes minus mean cosine across them."""
    vectors = embed_texts(backbone, texts, device="cpu", progress=False, precision="no")
    cosine = vectors @ vectors.T
    same = np.equal.outer(labels, labels) & ~np.eye(len(labels), dtype=bool)
    return float(cosine[same].mean() - cosine[~np.equal.outer(labels, labels)].mean())


def test_the_step_pulls_classes_apart_on_a_copy(tiny_backbone):
    texts, labels = labelled_texts()
    before = {k: v.clone() for k, v in tiny_backbone.model.state_dict().items()}
    settings = ContrastiveSettings(num_iterations=4, batch_size=8, lr=3e-3, max_steps=None, max_length=32)
    tuned, summary = contrastive_tune(tiny_backbone, texts, labels, settings, device="cpu")
    assert summary["pairs"] == 2 * 4 * len(texts) and summary["steps"] == settings.steps(len(texts)) == 18
    assert _class_separation(tuned, texts, labels) > _class_separation(tiny_backbone, texts, labels) + 0.05
    assert all(torch.equal(before[k], v) for k, v in tiny_backbone.model.state_dict().items())


def test_a_head_on_the_tuned_encoder_carries_it_and_records_the_step(tiny_backbone, tmp_path):
    texts, labels = labelled_texts()
    model = fit_classifier(tiny_backbone, texts, labels, config(
        "head", head_init="prototype", contrastive={"num_iterations": 2, "batch_size": 8, "lr": 3e-3, "max_steps": 5}))
    assert model.training["contrastive"] == {**model.training["contrastive"], "pairs": 2 * 2 * len(texts), "steps": 5}
    assert model.backbone.model is not tiny_backbone.model
    cached = embed_texts(tiny_backbone, texts, normalize=False, device="cpu", progress=False)
    # Features of the untuned encoder do not apply to a tuned one: they are recomputed, not used.
    with_cache = fit_classifier(tiny_backbone, texts, labels, config(
        "head", head_init="prototype", contrastive={"num_iterations": 2, "batch_size": 8, "lr": 3e-3, "max_steps": 5}),
        features=cached)
    np.testing.assert_allclose(with_cache.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    model.save_directory(tmp_path / "model")
    loaded = type(model).load_directory(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)


def test_contrastive_is_a_setting_of_the_frozen_feature_strategies_only():
    prototype = AdaptationConfig.from_params({"strategy": "prototype", "contrastive": {"num_iterations": 2}})
    assert prototype.contrastive == ContrastiveSettings(num_iterations=2)
    assert AdaptationConfig.from_params({"strategy": "prototype"}).contrastive is None
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['contrastive'\]"):
        AdaptationConfig.from_params({"strategy": "full", "contrastive": {}, "training": {"max_steps": 1}})
    with pytest.raises(ConfigError, match=r"adaptation\.strategy\.contrastive\.num_iterations"):
        AdaptationConfig.from_params({"strategy": "head", "contrastive": {"num_iterations": 0},
                                      "training": {"max_steps": 1}})


def test_a_tagger_refuses_the_contrastive_step(tiny_backbone):
    from fastadapt.adaptation import fit_tagger
    from tests.adaptation.conftest import SENTENCES

    with pytest.raises(ValueError, match="contrastive .* applies to text classifiers only"):
        fit_tagger(tiny_backbone, [t for t, _ in SENTENCES], [g for _, g in SENTENCES],
                   config("head", contrastive={"num_iterations": 1}))


def test_the_step_runs_only_within_its_class_and_support_limits(tiny_backbone):
    texts, labels = labelled_texts()
    n_classes = len(set(labels))
    per_class = len(texts) / n_classes
    settings = ContrastiveSettings(max_classes=n_classes, min_per_class=per_class)
    assert settings.skip_reason(len(texts), n_classes) is None
    assert settings.skip_reason(len(texts), n_classes + 1) == f"{n_classes + 1} classes > max_classes {n_classes}"
    assert "texts per class < min_per_class" in ContrastiveSettings(min_per_class=per_class + 1).skip_reason(
        len(texts), n_classes)
    block = {"num_iterations": 2, "batch_size": 8, "lr": 3e-3, "max_steps": 5, "max_classes": n_classes - 1}
    skipped = fit_classifier(tiny_backbone, texts, labels, config("head", head_init="prototype", contrastive=block))
    plain = fit_classifier(tiny_backbone, texts, labels, config("head", head_init="prototype"))
    assert skipped.training["contrastive"] == {"skipped": f"{n_classes} classes > max_classes {n_classes - 1}"}
    assert skipped.backbone.model is tiny_backbone.model and not skipped.encoder_tuned
    np.testing.assert_allclose(skipped.predict_proba(texts), plain.predict_proba(texts), atol=1e-6)
    with pytest.raises(ConfigError, match=r"contrastive\.max_classes"):
        ContrastiveSettings.from_params({"max_classes": 1}, "contrastive")


def test_predictions_never_read_cached_features_of_the_encoder_the_step_tuned(tiny_backbone):
    import pandas as pd

    from fastadapt.adaptation.cache import classification_table

    texts, labels = labelled_texts()
    tuned = fit_classifier(tiny_backbone, texts, labels, config(
        "head", head_init="prototype", contrastive={"num_iterations": 2, "batch_size": 8, "lr": 3e-3, "max_steps": 5}))
    assert tuned.encoder_tuned
    rows = pd.DataFrame({"row_id": range(len(texts)), "text": texts, "label": labels})
    stale = embed_texts(tiny_backbone, texts, normalize=False, device="cpu", progress=False)
    table = classification_table(tuned, rows, stale)
    assert list(table["predicted"]) == list(tuned.predict(texts))
