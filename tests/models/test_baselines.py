import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from fastadapt.models.baselines import (
    CrfTagger,
    TfidfLogisticRegression,
    repair_iob2,
    token_features,
)
from fastadapt.models.predictor import (
    SequenceTagger,
    TextClassifier,
    classification_predictions,
    ner_predictions,
)

TEXTS = [
    "great results and strong growth",
    "profit rose strongly, a great quarter",
    "strong growth in sales",
    "heavy losses and weak demand",
    "the loss widened, weak quarter",
    "weak sales and heavy losses",
    "the meeting is on tuesday",
    "the report was published on monday",
    "the company is based in helsinki",
]
LABELS = ["positive"] * 3 + ["negative"] * 3 + ["neutral"] * 3


def is_iob2(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


class TestTfidfLogisticRegression:
    def test_learns_and_answers_in_classes_order(self):
        model = TfidfLogisticRegression().fit(TEXTS, LABELS)

        proba = model.predict_proba(["strong growth", "heavy losses", "published on tuesday"])

        assert model.classes_ == ["negative", "neutral", "positive"]
        assert proba.shape == (3, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert proba.argmax(axis=1).tolist() == [2, 0, 1]
        assert model.predict(TEXTS).tolist() == LABELS
        assert isinstance(model, TextClassifier)

    @pytest.mark.parametrize("analyzer", ["word", "word+char"])
    def test_refits_are_identical(self, analyzer):
        first = TfidfLogisticRegression(analyzer=analyzer).fit(TEXTS, LABELS)
        second = TfidfLogisticRegression(analyzer=analyzer).fit(TEXTS, LABELS)

        probe = ["strong losses", "weak growth on monday", "unseen words only"]
        np.testing.assert_array_equal(first.predict_proba(probe), second.predict_proba(probe))

    def test_char_ngrams_generalise_to_unseen_word_forms(self):
        texts = ["I want a refund", "refund my money", "my card is lost", "card never arrived"]
        labels = ["refund", "refund", "card", "card"]

        word = TfidfLogisticRegression(analyzer="word").fit(texts, labels)
        both = TfidfLogisticRegression(analyzer="word+char").fit(texts, labels)

        # "refunded" is out of the word vocabulary: word n-grams see nothing but the intercept.
        np.testing.assert_array_equal(word.predict_proba(["refunded"]), word.predict_proba(["?"]))
        assert both.predict(["refunded", "cards"]).tolist() == ["refund", "card"]

    def test_one_example_per_class_fits_quietly(self):
        texts = [f"question about topic{i} number {i}" for i in range(77)]
        labels = [f"intent_{i}" for i in range(77)]

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = TfidfLogisticRegression(analyzer="word+char").fit(texts, labels)

        assert len(model.classes_) == 77
        assert model.predict(texts[:5]).tolist() == labels[:5]

    def test_single_class_is_refused_naming_the_class(self):
        with pytest.raises(ValueError, match=r"at least two classes.*found only 'positive'"):
            TfidfLogisticRegression().fit(TEXTS[:3], LABELS[:3])

    def test_length_mismatch_is_refused(self):
        with pytest.raises(ValueError, match="same length; got 9 and 8"):
            TfidfLogisticRegression().fit(TEXTS, LABELS[:-1])

    def test_non_string_text_is_named(self):
        with pytest.raises(ValueError, match=r"texts\[1\] must be a string; got float nan"):
            TfidfLogisticRegression().fit(["good", float("nan")], ["a", "b"])

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"analyzer": "char"}, r"analyzer must be one of \['word', 'word\+char'\]; got 'char'"),
            ({"ngram_range": (2, 1)}, r"ngram_range must be a pair .* got \(2, 1\)"),
            ({"min_df": 0}, r"min_df must be an integer >= 1 .* got 0"),
            ({"C": 0.0}, r"C must be a number > 0.0; got 0.0"),
            ({"max_iter": 0}, r"max_iter must be an integer >= 1; got 0"),
            ({"class_weight": "auto"}, r"class_weight must be None, 'balanced' or a dict"),
            ({"seed": -1}, r"seed must be an integer >= 0; got -1"),
        ],
    )
    def test_bad_parameters_are_named_in_fit(self, params, message):
        model = TfidfLogisticRegression(**params)  # the constructor only stores them

        with pytest.raises(ValueError, match=message):
            model.fit(TEXTS, LABELS)

    def test_parameters_round_trip_like_scikit_learn(self):
        model = TfidfLogisticRegression(analyzer="word+char", C=3.0)

        assert clone(model).get_params() == model.get_params()
        assert model.get_params()["C"] == 3.0

    def test_unfitted_model_says_to_fit(self):
        with pytest.raises(NotFittedError, match=r"call fit\(texts, labels\) first"):
            TfidfLogisticRegression().predict(["x"])

    def test_empty_input_gives_empty_outputs(self):
        model = TfidfLogisticRegression().fit(TEXTS, LABELS)

        assert model.predict_proba([]).shape == (0, 3)
        assert model.predict([]).shape == (0,)

    def test_feeds_the_classification_table(self):
        model = TfidfLogisticRegression().fit(TEXTS, LABELS)
        rows = pd.DataFrame({"row_id": range(len(TEXTS)), "text": TEXTS, "label": LABELS})

        table = classification_predictions(model, rows)

        assert table.columns[3:].tolist() == [
            "proba__negative",
            "proba__neutral",
            "proba__positive",
        ]
        assert (table["predicted"] == table["label"]).all()


