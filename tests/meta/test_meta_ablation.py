"""benchmarks/meta_ablation.py: the variants and the table that chose the broad defaults."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from fastadapt.config import deep_merge

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("meta_ablation", REPO / "benchmarks" / "meta_ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_variants_switch_one_thing_off_each(ablation):
    broad = {"weights": {"smlmt": 0.5, "atis": 0.3}, "meta": {"max_steps": 100, "max_seconds": 300}}
    chosen = ablation.variants(broad, ["atis", "acid"])
    assert chosen["default"] == {}
    no_corpora = deep_merge(broad, chosen["no_meta_corpora"])
    assert no_corpora["weights"] == {"smlmt": 0.5, "atis": 0.0, "acid": 0.0}
    assert deep_merge(broad, chosen["no_smlmt"])["weights"] == {"smlmt": 0.0, "atis": 0.3}
    assert deep_merge(broad, chosen["steps_x3"])["meta"] == {"max_steps": 300, "max_seconds": 900}
    assert broad["weights"] == {"smlmt": 0.5, "atis": 0.3}  # the configured block is left as it was


def test_table_pairs_each_variant_with_the_pretrained_encoder_on_the_same_draws(ablation):
    def rows(model, accuracies, variant=None):
        frame = pd.DataFrame([{"fold": "d", "model": model, "strategy": "prototype", "k": 5, "seed": seed,
                               "accuracy": acc} for seed, acc in enumerate(accuracies)])
        return frame if variant is None else frame.assign(variant=variant)

    results = pd.concat([rows("meta_trained", [0.62, 0.64, 0.60], "default"),
                         rows("meta_trained", [0.50, 0.52, 0.49], "no_smlmt")], ignore_index=True)
    table = ablation.ablation_table(results, rows("pretrained", [0.55, 0.56, 0.54])).set_index("variant")
    assert table.loc["default", "difference (points)"] == pytest.approx(7.0)
    assert table.loc["default", "verdict"] == "helped" and table.loc["no_smlmt", "verdict"] == "hurt"
    assert table.loc["no_smlmt", "pretrained"] == pytest.approx(0.55)
