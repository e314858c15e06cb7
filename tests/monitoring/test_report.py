"""The morning report and the monitoring nodes around it, on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fastadapt.monitoring.aggregate import daily_counts
from fastadapt.monitoring.report import render_report
from fastadapt.monitoring.surge import ALERT_COLUMNS
from fastadapt.pipelines.monitoring.nodes import (
    assess_drift,
    check_on_labelled,
    detect_alerts,
    monitoring_metrics,
    write_report,
)

MONITORING = {
    "scoring": {"negative_label": "negative"},
    "surge": {"min_baseline_days": 3, "min_count": 3, "alpha": 0.05},
    "alerts": {"headlines_per_alert": 2},
    "drift": {"current_days": 3, "reference_days": 5, "n_permutations": 20},
    "check": {"source": "posts", "entity_column": "ticker", "gold_label_column": "label",
              "gold_negative_label": "bearish"},
    "report": {"recent_days": 3, "max_timelines": 5, "news_sources": ["posts"]},
}


def scored(surge: bool = True) -> pd.DataFrame:
    rows = []
    for day in range(1, 15):
        for post in range(6):
            negative = post == 0 or (surge and day == 12 and post < 5)
            rows.append({"published_at": pd.Timestamp(2024, 5, day, 9, post), "source": "posts",
                         "headline": f"<b>T</b> {'falls' if negative else 'rises'} {day}/{post}", "ticker": "T",
                         "label": "bearish" if negative else "bullish",
                         "predicted": "negative" if negative else "positive",
                         "negative_score": 0.9 if negative else 0.1, "entities": ["T & Co"]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


def test_report_with_an_alert_is_escaped_and_complete():
    stream = scored()
    daily = daily_counts(stream, "entities", "negative")
    alerts = detect_alerts(daily, stream, MONITORING, "m")
    assert list(alerts.columns) == ALERT_COLUMNS
    assert ("T & Co", "2024-05-12") in set(zip(alerts["entity"], alerts["window_end"]))
    drift = assess_drift(stream, MONITORING)  # labels only: no embeddings passed
    assert drift["status"] == "tested" and "embedding" not in drift
    check = check_on_labelled(stream, MONITORING)
    assert check["precision"] == 1.0 and check["recall"] == 1.0
    html, figures = write_report(stream, daily, alerts, drift, check, {"n_items": len(stream), "model": "M"},
                                 MONITORING)
    assert sorted(figures) == ["T_Co.png", "all.png"]  # the entity and the whole stream (__all__)
    assert "T &amp; Co" in html and "<b>T</b>" not in html and "&lt;b&gt;T&lt;/b&gt; falls 12/0" in html
    assert 'id="timeline-T_Co.png"' in html and "Alerts in the last 3 days" in html
    assert "News alerts (posts): 1</h2>" in html  # T & Co is mentioned; __all__ is not an entity of the news
    metrics = monitoring_metrics({"n_items": len(stream)}, alerts, drift, check)
    assert metrics["alerts"]["value"] == len(alerts) and metrics["check.recall"]["value"] == 1.0


def test_report_without_alerts_drift_or_labels():
    stream = scored(surge=False).assign(source="news", label=None)
    daily = daily_counts(stream, "entities", "negative")
    empty = pd.DataFrame()  # what an empty alerts.jsonl loads as
    drift = assess_drift(stream.head(3), MONITORING)
    assert drift["status"] == "insufficient_data" and drift["retraining_recommended"] is False
    check = check_on_labelled(stream, MONITORING)
    assert check["status"] == "no_labelled_rows"
    html, figures = write_report(stream, daily, empty, drift, check, {}, MONITORING)
    assert figures == {} and "No alerts." in html and "No alerting entity." in html
    assert "Not enough items to test drift" in html
    assert monitoring_metrics({}, empty, drift, check)["alerts"]["value"] == 0
    assert render_report(stream.iloc[:0], daily.iloc[:0], empty.reindex(columns=ALERT_COLUMNS), {}, {}, {}, {})
