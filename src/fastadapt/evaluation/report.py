"""Markdown rendering for the summary report, without a tabulate dependency."""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING_CELL = "n/a"


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """A GitHub-markdown table of the frame's columns (the index is left out; reset it to keep it).

    Numeric columns are right-aligned, floats go through ``float_format``, missing values read
    ``n/a`` and pipes in text are escaped so that they cannot split a cell.
    """
    headers = [_escape(str(column)) for column in frame.columns]
    alignments = ["---:" if _is_numeric(frame[column]) else "---" for column in frame.columns]
    lines = [_row(headers), _row(alignments)]
    for values in frame.itertuples(index=False, name=None):
        lines.append(_row([_format_cell(value, float_format) for value in values]))
    return "\n".join(lines) + "\n"


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _format_cell(value: object, float_format: str) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING_CELL
    if isinstance(value, (float, np.floating)):
        return MISSING_CELL if np.isnan(value) else float_format.format(value)
    return _escape(str(value))


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
