import math

import numpy as np
import pandas as pd
import pytest

from fastadapt.evaluation.metrics import (
    classification_metrics,
    classification_report_frame,
    confusion_frame,
    mean_confidence_interval,
    ner_metrics,
    ner_report_frames,
    subset_metrics,
    summarise_runs,
)

# Per-class F1 of the three-class fixture: a (P 1/2, R 1/2), b (P 2/3, R 1), c (P 1, R 1/2).
F1_A, F1_B, F1_C = 0.5, 0.8, 2 / 3


class TestClassificationMetrics:
    def test_accuracy_and_f1_are_hand_computed(self, three_class_predictions):
        metrics = classification_metrics(three_class_predictions)

        assert metrics["accuracy"] == pytest.approx(4 / 6)
        assert metrics["macro_f1"] == pytest.approx((F1_A + F1_B + F1_C) / 3)
        assert metrics["n"] == 6

    def test_weighted_f1_weights_by_gold_support(self):
        # a: P 1, R 2/3 -> F1 0.8 (support 3); b: P 1/2, R 1 -> F1 2/3 (support 1).
        predictions = pd.DataFrame(
            {
                "row_id": [1, 2, 3, 4],
                "label": ["a", "a", "a", "b"],
                "predicted": ["a", "a", "b", "b"],
            }
        )

        metrics = classification_metrics(predictions)

        assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
        assert metrics["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)

    def test_multiclass_auc_is_the_macro_of_one_vs_rest(self, three_class_predictions):
        # Ranked pairs won (positive above negative, ties half): a 7/8, b 8/8, c 7.5/8.
        metrics = classification_metrics(three_class_predictions)

        assert metrics["roc_auc_ovr"] == pytest.approx((7 / 8 + 1.0 + 7.5 / 8) / 3)

    def test_binary_auc_uses_the_positive_class_column(self):
        # The one positive (0.8) outranks two of the three negatives (0.4, 0.35, not 0.9).
        proba_b = [0.9, 0.4, 0.35, 0.8]
        predictions = pd.DataFrame(
            {
                "row_id": [1, 2, 3, 4],
                "label": ["a", "a", "a", "b"],
                "predicted": ["b", "a", "a", "b"],
                "proba__a": [1 - p for p in proba_b],
                "proba__b": proba_b,
            }
        )

        assert classification_metrics(predictions)["roc_auc_ovr"] == pytest.approx(2 / 3)

    def test_auc_is_none_without_probabilities(self, three_class_predictions):
        without_proba = three_class_predictions[["row_id", "label", "predicted"]]

        assert classification_metrics(without_proba)["roc_auc_ovr"] is None

    def test_auc_is_none_when_a_class_is_missing_from_gold(self, three_class_predictions):
        no_gold_c = three_class_predictions.iloc[:4]

        assert classification_metrics(no_gold_c)["roc_auc_ovr"] is None

    def test_metrics_are_plain_python_numbers(self, three_class_predictions):
        metrics = classification_metrics(three_class_predictions)

        assert {type(value) for key, value in metrics.items() if key != "n"} == {float}
        assert type(metrics["n"]) is int

    def test_given_labels_fix_the_classes_of_the_macro_average(self, three_class_predictions):
        metrics = classification_metrics(three_class_predictions, labels=["a", "b", "c", "d"])

        assert metrics["macro_f1"] == pytest.approx((F1_A + F1_B + F1_C) / 4)

    def test_empty_predictions_are_refused(self, three_class_predictions):
        with pytest.raises(ValueError, match="empty"):
            classification_metrics(three_class_predictions.iloc[:0])


def test_report_frame_has_one_row_per_class(three_class_predictions):
    report = classification_report_frame(three_class_predictions)

    assert list(report.columns) == ["class", "precision", "recall", "f1", "support"]
    assert report["class"].tolist() == ["a", "b", "c"]
    assert report["f1"].tolist() == pytest.approx([F1_A, F1_B, F1_C])
    assert report["precision"].tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert report["support"].tolist() == [2, 2, 2]


def test_confusion_frame_counts_gold_rows_by_predicted_columns(three_class_predictions):
    confusion = confusion_frame(three_class_predictions)

    assert confusion["class"].tolist() == ["a", "b", "c"]
    assert confusion[["a", "b", "c"]].to_numpy().tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_subset_metrics_score_only_the_masked_rows(three_class_predictions):
    # Rows 1-4: gold a a b b, predicted a b b b.
    metrics = subset_metrics(three_class_predictions, [True] * 4 + [False] * 2)

    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["n"] == 4


def test_subset_metrics_refuse_a_mask_of_the_wrong_length(three_class_predictions):
    with pytest.raises(ValueError, match="5 entries for 6 rows"):
        subset_metrics(three_class_predictions, [True] * 5)


class TestNerMetrics:
    def test_strict_mode_ignores_an_i_tag_after_o(self, ner_predictions):
        # Predicted I-LOC after O is no entity, so LOC is missed: P 1/1, R 1/2.
        metrics = ner_metrics(ner_predictions.iloc[:1])

        assert metrics["precision"] == pytest.approx(1.0)
        assert metrics["recall"] == pytest.approx(0.5)
        assert metrics["entity_f1"] == pytest.approx(2 / 3)
        assert metrics["f1__PER"] == pytest.approx(1.0)
        assert metrics["f1__LOC"] == pytest.approx(0.0)

    def test_entity_micro_scores_token_accuracy_and_count(self, ner_predictions):
        # Gold PER, LOC, ORG; predicted PER and a too-short ORG: 1 true positive of 2 and 3.
        metrics = ner_metrics(ner_predictions)

        assert metrics["precision"] == pytest.approx(0.5)
        assert metrics["recall"] == pytest.approx(1 / 3)
        assert metrics["entity_f1"] == pytest.approx(0.4)
        assert metrics["f1__ORG"] == pytest.approx(0.0)
        assert metrics["token_accuracy"] == pytest.approx(5 / 7)
        assert metrics["n_sentences"] == 2

    def test_tags_read_from_parquet_as_arrays_are_accepted(self, ner_predictions):
        as_arrays = ner_predictions.assign(
            tags=ner_predictions["tags"].map(np.array),
            predicted=ner_predictions["predicted"].map(np.array),
        )

        assert ner_metrics(as_arrays) == ner_metrics(ner_predictions)

    def test_length_mismatch_names_the_row(self, ner_predictions):
        broken = ner_predictions.copy()
        broken.at[1, "predicted"] = ["O", "B-ORG"]

        with pytest.raises(ValueError, match="row_id 11: 3 gold tags but 2 predicted"):
            ner_metrics(broken)


def test_ner_report_frames_give_entity_and_token_reports(ner_predictions):
    entity_report, token_report = ner_report_frames(ner_predictions)

    assert entity_report["class"].tolist() == ["LOC", "ORG", "PER"]
    assert entity_report["f1"].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert entity_report["support"].tolist() == [1, 1, 1]
    # Every tag seen in gold or predictions, O and the gold-less I-LOC included.
    by_tag = token_report.set_index("class")
    assert sorted(by_tag.index) == ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]
    assert by_tag.loc["O", "precision"] == pytest.approx(2 / 3)
    assert by_tag.loc["O", "recall"] == pytest.approx(1.0)
    assert by_tag.loc["I-LOC", "support"] == 0


