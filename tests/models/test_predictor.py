from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from fastadapt.models.predictor import (
    SequenceTagger,
    TextClassifier,
    classification_predictions,
    ner_predictions,
)


class FixedClassifier:
    """Answers from a lookup table, so every number in the output is known in advance."""

    classes_ = ["neg", "pos"]

    def __init__(self, proba: dict[str, list[float]], predicted: dict[str, str] | None = None):
        self.proba = proba
        self.predicted = predicted

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.proba[t] for t in texts]).reshape(len(texts), 2)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if self.predicted is not None:
            return np.array([self.predicted[t] for t in texts], dtype=object)
        return np.array(self.classes_, dtype=object)[self.predict_proba(texts).argmax(axis=1)]


class UpperTagger:
    """Tags capitalised tokens as PER, one entity per run."""

    def predict(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        out = []
        for tokens in token_lists:
            tags, previous = [], "O"
            for token in tokens:
                tag = "O" if not token[:1].isupper() else ("I-PER" if previous != "O" else "B-PER")
                tags.append(tag)
                previous = tag
            out.append(tags)
        return out


@pytest.fixture
def text_rows() -> pd.DataFrame:
    # A non-default index: output must follow row order, not index labels.
    return pd.DataFrame(
        {"row_id": [7, 3, 9], "text": ["good", "bad", "meh"], "label": ["pos", "neg", "pos"]},
        index=[10, 20, 30],
    )


class TestClassificationPredictions:
    def test_columns_and_values_follow_the_contract(self, text_rows):
        model = FixedClassifier({"good": [0.1, 0.9], "bad": [0.8, 0.2], "meh": [0.6, 0.4]})

        table = classification_predictions(model, text_rows)

        assert list(table.columns) == ["row_id", "label", "predicted", "proba__neg", "proba__pos"]
        assert table["row_id"].tolist() == [7, 3, 9]
        assert table["label"].tolist() == ["pos", "neg", "pos"]
        assert table["predicted"].tolist() == ["pos", "neg", "neg"]
        assert table["proba__neg"].tolist() == [0.1, 0.8, 0.6]
        assert table["proba__pos"].tolist() == [0.9, 0.2, 0.4]
        assert table.index.tolist() == [0, 1, 2]

    def test_predicted_is_the_models_own_answer_not_the_argmax(self, text_rows):
        model = FixedClassifier(
            {"good": [0.1, 0.9], "bad": [0.8, 0.2], "meh": [0.6, 0.4]},
            predicted={"good": "pos", "bad": "neg", "meh": "pos"},
        )

        assert classification_predictions(model, text_rows)["predicted"].tolist() == [
            "pos",
            "neg",
            "pos",
        ]

    def test_empty_rows_give_an_empty_table_with_the_columns(self):
        rows = pd.DataFrame({"row_id": [], "text": [], "label": []})

        table = classification_predictions(FixedClassifier({}), rows)

        assert list(table.columns) == ["row_id", "label", "predicted", "proba__neg", "proba__pos"]
        assert len(table) == 0

    def test_missing_column_is_named(self):
        rows = pd.DataFrame({"row_id": [1], "sentence": ["good"], "label": ["pos"]})

        with pytest.raises(ValueError, match=r"missing \['text'\]"):
            classification_predictions(FixedClassifier({"good": [0.1, 0.9]}), rows)

    def test_wrong_probability_shape_is_an_error(self, text_rows):
        class ThreeColumns(FixedClassifier):
            def predict_proba(self, texts):
                return np.full((len(texts), 3), 1 / 3)

        model = ThreeColumns({}, predicted={"good": "pos", "bad": "neg", "meh": "pos"})

        with pytest.raises(ValueError, match=r"predict_proba returned shape \(3, 3\)"):
            classification_predictions(model, text_rows)


class TestNerPredictions:
    def test_columns_and_values_follow_the_contract(self):
        rows = pd.DataFrame(
            {
                "row_id": ["a", "b"],
                # Token lists as numpy arrays, as they come back from parquet.
                "tokens": [np.array(["Ann", "met", "Bob", "Lee"]), np.array(["hi"])],
                "tags": [np.array(["B-PER", "O", "B-PER", "I-PER"]), np.array(["O"])],
            }
        )

        table = ner_predictions(UpperTagger(), rows)

        assert list(table.columns) == ["row_id", "tags", "predicted"]
        assert table["row_id"].tolist() == ["a", "b"]
        assert table["tags"].tolist() == [["B-PER", "O", "B-PER", "I-PER"], ["O"]]
        assert table["predicted"].tolist() == [["B-PER", "O", "B-PER", "I-PER"], ["O"]]
        assert all(type(tags) is list for tags in table["predicted"])

    def test_length_mismatch_names_the_row(self):
        class Short(UpperTagger):
            def predict(self, token_lists):
                return [tags[:-1] for tags in super().predict(token_lists)]

        rows = pd.DataFrame({"row_id": [5], "tokens": [["Ann", "ran"]], "tags": [["B-PER", "O"]]})

        with pytest.raises(ValueError, match=r"1 tags for 2 tokens \(row_id 5\)"):
            ner_predictions(Short(), rows)

    def test_missing_column_is_named(self):
        rows = pd.DataFrame({"row_id": [5], "tokens": [["Ann"]]})

        with pytest.raises(ValueError, match=r"missing \['tags'\]"):
            ner_predictions(UpperTagger(), rows)


def test_protocols_recognise_conforming_objects():
    assert isinstance(FixedClassifier({}), TextClassifier)
    assert isinstance(UpperTagger(), SequenceTagger)
    assert not isinstance(UpperTagger(), TextClassifier)
