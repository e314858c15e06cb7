"""Leave-one-domain-out statistics: paired over seeds, t-intervals, and verdicts that can fail."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from fastadapt.evaluation.lodo import lodo_differences, lodo_section
from fastadapt.evaluation.metrics import mean_confidence_interval


def results(meta: list[float], pretrained: list[float]) -> pd.DataFrame:
    rows = []
    for seed, (m, p) in enumerate(zip(meta, pretrained)):
        rows += [{"fold": "d", "model": "meta_trained", "strategy": "prototype", "k": 5, "seed": seed, "accuracy": m,
                  "adaptation_seconds": 1.0},
                 {"fold": "d", "model": "pretrained", "strategy": "prototype", "k": 5, "seed": seed, "accuracy": p,
                  "adaptation_seconds": 1.0},
                 {"fold": "d", "model": "tfidf", "strategy": "tfidf", "k": 5, "seed": seed, "accuracy": 0.5,
                  "adaptation_seconds": 0.1}]
    return pd.DataFrame(rows)


def test_t_interval_matches_scipy():
    values = [0.01, 0.03, 0.02, 0.05]
    mean, half = mean_confidence_interval(values, "t")
    expected = stats.t.interval(0.95, 3, loc=sum(values) / 4, scale=stats.sem(values))
    assert mean == pytest.approx(0.0275)
    assert (mean - half, mean + half) == pytest.approx(expected)
    assert math.isnan(mean_confidence_interval([0.1], "t")[1])


def test_lodo_differences_report_the_t_interval_of_the_seed_differences():
    meta, pretrained = [0.80, 0.84, 0.81, 0.86], [0.70, 0.71, 0.72, 0.70]
    row = lodo_differences(results(meta, pretrained)).set_index("against").loc["pretrained"]
    diffs = [m - p for m, p in zip(meta, pretrained)]
    low, high = stats.t.interval(0.95, 3, loc=sum(diffs) / 4, scale=stats.sem(diffs))
    assert row["n_seeds"] == 4
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))


def test_lodo_differences_say_helped_hurt_or_unclear():
    helped = lodo_differences(results([0.80, 0.82, 0.81], [0.70, 0.71, 0.72]))
    row = helped[helped["against"] == "pretrained"].iloc[0]
    assert row["verdict"] == "helped" and row["mean_difference"] == pytest.approx(0.1)
    hurt = lodo_differences(results([0.60, 0.61, 0.62], [0.70, 0.71, 0.72]))
    assert hurt[hurt["against"] == "pretrained"]["verdict"].item() == "hurt"
    unclear = lodo_differences(results([0.70, 0.75, 0.66], [0.71, 0.70, 0.72]))
    assert unclear[unclear["against"] == "pretrained"]["verdict"].item() == "no clear difference"
    lines = "\n".join(lodo_section(results([0.80, 0.82, 0.81], [0.70, 0.71, 0.72]), helped))
    assert "+10.0" in lines and "helped" in lines
