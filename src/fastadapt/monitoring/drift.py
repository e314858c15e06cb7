"""Drift between a reference period and the current one: embeddings and labels.

- :func:`mmd_permutation_test`: kernel two-sample test on embeddings (RBF kernel, median
  heuristic bandwidth, unbiased MMD², permutation p-value);
- :func:`label_shift_test`: chi-squared test of the label distributions (gold or predicted);
- :func:`drift_report`: both, and whether retraining is recommended, in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array, got {matrix.ndim} dimensions")
    if len(matrix) < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {len(matrix)}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return matrix


def _squared_distances(points: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", points, points)
    distances = norms[:, None] + norms[None, :] - 2.0 * points @ points.T
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return distances


def _unbiased_mmd2(kernel: np.ndarray, is_reference: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each column of the 0/1 assignment matrix ``is_reference`` (N x P).

    ``kernel`` has a zero diagonal, so the within-sample sums leave out i == j.
    """
    a = is_reference.astype(float)
    b = 1.0 - a
    m, n = a[:, 0].sum(), b[:, 0].sum()
    ka = kernel @ a
    within_a = np.einsum("ip,ip->p", a, ka)
    cross = np.einsum("ip,ip->p", b, ka)
    within_b = np.einsum("ip,ip->p", b, kernel @ b)
    return within_a / (m * (m - 1)) + within_b / (n * (n - 1)) - 2.0 * cross / (m * n)


