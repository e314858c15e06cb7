"""The surge test checked on labelled data (PROTOCOL.md section 6).

Gold surge days are the windows the surge test flags when fed gold labels, predicted surge days
those it flags when fed a model's labels on the same items; predicted days are scored against
gold days with a tolerance, and a control with each entity's dates shuffled shows how many
alerts the test raises when labels carry no time structure.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from fastadapt.monitoring.aggregate import ALL_ENTITY, daily_counts
from fastadapt.monitoring.surge import SurgeConfig, detect_surges


def surge_days_from_labels(
    stream: pd.DataFrame,
    label_column: str,
    negative_label: Hashable,
    entity_column: str,
    config: SurgeConfig | None = None,
    date_column: str = "published_at",
    include_all: bool = False,
) -> pd.DataFrame:
    """The surge alerts the monitoring test raises on ``label_column`` (gold or predicted).

    Rows without a label are left out. The ``__all__`` stream-wide series is tested only with
    ``include_all`` (section 6 counts per entity); it always sets the baseline prior. Alerts are
    not de-duplicated: every flagged window is a surge day (its ``window_end``).
    """
    daily = daily_counts(
        stream, entity_column, negative_label, date_column=date_column,
        label_column=label_column, score_column=None,
    )
    entities = None if include_all else [e for e in daily["entity"].unique() if e != ALL_ENTITY]
    return detect_surges(daily, config or SurgeConfig(), entities=entities)


def _days_by_entity(alerts: pd.DataFrame) -> dict[str, np.ndarray]:
    days = pd.to_datetime(alerts["window_end"]).dt.normalize()
    frame = pd.DataFrame(
        {"entity": alerts["entity"].astype(str).to_numpy(), "day": days.to_numpy()}
    )
    frame = frame.drop_duplicates()
    return {
        entity: rows["day"].to_numpy("datetime64[D]").astype(np.int64)
        for entity, rows in frame.groupby("entity", sort=True)
    }


def compare_surge_days(
    gold_alerts: pd.DataFrame, predicted_alerts: pd.DataFrame, tolerance_days: int = 1
) -> dict[str, float | int | None]:
    """Precision and recall of predicted surge days against gold ones.

    Surge days are distinct (entity, ``window_end`` day) pairs. A predicted day is a hit when a
    gold day of the same entity lies within ``tolerance_days``; a gold day is found when a
    predicted day lies within the same tolerance. ``precision = hits / n_predicted`` and
    ``recall = gold_found / n_gold`` (None when the denominator is 0).
    """
    if tolerance_days < 0:
        raise ValueError(f"tolerance_days must be >= 0, got {tolerance_days!r}")
    gold, predicted = _days_by_entity(gold_alerts), _days_by_entity(predicted_alerts)

    def matched(days: np.ndarray, others: np.ndarray | None) -> int:
        if others is None or len(others) == 0 or len(days) == 0:
            return 0
        distance = np.abs(days[:, None] - others[None, :]).min(axis=1)
        return int((distance <= tolerance_days).sum())

    n_gold = sum(len(days) for days in gold.values())
    n_predicted = sum(len(days) for days in predicted.values())
    hits = sum(matched(days, gold.get(entity)) for entity, days in predicted.items())
    gold_found = sum(matched(days, predicted.get(entity)) for entity, days in gold.items())
    return {
        "precision": hits / n_predicted if n_predicted else None,
        "recall": gold_found / n_gold if n_gold else None,
        "n_gold": n_gold,
        "n_predicted": n_predicted,
        "hits": hits,
        "gold_found": gold_found,
    }


def shuffled_dates_control(
    stream: pd.DataFrame, entity_column: str, date_column: str = "published_at", seed: int = 0
) -> pd.DataFrame:
    """``stream`` with each entity's dates permuted among its own rows (``default_rng(seed)``).

    Each entity keeps its dates (so its daily volumes) but its labels lose their order in
    time. Entities are shuffled in sorted order with one generator, rows without an entity form
    one more group, and list-valued entity cells are grouped by their whole value. Row order and
    every other column are unchanged.
    """
    rng = np.random.default_rng(seed)
    keys = stream[entity_column].map(
        lambda cell: "" if cell is None or (np.ndim(cell) == 0 and pd.isna(cell))
        else repr(sorted(map(str, cell))) if isinstance(cell, (list, tuple, set, np.ndarray))
        else str(cell)
    )
    dates = stream[date_column].to_numpy(copy=True)
    positions = pd.Series(np.arange(len(stream)), index=stream.index)
    for _, group in positions.groupby(keys.to_numpy(), sort=True):
        rows = group.to_numpy()
        dates[rows] = dates[rng.permutation(rows)]
    result = stream.copy()
    result[date_column] = pd.Series(dates, index=stream.index, dtype=stream[date_column].dtype)
    return result