@pytest.mark.parametrize(
    ("tags", "repaired"),
    [
        ([], []),
        (["O", "B-PER", "I-PER", "O"], ["O", "B-PER", "I-PER", "O"]),
        (["I-PER", "I-PER"], ["B-PER", "I-PER"]),  # entity at sentence start
        (["O", "I-LOC"], ["O", "B-LOC"]),  # after O
        (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),  # type change
        (["B-ORG", "B-ORG", "I-ORG"], ["B-ORG", "B-ORG", "I-ORG"]),  # adjacent same type
    ],
)
def test_repair_iob2(tags, repaired):
    assert repair_iob2(tags) == repaired
    assert is_iob2(repair_iob2(tags))


# A toy NER task a CRF separates from the word itself: known names, known cities.
NAMES = [["Anna", "Berg"], ["Tom"], ["Maria", "Lopez"], ["Ken"]]
CITIES = [["Paris"], ["New", "York"], ["Oslo"], ["Rio"]]


def toy_sentence(name: list[str], city: list[str]) -> tuple[list[str], list[str]]:
    tokens = name + ["lives", "in"] + city + ["."]
    tags = (
        ["B-PER"] + ["I-PER"] * (len(name) - 1) + ["O", "O"]
        + ["B-LOC"] + ["I-LOC"] * (len(city) - 1) + ["O"]
    )
    return tokens, tags


TOY = [toy_sentence(n, c) for i, n in enumerate(NAMES) for j, c in enumerate(CITIES) if i != j]
TOY_HELD_OUT = [toy_sentence(NAMES[i], CITIES[i]) for i in range(len(NAMES))]


@pytest.fixture(scope="module")
def toy_tagger() -> CrfTagger:
    return CrfTagger(max_iterations=50).fit([t for t, _ in TOY], [g for _, g in TOY])


