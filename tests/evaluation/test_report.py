import numpy as np
import pandas as pd

from fastadapt.evaluation.report import markdown_table


def test_markdown_table_formats_floats_aligns_numbers_and_marks_missing():
    frame = pd.DataFrame(
        {"model": ["tfidf", "bert"], "n": [10, 20], "accuracy": [0.81234, np.nan]}
    )

    assert markdown_table(frame) == (
        "| model | n | accuracy |\n"
        "| --- | ---: | ---: |\n"
        "| tfidf | 10 | 0.812 |\n"
        "| bert | 20 | n/a |\n"
    )


def test_markdown_table_takes_a_float_format_and_escapes_pipes():
    frame = pd.DataFrame({"class": ["a|b", None], "f1": [0.5, 1.0]}, index=["x", "y"])

    assert markdown_table(frame, float_format="{:.1%}") == (
        "| class | f1 |\n"
        "| --- | ---: |\n"
        "| a\\|b | 50.0% |\n"
        "| n/a | 100.0% |\n"
    )


def test_an_empty_frame_keeps_its_header():
    assert markdown_table(pd.DataFrame(columns=["model", "accuracy"])) == (
        "| model | accuracy |\n| --- | --- |\n"
    )
