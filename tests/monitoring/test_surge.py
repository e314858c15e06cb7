import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, binomtest
from statsmodels.stats.multitest import multipletests

from fastadapt.config import ConfigError
from fastadapt.monitoring.surge import (
    SurgeConfig,
    attach_headlines,
    deduplicate_alerts,
    detect_surges,
    surge_tests,
)

DAY = pd.Timestamp("2024-01-01")


def series(entity: str, n: list[int], negative: list[int]) -> pd.DataFrame:
    days = pd.date_range(DAY, periods=len(n), freq="D")
    return pd.DataFrame({"entity": entity, "day": days, "n": n, "n_negative": negative})


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"baseline_days": 0}, "baseline_days"),
        ({"baseline_days": 2.5}, "baseline_days"),
        ({"min_baseline_days": 30}, "min_baseline_days"),
        ({"min_count": 0}, "min_count"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"correction": "holm"}, "correction"),
        ({"cooldown_days": -1}, "cooldown_days"),
        ({"window_days": 0}, "window_days"),
        ({"prior_strength": 0}, "prior_strength"),
        ({"medium_ratio": 3.0, "high_ratio": 2.0}, "medium_ratio"),
        ({"high_p_factor": 0}, "high_p_factor"),
        ({"min_baseline_count": True}, "min_baseline_count"),
    ],
)
def test_invalid_config_names_the_parameter(values, name):
    with pytest.raises(ConfigError, match=rf"^monitoring\.surge\.{name} is .*; allowed: "):
        SurgeConfig.from_params(values, where="monitoring.surge")


def test_config_from_parameters_rejects_unknown_keys():
    assert SurgeConfig.from_params({"alpha": 0.05}, where="monitoring.surge").alpha == 0.05
    with pytest.raises(ConfigError, match=r"^monitoring\.surge: unknown setting\(s\) \['baseline_dayz'\]"):
        SurgeConfig.from_params({"baseline_dayz": 3}, where="monitoring.surge")


# ---------------------------------------------------------------- the test itself


def test_expected_share_is_the_smoothed_baseline_before_the_window():
    config = SurgeConfig(baseline_days=3, min_baseline_days=3, correction="none")
    daily = pd.concat(
        [series("A", [10, 10, 10, 10], [2, 2, 2, 10]),
         series("__all__", [100, 100, 100, 100], [50, 50, 50, 60])]
    )
    tests = surge_tests(daily, config)
    a = tests[tests["entity"] == "A"]
    assert a["window_end"].tolist() == [DAY + pd.Timedelta(days=3)]  # earlier: < 3 baseline days
    prior = (150 + 0.5) / (300 + 1)  # the stream-wide share of the same three baseline days
    expected = (6 + 2 * prior) / (30 + 2)
    assert a["expected_share"].iloc[0] == pytest.approx(expected)
    assert (a["baseline_n"].iloc[0], a["baseline_negative"].iloc[0]) == (30, 6)
    assert a["p_value"].iloc[0] == pytest.approx(binomtest(10, 10, expected, "greater").pvalue)
    assert a["alert"].iloc[0]


def test_a_zero_baseline_is_not_degenerate():
    config = SurgeConfig(baseline_days=3, min_baseline_days=3, correction="none")
    daily = pd.concat(
        [series("A", [5, 5, 5, 5], [0, 0, 0, 1]), series("__all__", [50] * 4, [15] * 4)]
    )
    a = surge_tests(daily, config).query("entity == 'A'").iloc[0]
    assert 0 < a["expected_share"] < 0.1
    assert 0.05 < a["p_value"] < 1  # one negative of five is no surge
    assert not a["alert"]


def test_p_values_are_the_exact_one_sided_binomial_test(surge_daily):
    tests = surge_tests(surge_daily, SurgeConfig(correction="none"))
    for _, window in tests.sample(20, random_state=0).iterrows():
        exact = binomtest(int(window["n_negative"]), int(window["n"]), window["expected_share"],
                          alternative="greater").pvalue
        assert window["p_value"] == pytest.approx(exact, rel=1e-9, abs=1e-15)


def test_injected_surge_is_found_on_the_right_entity_and_day(surge_daily):
    alerts = detect_surges(surge_daily, SurgeConfig())
    assert alerts[["entity", "window_end"]].values.tolist() == [["B", pd.Timestamp("2024-02-14")]]
    alert = alerts.iloc[0]
    assert (alert["n"], alert["n_negative"]) == (10, 9)
    assert alert["observed_share"] == pytest.approx(0.9)
    assert 0.1 < alert["expected_share"] < 0.35
    assert alert["severity"] == "high"
    assert alerts.attrs["n_tests"] == 3 * (60 - 7)  # every day after min_baseline_days