class TestMeanConfidenceInterval:
    def test_half_width_is_1_96_sd_over_root_n(self):
        mean, half_width = mean_confidence_interval([1.0, 2.0, 3.0, 4.0])

        assert mean == pytest.approx(2.5)
        assert half_width == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)

    def test_a_single_value_has_zero_width(self):
        assert mean_confidence_interval([0.7]) == (0.7, 0.0)

    def test_no_values_are_refused(self):
        with pytest.raises(ValueError):
            mean_confidence_interval([])

    def test_t_half_width_uses_the_student_quantile_and_one_value_has_none(self):
        mean, half_width = mean_confidence_interval([1.0, 2.0, 3.0, 4.0], "t")

        assert mean == pytest.approx(2.5)
        assert half_width == pytest.approx(3.182446305284263 * math.sqrt(5 / 3) / 2)
        assert math.isnan(mean_confidence_interval([0.7], "t")[1])

    def test_an_unknown_distribution_is_refused(self):
        with pytest.raises(ValueError, match="normal or t"):
            mean_confidence_interval([1.0, 2.0], "student")


def test_summarise_runs_averages_seeds_per_group_and_keeps_full_data():
    runs = pd.DataFrame(
        {
            "model": ["tfidf"] * 4,
            "k": [1, 1, 2, np.nan],
            "seed": [0, 1, 0, 0],
            "accuracy": [0.5, 0.7, 0.8, 0.9],
            "roc_auc_ovr": [None, 0.6, 0.7, 0.8],
        }
    )

    summary = summarise_runs(runs, ["model", "k"], ["accuracy", "roc_auc_ovr"])

    assert list(summary.columns) == [
        "model", "k", "accuracy_mean", "accuracy_std", "roc_auc_ovr_mean", "roc_auc_ovr_std",
        "n_runs",
    ]
    assert summary["k"].tolist()[:2] == [1, 2] and math.isnan(summary["k"].iloc[2])
    assert summary["accuracy_mean"].tolist() == pytest.approx([0.6, 0.8, 0.9])
    assert summary["accuracy_std"].tolist() == pytest.approx([math.sqrt(0.02), 0.0, 0.0])
    assert summary["roc_auc_ovr_mean"].tolist() == pytest.approx([0.6, 0.7, 0.8])
    assert summary["n_runs"].tolist() == [2, 1, 1]
