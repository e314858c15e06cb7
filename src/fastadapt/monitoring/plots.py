"""Figures of the monitoring, returned unsaved (Kedro's MatplotlibWriter saves them).

Built on ``matplotlib.figure.Figure`` rather than pyplot: no GUI backend, no global registry.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fastadapt.monitoring.surge import SurgeConfig, baseline_shares

_SEVERITY_COLOURS = {"low": "#fdd49e", "medium": "#fc8d59", "high": "#d7301f"}


def entity_timeline_figure(
    daily: pd.DataFrame,
    alerts: pd.DataFrame,
    entity: str,
    config: SurgeConfig | None = None,
    title: str = "",
) -> Figure:
    """One entity's days: items per day (bars, negatives darker), daily negative share, baseline.

    The baseline is the smoothed expected share the surge test (with ``config``) compares each
    window ending that day with, drawn where the baseline is long enough to test; alert windows
    are shaded by severity. ``entity`` must appear in ``daily``.
    """
    config = config or SurgeConfig()
    rows = daily[daily["entity"].astype(str) == str(entity)].sort_values("day")
    if rows.empty:
        raise ValueError(f"entity '{entity}' has no rows in the daily counts")
    if "negative_share" not in rows.columns:
        rows = rows.assign(negative_share=rows["n_negative"] / rows["n"].where(rows["n"] > 0))
    baseline = baseline_shares(daily, config)
    baseline = baseline[baseline["entity"] == str(entity)]
    baseline = baseline[baseline["window_end"].between(rows["day"].min(), rows["day"].max())]
    testable = (baseline["baseline_n"] >= config.min_baseline_count) & (
        baseline["baseline_known_days"] >= config.min_baseline_days
    )
    baseline = baseline.assign(expected_share=baseline["expected_share"].where(testable))

    figure = Figure(figsize=(11, 4.5), layout="constrained")
    counts = figure.add_subplot()
    share = counts.twinx()
    one_day = pd.Timedelta(days=1)
    counts.bar(rows["day"], rows["n"], width=0.9, color="#c6dbef", label="items")
    counts.bar(rows["day"], rows["n_negative"], width=0.9, color="#6baed6", label="negative items")
    share.plot(rows["day"], rows["negative_share"], color="#252525", linestyle="none",
               marker="o", markersize=2.5, label="negative share (day)")
    share.plot(baseline["window_end"], baseline["expected_share"], color="#31a354",
               linestyle="--", linewidth=1.2, label=f"baseline ({config.baseline_days} days)")

    entity_alerts = alerts[alerts["entity"].astype(str) == str(entity)] if len(alerts) else alerts
    for start, end, severity in zip(
        entity_alerts.get("window_start", []), entity_alerts.get("window_end", []),
        entity_alerts.get("severity", ["high"] * len(entity_alerts)),
    ):
        counts.axvspan(start - one_day / 2, end + one_day / 2, alpha=0.35, linewidth=0,
                       color=_SEVERITY_COLOURS.get(str(severity), "#d7301f"), zorder=0)

    counts.set_ylabel("items per day")
    share.set_ylabel("negative share")
    share.set_ylim(0.0, 1.05)
    locator = AutoDateLocator()
    counts.xaxis.set_major_locator(locator)
    counts.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    handles = counts.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    if len(entity_alerts):
        handles += [Patch(color=colour, alpha=0.35, label=f"{severity} alert")
                    for severity, colour in _SEVERITY_COLOURS.items()
                    if severity in set(entity_alerts["severity"].astype(str))]
    figure.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=len(handles))
    counts.set_title(title or f"{entity}: {len(entity_alerts)} alert window(s)")
    return figure