class TestCrfTagger:
    def test_learns_a_separable_toy_task(self, toy_tagger):
        predicted = toy_tagger.predict([t for t, _ in TOY_HELD_OUT])

        assert predicted == [g for _, g in TOY_HELD_OUT]
        assert isinstance(toy_tagger, SequenceTagger)

    def test_refits_are_identical(self, toy_tagger):
        again = CrfTagger(max_iterations=50).fit([t for t, _ in TOY], [g for _, g in TOY])

        assert again.crf_.state_features_ == toy_tagger.crf_.state_features_
        assert again.crf_.transition_features_ == toy_tagger.crf_.transition_features_

    def test_predictions_are_repaired_to_iob2(self, toy_tagger, monkeypatch):
        monkeypatch.setattr(
            toy_tagger.crf_, "predict_single", lambda xseq: ["O", "I-PER", "I-LOC"][: len(xseq)]
        )

        assert toy_tagger.predict([["a", "b", "c"]]) == [["O", "B-PER", "B-LOC"]]

    def test_any_input_gets_valid_iob2_of_the_right_length(self, toy_tagger):
        sentences = [[], ["New"], ["York", "Anna", "in", "Oslo", "Berg", "x", "Lopez"]]

        predicted = toy_tagger.predict(sentences)

        assert [len(p) for p in predicted] == [0, 1, 7]
        assert all(is_iob2(p) for p in predicted)

    def test_survives_pickling(self, toy_tagger):
        restored = pickle.loads(pickle.dumps(toy_tagger))

        tokens = [t for t, _ in TOY_HELD_OUT]
        assert restored.predict(tokens) == toy_tagger.predict(tokens)

    def test_feeds_the_ner_table(self, toy_tagger):
        rows = pd.DataFrame(
            {
                "row_id": [1, 2],
                "tokens": [t for t, _ in TOY_HELD_OUT[:2]],
                "tags": [g for _, g in TOY_HELD_OUT[:2]],
            }
        )

        table = ner_predictions(toy_tagger, rows)

        assert table["predicted"].tolist() == table["tags"].tolist()

    @pytest.mark.parametrize(
        ("tokens", "tags", "message"),
        [
            ([["a", "b"]], [["O"]], r"token_lists\[0\] has 2 tokens but tag_lists\[0\] has 1"),
            ([["Ann"]], [["PER"]], r"tag_lists\[0\] must hold IOB2 tags .* got 'PER'"),
            ([["Ann"]], [["S-PER"]], r"got 'S-PER'"),
            ([["Ann"]], [], r"same length; got 1 and 0"),
            ([], [], r"token_lists is empty"),
            (["Ann ran"], [["O"]], r"token_lists\[0\] must be a list of token strings"),
        ],
    )
    def test_bad_training_data_is_named(self, tokens, tags, message):
        with pytest.raises(ValueError, match=message):
            CrfTagger().fit(tokens, tags)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"c1": -0.1}, r"c1 must be a number >= 0.0; got -0.1"),
            ({"c2": "high"}, r"c2 must be a number >= 0.0; got 'high'"),
            ({"max_iterations": 0}, r"max_iterations must be an integer >= 1; got 0"),
            ({"max_iterations": 10.5}, r"max_iterations must be an integer >= 1; got 10.5"),
        ],
    )
    def test_bad_parameters_are_named_in_fit(self, params, message):
        with pytest.raises(ValueError, match=message):
            CrfTagger(**params).fit([["Ann"]], [["B-PER"]])

    def test_unfitted_tagger_says_to_fit(self):
        with pytest.raises(NotFittedError, match=r"call fit\(token_lists, tag_lists\) first"):
            CrfTagger().predict([["Ann"]])


def test_token_features_see_two_neighbours_and_sentence_edges():
    features = token_features(["The", "EU", "said", "1996", "."])

    assert features[0]["BOS"] and "EOS" not in features[0]
    assert features[-1]["EOS"] and "BOS" not in features[-1]
    assert features[2]["-2:lower"] == "the" and features[2]["+2:lower"] == "."
    assert "-1:lower" not in features[0] and "+1:lower" not in features[-1]
    assert features[1]["isupper"] and features[0]["istitle"]
    assert features[3]["isdigit"] and features[3]["shape"] == "d"
    assert features[1]["suffix2"] == "eu" and features[1]["lower"] == "eu"


def test_baselines_from_their_parameter_blocks_name_the_parameter():
    from fastadapt.config import ConfigError

    model = TfidfLogisticRegression.from_params({"ngram_range": [1, 3], "C": 2.0}, "baselines.tfidf")
    assert (model.ngram_range, model.C) == ((1, 3), 2.0)
    assert CrfTagger.from_params({"max_iterations": 5}, "baselines.crf").max_iterations == 5
    with pytest.raises(ConfigError, match=r"baselines\.tfidf: unknown setting\(s\) \['ngrams'\]"):
        TfidfLogisticRegression.from_params({"ngrams": [1, 2]}, "baselines.tfidf")
    with pytest.raises(ConfigError, match=r"^baselines\.tfidf\.C must be a number > 0.0; got -1"):
        TfidfLogisticRegression.from_params({"C": -1}, "baselines.tfidf")
    with pytest.raises(ConfigError, match=r"^baselines\.crf\.c1 must be a number >= 0.0"):
        CrfTagger.from_params({"c1": -0.5}, "baselines.crf")
