import numpy as np
import pandas as pd
import pytest

from fastadapt.monitoring.aggregate import ALL_ENTITY, DAILY_COLUMNS, daily_counts


@pytest.fixture
def scored() -> pd.DataFrame:
    """A on days 1 and 3 (none on day 2), B on day 2, one item without entity, one unlabelled."""
    return pd.DataFrame(
        {
            "published_at": pd.to_datetime(
                ["2024-01-01 08:00", "2024-01-01 17:30", "2024-01-03 10:00", "2024-01-02 09:00",
                 "2024-01-02 11:00", "2024-01-03 12:00"]
            ),
            "org": ["A", "A", "A", "B", None, "B"],
            "predicted": ["neg", "pos", "neg", "neu", "neg", None],
            "negative_score": [0.9, 0.1, 0.7, 0.3, 0.8, 0.95],
        }
    )


def row(daily: pd.DataFrame, entity: str, day: str) -> pd.Series:
    match = daily[(daily["entity"] == entity) & (daily["day"] == pd.Timestamp(day))]
    assert len(match) == 1, (entity, day)
    return match.iloc[0]


def test_counts_shares_and_scores_per_entity_and_day(scored):
    daily = daily_counts(scored, "org", "neg")
    assert list(daily.columns) == DAILY_COLUMNS
    first = row(daily, "A", "2024-01-01")
    assert (first["n"], first["n_negative"]) == (2, 1)
    assert first["negative_share"] == pytest.approx(0.5)
    assert first["mean_score"] == pytest.approx(0.5)
    third = row(daily, "A", "2024-01-03")
    assert (third["n"], third["n_negative"], third["mean_score"]) == (1, 1, pytest.approx(0.7))


def test_quiet_days_within_the_active_range_are_zero_filled(scored):
    daily = daily_counts(scored, "org", "neg")
    gap = row(daily, "A", "2024-01-02")
    assert (gap["n"], gap["n_negative"]) == (0, 0)
    assert np.isnan(gap["negative_share"]) and np.isnan(gap["mean_score"])
    # B is active on day 2 only (its day-3 item is unlabelled): no rows outside its range.
    assert daily[daily["entity"] == "B"]["day"].tolist() == [pd.Timestamp("2024-01-02")]


def test_all_entity_counts_every_labelled_item_once(scored):
    daily = daily_counts(scored, "org", "neg")
    overall = daily[daily["entity"] == ALL_ENTITY].set_index("day")
    assert overall["n"].tolist() == [2, 2, 1]  # the entity-less item counts; the unlabelled not
    assert overall["n_negative"].tolist() == [1, 1, 1]
    assert overall.loc["2024-01-02", "mean_score"] == pytest.approx(0.55)


def test_any_negative_label_and_no_score_column(scored):
    daily = daily_counts(scored.drop(columns="negative_score"), "org", "neu")
    assert row(daily, "B", "2024-01-02")["n_negative"] == 1
    assert row(daily, "A", "2024-01-01")["n_negative"] == 0
    assert daily["mean_score"].isna().all()


def test_list_valued_entities_count_once_per_entity(scored):
    scored = scored.assign(org=[["A", "B", "A"], ["A"], [], ["B"], None, ["B"]])
    daily = daily_counts(scored, "org", "neg")
    assert row(daily, "B", "2024-01-01")["n"] == 1
    assert row(daily, "A", "2024-01-01")["n"] == 2
    assert row(daily, ALL_ENTITY, "2024-01-01")["n"] == 2


def test_missing_column_is_named(scored):
    with pytest.raises(KeyError, match="ticker"):
        daily_counts(scored, "ticker", "neg")
    with pytest.raises(KeyError, match="label"):
        daily_counts(scored, "org", "neg", label_column="label")


def test_empty_stream_gives_an_empty_table(scored):
    daily = daily_counts(scored.iloc[:0], "org", "neg")
    assert daily.empty and list(daily.columns) == DAILY_COLUMNS
