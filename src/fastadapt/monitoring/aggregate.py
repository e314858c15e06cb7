"""Daily aggregates of a scored stream, per entity and for the whole stream.

A scored stream has one row per item (headline) with a date, a label column (a model's
``predicted`` label, or a gold label) and optionally a ``negative_score`` in [0, 1]. The entity
column holds one entity per row (a ticker) or a list of entities (the organisations a NER model
found); an item counts once for each distinct entity it names, and once for ``__all__``.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

ALL_ENTITY = "__all__"
DAILY_COLUMNS = ["entity", "day", "n", "n_negative", "negative_share", "mean_score"]


def day_strings(values: pd.Series) -> list[str | None]:
    """Dates as ``YYYY-MM-DD`` strings (None where missing), as the reports and JSON files show them."""
    return [None if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d") for v in values]


def _is_listlike(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def entity_rows(frame: pd.DataFrame, entity_column: str) -> pd.DataFrame:
    """`frame` with one row per (item, entity) in a string column ``entity``.

    List-valued cells are exploded (duplicates within a cell removed), missing or empty
    entities dropped; entities are compared as strings, so that ``__all__`` and the entities
    share one column type.
    """
    if entity_column not in frame.columns:
        raise KeyError(f"entity column '{entity_column}' not in the frame ({list(frame.columns)})")
    values = frame[entity_column]
    if values.map(_is_listlike).any():
        values = values.map(
            lambda cell: list(dict.fromkeys(cell)) if _is_listlike(cell) else cell
        )
        exploded = frame.assign(entity=values).explode("entity")
    else:
        exploded = frame.assign(entity=values)
    exploded = exploded[exploded["entity"].notna()]
    exploded = exploded.assign(entity=exploded["entity"].astype(str).str.strip())
    exploded = exploded[exploded["entity"] != ""]
    return exploded.reset_index(drop=True)


def _fill_days(counts: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    days = pd.date_range(first, last, freq="D")
    return counts.set_index("day").reindex(days).rename_axis("day").reset_index()


def daily_counts(
    scored: pd.DataFrame,
    entity_column: str,
    negative_label: Hashable,
    date_column: str = "published_at",
    label_column: str = "predicted",
    score_column: str | None = "negative_score",
) -> pd.DataFrame:
    """Items per entity and day: ``entity, day, n, n_negative, negative_share, mean_score``.

    - ``n``: items of the entity that day that carry a label (rows whose label is missing cannot
      be judged and are left out, as are rows without a date);
    - ``n_negative``: those labelled ``negative_label``; ``negative_share`` = n_negative / n;
    - ``mean_score``: mean of ``score_column`` over those items (NaN when the column is absent
      or ``score_column`` is None).

    Besides each entity, the entity ``__all__`` counts every item once per day. Each entity's
    days run without gaps from its first to its last item (``__all__`` over the stream's whole
    range): a day without items has ``n = n_negative = 0`` and NaN share and score, so that
    rolling baselines see the quiet days. Sorted by entity then day; days are midnight
    timestamps (time zone kept).
    """
    for column in (date_column, label_column):
        if column not in scored.columns:
            raise KeyError(f"column '{column}' not in the scored frame ({list(scored.columns)})")
    frame = scored[scored[label_column].notna() & scored[date_column].notna()]
    has_score = score_column is not None and score_column in scored.columns
    day = pd.to_datetime(frame[date_column]).dt.normalize()
    base = pd.DataFrame(
        {
            "day": day.to_numpy(),
            "negative": (frame[label_column].astype(str) == str(negative_label)).to_numpy(int),
            "score": (
                pd.to_numeric(frame[score_column], errors="coerce").to_numpy(float)
                if has_score
                else np.full(len(frame), np.nan)
            ),
        }
    )
    if base.empty:
        return _typed(pd.DataFrame(columns=DAILY_COLUMNS))
    base["entity_value"] = frame[entity_column].to_numpy(object)

    def aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return (
            rows.groupby(keys, sort=True)
            .agg(
                n=("negative", "size"),
                n_negative=("negative", "sum"),
                mean_score=("score", "mean"),
            )
            .reset_index()
        )

    first_day, last_day = base["day"].min(), base["day"].max()
    overall = _fill_days(aggregate(base, ["day"]), first_day, last_day).assign(entity=ALL_ENTITY)

    per_entity = entity_rows(base, "entity_value")
    pieces = [overall]
    if not per_entity.empty:
        counts = aggregate(per_entity, ["entity", "day"])
        for entity, rows in counts.groupby("entity", sort=True):
            filled = _fill_days(rows.drop(columns="entity"), rows["day"].min(), rows["day"].max())
            pieces.append(filled.assign(entity=entity))
    daily = pd.concat(pieces, ignore_index=True)
    daily[["n", "n_negative"]] = daily[["n", "n_negative"]].fillna(0)
    return _typed(daily)


def _typed(daily: pd.DataFrame) -> pd.DataFrame:
    daily = daily.astype({"n": "int64", "n_negative": "int64", "mean_score": "float64"})
    daily["entity"] = daily["entity"].astype(object)
    daily["negative_share"] = np.divide(
        daily["n_negative"].to_numpy(float),
        daily["n"].to_numpy(float),
        out=np.full(len(daily), np.nan),
        where=daily["n"].to_numpy() > 0,
    )
    daily = daily[DAILY_COLUMNS]
    order = np.lexsort((daily["day"].to_numpy(), daily["entity"].to_numpy(str)))
    return daily.iloc[order].reset_index(drop=True)
