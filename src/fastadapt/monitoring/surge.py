"""Surges of negative news per entity, judged against the entity's own recent past.

For each entity and each window of ``window_days`` consecutive days (one window ending on every
day), the window's negative items are compared with the entity's negative share over the
``baseline_days`` days before the window (the window itself excluded). The baseline share is
smoothed towards the stream-wide share of the same baseline days with ``prior_strength``
pseudo-items, so that a baseline without negatives does not make one negative item a certain
surge. The test is a one-sided exact binomial test,
``scipy.stats.binomtest(n_negative, n, expected_share, alternative="greater")``, computed for
all windows at once as ``binom.sf(n_negative - 1, n, expected_share)`` (the same number), and
its p-values are corrected across every window and entity tested (statsmodels
``multipletests``). A window is tested only with at least ``min_count`` items, at least
``min_baseline_count`` baseline items and ``min_baseline_days`` baseline days since the entity's
first item.

``daily`` is the output of :func:`fastadapt.monitoring.aggregate.daily_counts`; only its
``entity, day, n, n_negative`` columns are used, and missing days count as days without items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom
from statsmodels.stats.multitest import multipletests

from fastadapt.config import Checks, Settings
from fastadapt.monitoring.aggregate import ALL_ENTITY, day_strings, entity_rows

CORRECTIONS = ("fdr_bh", "bonferroni", "none")
SEVERITIES = ("low", "medium", "high")
TEST_COLUMNS = [
    "entity",
    "window_start",
    "window_end",
    "n",
    "n_negative",
    "observed_share",
    "expected_share",
    "baseline_n",
    "baseline_negative",
    "ratio",
    "p_value",
    "p_adjusted",
    "severity",
]
ALERT_COLUMNS = [
    *TEST_COLUMNS, "n_absorbed", "last_absorbed_end", "headlines", "model",
]
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


def _is_integer(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


@dataclass(frozen=True)
class SurgeConfig(Settings):
    """Settings of the surge test (`monitoring.surge`).

    - ``baseline_days``: days before the window that form the entity's baseline;
    - ``min_baseline_days``: baseline days since the entity's first item needed to test;
    - ``min_baseline_count``: baseline items needed to test;
    - ``min_count``: items in the window needed to test;
    - ``cooldown_days``: days after an alert during which an entity's repeats are absorbed;
    - ``window_days``: days per window (one window ends on every day);
    - ``prior_strength``: pseudo-items at the stream-wide share added to each baseline;
    - severity: ``high`` when observed / expected >= ``high_ratio`` and the corrected p-value
      <= ``alpha * high_p_factor``; ``medium`` when the ratio >= ``medium_ratio``; else ``low``;
    - ``alpha``: level of the corrected p-value below which a window is an alert;
    - ``correction``: ``fdr_bh`` (Benjamini-Hochberg), ``bonferroni`` or ``none``.
    """

    baseline_days: int = 28
    min_baseline_days: int = 7
    min_baseline_count: int = 5
    min_count: int = 5
    cooldown_days: int = 3
    window_days: int = 1
    prior_strength: float = 2.0
    medium_ratio: float = 1.5
    high_ratio: float = 2.0
    high_p_factor: float = 0.1
    alpha: float = 0.01
    correction: str = "fdr_bh"

    def validate(self, where: str = "monitoring.surge") -> None:
        check = Checks(self, where)
        check.integer("baseline_days", 1)
        check.integer("min_baseline_days", 0, maximum=self.baseline_days)
        check.integer("min_baseline_count", 0)
        check.integer("min_count", 1)
        check.integer("cooldown_days", 0)
        check.integer("window_days", 1)
        check.number("alpha", 0.0, 1.0, strict_low=True)
        check.choice("correction", CORRECTIONS)
        check.number("prior_strength", 0.0, strict_low=True)
        check.number("high_ratio", 1.0)
        check.number("medium_ratio", 1.0, self.high_ratio, strict_high=False)
        check.number("high_p_factor", 0.0, 1.0, strict_low=True, strict_high=False)


@dataclass(frozen=True)
class AlertSettings(Settings):
    """What an alert carries (`monitoring.alerts`): its most negative headlines, and whether the
    whole stream (entity ``__all__``) is tested too."""

    headlines_per_alert: int = 5
    include_all: bool = True

    def validate(self, where: str = "monitoring.alerts") -> None:
        check = Checks(self, where)
        check.integer("headlines_per_alert", 1)
        check.boolean("include_all")


def _dense(daily: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Entities, the day range and entity x day matrices of n and n_negative (zeros filled)."""
    missing = {"entity", "day", "n", "n_negative"} - set(daily.columns)
    if missing:
        raise KeyError(f"daily counts lack column(s) {sorted(missing)}")
    rows = daily[["entity", "day", "n", "n_negative"]].copy()
    rows["entity"] = rows["entity"].astype(str)
    rows["day"] = pd.to_datetime(rows["day"]).dt.normalize()
    if (rows["n_negative"] > rows["n"]).any() or (rows["n_negative"] < 0).any():
        raise ValueError("daily counts: n_negative must lie between 0 and n")
    rows = rows.groupby(["entity", "day"], sort=True)[["n", "n_negative"]].sum().reset_index()
    entities = np.array(sorted(rows["entity"].unique()), dtype=object)
    days = pd.date_range(rows["day"].min(), rows["day"].max(), freq="D")
    entity_index = pd.Index(entities).get_indexer(rows["entity"])
    day_index = days.get_indexer(rows["day"])
    n = np.zeros((len(entities), len(days)), dtype=np.int64)
    negative = np.zeros_like(n)
    n[entity_index, day_index] = rows["n"].to_numpy(np.int64)
    negative[entity_index, day_index] = rows["n_negative"].to_numpy(np.int64)
    return entities, days, n, negative


