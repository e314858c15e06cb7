"""PROTOCOL.md section 6 on the real StockEmotions gold labels of the news stream."""

from pathlib import Path

import pandas as pd
import pytest

from fastadapt.monitoring.check import shuffled_dates_control, surge_days_from_labels
from fastadapt.monitoring.surge import SurgeConfig

pytestmark = pytest.mark.real_data

STREAM = Path(__file__).resolve().parents[2] / "data" / "03_primary" / "news_stream.parquet"


def test_gold_surges_far_outnumber_the_shuffled_control():
    if not STREAM.is_file():
        pytest.skip("news_stream.parquet missing (kedro run --pipeline ingestion)")
    stream = pd.read_parquet(STREAM)
    stream = stream[(stream["source"] == "stockemotions") & stream["label"].notna()]
    config = SurgeConfig()
    gold = surge_days_from_labels(stream, "label", "bearish", "ticker", config)
    control = surge_days_from_labels(
        shuffled_dates_control(stream, "ticker", "published_at", seed=0),
        "label", "bearish", "ticker", config,
    )
    assert control.attrs["n_tests"] == gold.attrs["n_tests"]  # same volumes, same windows
    assert len(control) <= config.alpha * control.attrs["n_tests"]
    assert len(gold) > 10 * max(len(control), 1)
