"""Drift between a reference period and the current one: embeddings and labels.

- :func:`mmd_permutation_test`: kernel two-sample test on embeddings (RBF kernel, median
  heuristic bandwidth, unbiased MMD², permutation p-value);
- :func:`label_shift_test`: chi-squared test of the label distributions (gold or predicted);
- :func:`drift_report`: both, and whether retraining is recommended, in plain words.

:class:`DriftSettings` (``monitoring.drift``) holds every setting and the only defaults, those of
``conf/base/parameters_monitoring.yml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from fastadapt.config import Checks, ConfigError, Settings


@dataclass(frozen=True)
class DriftSettings(Settings):
    """The drift test (`monitoring.drift`): the windows, the embedder and the two tests.

    - ``current_days`` / ``reference_days``: the stream's last days, and the days before them;
    - ``sources``: only these stream sources in both windows (None: all);
    - ``embedder``: ``minilm-l6``, a backbone directory, ``model`` (the scoring model's own
      ``embed``) or None (the label test only); ``batch_size``, ``max_length``, ``device`` and
      ``num_threads`` (None: torch's default) are its settings;
    - ``max_samples`` per window (drawn with ``seed``), ``n_permutations`` of the MMD test;
    - ``alpha`` over both tests, ``min_label_shift``: the total variation a label shift needs.
    """

    current_days: int = 30
    reference_days: int = 90
    sources: list[str] | None = None
    embedder: str | None = "minilm-l6"
    batch_size: int = 64
    max_length: int = 64
    device: str = "auto"
    num_threads: int | None = 2
    max_samples: int = 500
    n_permutations: int = 500
    alpha: float = 0.01
    min_label_shift: float = 0.05
    seed: int = 0

    def validate(self, where: str = "monitoring.drift") -> None:
        check = Checks(self, where)
        minimums = {"current_days": 1, "reference_days": 1, "batch_size": 1, "max_length": 2, "max_samples": 2,
                    "n_permutations": 1, "seed": 0}
        for key, minimum in minimums.items():
            check.integer(key, minimum)
        check.integer("num_threads", 1, optional=True)
        if self.sources is not None and (isinstance(self.sources, str) or not all(
                isinstance(source, str) for source in self.sources)):
            check.fail("sources", "allowed: a list of stream sources or null")
        check.text("embedder", optional=True)
        # The device is resolved (torch imported) only where the embedding runs: embed_drift_windows.
        check.text("device")
        check.number("alpha", 0.0, 1.0, strict_low=True)
        check.number("min_label_shift", 0.0, 1.0, strict_high=False)


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
    n_permutations: int = DriftSettings.n_permutations,
    seed: int = DriftSettings.seed,
    max_samples: int = DriftSettings.max_samples,
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
    settings: DriftSettings | None = None,
) -> dict[str, object]:
    """Embedding drift and label shift, and whether to retrain, with a plain-language reason.

    Each test that is run (embeddings and/or labels; pass None to skip one) is judged at
    ``alpha`` divided by the number of tests (Bonferroni). A label shift also needs a total
    variation distance of at least ``min_label_shift``, so that a negligible shift on a large
    sample does not trigger retraining. Retraining is recommended when either drift is found.
    ``settings`` gives ``alpha``, ``n_permutations``, ``seed``, ``max_samples`` and
    ``min_label_shift`` (default: ``DriftSettings()``).
    """
    settings = settings or DriftSettings()
    alpha, n_permutations, min_label_shift = settings.alpha, settings.n_permutations, settings.min_label_shift
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
            reference_embeddings, current_embeddings, n_permutations, settings.seed, settings.max_samples
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


# ---- the drift test on a scored stream ----------------------------------------------------------


def drift_windows(
    scored_stream: pd.DataFrame, settings: DriftSettings
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    """The reference and current rows: the stream's last ``current_days`` and the days before."""
    rows = scored_stream
    if settings.sources:
        rows = rows[rows["source"].isin(settings.sources)]
    rows = rows[rows["published_at"].notna()]
    days = pd.to_datetime(rows["published_at"]).dt.normalize()
    if rows.empty:
        return rows, rows, {"current": None, "reference": None}
    last = days.max()
    current_start = last - pd.Timedelta(days=settings.current_days - 1)
    reference_start = current_start - pd.Timedelta(days=settings.reference_days)
    current = rows[days >= current_start]
    reference = rows[(days >= reference_start) & (days < current_start)]
    info = {
        "reference": [reference_start.strftime("%Y-%m-%d"), (current_start - pd.Timedelta(days=1)).strftime("%Y-%m-%d")],
        "current": [current_start.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")],
        "n_reference": len(reference),
        "n_current": len(current),
    }
    return reference, current, info


def _sample(rows: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(rows) <= size:
        return rows
    return rows.iloc[np.sort(rng.choice(len(rows), size, replace=False))]


def embed_drift_windows(
    scored_stream: pd.DataFrame, settings: DriftSettings, text_column: str, model: object | None = None
) -> dict[str, object]:
    """Sentence embeddings of a sample of each window (the torch part of the drift test).

    ``embedder: model`` uses ``model.embed`` (the scoring model's own encoder); anything else is
    a backbone name or directory for :func:`fastadapt.models.backbones.load_backbone`.
    """
    reference, current, info = drift_windows(scored_stream, settings)
    rng = np.random.default_rng(settings.seed)
    reference, current = _sample(reference, settings.max_samples, rng), _sample(current, settings.max_samples, rng)
    texts = reference[text_column].astype(str).tolist() + current[text_column].astype(str).tolist()
    if settings.embedder == "model":
        if model is None or not hasattr(model, "embed"):
            raise ConfigError(
                "monitoring.drift.embedder is 'model' but the scoring model has no `embed` method "
                f"({type(model).__name__}); use minilm-l6 or a backbone directory"
            )
        vectors = np.asarray(model.embed(texts), dtype=np.float32)
    else:
        # Imported here: the label-only drift test and the other monitoring modules need no torch.
        import torch

        from fastadapt.models.backbones import load_backbone
        from fastadapt.models.encoder import embed_texts

        Checks(settings, "monitoring.drift").device()
        if settings.num_threads:
            torch.set_num_threads(settings.num_threads)
        backbone = load_backbone(str(settings.embedder))
        vectors = embed_texts(backbone, texts, batch_size=settings.batch_size, max_length=settings.max_length,
                              device=settings.device, progress=True)
    return {
        "embedder": str(settings.embedder),
        "windows": info,
        "reference_row_ids": reference["row_id"].to_numpy(),
        "current_row_ids": current["row_id"].to_numpy(),
        "reference": vectors[: len(reference)],
        "current": vectors[len(reference):],
    }


def assess_drift(
    scored_stream: pd.DataFrame, settings: DriftSettings, embeddings: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Embedding drift (from ``embeddings``, when given) and predicted-label shift, and the verdict."""
    reference, current, info = drift_windows(scored_stream, settings)
    if len(reference) < 2 or len(current) < 2:
        return {
            "windows": info, "retraining_recommended": False, "embedding_drift": False, "label_shift": False,
            "status": "insufficient_data",
            "reason": f"Not enough items to test drift ({len(reference)} reference, {len(current)} current).",
        }
    embeddings = embeddings or {}
    report = drift_report(
        embeddings.get("reference"), embeddings.get("current"),
        reference["predicted"].astype(str).tolist(), current["predicted"].astype(str).tolist(), settings,
    )
    report["windows"] = info
    report["embedder"] = embeddings.get("embedder")
    report["status"] = "tested"
    return report