def _window_sums(values: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Sums of values[:, start:stop] per column position (start/stop clipped to the range)."""
    cumulative = np.concatenate(
        [np.zeros((values.shape[0], 1), dtype=values.dtype), np.cumsum(values, axis=1)], axis=1
    )
    width = values.shape[1]
    return cumulative[:, np.clip(stop, 0, width)] - cumulative[:, np.clip(start, 0, width)]


def baseline_shares(daily: pd.DataFrame, config: SurgeConfig | None = None) -> pd.DataFrame:
    """Every entity x window: window and baseline counts and the smoothed expected share.

    Columns ``entity, window_start, window_end, n, n_negative, baseline_n, baseline_negative,
    baseline_known_days, expected_share`` for every window ending on a day of the stream's range
    (also untested ones; the plots draw the baseline from it).
    """
    config = config or SurgeConfig()
    if daily.empty:
        return pd.DataFrame(
            columns=["entity", "window_start", "window_end", "n", "n_negative", "baseline_n",
                     "baseline_negative", "baseline_known_days", "expected_share"]
        )
    entities, days, n, negative = _dense(daily)
    width = len(days)
    w, b = config.window_days, config.baseline_days
    end = np.arange(width)  # window = days end-w+1 .. end, baseline = end-w-b+1 .. end-w
    window_n = _window_sums(n, end - w + 1, end + 1)
    window_negative = _window_sums(negative, end - w + 1, end + 1)
    baseline_n = _window_sums(n, end - w - b + 1, end - w + 1)
    baseline_negative = _window_sums(negative, end - w - b + 1, end - w + 1)

    # The stream-wide share of the same baseline days: from __all__ when present, else pooled.
    is_all = entities == ALL_ENTITY
    pool = is_all if is_all.any() else ~is_all
    pool_n = baseline_n[pool].sum(axis=0)
    pool_negative = baseline_negative[pool].sum(axis=0)
    prior_share = (pool_negative + 0.5) / (pool_n + 1.0)
    strength = float(config.prior_strength)
    expected = (baseline_negative + strength * prior_share) / (baseline_n + strength)

    has_items = n > 0
    first = np.where(has_items.any(axis=1), has_items.argmax(axis=1), width)
    baseline_first = np.maximum(end - w - b + 1, first[:, None])
    known_days = np.clip(end - w - baseline_first + 1, 0, None)

    shape = n.shape
    frame = pd.DataFrame(
        {
            "entity": np.repeat(entities, width),
            "window_start": np.tile(days - pd.Timedelta(days=w - 1), len(entities)),
            "window_end": np.tile(days, len(entities)),
            "n": window_n.reshape(-1),
            "n_negative": window_negative.reshape(-1),
            "baseline_n": baseline_n.reshape(-1),
            "baseline_negative": baseline_negative.reshape(-1),
            "baseline_known_days": np.broadcast_to(known_days, shape).reshape(-1),
            "expected_share": expected.reshape(-1),
        }
    )
    # Windows that begin before the stream does are incomplete: drop them.
    return frame[np.tile(end - w + 1 >= 0, len(entities))].reset_index(drop=True)


def _severity(ratio: np.ndarray, p_adjusted: np.ndarray, config: SurgeConfig) -> np.ndarray:
    high = (ratio >= config.high_ratio) & (p_adjusted <= config.alpha * config.high_p_factor)
    medium = ratio >= config.medium_ratio
    return np.where(high, "high", np.where(medium, "medium", "low"))


def surge_tests(
    daily: pd.DataFrame, config: SurgeConfig | None = None, entities: Iterable[str] | None = None
) -> pd.DataFrame:
    """Every window tested, with its p-values, severity and an ``alert`` flag.

    ``entities`` restricts the windows tested (and so the multiple-testing family); the
    stream-wide prior still comes from the whole of ``daily``. ``attrs["n_tests"]`` holds the
    number of tests the correction ran over.
    """
    config = config or SurgeConfig()
    windows = baseline_shares(daily, config)
    if entities is not None:
        windows = windows[windows["entity"].isin({str(entity) for entity in entities})]
    tested = windows[
        (windows["n"] >= config.min_count)
        & (windows["baseline_n"] >= config.min_baseline_count)
        & (windows["baseline_known_days"] >= config.min_baseline_days)
    ].reset_index(drop=True)
    n = tested["n"].to_numpy(np.int64)
    k = tested["n_negative"].to_numpy(np.int64)
    expected = tested["expected_share"].to_numpy(float)
    # binomtest(k, n, p, alternative="greater").pvalue == P(X >= k) == binom.sf(k - 1, n, p)
    p_value = np.clip(binom.sf(k - 1, n, expected), 0.0, 1.0) if len(tested) else np.zeros(0)
    if len(tested) == 0 or config.correction == "none":
        p_adjusted = p_value.copy()
    else:
        p_adjusted = multipletests(p_value, alpha=config.alpha, method=config.correction)[1]
    observed = np.divide(k, n, out=np.zeros(len(n)), where=n > 0)
    ratio = observed / expected if len(tested) else np.zeros(0)
    result = pd.DataFrame(
        {
            "entity": tested["entity"].astype(object),
            "window_start": tested["window_start"],
            "window_end": tested["window_end"],
            "n": n,
            "n_negative": k,
            "observed_share": observed,
            "expected_share": expected,
            "baseline_n": tested["baseline_n"].to_numpy(np.int64),
            "baseline_negative": tested["baseline_negative"].to_numpy(np.int64),
            "ratio": ratio,
            "p_value": p_value,
            "p_adjusted": p_adjusted,
            "severity": _severity(ratio, p_adjusted, config) if len(tested) else np.zeros(0, str),
        },
        columns=TEST_COLUMNS,
    )
    result["alert"] = (result["p_adjusted"] <= config.alpha) & (
        result["observed_share"] > result["expected_share"]
    )
    result.attrs["n_tests"] = int(len(result))
    return result


def detect_surges(
    daily: pd.DataFrame, config: SurgeConfig | None = None, entities: Iterable[str] | None = None
) -> pd.DataFrame:
    """The alerts: windows whose corrected p-value is at most ``config.alpha``.

    Columns ``entity, window_start, window_end, n, n_negative, observed_share, expected_share,
    baseline_n, baseline_negative, ratio, p_value, p_adjusted, severity``, sorted by entity and
    window; ``attrs["n_tests"]`` is the size of the tested family. Repeats are kept (see
    :func:`deduplicate_alerts`).
    """
    tests = surge_tests(daily, config, entities)
    alerts = tests[tests["alert"]].drop(columns="alert")
    alerts = alerts.sort_values(["entity", "window_start"], kind="stable").reset_index(drop=True)
    alerts.attrs["n_tests"] = tests.attrs["n_tests"]
    return alerts


def deduplicate_alerts(alerts: pd.DataFrame, cooldown_days: int) -> pd.DataFrame:
    """One alert per episode: an entity's first alert absorbs its repeats within the cool-down.

    An alert whose window starts at most ``cooldown_days`` days after the end of the entity's
    last kept alert is a repeat and is dropped; the kept alert counts them in ``n_absorbed`` and
    records the end of the last one in ``last_absorbed_end`` (its own end when none). The
    cool-down runs from the kept alert, so a lasting surge is reported again every
    ``cooldown_days + 1`` days or so.
    """
    if not _is_integer(cooldown_days) or cooldown_days < 0:
        raise ValueError(f"cooldown_days must be an integer >= 0, got {cooldown_days!r}")
    ordered = alerts.sort_values(["entity", "window_start", "window_end"], kind="stable")
    kept_rows: list[int] = []
    absorbed: list[int] = []
    last_end: list[pd.Timestamp] = []
    cooldown = pd.Timedelta(days=int(cooldown_days))
    current_entity: object = None
    kept_end: pd.Timestamp | None = None
    for position, (entity, start, end) in enumerate(
        zip(ordered["entity"], ordered["window_start"], ordered["window_end"])
    ):
        if entity == current_entity and kept_end is not None and start <= kept_end + cooldown:
            absorbed[-1] += 1
            last_end[-1] = max(last_end[-1], end)
            continue
        current_entity, kept_end = entity, end
        kept_rows.append(position)
        absorbed.append(0)
        last_end.append(end)
    result = ordered.iloc[kept_rows].copy()
    result["n_absorbed"] = np.asarray(absorbed, dtype=np.int64)
    result["last_absorbed_end"] = pd.Series(
        last_end, index=result.index, dtype=ordered["window_end"].dtype
    )
    result.attrs = dict(alerts.attrs)
    return result.reset_index(drop=True)


def attach_headlines(
    alerts: pd.DataFrame,
    scored: pd.DataFrame,
    entity_column: str,
    top_n: int = 5,
    date_column: str = "published_at",
    score_column: str = "negative_score",
    headline_column: str = "headline",
    label_column: str | None = None,
    negative_label: object = None,
) -> pd.DataFrame:
    """``alerts`` with ``headlines``: the ``top_n`` most negative headlines of each window.

    Headlines of the alert's entity (every headline for ``__all__``) published within the
    window are ranked by ``score_column`` (highest first); without a score column, items
    labelled ``negative_label`` in ``label_column`` come first. Ties keep stream order.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n!r}")
    result = alerts.copy()
    if alerts.empty:
        result["headlines"] = pd.Series([], dtype=object)
        return result
    frame = scored.assign(_day=pd.to_datetime(scored[date_column]).dt.normalize())
    if score_column in frame.columns:
        frame["_rank"] = pd.to_numeric(frame[score_column], errors="coerce").fillna(-np.inf)
    elif label_column is not None and label_column in frame.columns and negative_label is not None:
        frame["_rank"] = (frame[label_column].astype(str) == str(negative_label)).astype(float)
    else:
        raise KeyError(
            f"attach_headlines: no '{score_column}' column to rank by; pass label_column and "
            "negative_label to rank by label instead"
        )
    frame = frame.reset_index(drop=True).reset_index(names="_order")
    per_entity = entity_rows(frame, entity_column)
    groups = {entity: rows for entity, rows in per_entity.groupby("entity", sort=False)}
    headlines = []
    for entity, start, end in zip(alerts["entity"], alerts["window_start"], alerts["window_end"]):
        rows = frame if entity == ALL_ENTITY else groups.get(str(entity), frame.iloc[:0])
        rows = rows[(rows["_day"] >= start) & (rows["_day"] <= end)]
        rows = rows.sort_values(["_rank", "_order"], ascending=[False, True], kind="stable")
        headlines.append(rows[headline_column].head(top_n).astype(str).tolist())
    result["headlines"] = pd.Series(headlines, index=result.index, dtype=object)
    return result


