"""`MetaLearner.cached_features`: a frozen learner embeds each text once for many episodes."""

from __future__ import annotations

import torch

from fastadapt.meta import MetaLearner

from tests.meta.conftest import toy_rows

TEXTS = toy_rows()["text"].tolist()[:12]


def test_cached_features_are_the_learner_s_own_and_stop_with_the_block(tiny_backbone):
    learner = MetaLearner(tiny_backbone(), head="prototype")
    expected = learner.embed(TEXTS[3:7])
    with learner.cached_features(TEXTS):
        with torch.no_grad():  # changed weights inside the block: the cache still answers
            for parameter in learner.encoder.parameters():
                parameter.add_(0.5)
        cached = learner.embed(TEXTS[3:7])
        assert torch.equal(cached, expected)
        assert torch.equal(learner.embed([TEXTS[5], TEXTS[3]]), expected[[2, 0]])
        # a text outside the set, or other weights, are embedded afresh
        fresh = learner.embed([TEXTS[3], "a new text"])
        assert not torch.allclose(fresh[0], expected[0])
        params = dict(learner.named_parameters())
        assert not torch.allclose(learner.embed(TEXTS[3:4], params)[0], expected[0])
    assert not torch.allclose(learner.embed(TEXTS[3:4])[0], expected[0])
    assert learner.embed([]).shape == (0, learner.hidden_size)
