"""Batched stream scoring with any TextClassifier, and entity extraction with any SequenceTagger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fastadapt.config import ConfigError
from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression
from fastadapt.monitoring.scoring import (
    EntityConfig,
    ScoringConfig,
    as_text_classifier,
    extract_entities,
    normalise_entity,
    normalise_ticker,
    score_stream,
    score_texts,
    tagged_spans,
    tokenize_headline,
)


class CountingClassifier:
    """Bearish / Bullish / Neutral from keywords; records the size of every batch it sees."""

    classes_ = ["Bearish", "Bullish", "Neutral"]

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_proba(self, texts):
        self.batches.append(len(texts))
        rows = []
        for text in texts:
            if "plunge" in text:
                rows.append([0.7, 0.1, 0.2])
            elif "soar" in text:
                rows.append([0.1, 0.8, 0.1])
            else:
                rows.append([0.2, 0.2, 0.6])
        return np.array(rows)

    def predict(self, texts):
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(texts).argmax(axis=1)]


def stream(n: int = 7) -> pd.DataFrame:
    words = ["Shares plunge", "Profits soar", "Board meets", "Acme shares plunge"]
    return pd.DataFrame({
        "row_id": np.arange(10, 10 + n),
        "published_at": pd.date_range("2024-01-01", periods=n, freq="D"),
        "headline": [words[i % len(words)] for i in range(n)],
        "ticker": pd.array(["ACME", None, "$xyz", None, None, " acme ", None][:n], dtype="string"),
    })


def test_scores_come_in_batches_with_mapped_labels_and_negative_mass():
    model = CountingClassifier()
    config = ScoringConfig(batch_size=3, label_map={"Bearish": "negative", "Bullish": "positive",
                                                    "Neutral": "neutral"}, progress=False)
    scores, stats = score_stream(stream(), model, config)
    assert model.batches == [3, 3, 1]
    assert scores["row_id"].tolist() == list(range(10, 17))
    assert scores["predicted"].tolist() == ["negative", "positive", "neutral", "negative", "negative",
                                            "positive", "neutral"]
    assert scores["negative_score"].tolist() == pytest.approx([0.7, 0.1, 0.2, 0.7, 0.7, 0.1, 0.2])
    assert [c for c in scores.columns if c.startswith("proba__")] == [
        "proba__Bearish", "proba__Bullish", "proba__Neutral"]
    assert stats["n_items"] == 7 and stats["labels"] == ["negative", "positive", "neutral"]


def test_several_classes_can_share_the_negative_label():
    config = ScoringConfig(negative_label="bad", label_map={"Bearish": "bad", "Neutral": "bad"}, progress=False)
    scores, _ = score_stream(stream(4), CountingClassifier(), config)
    # Probabilities are summed per reported label before the arg-max.
    assert scores["predicted"].tolist() == ["bad", "Bullish", "bad", "bad"]
    assert scores["negative_score"].tolist() == pytest.approx([0.9, 0.2, 0.8, 0.9])


def test_a_real_tfidf_model_scores_the_same_as_its_own_predict():
    texts = ["profit up strongly", "loss widens badly", "shares soar", "shares plunge", "profit rises",
             "loss deepens"]
    labels = ["positive", "negative", "positive", "negative", "positive", "negative"]
    model = TfidfLogisticRegression().fit(texts, labels)
    rows = pd.DataFrame({"row_id": range(6), "headline": texts})
    scores, _ = score_stream(rows, model, ScoringConfig(batch_size=4, progress=False))
    assert scores["predicted"].tolist() == list(model.predict(texts))
    np.testing.assert_allclose(scores["negative_score"], model.predict_proba(texts)[:, 0])
    np.testing.assert_allclose(score_texts(model, texts, 2, progress=False), model.predict_proba(texts))


def test_bad_settings_name_the_parameter():
    with pytest.raises(ValueError, match="negative_label 'negative' is none of the model's labels"):
        score_stream(stream(), CountingClassifier(), ScoringConfig(progress=False))
    with pytest.raises(ConfigError, match=r"^monitoring\.scoring\.batch_size is 0; allowed: an integer >= 1$"):
        ScoringConfig.from_params({"batch_size": 0}, where="monitoring.scoring")
    with pytest.raises(ConfigError, match=r"^monitoring\.scoring: unknown setting\(s\) \['batch'\]"):
        ScoringConfig.from_params({"batch": 3}, where="monitoring.scoring")
    with pytest.raises(ConfigError, match=r"^monitoring\.entities\.entity_types is 'ORG'; allowed: a list"):
        EntityConfig.from_params({"entity_types": "ORG"}, where="monitoring.entities")
    with pytest.raises(ConfigError, match=r"^monitoring\.entities\.min_length is 0; allowed: an integer >= 1$"):
        EntityConfig.from_params({"min_length": 0}, where="monitoring.entities")
    with pytest.raises(TypeError, match="must be a TextClassifier"):
        score_stream(stream(), object(), ScoringConfig(progress=False))
    with pytest.raises(KeyError, match="no column 'text'"):
        score_stream(stream(), CountingClassifier(), ScoringConfig(text_column="text", progress=False))


def test_tokenisation_and_normalisation():
    assert tokenize_headline("Jones's U.S. arm: AT&T, Rolls-Royce up 5.3%?") == [
        "Jones", "'s", "U.S.", "arm", ":", "AT&T", ",", "Rolls-Royce", "up", "5.3", "%", "?"]
    assert normalise_entity("Acme Corp.") == "Acme"
    assert normalise_entity("McDonald 's") == "McDonald"
    assert normalise_entity("  Bank   of England ") == "Bank of England"
    assert normalise_entity('"Tesla Inc"', aliases={"tesla": "TSLA"}) == "TSLA"
    assert normalise_entity("?") is None and normalise_entity("A") is None and normalise_entity("2019") is None
    assert normalise_ticker(" $tsla ") == "TSLA" and normalise_ticker(pd.NA) is None
    assert tagged_spans(["Acme", "Corp", "and", "Bank", "of", "X", "in", "Paris"],
                        ["B-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC"],
                        ("ORG",)) == ["Acme Corp", "Bank of X"]
    assert tagged_spans(["A", "B"], ["B-ORG", "B-ORG"], ("ORG",)) == ["A", "B"]


class KeywordTagger:
    """Tags the word Acme as B-ORG (a stand-in for any SequenceTagger)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, token_lists):
        self.calls += 1
        return [["B-ORG" if t == "Acme" else "O" for t in tokens] for tokens in token_lists]