def alert_table(
    daily: pd.DataFrame, scored: pd.DataFrame, entity_column: str, surge: SurgeConfig,
    alerts: AlertSettings, model_name: str,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The alerts table (``ALERT_COLUMNS``, days as strings, newest first, most severe first).

    Surges against each entity's own baseline (``__all__`` too with ``include_all``),
    de-duplicated over the cool-down, each with its most negative headlines. Also returns the
    counts ``windows`` (alerting windows before the cool-down) and ``tests``.
    """
    entities = None if alerts.include_all else [e for e in daily["entity"].unique() if e != ALL_ENTITY]
    raw = detect_surges(daily, surge, entities=entities)
    table = deduplicate_alerts(raw, surge.cooldown_days)
    table = attach_headlines(table, scored, entity_column, alerts.headlines_per_alert)
    counts = {"windows": len(raw), "tests": int(raw.attrs.get("n_tests", 0))}
    if table.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS), counts
    table = table.assign(
        window_start=day_strings(table["window_start"]),
        window_end=day_strings(table["window_end"]),
        last_absorbed_end=day_strings(table["last_absorbed_end"]),
        model=model_name,
    )
    order = table["severity"].map(SEVERITY_RANK).fillna(3)
    table = table.assign(_order=order).sort_values(["window_end", "_order", "p_adjusted"],
                                                    ascending=[False, True, True], kind="stable")
    return table[ALERT_COLUMNS].reset_index(drop=True), counts
