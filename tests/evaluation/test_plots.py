import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fastadapt.evaluation.plots import (
    confusion_matrix_figure,
    learning_curve_figure,
)


class TestConfusionMatrixFigure:
    def test_cells_are_shares_of_the_gold_row(self, three_class_predictions):
        figure = confusion_matrix_figure(three_class_predictions, title="toy")

        assert isinstance(figure, Figure)
        matrix_axes, colourbar_axes = figure.axes
        shares = np.asarray(matrix_axes.images[0].get_array())
        np.testing.assert_allclose(shares, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
        assert [tick.get_text() for tick in matrix_axes.get_yticklabels()] == ["a", "b", "c"]
        assert len(matrix_axes.texts) == 9
        assert matrix_axes.get_title() == "toy"

    def test_a_gold_class_without_rows_gives_zeros_not_nan(self, three_class_predictions):
        figure = confusion_matrix_figure(three_class_predictions, labels=["a", "b", "c", "d"])

        shares = np.asarray(figure.axes[0].images[0].get_array())
        assert shares[3].tolist() == [0.0, 0.0, 0.0, 0.0]

    def test_77_classes_get_a_larger_figure_every_tick_and_no_cell_text(self):
        classes = [f"intent_{index:02d}" for index in range(77)]
        predictions = pd.DataFrame(
            {"row_id": range(77), "label": classes, "predicted": classes[1:] + classes[:1]}
        )

        figure = confusion_matrix_figure(predictions)

        small = confusion_matrix_figure(predictions.iloc[:3], labels=classes[:3])
        assert figure.get_size_inches()[1] > 2 * small.get_size_inches()[1]
        matrix_axes = figure.axes[0]
        assert len(matrix_axes.get_xticks()) == 77
        assert len(matrix_axes.texts) == 0


@pytest.fixture
def curves() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["tfidf"] * 4 + ["bert"] * 4,
            "k": [1, 4, 16, -1, 1, 4, 16, np.nan],
            "accuracy_mean": [0.3, 0.5, 0.6, 0.8, 0.4, 0.6, 0.7, 0.9],
            "accuracy_std": [0.1, 0.05, 0.02, 0.0, 0.1, 0.05, np.nan, 0.0],
        }
    )


class TestLearningCurveFigure:
    def test_one_line_and_band_per_model_plus_dashed_full_data_lines(self, curves):
        figure = learning_curve_figure(curves, metric="accuracy", title="banking77")

        (ax,) = figure.axes
        labels = [line.get_label() for line in ax.lines]
        assert sorted(labels) == ["bert", "bert (full data)", "tfidf", "tfidf (full data)"]
        assert len(ax.collections) == 2
        full_lines = [line for line in ax.lines if line.get_label().endswith("(full data)")]
        assert {line.get_linestyle() for line in full_lines} == {"--"}
        assert sorted(line.get_ydata()[0] for line in full_lines) == pytest.approx([0.8, 0.9])

    def test_the_curve_runs_over_sorted_k_with_ticks_at_the_k_values(self, curves):
        shuffled = curves.sample(frac=1.0, random_state=0)

        figure = learning_curve_figure(shuffled)

        ax = figure.axes[0]
        tfidf_line = next(line for line in ax.lines if line.get_label() == "tfidf")
        assert list(tfidf_line.get_xdata()) == [1, 4, 16]
        assert list(tfidf_line.get_ydata()) == pytest.approx([0.3, 0.5, 0.6])
        assert list(ax.get_xticks()) == [1, 4, 16]
        assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "4", "16"]
        assert ax.get_ylabel() == "accuracy"

    def test_a_model_with_only_full_data_draws_just_its_reference_line(self, curves):
        full_only = pd.DataFrame(
            {"model": ["majority"], "k": [-1], "accuracy_mean": [0.2], "accuracy_std": [0.0]}
        )

        figure = learning_curve_figure(pd.concat([curves, full_only]))

        labels = [line.get_label() for line in figure.axes[0].lines]
        assert "majority (full data)" in labels and "majority" not in labels

