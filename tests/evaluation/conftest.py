"""Small hand-made prediction frames whose scores are worked out by hand in the tests."""

import pandas as pd
import pytest


@pytest.fixture
def three_class_predictions() -> pd.DataFrame:
    """Gold a a b b c c, predicted a b b b c a; the probabilities' argmax is the prediction."""
    return pd.DataFrame(
        {
            "row_id": [1, 2, 3, 4, 5, 6],
            "label": ["a", "a", "b", "b", "c", "c"],
            "predicted": ["a", "b", "b", "b", "c", "a"],
            "proba__a": [0.6, 0.3, 0.2, 0.1, 0.1, 0.5],
            "proba__b": [0.3, 0.5, 0.7, 0.6, 0.2, 0.2],
            "proba__c": [0.1, 0.2, 0.1, 0.3, 0.7, 0.3],
        }
    )


@pytest.fixture
def ner_predictions() -> pd.DataFrame:
    """Sentence 1 has a stray I-LOC after O (no entity in strict IOB2); sentence 2 a short ORG."""
    return pd.DataFrame(
        {
            "row_id": [10, 11],
            "tags": [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]],
            "predicted": [["B-PER", "I-PER", "O", "I-LOC"], ["O", "B-ORG", "O"]],
        }
    )