def two_day_surge(daily: pd.DataFrame) -> pd.DataFrame:
    """B all negative on 14 and 15 February."""
    days = daily["day"].isin(pd.to_datetime(["2024-02-14", "2024-02-15"]))
    return daily.assign(n_negative=daily["n_negative"].mask((daily["entity"] == "B") & days, 10))


def test_window_days_sums_the_window_and_keeps_it_out_of_the_baseline(surge_daily):
    surge_daily = two_day_surge(surge_daily)
    config = SurgeConfig(window_days=3, baseline_days=10, min_baseline_days=10)
    tests = surge_tests(surge_daily, config)
    b = surge_daily[surge_daily["entity"] == "B"].set_index("day")
    window = tests[(tests["entity"] == "B") & (tests["window_end"] == "2024-02-15")].iloc[0]
    assert window["window_start"] == pd.Timestamp("2024-02-13")
    assert window["n_negative"] == b.loc["2024-02-13":"2024-02-15", "n_negative"].sum()
    assert window["baseline_negative"] == b.loc["2024-02-03":"2024-02-12", "n_negative"].sum()
    alerts = detect_surges(surge_daily, config)
    assert set(alerts["entity"]) == {"B"}
    assert {pd.Timestamp("2024-02-15"), pd.Timestamp("2024-02-16")} <= set(alerts["window_end"])


def test_min_count_is_respected():
    base = [8] * 10
    quiet = [1] * 10
    four = pd.concat([series("A", base + [4], quiet + [4]), series("B", base + [5], quiet + [5])])
    tests = surge_tests(four, SurgeConfig(min_count=5, correction="none"))
    last = tests[tests["window_end"] == DAY + pd.Timedelta(days=10)]
    assert last["entity"].tolist() == ["B"]  # A's 4 negatives of 4 are not tested
    assert last["alert"].tolist() == [True]
    assert (tests["n"] >= 5).all()
    lowered = surge_tests(four, SurgeConfig(min_count=4, correction="none"))
    assert "A" in set(lowered[lowered["alert"]]["entity"])


@pytest.mark.parametrize("method", ["bonferroni", "fdr_bh"])
def test_correction_is_applied_across_all_tests(surge_daily, method):
    tests = surge_tests(surge_daily, SurgeConfig(correction=method))
    expected = multipletests(tests["p_value"], alpha=0.01, method=method)[1]
    np.testing.assert_allclose(tests["p_adjusted"], expected)
    assert (tests["p_adjusted"] >= tests["p_value"]).all()


def test_correction_changes_the_alerts():
    # 40 entities x 40 days; one window with p just under alpha: an alert uncorrected only.
    rng = np.random.default_rng(3)
    frames = [series(f"e{i}", [10] * 40, list(rng.binomial(10, 0.3, 40))) for i in range(40)]
    daily = pd.concat(frames)
    uncorrected = surge_tests(daily, SurgeConfig(correction="none"))
    np.testing.assert_array_equal(uncorrected["p_adjusted"], uncorrected["p_value"])
    corrected = surge_tests(daily, SurgeConfig(correction="bonferroni"))
    assert uncorrected["alert"].sum() > 0
    assert corrected["alert"].sum() == 0
    np.testing.assert_allclose(
        corrected["p_adjusted"], np.minimum(1.0, corrected["p_value"] * len(corrected))
    )


def test_severity_grades_ratio_and_p():
    config = SurgeConfig(baseline_days=5, min_baseline_days=5, correction="none")
    mild = series("A", [1000] * 6, [500] * 5 + [600])  # ratio 1.2, p tiny: low
    strong = series("B", [20] * 6, [2] * 5 + [12])  # ratio ~5.5: high
    alerts = detect_surges(pd.concat([mild, strong]), config).set_index("entity")
    assert alerts.loc["A", "severity"] == "low"
    assert alerts.loc["B", "severity"] == "high"


def test_entities_restrict_the_tested_family(surge_daily):
    tests = surge_tests(surge_daily, SurgeConfig(), entities=["B"])
    assert set(tests["entity"]) == {"B"}
    assert tests.attrs["n_tests"] == 60 - 7


def test_empty_input_gives_no_alerts(surge_daily):
    alerts = detect_surges(surge_daily.iloc[:0], SurgeConfig())
    assert alerts.empty and alerts.attrs["n_tests"] == 0


