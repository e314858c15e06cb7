"""Few-shot NER: NNShot scoring, StructShot's abstract transitions, valid IOB2 decoding, source
taggers that never see a held-out type, casing features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastadapt.adapt import adapt
from fastadapt.adaptation import AdaptationConfig, EncoderTagger, fit_tagger, viterbi_iob2
from fastadapt.adaptation.ner import CASING_CLASSES, casing_class, casing_features
from fastadapt.adaptation.nnshot import AbstractTransitions, NearestNeighbourHead, abstract_kind
from fastadapt.adaptation.transfer import HeldOutLeakError, check_no_leak, hold_out_types, pretrain_tagger
from fastadapt.config import ConfigError
from fastadapt.models.baselines import repair_iob2

from tests.adaptation.conftest import SENTENCES

TRAINING = {"max_steps": 30, "batch_size": 8, "lr": 0.01, "device": "cpu", "num_threads": 1, "log_every": 5}


def support_frame() -> pd.DataFrame:
    return pd.DataFrame({"tokens": [t for t, _ in SENTENCES], "tags": [g for _, g in SENTENCES]})


def test_nnshot_scores_o_by_the_nearest_o_token_not_by_an_o_prototype():
    # Two O tokens far apart (their mean sits at the origin) and one PER token.
    support = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.3, 1.0]])
    head = NearestNeighbourHead(support, torch.tensor([0, 0, 1]), n_classes=3, temperature=1.0)
    query = torch.tensor([[0.8, 0.5]])
    logits = head(query)[0]
    # nearest O: (0.2^2 + 0.5^2) = 0.29; PER: 0.5^2 + 0.5^2 = 0.5; tag 2 has no support token.
    assert logits[0].item() == pytest.approx(-0.29, abs=1e-5)
    assert logits[1].item() == pytest.approx(-0.50, abs=1e-5)
    assert logits[2].item() == -1e4
    assert int(logits.argmax()) == 0
    # A single O prototype (the mean, the origin: 0.89 away) would have said PER.
    assert float(((query - support[:2].mean(0)) ** 2).sum()) > 0.5
    # Batched shapes are kept: (batch, words, dim) -> (batch, words, tags).
    assert head(torch.zeros(2, 4, 2)).shape == (2, 4, 3)


def test_abstract_transitions_are_counted_per_kind_of_previous_tag():
    sequences = [["B-PER", "I-PER", "O"], ["O", "B-LOC", "B-PER"], ["O", "O"]]
    estimate = AbstractTransitions.from_tag_sequences(sequences, smoothing=0.0).probabilities
    assert estimate["start"] == {"O": pytest.approx(2 / 3), "B": pytest.approx(1 / 3)}
    assert estimate["O"] == {"O": 0.5, "B": 0.5}  # O -> B-LOC, O -> O
    assert estimate["B"] == {"O": 0.0, "B_same": 0.0, "B_other": 0.5, "I_same": 0.5}
    assert estimate["I"] == {"O": 1.0, "B_same": 0.0, "B_other": 0.0, "I_same": 0.0}
    assert abstract_kind("O", "I-PER") is None and abstract_kind("B-LOC", "I-PER") is None
    assert abstract_kind(None, "B-PER") == "B" and abstract_kind("I-PER", "B-PER") == "B_same"


def test_abstract_transitions_spread_over_a_new_tag_set():
    transitions = AbstractTransitions.from_tag_sequences([["O", "B-PER", "I-PER", "O"], ["B-LOC", "O"]])
    tags = ["O", "B-city", "I-city", "B-band", "I-band", "B-song", "I-song"]
    start, matrix = transitions.log_scores(tags)
    table = transitions.probabilities
    # O -> B is shared evenly over the three new types, rows are distributions over allowed tags.
    assert np.exp(matrix[0, 1]) == pytest.approx(table["O"]["B"] / 3)
    assert np.exp(matrix[0, 2]) == 0.0 and np.exp(start[2]) == 0.0
    assert np.exp(matrix[1, 2]) == pytest.approx(table["B"]["I_same"])
    assert np.isinf(matrix[1, 4]) and np.isinf(matrix[2, 6])  # I of another type
    assert np.exp(matrix[1, 3]) == pytest.approx(table["B"]["B_other"] / 2)
    np.testing.assert_allclose(np.exp(matrix).sum(1), 1.0)
    assert np.exp(start).sum() == pytest.approx(1.0)
    assert AbstractTransitions.from_dict(transitions.to_dict()) == transitions


def test_structshot_decoding_is_valid_iob2_whatever_the_scores():
    rng = np.random.default_rng(0)
    tags = ["O", "B-A", "I-A", "B-B", "I-B", "B-C", "I-C"]
    for trial in range(200):
        sequences = [[tags[i] for i in rng.integers(0, len(tags), rng.integers(1, 8))] for _ in range(5)]
        transitions = AbstractTransitions.from_tag_sequences(sequences, smoothing=float(rng.random()))
        emissions = np.log(rng.dirichlet(np.full(len(tags), 0.3), size=int(rng.integers(1, 15))))
        start, matrix = transitions.log_scores(tags)
        decoded = viterbi_iob2(emissions, tags, (start * 3.0, matrix * 3.0))
        assert decoded == repair_iob2(decoded), (trial, decoded)
        assert len(decoded) == len(emissions)


def test_nnshot_and_structshot_through_adapt_on_a_tiny_model(tiny_backbone, tmp_path):
    support = support_frame()
    nnshot = adapt(tiny_backbone, support, "nnshot", device="cpu")
    # Every support word is its own nearest neighbour: the support comes back exactly.
    assert nnshot.predict(support["tokens"].tolist()) == support["tags"].tolist()
    assert nnshot.strategy == "nnshot" and nnshot.adaptation_seconds > 0
    structshot = adapt(tiny_backbone, support, "structshot", device="cpu", transition_weight=2.0)
    unseen = [["Globex", "opened", "in", "York", "and", "Jane", "Jones", "left"], ["in"], []]
    predicted = structshot.predict(unseen)
    assert [len(p) for p in predicted] == [8, 1, 0]
    assert all(p == repair_iob2(p) for p in predicted)
    assert structshot.model.transitions is not None  # estimated on the support: no source tagger
    structshot.model.save_directory(tmp_path / "structshot")
    loaded = EncoderTagger.load_directory(tmp_path / "structshot")
    assert loaded.predict(unseen) == predicted and loaded.transitions == structshot.model.transitions
    with pytest.raises(ConfigError, match="tags tokens"):
        adapt(tiny_backbone, pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]}), "nnshot")
    with pytest.raises(ConfigError, match="temperature must be a number > 0"):
        adapt(tiny_backbone, support, "nnshot", temperature=0)


def test_a_source_tagger_never_sees_a_held_out_type_and_starts_new_tasks(tiny_backbone, tmp_path):
    tokens, tags = [t for t, _ in SENTENCES], [g for _, g in SENTENCES]
    relabelled = hold_out_types(tags, ["PER"])
    assert not any(tag.endswith("-PER") for sentence in relabelled for tag in sentence)
    assert relabelled[0] == ["O", "O", "O", "B-ORG", "I-ORG", "O"]
    with pytest.raises(HeldOutLeakError, match=r"tag_lists\[0\] tags held-out type\(s\) \['PER'\]"):
        check_no_leak(tags, ["PER"])
    config = AdaptationConfig.from_params({"strategy": "full", "batch_size": 8, "device": "cpu",
                                           "training": TRAINING})
    source = pretrain_tagger(tiny_backbone, tokens, tags, config, held_out=["PER"], source="tiny")
    assert source.tags_ == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    assert source.training["held_out"] == ["PER"]
    # Source transitions come from the relabelled sequences (no PER anywhere).
    assert source.transitions == AbstractTransitions.from_tag_sequences(relabelled)
    source.save_directory(tmp_path / "source")
    # The saved source tagger starts a new task with PER labelled: a fresh head for the new tags.
    head = adapt(str(tmp_path / "source"), support_frame(), "finetune_head",
                 training={"max_steps": 5, "device": "cpu", "num_threads": 1}, device="cpu")
    assert head.model.tags_ == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert "held out: ['PER']" in head.source
    structshot = adapt(str(tmp_path / "source"), support_frame(), "structshot", device="cpu")
    assert structshot.model.transitions == source.transitions


def test_casing_classes():
    assert [CASING_CLASSES[casing_class(t)] for t in ["apple", "Apple", "USA", "iPhone", "1996", ",", "A", "U.S."]] \
        == ["lower", "title", "upper", "mixed", "digit", "other", "title", "upper"]
    features = casing_features([["Apple", "pie"], []])
    assert features[0].shape == (2, 6) and features[1].shape == (0, 6)
    assert features[0].sum(1).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_casing_lets_a_tagger_tell_words_that_differ_only_by_case(tiny_backbone, strategy, tmp_path):
    # The tiny tokeniser lower-cases: without casing these sentences are the same input.
    tokens = [["Apple", "rose"], ["apple", "rose"]] * 4
    tags = [["B-ORG", "O"], ["O", "O"]] * 4
    training = {**TRAINING, "max_steps": 60, "lr": 0.05 if strategy == "head" else 0.01}
    cased = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": strategy, "device": "cpu", "casing": True, "dropout": 0.0, "training": training}))
    plain = fit_tagger(tiny_backbone, tokens, tags, AdaptationConfig.from_params(
        {"strategy": strategy, "device": "cpu", "dropout": 0.0, "training": training}))
    assert cased.predict(tokens[:2]) == tags[:2]
    plain_predicted = plain.predict(tokens[:2])
    assert plain_predicted[0] == plain_predicted[1]  # it cannot tell them apart
    cased.save_directory(tmp_path / "cased")
    loaded = EncoderTagger.load_directory(tmp_path / "cased")
    assert loaded.casing and loaded.predict(tokens[:2]) == tags[:2]
    with pytest.raises(ValueError, match="reads casing"):
        loaded.predict_features(*loaded.word_features(tokens[:2]))
