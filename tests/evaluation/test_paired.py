"""Paired differences over the same draws, the pooled mean of independent groups, and verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fastadapt.evaluation.paired import paired_differences, pooled_mean, verdict


def wide() -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples([(g, d) for g in ("a", "b") for d in range(4)], names=["group", "draw"])
    return pd.DataFrame({"arm": [0.9, 0.8, 0.7, 0.9, 0.5, 0.6, 0.5, 0.4],
                         "base": [0.6, 0.7, 0.6, 0.8, 0.5, 0.5, 0.6, np.nan]}, index=index)


def test_differences_are_paired_per_draw_with_the_normal_interval():
    table = paired_differences(wide(), [("arm", "base"), ("arm", "absent")], ["group"]).set_index("group")
    a = np.array([0.3, 0.1, 0.1, 0.1])
    assert list(table.columns) == ["arm", "baseline", "n", "difference", "ci95", "low", "high"]
    assert table.loc["a", "difference"] == pytest.approx(a.mean())
    assert table.loc["a", "ci95"] == pytest.approx(1.96 * a.std(ddof=1) / 2)
    assert table.loc["a", "low"] == pytest.approx(a.mean() - 1.96 * a.std(ddof=1) / 2)
    assert table.loc["b", "n"] == 3  # the draw the baseline lacks is dropped, not paired with nothing
    assert table.loc["b", "difference"] == pytest.approx(np.mean([0.0, 0.1, -0.1]))
    assert len(table) == 2  # the pair with an absent baseline is skipped


def test_the_t_interval_is_wider_than_the_normal_one_on_few_draws():
    normal = paired_differences(wide(), [("arm", "base")], ["group"])
    t = paired_differences(wide(), [("arm", "base")], ["group"], "t")
    assert (t["ci95"] > normal["ci95"]).all() and (t["difference"] == normal["difference"]).all()


def test_pooled_mean_of_independent_groups():
    assert pooled_mean([0.5, 0.7], [0.03, 0.04]) == pytest.approx((0.6, 0.025))
    assert pooled_mean([0.4], [0.1]) == pytest.approx((0.4, 0.1))


def test_verdict_needs_the_whole_interval_on_one_side():
    assert verdict(0.01, 0.2) == "helped"
    assert verdict(-0.2, -0.01) == "hurt"
    assert verdict(-0.01, 0.2) == "no clear difference"
    with pytest.raises(ValueError, match="no interval"):
        verdict(math.nan, math.nan)
