"""The surge test checked on labelled data (PROTOCOL.md section 6).

Gold surge days are the windows the surge test flags when fed gold labels, predicted surge days
those it flags when fed a model's labels on the same items; predicted days are scored against
gold days with a tolerance, and a control with each entity's dates shuffled shows how many
alerts the test raises when labels carry no time structure. :func:`labelled_check` runs all of
it on a scored stream with :class:`CheckSettings` (``monitoring.check``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.config import Checks, Settings
from fastadapt.monitoring.aggregate import ALL_ENTITY, daily_counts, day_strings
from fastadapt.monitoring.surge import SurgeConfig, detect_surges


@dataclass(frozen=True)
class CheckSettings(Settings):
    """The labelled check (`monitoring.check`): which rows carry gold labels, and how to compare.

    - ``source``: the stream source with gold labels (None: every row with a gold label);
    - ``entity_column``, ``gold_label_column``, ``gold_negative_label``: where the gold is;
    - ``tolerance_days``: how far a predicted surge day may be from a gold one;
    - ``control_seed``: the shuffled-dates control's seed;
    - ``date_from`` / ``date_until``: only rows published in [date_from, date_until) (None: open).
    """

    source: str | None = "stockemotions"
    entity_column: str = "ticker"
    gold_label_column: str = "label"
    gold_negative_label: str = "bearish"
    tolerance_days: int = 1
    control_seed: int = 0
    date_from: str | None = "2020-09-01"
    date_until: str | None = None

    def validate(self, where: str = "monitoring.check") -> None:
        check = Checks(self, where)
        check.text("source", optional=True)
        check.text("entity_column")
        check.text("gold_label_column")
        check.text("gold_negative_label")
        check.integer("tolerance_days", 0)
        check.integer("control_seed", 0)
        for key in ("date_from", "date_until"):
            value = getattr(self, key)
            if value is None:
                continue
            try:
                valid = isinstance(value, (str, dt.date)) and not pd.isna(pd.Timestamp(str(value)))
            except ValueError:
                valid = False
            if not valid:
                check.fail(key, "allowed: a date such as \"2020-09-01\", or null")


def _labelled_rows(scored_stream: pd.DataFrame, settings: CheckSettings) -> pd.DataFrame:
    """The rows of ``settings.source`` with a gold label and an entity, in the date range."""
    rows = scored_stream
    if settings.source:
        rows = rows[rows["source"] == settings.source]
    rows = rows[rows[settings.gold_label_column].notna() & rows[settings.entity_column].notna()]
    if settings.date_from is not None or settings.date_until is not None:
        days = pd.to_datetime(rows["published_at"])
        keep = pd.Series(True, index=rows.index)
        if settings.date_from is not None:
            keep &= days >= pd.Timestamp(str(settings.date_from))
        if settings.date_until is not None:
            keep &= days < pd.Timestamp(str(settings.date_until))
        rows = rows[keep]
    return rows.reset_index(drop=True)


def _surge_day_list(alerts: pd.DataFrame) -> list[list[str]]:
    if alerts.empty:
        return []
    days = pd.DataFrame({"entity": alerts["entity"].astype(str),
                         "day": day_strings(alerts["window_end"])}).drop_duplicates()
    return days.sort_values(["day", "entity"]).values.tolist()


def _share(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None


def labelled_check(
    scored_stream: pd.DataFrame, settings: CheckSettings, surge: SurgeConfig, negative_label: str
) -> dict[str, Any]:
    """Predicted surge days against the gold ones on the labelled rows, and the shuffled control.

    ``negative_label`` is the model's reported negative label (``monitoring.scoring``). Returns a
    record with ``status`` ``checked`` (precision, recall, the control's alert counts, the item
    agreement and both lists of surge days) or ``no_labelled_rows`` with the reason.
    """
    gold_column, entity, gold_negative = (settings.gold_label_column, settings.entity_column,
                                          settings.gold_negative_label)
    if gold_column not in scored_stream.columns or entity not in scored_stream.columns:
        return {"status": "no_labelled_rows", "reason": f"the stream has no '{gold_column}' / '{entity}' columns"}
    rows = _labelled_rows(scored_stream, settings)
    date_from, date_until = settings.date_from, settings.date_until
    if rows.empty:
        return {"status": "no_labelled_rows", "source": settings.source,
                "reason": f"no labelled rows from source '{settings.source}' in the scored stream"
                          f" between {date_from} and {date_until}"}
    gold = surge_days_from_labels(rows, gold_column, gold_negative, entity, surge)
    predicted = surge_days_from_labels(rows, "predicted", negative_label, entity, surge)
    scores = compare_surge_days(gold, predicted, settings.tolerance_days)
    shuffled = shuffled_dates_control(rows, entity, seed=settings.control_seed)
    control_gold = surge_days_from_labels(shuffled, gold_column, gold_negative, entity, surge)
    control_predicted = surge_days_from_labels(shuffled, "predicted", negative_label, entity, surge)
    is_gold_negative = rows[gold_column].astype(str) == str(gold_negative)
    is_predicted_negative = rows["predicted"].astype(str) == str(negative_label)
    return {
        "status": "checked",
        "source": settings.source,
        "n_items": len(rows),
        "n_entities": int(rows[entity].nunique()),
        "date_from": None if date_from is None else str(date_from),
        "date_until": None if date_until is None else str(date_until),
        "gold_negative_label": gold_negative,
        "predicted_negative_label": negative_label,
        "tolerance_days": settings.tolerance_days,
        **scores,
        "n_tests": int(gold.attrs.get("n_tests", 0)),
        "control_seed": settings.control_seed,
        "control_alerts_gold": len(control_gold),
        "control_alerts_predicted": len(control_predicted),
        "control_n_tests": int(control_gold.attrs.get("n_tests", 0)),
        "item_agreement": {
            "gold_negative_share": float(is_gold_negative.mean()),
            "predicted_negative_share": float(is_predicted_negative.mean()),
            "predicted_negative_given_gold_negative": _share(is_predicted_negative[is_gold_negative]),
            "predicted_negative_given_gold_other": _share(is_predicted_negative[~is_gold_negative]),
        },
        "gold_days": _surge_day_list(gold),
        "predicted_days": _surge_day_list(predicted),
    }


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
