"""Cleaning before splits: duplicate key, dedup reasons and counts, test sets left alone."""

import pandas as pd
import pytest

from fastadapt.tasks.cleaning import (
    deduplicate,
    duplicate_key,
    ner_key_and_label,
    overlap_with_training,
)


def labelled(records: list[tuple]) -> pd.DataFrame:
    """A labelled table from (row_id, text, label, origin) tuples; line = row_id + 1."""
    rows = pd.DataFrame(records, columns=["row_id", "text", "label", "origin"])
    rows["file"] = rows["origin"] + ".csv"
    rows["line"] = rows["row_id"] + 1
    return rows


def test_duplicate_key_normalises_unicode_space_and_case():
    assert duplicate_key("  Ｆｕｌｌ\u00a0\twidth  ") == "full width"
    assert duplicate_key("ﬁnal  Straße\n") == "final strasse"
    assert duplicate_key("A  b") == duplicate_key("a b")
    assert duplicate_key("ab") != duplicate_key("a b")


def test_duplicates_keep_the_smallest_row_id_whatever_the_input_order():
    rows = labelled(
        [
            (7, "Hello  world", "greet", "train"),
            (2, "hello world", "greet", "train"),
            (5, "HELLO WORLD ", "greet", "train"),
            (3, "other", "greet", "train"),
        ]
    )
    kept, quarantine = deduplicate(rows, "toy", ["test"])
    assert sorted(kept["row_id"]) == [2, 3]
    assert list(quarantine["reason"]) == ["duplicate", "duplicate"]
    assert list(quarantine["line"]) == [6, 8]  # rows 5 and 7, in row_id order
    assert list(quarantine["corpus"]) == ["toy", "toy"]
    assert list(kept.index) == [0, 1]


def test_conflicting_labels_send_every_copy_to_quarantine():
    rows = labelled(
        [
            (0, "pay rent", "bill", "train"),
            (1, "Pay rent", "bill", "train"),
            (2, "pay  rent", "transfer", "train"),
            (3, "top up", "top_up", "train"),
        ]
    )
    kept, quarantine = deduplicate(rows, "toy", ["test"])
    assert list(kept["row_id"]) == [3]
    assert list(quarantine["reason"]) == ["conflicting_labels"] * 3
    assert list(quarantine["raw"]) == ["bill\tpay rent", "bill\tPay rent", "transfer\tpay  rent"]
    assert len(kept) + len(quarantine) == len(rows)


def test_each_training_origin_is_cleaned_separately_and_test_origins_never():
    rows = labelled(
        [
            (0, "same", "a", "train"),
            (1, "same", "a", "validation"),
            (2, "same", "a", "test"),
            (3, "same", "a", "test"),
            (4, "clash", "a", "test"),
            (5, "clash", "b", "test"),
            (6, "clash", "a", "train"),
            (7, "clash", "b", "validation"),
        ]
    )
    kept, quarantine = deduplicate(rows, "toy", ["test"])
    assert list(kept["row_id"]) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert quarantine.empty
    assert list(quarantine.columns) == ["corpus", "file", "line", "reason", "raw"]


def test_a_single_test_origin_name_is_one_origin():
    rows = labelled([(0, "x", "a", "test"), (1, "x", "a", "test"), (2, "x", "a", "train")])
    kept, _ = deduplicate(rows, "toy", "test")
    assert list(kept["row_id"]) == [0, 1, 2]


def test_reason_counts_on_a_mixed_table():
    rows = labelled(
        [(i, f"text {i % 4}", "a", "train") for i in range(12)]
        + [(12, "text 0", "b", "train"), (13, "text 0", "a", "test")]
    )
    kept, quarantine = deduplicate(rows, "toy", ["test"])
    # key "text 0" has labels a and b -> its 4 copies conflict; keys 1..3 keep one of 3 copies.
    assert quarantine["reason"].value_counts().to_dict() == {
        "duplicate": 6,
        "conflicting_labels": 4,
    }
    assert sorted(kept["row_id"]) == [1, 2, 3, 13]


def test_ner_sentences_are_keyed_by_tokens_and_labelled_by_tags():
    rows = pd.DataFrame(
        {
            "row_id": [0, 1, 2, 3, 4],
            "tokens": [
                ["EU", "rejects"],
                ["eu", "rejects"],
                ["Peter", "runs"],
                ["Peter", "runs"],
                ["Peter", "runs"],
            ],
            "tags": [
                ["B-ORG", "O"],
                ["B-ORG", "O"],
                ["B-PER", "O"],
                ["B-PER", "O"],
                ["B-LOC", "O"],
            ],
            "origin": ["train", "train", "train", "train", "train"],
            "file": "train.txt",
            "line": [1, 4, 7, 10, 13],
        }
    )
    key, label = ner_key_and_label(rows)
    assert list(key) == ["eu rejects", "eu rejects", "peter runs", "peter runs", "peter runs"]
    assert label[4] == "B-LOC O"
    kept, quarantine = deduplicate(rows, "conll", ["test"], key=key, label=label)
    assert list(kept["row_id"]) == [0]
    assert list(quarantine["reason"]) == [
        "duplicate",
        "conflicting_labels",
        "conflicting_labels",
        "conflicting_labels",
    ]
    assert list(quarantine["raw"])[0] == "B-ORG O\teu rejects"


def test_key_of_the_wrong_length_is_refused():
    rows = labelled([(0, "x", "a", "train"), (1, "y", "a", "train")])
    with pytest.raises(ValueError, match="key has 1 values for 2 rows"):
        deduplicate(rows, "toy", ["test"], key=["x"])


def test_missing_columns_are_named():
    rows = labelled([(0, "x", "a", "train")]).drop(columns=["line"])
    with pytest.raises(ValueError, match=r"\['line'\]"):
        deduplicate(rows, "toy", ["test"])


def test_overlap_with_training_counts_same_and_different_labels():
    rows = labelled(
        [
            (0, "seen", "a", "train"),
            (1, "relabelled", "a", "validation"),
            (2, "both", "a", "train"),
            (3, "both", "b", "train"),
            (4, "Seen", "a", "test"),
            (5, "relabelled", "b", "test"),
            (6, "both", "b", "test"),
            (7, "new", "a", "test"),
        ]
    )
    assert overlap_with_training(rows, ["test"]) == {
        "test_rows": 4,
        "in_training": 3,
        "same_label": 2,
        "different_label": 1,
    }
