"""Paired comparisons: the difference of two arms scored on the same draws, with its 95 % interval.

"Method A helped" is claimed from A minus B on the same episodes or k-shot sets (the draws are
paired, so their shared difficulty cancels), with the interval of
`metrics.mean_confidence_interval`, and only where the whole interval is above zero. Several
independent groups (class splits) are pooled as the mean of their means with half-width
sqrt(sum half²) / n.

    wide = results.pivot_table(index=["setting", "split", "episode"], columns="method", values="accuracy")
    paired_differences(wide, [("protonet", "tfidf")], by=["setting", "split"])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from fastadapt.evaluation.metrics import mean_confidence_interval

DIFFERENCE_COLUMNS = ["arm", "baseline", "n", "difference", "ci95", "low", "high"]


def paired_differences(wide: pd.DataFrame, pairs: Iterable[tuple[Any, Any]], by: Sequence[str],
                       distribution: Literal["normal", "t"] = "normal") -> pd.DataFrame:
    """Mean of arm - baseline per group of the index levels `by`, over the remaining (pairing) level.

    `wide`: one column per arm, indexed by `by` and the draw; draws missing in either arm are
    dropped. A pair whose arm or baseline is not a column is skipped. Columns arm, baseline,
    `by`..., n, difference, ci95 (half-width), low, high.
    """
    rows = []
    for arm, baseline in pairs:
        if arm not in wide or baseline not in wide:
            continue
        diff = (wide[arm] - wide[baseline]).dropna()
        for key, group in diff.groupby(level=list(by), sort=True):
            mean, half = mean_confidence_interval(group.to_numpy(), distribution)
            rows.append({"arm": arm, "baseline": baseline, **dict(zip(by, key)), "n": len(group),
                         "difference": mean, "ci95": half, "low": mean - half, "high": mean + half})
    return pd.DataFrame(rows, columns=[*DIFFERENCE_COLUMNS[:2], *by, *DIFFERENCE_COLUMNS[2:]])


def pooled_mean(means: Sequence[float], halves: Sequence[float]) -> tuple[float, float]:
    """Mean of independent group means and its half-width sqrt(sum half²) / n (PROTOCOL.md section 3)."""
    means, halves = np.asarray(means, dtype=float), np.asarray(halves, dtype=float)
    return float(means.mean()), float(np.sqrt((halves ** 2).sum()) / len(halves))


def verdict(low: float, high: float) -> str:
    """helped (interval above 0), hurt (below 0) or no clear difference."""
    if math.isnan(low):
        raise ValueError("verdict: no interval (one draw under a t-interval)")
    return "helped" if low > 0 else "hurt" if high < 0 else "no clear difference"


__all__ = ["DIFFERENCE_COLUMNS", "paired_differences", "pooled_mean", "verdict"]
