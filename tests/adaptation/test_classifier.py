"""Text classification: prototype, head, full and LoRA fits on a tiny BERT; save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastadapt.adaptation import (
    AdaptStrategy,
    EncoderClassifier,
    fit_classifier,
)
from fastadapt.models.encoder import embed_texts
from fastadapt.models.predictor import TextClassifier
from fastadapt.tasks.kshot import KShotError

from tests.adaptation.conftest import TRAINING, config, labelled_texts


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_prototypes_are_class_means_of_the_support_features(tiny_backbone, metric):
    texts, labels = labelled_texts()
    model = fit_classifier(tiny_backbone, texts, labels, config("prototype", metric=metric))
    assert isinstance(model, TextClassifier) and model.classes_ == ["account", "billing", "delivery"]
    features = torch.nn.functional.normalize(torch.as_tensor(model.embed(texts)), dim=-1)
    labels_array = np.asarray(labels)
    expected = torch.stack([features[torch.as_tensor(labels_array == c)].mean(0) for c in model.classes_])
    assert torch.allclose(model.head.prototypes, expected, atol=1e-5)
    if metric == "cosine":
        logits = 10.0 * torch.nn.functional.normalize(features, dim=-1) @ torch.nn.functional.normalize(expected, dim=-1).T
    else:
        logits = -torch.cdist(features, expected).pow(2)
    proba = model.predict_proba(texts)
    assert np.allclose(proba, torch.softmax(logits, -1).numpy(), atol=1e-5)
    assert np.allclose(proba.sum(1), 1.0)
    assert list(model.predict(texts)) == [model.classes_[i] for i in proba.argmax(1)]


def test_cached_features_give_the_same_model(tiny_backbone):
    """Features computed once (the pipeline's per-domain cache) fit what fitting on texts fits."""
    texts, labels = labelled_texts()
    cache = embed_texts(tiny_backbone, texts, normalize=False, device="cpu", progress=False)
    for strategy in ("prototype", "head"):
        direct = fit_classifier(tiny_backbone, texts, labels, config(strategy))
        cached = fit_classifier(tiny_backbone, texts, labels, config(strategy), features=cache)
        assert np.allclose(direct.predict_proba(texts), cached.predict_proba(texts), atol=1e-5)
        assert np.allclose(cached.predict_proba_features(cache), cached.predict_proba(texts), atol=1e-5)


def test_head_trains_only_the_head_and_learns_the_support(tiny_backbone):
    texts, labels = labelled_texts()
    before = weights(tiny_backbone.model)
    model = fit_classifier(tiny_backbone, texts, labels,
                           config("head", training={**TRAINING, "max_steps": 150, "lr": 0.1}))
    assert model.backbone is tiny_backbone  # frozen encoder, shared
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_backbone.model).items())
    # A random tiny encoder: its features separate the support well, not perfectly.
    assert (model.predict(texts) == np.asarray(labels)).mean() >= 0.75
    assert model.training["final_loss"] < 0.8 * np.log(3)
    assert model.training["stop_reason"] == "max_steps" and model.training["steps"] == 150


def test_lora_trains_adapters_and_merges_them_into_a_plain_encoder(tiny_backbone):
    from peft import PeftModel

    texts, labels = labelled_texts()
    before = weights(tiny_backbone.model)
    model = fit_classifier(tiny_backbone, texts, labels,
                           config("lora", lora={"r": 4, "lora_alpha": 8},
                                  training={**TRAINING, "max_steps": 80, "lr": 0.05}))
    # The caller's backbone is untouched; the model's encoder is a plain BertModel, merged.
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_backbone.model).items())
    encoder = model.backbone.model
    assert type(encoder) is type(tiny_backbone.model) and not isinstance(encoder, PeftModel)
    assert not any("lora" in name for name in encoder.state_dict())
    changed = {k for k, v in weights(encoder).items() if k in before and not torch.equal(before[k], v)}
    # Only the adapted projections moved (query and value, peft's targets here).
    assert changed and all(".query." in k or ".value." in k for k in changed), sorted(changed)
    assert (model.predict(texts) == np.asarray(labels)).mean() >= 0.8


def test_full_fine_tuning_changes_a_copy_of_every_layer(tiny_backbone):
    texts, labels = labelled_texts()
    before = weights(tiny_backbone.model)
    model = fit_classifier(tiny_backbone, texts, labels, config("full", training={**TRAINING, "max_steps": 80, "lr": 0.002}))
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_backbone.model).items())
    after = weights(model.backbone.model)
    assert not torch.equal(before["encoder.layer.0.intermediate.dense.weight"],
                           after["encoder.layer.0.intermediate.dense.weight"])
    assert (model.predict(texts) == np.asarray(labels)).mean() >= 0.8


def test_same_seed_same_model(tiny_backbone):
    texts, labels = labelled_texts()
    first = fit_classifier(tiny_backbone, texts, labels, config("lora", training={**TRAINING, "max_steps": 10}))
    second = fit_classifier(tiny_backbone, texts, labels, config("lora", training={**TRAINING, "max_steps": 10}))
    assert np.array_equal(first.predict_proba(texts), second.predict_proba(texts))


@pytest.mark.parametrize("strategy", ["prototype", "head", "lora"])
def test_save_and_load_give_the_same_predictions(tiny_backbone, tmp_path, strategy):
    texts, labels = labelled_texts()
    model = fit_classifier(tiny_backbone, texts, labels, config(strategy))
    model.save_directory(tmp_path / "model")
    assert {"classifier.json", "head.safetensors", "backbone"} <= {p.name for p in (tmp_path / "model").iterdir()}
    assert (tmp_path / "model" / "backbone" / "model.safetensors").is_file()
    loaded = EncoderClassifier.load_directory(tmp_path / "model")
    assert (loaded.classes_, loaded.strategy) == (model.classes_, AdaptStrategy.parse(strategy, "s", short_names=True))
    assert loaded.strategy is model.strategy and loaded.strategy.short == strategy
    # Folders saved before the one vocabulary hold the pipeline's short name: they still load.
    info = tmp_path / "model" / "classifier.json"
    info.write_text(info.read_text().replace(f'"{model.strategy.value}"', f'"{strategy}"'))
    assert EncoderClassifier.load_directory(tmp_path / "model").strategy is model.strategy
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


def test_kshot_subset_and_a_k_larger_than_a_class(tiny_backbone):
    texts, labels = labelled_texts()
    model = fit_classifier(tiny_backbone, texts, labels, config("prototype"), k=2, seed=0)
    assert model.classes_ == ["account", "billing", "delivery"]
    with pytest.raises(KShotError, match=r"cannot draw 7-shot: class 'account' has 6 rows.*class 'billing' has 6"):
        fit_classifier(tiny_backbone, texts, labels, config("prototype"), k=7, seed=0)


def test_bad_inputs_are_refused(tiny_backbone):
    texts, labels = labelled_texts()
    with pytest.raises(ValueError, match="at least two classes"):
        fit_classifier(tiny_backbone, texts[:3], labels[:3], config("prototype"))
    with pytest.raises(ValueError, match="same length"):
        fit_classifier(tiny_backbone, texts, labels[:-1], config("prototype"))
    with pytest.raises(ValueError, match="only used by frozen-encoder strategies"):
        fit_classifier(tiny_backbone, texts, labels, config("full"), features=np.zeros((len(texts), 32)))
