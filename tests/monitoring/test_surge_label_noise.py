"""benchmarks/surge_label_noise.py: exact labels find every gold surge day, coin flips find none."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "surge_label_noise.py"
MONITORING = {"scoring": {"negative_label": "negative"},
              "surge": {"baseline_days": 7, "min_baseline_days": 5},
              "check": {"source": "stockemotions", "entity_column": "ticker", "gold_label_column": "label",
                        "gold_negative_label": "bearish", "tolerance_days": 1}}


def load_benchmark():
    spec = importlib.util.spec_from_file_location("surge_label_noise", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exact_labels_recover_the_gold_surge_and_noise_loses_it(tiny_stream):
    stream = tiny_stream.assign(source="stockemotions")
    curve = load_benchmark().noise_curve(stream, MONITORING, [1.0, 0.5], [0, 1, 2])
    exact, coin = curve.iloc[0], curve.iloc[1]
    assert exact["item_accuracy"] == 1.0 and exact["recall"] == 1.0 and exact["precision"] == 1.0
    assert exact["gold_days"] == 1 and exact["predicted_days"] == 1
    assert abs(coin["item_accuracy"] - 0.5) < 0.15 and coin["recall"] < 1.0
    assert list(curve.columns) == ["labels", "item_accuracy", "precision", "recall", "predicted_days",
                                   "gold_days", "seeds"]
    assert isinstance(curve, pd.DataFrame) and (curve["seeds"] == 3).all()
