import numpy as np
import pytest

from fastadapt.config import ConfigError
from fastadapt.monitoring.drift import (
    DriftSettings,
    drift_report,
    label_shift_test,
    mmd_permutation_test,
)


def gaussians(seed: int, shift: float, n: int = 150, dim: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + shift


def naive_unbiased_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a, b):
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * bandwidth**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return within_x + within_y - 2 * kxy.mean()


def test_shifted_gaussians_are_detected():
    x, y = gaussians(0, shift=0.5)
    result = mmd_permutation_test(x, y, n_permutations=200, seed=0)
    assert result["p_value"] <= 1 / 201 + 1e-12  # no permutation reaches the observed MMD²
    assert result["mmd2"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unshifted_gaussians_are_not(seed):
    x, y = gaussians(seed, shift=0.0)
    assert mmd_permutation_test(x, y, n_permutations=200, seed=seed)["p_value"] > 0.05


def test_statistic_is_the_unbiased_mmd2_with_the_median_bandwidth():
    x, y = gaussians(4, shift=0.3, n=30, dim=3)
    result = mmd_permutation_test(x, y, n_permutations=20, seed=0)
    pooled = np.vstack([x, y])
    distances = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))
    assert result["bandwidth"] == pytest.approx(np.median(distances[np.triu_indices(60, 1)]))
    assert result["mmd2"] == pytest.approx(naive_unbiased_mmd2(x, y, result["bandwidth"]))


def test_deterministic_from_seed_and_subsampled_above_max_samples():
    x, y = gaussians(5, shift=0.1, n=300)
    first = mmd_permutation_test(x, y, n_permutations=50, seed=11, max_samples=100)
    again = mmd_permutation_test(x, y, n_permutations=50, seed=11, max_samples=100)
    other = mmd_permutation_test(x, y, n_permutations=50, seed=12, max_samples=100)
    assert first == again
    assert first["mmd2"] != other["mmd2"]  # another subsample
    assert (first["n_reference"], first["n_current"]) == (100, 100)


def test_one_dimensional_input_and_errors():
    rng = np.random.default_rng(0)
    assert 0 < mmd_permutation_test(rng.normal(size=50), rng.normal(size=40), 20)["p_value"] <= 1
    with pytest.raises(ValueError, match="features"):
        mmd_permutation_test(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="current"):
        mmd_permutation_test(np.zeros((5, 2)), np.full((5, 2), np.nan))
    identical = mmd_permutation_test(np.ones((10, 2)), np.ones((10, 2)), 20)
    assert identical["bandwidth"] == 1.0 and identical["p_value"] == 1.0


def test_label_shift():
    same = label_shift_test(["pos"] * 60 + ["neg"] * 40, ["pos"] * 58 + ["neg"] * 42)
    assert same["p_value"] > 0.5
    shifted = label_shift_test(
        ["pos"] * 60 + ["neg"] * 40, ["pos"] * 30 + ["neg"] * 50 + ["neu"] * 20
    )
    assert shifted["p_value"] < 1e-4 and shifted["dof"] == 2
    assert shifted["reference_distribution"] == {"neg": 0.4, "neu": 0.0, "pos": 0.6}
    assert shifted["current_distribution"] == {"neg": 0.5, "neu": 0.2, "pos": 0.3}
    assert shifted["total_variation"] == pytest.approx(0.3)
    single = label_shift_test(["a", "a", None], ["a"])
    assert (single["chi2"], single["p_value"], single["n_reference"]) == (0.0, 1.0, 2)
    with pytest.raises(ValueError, match="at least one label"):
        label_shift_test([], ["a"])


def test_drift_report_recommends_retraining_on_drift_only():
    x, y = gaussians(6, shift=0.5)
    labels = ["pos"] * 75 + ["neg"] * 75
    drifted = drift_report(x, y, labels, labels, DriftSettings(n_permutations=200))
    assert drifted["retraining_recommended"] and drifted["embedding_drift"]
    assert not drifted["label_shift"]
    assert "embeddings" in drifted["reason"]

    x, z = gaussians(7, shift=0.0)
    calm = drift_report(x, z, labels, labels, DriftSettings(n_permutations=200))
    assert not calm["retraining_recommended"]
    assert calm["reason"].startswith("No retraining needed")

    moved = drift_report(None, None, labels, ["pos"] * 120 + ["neg"] * 30)
    assert moved["retraining_recommended"] and "label distribution" in moved["reason"]
    assert "embedding" not in moved


def test_a_tiny_significant_label_shift_does_not_trigger_retraining():
    big = 200_000
    reference = ["pos"] * (big // 2) + ["neg"] * (big // 2)
    current = ["pos"] * int(big * 0.52) + ["neg"] * int(big * 0.48)
    report = drift_report(None, None, reference, current, DriftSettings(min_label_shift=0.05))
    assert report["labels"]["p_value"] < 1e-10
    assert not report["retraining_recommended"]
    assert "small" in report["label_note"]


def test_drift_report_warns_when_permutations_cannot_reach_the_level():
    x, y = gaussians(8, shift=1.0, n=40)
    report = drift_report(x, y, settings=DriftSettings(n_permutations=50, alpha=0.01))
    assert not report["embedding_drift"] and "raise n_permutations" in report["note"]
    with pytest.raises(ValueError, match="embeddings and/or labels"):
        drift_report(None, None)


def test_drift_settings_defaults_are_the_projects_and_mistakes_name_the_parameter():
    import yaml
    from tests.conftest import REPO_ROOT

    block = yaml.safe_load((REPO_ROOT / "conf/base/parameters_monitoring.yml").read_text())["monitoring"]["drift"]
    assert DriftSettings.from_params(block, where="monitoring.drift") == DriftSettings()
    assert (DriftSettings().max_samples, DriftSettings().n_permutations) == (500, 500)
    with pytest.raises(ConfigError, match=r"^monitoring\.drift\.alpha is 1\.5; allowed: a number > 0\.0 and < 1\.0$"):
        DriftSettings.from_params({"alpha": 1.5}, where="monitoring.drift")
    with pytest.raises(ConfigError, match=r"^monitoring\.drift\.current_days is 0; allowed: an integer >= 1$"):
        DriftSettings.from_params({"current_days": 0, "embedder": None}, where="monitoring.drift")
