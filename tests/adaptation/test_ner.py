"""NER: first-subword labels, constrained IOB2 Viterbi decoding, taggers on a tiny BERT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastadapt.adaptation import (
    EncoderTagger,
    fit_tagger,
    viterbi_iob2,
)
from fastadapt.adaptation.ner import (
    IGNORE_INDEX,
    encode_words,
    iob2_transitions,
    subword_labels,
    tag_set,
)
from fastadapt.models.baselines import repair_iob2
from fastadapt.models.predictor import SequenceTagger
from fastadapt.tasks.kshot import KShotError

from tests.adaptation.conftest import SENTENCES, TRAINING, config

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def is_valid_iob2(tags: list[str]) -> bool:
    return repair_iob2(tags) == tags


def log_probs(rows: list[list[float]]) -> np.ndarray:
    probabilities = np.asarray(rows, dtype=np.float64)
    return np.log(probabilities / probabilities.sum(1, keepdims=True))


def test_viterbi_never_puts_i_after_o_or_after_another_type():
    # Arg-max per word would read O I-PER I-PER: an entity without a beginning.
    emissions = log_probs([[0.6, 0.01, 0.01, 0.3, 0.1], [0.1, 0.01, 0.01, 0.2, 0.7], [0.2, 0.01, 0.01, 0.1, 0.7]])
    assert [TAGS[i] for i in emissions.argmax(1)] == ["O", "I-PER", "I-PER"]
    assert viterbi_iob2(emissions, TAGS) == ["B-PER", "I-PER", "I-PER"]
    # B-LOC then I-PER (type change) is not allowed either; I-LOC or B-PER may follow B-LOC.
    emissions = log_probs([[0.01, 0.9, 0.03, 0.03, 0.03], [0.1, 0.05, 0.35, 0.05, 0.45]])
    assert viterbi_iob2(emissions, TAGS) == ["B-LOC", "I-LOC"]
    assert viterbi_iob2(np.zeros((0, len(TAGS))), TAGS) == []


def test_viterbi_finds_the_best_valid_path_among_all_of_them():
    rng = np.random.default_rng(0)
    start, allowed = iob2_transitions(TAGS)
    for _ in range(60):
        n = int(rng.integers(1, 5))
        emissions = np.log(rng.dirichlet(np.full(len(TAGS), 0.3), size=n))
        decoded = viterbi_iob2(emissions, TAGS)
        assert is_valid_iob2(decoded)
        best = max(
            (path for path in itertools.product(range(len(TAGS)), repeat=n)
             if start[path[0]] and all(allowed[a, b] for a, b in itertools.pairwise(path))),
            key=lambda path: sum(emissions[i, t] for i, t in enumerate(path)),
        )
        assert decoded == [TAGS[t] for t in best]


def test_tag_set_and_transitions():
    assert tag_set([["B-PER", "I-PER", "O"], ["I-LOC"]]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    start, allowed = iob2_transitions(TAGS)
    assert list(start) == [True, True, False, True, False]
    assert allowed[TAGS.index("B-LOC"), TAGS.index("I-LOC")] and allowed[TAGS.index("I-LOC"), TAGS.index("I-LOC")]
    assert not allowed[TAGS.index("O"), TAGS.index("I-LOC")]
    assert not allowed[TAGS.index("B-PER"), TAGS.index("I-LOC")]
    with pytest.raises(ValueError, match="IOB2 tags"):
        tag_set([["PER"]])


def test_labels_go_on_the_first_subword_only(tiny_backbone):
    tokens = [["Parisian", "hired", "Bob", "."]]
    ids, firsts = encode_words(tiny_backbone.tokenizer, tokens, max_length=32)
    pieces = tiny_backbone.tokenizer.convert_ids_to_tokens(ids[0])
    assert [pieces[p] for p in firsts[0]] == ["paris", "hired", "bob", "."]
    assert pieces[firsts[0][0] + 1:firsts[0][1]] == ["##i", "##an"]  # "Parisian" is three subwords here
    labels = subword_labels(firsts[0], len(ids[0]), [3, 0, 3, 0])
    assert [labels[p] for p in firsts[0]] == [3, 0, 3, 0]
    assert labels.count(IGNORE_INDEX) == len(ids[0]) - 4  # special tokens and continuation pieces
    # Words cut off by max_length have no subword at all.
    _, firsts = encode_words(tiny_backbone.tokenizer, [["Paris"] * 10], max_length=5)
    assert (firsts[0][:3] >= 0).all() and (firsts[0][5:] == -1).all()


@pytest.mark.parametrize("strategy", ["prototype", "head", "full", "lora"])
def test_taggers_give_valid_iob2_and_survive_save_and_load(tiny_backbone, tmp_path, strategy):
    tokens = [list(t) for t, _ in SENTENCES]
    tags = [list(t) for _, t in SENTENCES]
    training = {**TRAINING, "max_steps": 60, "lr": 0.05 if strategy == "head" else 0.005}
    model = fit_tagger(tiny_backbone, tokens, tags, config(strategy, **({} if strategy == "prototype" else
                                                                      {"training": training})))
    assert isinstance(model, SequenceTagger)
    assert model.tags_ == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    queries = tokens + [[], ["Bob"], ["Paris"] * 80]  # empty, one word, longer than max_length
    predicted = model.predict(queries)
    assert [len(p) for p in predicted] == [len(q) for q in queries]
    assert all(is_valid_iob2(p) for p in predicted)
    correct = sum(p == t for p, t in zip(np.concatenate(predicted[:len(tags)]), np.concatenate(tags)))
    assert correct / sum(map(len, tags)) >= 0.6  # the support itself, mostly O
    model.save_directory(tmp_path / "tagger")
    loaded = EncoderTagger.load_directory(tmp_path / "tagger")
    assert loaded.predict(queries) == predicted


def test_cached_word_features_give_the_same_tagger(tiny_backbone):
    tokens = [list(t) for t, _ in SENTENCES]
    tags = [list(t) for _, t in SENTENCES]
    direct = fit_tagger(tiny_backbone, tokens, tags, config("prototype"))
    features = direct.word_features(tokens)
    cached = fit_tagger(tiny_backbone, tokens, tags, config("prototype"), features=features)
    assert cached.predict(tokens) == direct.predict(tokens) == cached.predict_features(*features)


def test_ner_kshot_support_and_a_k_larger_than_a_type(tiny_backbone):
    tokens = [list(t) for t, _ in SENTENCES]
    tags = [list(t) for _, t in SENTENCES]
    model = fit_tagger(tiny_backbone, tokens, tags, config("prototype"), k=1, seed=0)
    assert set(model.tags_) >= {"B-PER", "B-LOC", "B-ORG"}
    with pytest.raises(KShotError, match=r"cannot draw 4-shot NER: type 'ORG' has 3 mentions"):
        fit_tagger(tiny_backbone, tokens, tags, config("prototype"), k=4, seed=0)


def test_a_tagger_needs_an_entity_type(tiny_backbone):
    with pytest.raises(ValueError, match="only 'O'"):
        fit_tagger(tiny_backbone, [["a", "b"]], [["O", "O"]], config("prototype"))