def mmd_permutation_test(
    reference: np.ndarray,
    current: np.ndarray,
    n_permutations: int = 200,
    seed: int = 0,
    max_samples: int = 1000,
) -> dict[str, float | int]:
    """Kernel two-sample test: ``mmd2`` (unbiased), permutation ``p_value`` and ``bandwidth``.

    Each sample above ``max_samples`` rows is subsampled without replacement. The RBF kernel
    ``exp(-d² / (2 bandwidth²))`` takes the median pairwise distance of the pooled sample as
    bandwidth (1.0 if that median is 0). ``p_value = (1 + #{permuted >= observed}) /
    (1 + n_permutations)``; everything is deterministic given ``seed``.
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations!r}")
    if max_samples < 2:
        raise ValueError(f"max_samples must be >= 2, got {max_samples!r}")
    x, y = _as_matrix(reference, "reference"), _as_matrix(current, "current")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"reference has {x.shape[1]} features but current has {y.shape[1]}")
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        x = x[np.sort(rng.choice(len(x), max_samples, replace=False))]
    if len(y) > max_samples:
        y = y[np.sort(rng.choice(len(y), max_samples, replace=False))]
    pooled = np.vstack([x, y])
    squared = _squared_distances(pooled)
    upper = squared[np.triu_indices(len(pooled), k=1)]
    bandwidth = float(np.sqrt(np.median(upper)))
    if not bandwidth > 0.0:
        positive = upper[upper > 0]
        bandwidth = float(np.sqrt(positive.mean())) if len(positive) else 1.0
    kernel = np.exp(-squared / (2.0 * bandwidth**2))
    np.fill_diagonal(kernel, 0.0)

    m = len(x)
    assignment = np.zeros((len(pooled), n_permutations + 1), dtype=bool)
    assignment[:m, 0] = True
    for column in range(1, n_permutations + 1):
        assignment[rng.permutation(len(pooled))[:m], column] = True
    statistics = np.empty(n_permutations + 1)
    chunk = 50  # keeps the N x chunk products small
    for start in range(0, n_permutations + 1, chunk):
        block = slice(start, start + chunk)
        statistics[block] = _unbiased_mmd2(kernel, assignment[:, block])
    observed = float(statistics[0])
    exceed = int((statistics[1:] >= observed - 1e-12).sum())
    return {
        "mmd2": observed,
        "p_value": (1 + exceed) / (1 + n_permutations),
        "bandwidth": bandwidth,
        "n_reference": int(len(x)),
        "n_current": int(len(y)),
        "n_permutations": int(n_permutations),
    }


def _distribution(counts: pd.Series) -> dict[str, float]:
    total = counts.sum()
    return {str(label): float(count / total) for label, count in counts.items()}


def label_shift_test(
    reference_labels: Iterable[object], current_labels: Iterable[object]
) -> dict[str, object]:
    """Chi-squared test of independence between period and label (``chi2_contingency``).

    Returns ``chi2``, ``p_value``, ``dof``, each period's label shares over the union of labels
    (``reference_distribution``, ``current_distribution``) and their ``total_variation``
    distance. Missing labels are dropped; one label in all gives chi2 0 and p-value 1. Yates'
    continuity correction applies with two labels (scipy's default), which is conservative.
    """
    reference = pd.Series(list(reference_labels), dtype=object).dropna().astype(str)
    current = pd.Series(list(current_labels), dtype=object).dropna().astype(str)
    if reference.empty or current.empty:
        raise ValueError("label_shift_test: both periods need at least one label")
    labels = sorted(set(reference) | set(current))
    table = np.array(
        [
            reference.value_counts().reindex(labels, fill_value=0).to_numpy(),
            current.value_counts().reindex(labels, fill_value=0).to_numpy(),
        ]
    )
    reference_share = table[0] / table[0].sum()
    current_share = table[1] / table[1].sum()
    if len(labels) < 2:
        chi2, p_value, dof = 0.0, 1.0, 0
    else:
        result = chi2_contingency(table)
        chi2, p_value, dof = float(result.statistic), float(result.pvalue), int(result.dof)
    return {
        "chi2": chi2,
        "p_value": p_value,
        "dof": dof,
        "reference_distribution": dict(zip(labels, map(float, reference_share))),
        "current_distribution": dict(zip(labels, map(float, current_share))),
        "total_variation": float(0.5 * np.abs(reference_share - current_share).sum()),
        "n_reference": int(table[0].sum()),
        "n_current": int(table[1].sum()),
    }


def drift_report(
    reference_embeddings: np.ndarray | None,
    current_embeddings: np.ndarray | None,
    reference_labels: Sequence[object] | None = None,
    current_labels: Sequence[object] | None = None,
    alpha: float = 0.01,
    n_permutations: int = 200,
    seed: int = 0,
    max_samples: int = 1000,
    min_label_shift: float = 0.05,
) -> dict[str, object]:
    """Embedding drift and label shift, and whether to retrain, with a plain-language reason.

    Each test that is run (embeddings and/or labels; pass None to skip one) is judged at
    ``alpha`` divided by the number of tests (Bonferroni). A label shift also needs a total
    variation distance of at least ``min_label_shift``, so that a negligible shift on a large
    sample does not trigger retraining. Retraining is recommended when either drift is found.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    run_embeddings = reference_embeddings is not None and current_embeddings is not None
    run_labels = reference_labels is not None and current_labels is not None
    n_tests = int(run_embeddings) + int(run_labels)
    if n_tests == 0:
        raise ValueError("drift_report: pass embeddings and/or labels of both periods")
    level = alpha / n_tests
    report: dict[str, object] = {"alpha": alpha, "level_per_test": level}
    reasons: list[str] = []

    embedding_drift = False
    if run_embeddings:
        mmd = mmd_permutation_test(
            reference_embeddings, current_embeddings, n_permutations, seed, max_samples
        )
        embedding_drift = mmd["p_value"] <= level
        report["embedding"] = mmd
        if embedding_drift:
            reasons.append(
                f"the current texts' embeddings differ from the reference ones (MMD² "
                f"{mmd['mmd2']:.4f}, permutation p = {mmd['p_value']:.4f} <= {level:.4g})"
            )
        if 1.0 / (1 + n_permutations) > level:
            report["note"] = (
                f"with {n_permutations} permutations the smallest possible p-value "
                f"({1.0 / (1 + n_permutations):.4g}) exceeds the level {level:.4g}: "
                "embedding drift can never be declared; raise n_permutations"
            )
    report["embedding_drift"] = bool(embedding_drift)

    label_shift = False
    if run_labels:
        labels = label_shift_test(reference_labels, current_labels)
        significant = labels["p_value"] <= level
        label_shift = significant and labels["total_variation"] >= min_label_shift
        report["labels"] = labels
        if label_shift:
            reasons.append(
                f"the label distribution moved (total variation {labels['total_variation']:.3f}, "
                f"chi-squared p = {labels['p_value']:.3g} <= {level:.4g})"
            )
        elif significant:
            report["label_note"] = (
                f"the label shift is significant (p = {labels['p_value']:.3g}) but small "
                f"(total variation {labels['total_variation']:.3f} < {min_label_shift})"
            )
    report["label_shift"] = bool(label_shift)

    report["retraining_recommended"] = bool(embedding_drift or label_shift)
    if reasons:
        report["reason"] = "Retraining recommended: " + "; and ".join(reasons) + "."
    else:
        checked = " and ".join(
            name for name, ran in (("embeddings", run_embeddings), ("labels", run_labels)) if ran
        )
        report["reason"] = (
            f"No retraining needed: no significant drift in the {checked} at level {level:.4g}."
        )
    return report
