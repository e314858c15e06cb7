"""Checks shared by the task modules on the tables they receive."""

from __future__ import annotations

import pandas as pd


def require_columns(rows: pd.DataFrame, columns: list[str], caller: str) -> None:
    """Fail early, naming the missing columns, rather than with a bare KeyError deep inside."""
    missing = [column for column in columns if column not in rows.columns]
    if missing:
        raise ValueError(
            f"{caller}: the table lacks column(s) {missing}; it has {list(rows.columns)}"
        )