def test_entities_are_tickers_where_given_else_the_taggers_organisations():
    tagger = KeywordTagger()
    found = extract_entities(stream(), tagger, EntityConfig(batch_size=2, progress=False,
                                                            aliases={"Acme": "ACME"}))
    assert found["row_id"].tolist() == list(range(10, 17))
    assert found["entities"].tolist() == [["ACME"], [], ["XYZ"], ["ACME"], [], ["ACME"], []]
    assert found["entity_source"].tolist() == ["ticker", "none", "ticker", "ner", "none", "ticker", "none"]
    assert tagger.calls == 2  # four rows without a ticker, batches of two
    only_tickers = extract_entities(stream(), None, EntityConfig(progress=False))
    assert only_tickers["entities"].tolist() == [["ACME"], [], ["XYZ"], [], [], ["ACME"], []]


def test_entities_from_a_real_crf():
    sentences = [["Acme", "shares", "fall"], ["Shares", "of", "Acme", "rise"], ["Globex", "profit", "up"],
                 ["Investors", "sell", "Globex"]] * 5
    tags = [["B-ORG", "O", "O"], ["O", "O", "B-ORG", "O"], ["B-ORG", "O", "O"], ["O", "O", "B-ORG"]] * 5
    crf = CrfTagger(max_iterations=30).fit(sentences, tags)
    rows = pd.DataFrame({"row_id": [0, 1], "headline": ["Globex profit up", "Shares of Acme rise"]})
    found = extract_entities(rows, crf, EntityConfig(ticker_column=None, progress=False))
    assert found["entities"].tolist() == [["Globex"], ["Acme"]]


def test_an_mlflow_pyfunc_wrapper_is_unwrapped():
    inner = CountingClassifier()

    class Wrapper:
        classifier = inner

    class PyFunc:
        def unwrap_python_model(self):
            return Wrapper()

    assert as_text_classifier(PyFunc()) is inner
    assert as_text_classifier(inner) is inner
