import pandas as pd

from fastadapt.monitoring.aggregate import daily_counts
from fastadapt.monitoring.check import (
    compare_surge_days,
    shuffled_dates_control,
    surge_days_from_labels,
)
from fastadapt.monitoring.surge import SurgeConfig

CONFIG = SurgeConfig(baseline_days=7, min_baseline_days=5)


def days(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"entity": [e for e, _ in rows],
                         "window_start": pd.to_datetime([d for _, d in rows]),
                         "window_end": pd.to_datetime([d for _, d in rows])})


def test_gold_surge_day_on_the_tiny_stream(tiny_stream):
    gold = surge_days_from_labels(tiny_stream, "label", "bearish", "ticker", CONFIG)
    assert gold[["entity", "window_end"]].values.tolist() == [["X", pd.Timestamp("2024-03-11")]]
    assert gold["n"].iloc[0] == 6 and gold["n_negative"].iloc[0] == 6
    with_all = surge_days_from_labels(tiny_stream, "label", "bearish", "ticker", CONFIG,
                                      include_all=True)
    assert set(with_all["entity"]) <= {"X", "__all__"}
    assert with_all.attrs["n_tests"] > gold.attrs["n_tests"]


def test_predicted_labels_one_day_late_still_hit(tiny_stream):
    # The model sees X's surge a day late: day 11 looks ordinary, day 12 all bearish.
    x = tiny_stream["ticker"] == "X"
    day = tiny_stream["published_at"].dt.day
    first_post = tiny_stream["headline"].str.endswith("post 0")
    predicted = tiny_stream.copy()
    predicted.loc[x & (day == 11) & ~first_post, "label"] = "bullish"
    predicted.loc[x & (day == 12), "label"] = "bearish"
    gold = surge_days_from_labels(tiny_stream, "label", "bearish", "ticker", CONFIG)
    found = surge_days_from_labels(predicted, "label", "bearish", "ticker", CONFIG)
    assert found["window_end"].tolist() == [pd.Timestamp("2024-03-12")]
    assert compare_surge_days(gold, found)["hits"] == 1
    assert compare_surge_days(gold, found, tolerance_days=0)["hits"] == 0


def test_compare_surge_days_by_hand():
    gold = days(
        [("A", "2024-01-05"), ("A", "2024-01-20"), ("B", "2024-01-05"), ("B", "2024-02-01")]
    )
    predicted = days([("A", "2024-01-06"), ("A", "2024-01-10"), ("B", "2024-01-04"),
                      ("B", "2024-01-06"), ("C", "2024-01-05")])
    result = compare_surge_days(gold, predicted)
    # hits: A 6th (gold 5th), B 4th and 6th (gold 5th); A 10th and C miss.
    assert result == {"precision": 3 / 5, "recall": 2 / 4, "n_gold": 4, "n_predicted": 5,
                      "hits": 3, "gold_found": 2}
    empty = compare_surge_days(gold, days([]))
    assert empty["precision"] is None and empty["recall"] == 0.0
    assert compare_surge_days(days([]), days([]))["recall"] is None


def test_shuffled_control_permutes_dates_within_each_entity(tiny_stream):
    control = shuffled_dates_control(tiny_stream, "ticker", "published_at", seed=0)
    assert control["row_id"].tolist() == tiny_stream["row_id"].tolist()
    others = ["ticker", "label", "headline"]
    assert control[others].equals(tiny_stream[others])
    for ticker in ("X", "Y"):
        before = tiny_stream.loc[tiny_stream["ticker"] == ticker, "published_at"]
        after = control.loc[control["ticker"] == ticker, "published_at"]
        assert sorted(after) == sorted(before)
        assert not after.equals(before)
    # Daily volumes per entity are kept; only the labels move in time.
    kept = daily_counts(tiny_stream, "ticker", "bearish", label_column="label")
    moved = daily_counts(control, "ticker", "bearish", label_column="label")
    assert moved["day"].equals(kept["day"])
    assert control.equals(shuffled_dates_control(tiny_stream, "ticker", "published_at", seed=0))
    assert not control.equals(shuffled_dates_control(tiny_stream, "ticker", "published_at", seed=1))


def test_shuffled_control_removes_the_surge(tiny_stream):
    control = shuffled_dates_control(tiny_stream, "ticker", "published_at", seed=0)
    assert surge_days_from_labels(control, "label", "bearish", "ticker", CONFIG).empty


def test_shuffled_control_with_missing_and_list_entities():
    stream = pd.DataFrame({"published_at": pd.date_range("2024-01-01", periods=6),
                           "org": [["a", "b"], ["b", "a"], None, None, "a", "a"]})
    control = shuffled_dates_control(stream, "org", seed=0)
    for rows in ([0, 1], [2, 3], [4, 5]):
        shuffled, original = control["published_at"], stream["published_at"]
        assert sorted(shuffled.iloc[rows]) == sorted(original.iloc[rows])
