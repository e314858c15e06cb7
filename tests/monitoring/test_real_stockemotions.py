"""PROTOCOL.md section 6 on the real StockEmotions gold labels."""

import pytest
from tests.conftest import real_corpus

from fastadapt.monitoring.check import shuffled_dates_control, surge_days_from_labels
from fastadapt.monitoring.surge import SurgeConfig
from fastadapt.readers.stream import read_stockemotions

pytestmark = pytest.mark.real_data


def test_gold_surges_far_outnumber_the_shuffled_control():
    folder = real_corpus("stockemotions")
    files = {path.name: path.read_bytes() for path in folder.glob("*.csv")}
    stream = read_stockemotions(files, {}, "stockemotions").rows
    config = SurgeConfig()
    gold = surge_days_from_labels(stream, "label", "bearish", "ticker", config)
    control = surge_days_from_labels(
        shuffled_dates_control(stream, "ticker", "published_at", seed=0),
        "label", "bearish", "ticker", config,
    )
    assert control.attrs["n_tests"] == gold.attrs["n_tests"]  # same volumes, same windows
    assert len(control) <= config.alpha * control.attrs["n_tests"]
    assert len(gold) > 10 * max(len(control), 1)
