import pandas as pd
import pytest
from matplotlib.figure import Figure

from fastadapt.monitoring.plots import entity_timeline_figure
from fastadapt.monitoring.surge import SurgeConfig, detect_surges


def test_timeline_draws_counts_share_baseline_and_alerts(surge_daily):
    daily = surge_daily  # counts only: the share is derived
    alerts = detect_surges(daily, SurgeConfig())
    figure = entity_timeline_figure(daily, alerts, "B")
    assert isinstance(figure, Figure)
    counts, share = figure.axes
    assert len(counts.patches) == 2 * 60 + 1  # items and negatives per day, one shaded window
    labels = [line.get_label() for line in share.get_lines()]
    assert labels == ["negative share (day)", "baseline (28 days)"]
    assert "1 alert" in counts.get_title()
    calm = entity_timeline_figure(daily, alerts, "A")
    assert len(calm.axes[0].patches) == 2 * 60


def test_timeline_of_an_unknown_entity_fails(surge_daily):
    with pytest.raises(ValueError, match="Z"):
        entity_timeline_figure(surge_daily, pd.DataFrame(), "Z")