# ---------------------------------------------------------------- false-positive rate


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_per_window_false_alert_rate_is_at_most_alpha_without_surges(make_null_daily, alpha):
    # 200 entities x 150 days of constant shares (volumes 2..30 a day): ~25,000 windows tested.
    daily = make_null_daily(np.random.default_rng(2024), 200, 150)
    tests = surge_tests(daily, SurgeConfig(alpha=alpha, correction="none"))
    n_tests, false_alerts = len(tests), int(tests["alert"].sum())
    assert n_tests > 20_000
    # Calibrated at alpha, the count exceeds this bound with probability 0.001.
    assert false_alerts <= binom.ppf(0.999, n_tests, alpha), (false_alerts, n_tests)


def test_family_wise_false_alert_rate_is_at_most_alpha_with_correction(make_null_daily):
    # 200 streams of 8 entities x 60 days (~400 windows each) without surges; with the default
    # fdr_bh correction (= family-wise control under the global null) a stream may raise an
    # alert with probability at most alpha.
    alpha, streams = 0.05, 200
    config = SurgeConfig(alpha=alpha)
    with_alert = sum(
        bool(
            surge_tests(make_null_daily(np.random.default_rng(seed), 8, 60), config)["alert"].any()
        )
        for seed in range(streams)
    )
    assert with_alert <= binom.ppf(0.999, streams, alpha), with_alert
    uncorrected = sum(
        bool(surge_tests(make_null_daily(np.random.default_rng(seed), 8, 60),
                         SurgeConfig(alpha=alpha, correction="none"))["alert"].any())
        for seed in range(20)
    )
    assert uncorrected >= 15  # without correction nearly every stream raises one


# ---------------------------------------------------------------- de-duplication, headlines


def alert_frame(rows: list[tuple[str, int]]) -> pd.DataFrame:
    days = [DAY + pd.Timedelta(days=offset) for _, offset in rows]
    return pd.DataFrame({"entity": [entity for entity, _ in rows], "window_start": days,
                         "window_end": days, "p_adjusted": 0.001})


def test_deduplicate_keeps_the_first_alert_and_counts_repeats():
    alerts = alert_frame([("A", 1), ("A", 2), ("B", 2), ("A", 3), ("A", 4), ("A", 5), ("A", 9)])
    kept = deduplicate_alerts(alerts, cooldown_days=3)
    assert [(e, d.day) for e, d in zip(kept["entity"], kept["window_start"])] == [
        ("A", 2), ("A", 6), ("A", 10), ("B", 3)]
    assert kept["n_absorbed"].tolist() == [3, 0, 0, 0]
    assert kept["last_absorbed_end"].iloc[0] == DAY + pd.Timedelta(days=4)
    assert len(deduplicate_alerts(alerts, cooldown_days=0)) == len(alerts)
    with pytest.raises(ValueError, match="cooldown_days"):
        deduplicate_alerts(alerts, cooldown_days=-1)


def test_deduplicate_with_the_config_cooldown(surge_daily):
    config = SurgeConfig(window_days=3, baseline_days=10, min_baseline_days=10)
    alerts = detect_surges(two_day_surge(surge_daily), config)
    kept = deduplicate_alerts(alerts, config.cooldown_days)
    assert len(alerts) >= 2 and len(kept) == 1  # overlapping windows of one surge
    assert kept["n_absorbed"].iloc[0] == len(alerts) - 1


def test_attach_headlines_ranks_the_window_items_by_score():
    scored = pd.DataFrame(
        {
            "published_at": pd.to_datetime(
                ["2024-01-02 10:00"] * 4 + ["2024-01-03 10:00", "2024-01-02 10:00"]
            ),
            "ticker": ["A", "A", "A", "A", "A", "B"],
            "headline": ["mild", "worst", "fine", "bad", "next day", "other entity"],
            "negative_score": [0.5, 0.99, 0.1, 0.8, 1.0, 1.0],
        }
    )
    alerts = alert_frame([("A", 1), ("__all__", 1)])
    with_headlines = attach_headlines(alerts, scored, "ticker", top_n=3)
    assert with_headlines["headlines"].iloc[0] == ["worst", "bad", "mild"]
    assert with_headlines["headlines"].iloc[1] == ["other entity", "worst", "bad"]
    by_label = attach_headlines(
        alerts.iloc[:1],
        scored.drop(columns="negative_score").assign(label=["p", "p", "n", "p", "n", "n"]),
        "ticker", top_n=2, label_column="label", negative_label="n",
    )
    assert by_label["headlines"].iloc[0] == ["fine", "mild"]
