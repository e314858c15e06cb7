"""Headline stream readers on small CNBC, Guardian and StockEmotions fixtures."""

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from fastadapt.readers.quarantine import RawInputError
from fastadapt.readers.stream import (
    parse_loose_datetime,
    read_cnbc_headlines,
    read_guardian_headlines,
    read_stockemotions,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "readers"
STREAM_COLUMNS = ["row_id", "published_at", "source", "headline", "ticker", "label", "origin", "file", "line"]


def load(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 7:51  PM ET Fri, 17 July 2020", datetime(2020, 7, 17, 19, 51)),
        ("10:05  AM ET Mon, 30 Sept 2019", datetime(2019, 9, 30, 10, 5)),
        ("12:15  AM ET Sun,  3 Mar 2019", datetime(2019, 3, 3, 0, 15)),
        ("12:40  PM ET Tue,  2 June 2020", datetime(2020, 6, 2, 12, 40)),
        ("18-Jul-20", datetime(2020, 7, 18)),
        ("5-Jan-18", datetime(2018, 1, 5)),
        ("14:05 1 Sep 2020", datetime(2020, 9, 1, 14, 5)),
        ("Jul-18", None),
        ("31-Feb-19", None),
        ("13:00 PM 1 Jan 2020", None),
        ("1 Ja 2020", None),
        ("1 Jan 2020 soon", None),
        ("", None),
    ],
)
def test_parse_loose_datetime(text, expected):
    assert parse_loose_datetime(text) == expected


def test_cnbc_times_blank_rows_and_whitespace():
    result = read_cnbc_headlines(load(FIXTURES / "headlines"), {}, "headlines")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (10, 5, 5)
    assert result.n_in == len(result.rows) + len(result.quarantine)
    assert result.quarantine[["line", "reason"]].values.tolist() == [
        [3, "empty_text"], [9, "empty_text"], [11, "unparseable_date"], [12, "unparseable_date"],
        [13, "wrong_column_count"],
    ]
    rows = result.rows
    assert rows.columns.tolist() == STREAM_COLUMNS
    assert rows["line"].tolist() == [2, 4, 5, 7, 10]
    assert rows["published_at"].tolist() == [
        pd.Timestamp("2020-07-17 19:51"), pd.Timestamp("2019-09-30 10:05"), pd.Timestamp("2018-06-28 18:34"),
        pd.Timestamp("2018-01-05 18:59"), pd.Timestamp("2019-03-03 00:15"),
    ]
    assert rows["headline"].iloc[2] == "With food allergies on the rise, Aimmune focuses on tolerance"
    assert rows["headline"].iloc[4] == "Weekend edition: markets in review"
    assert set(rows["source"]) == {"cnbc"} and set(rows["origin"]) == {"unlabelled"}
    assert rows["ticker"].isna().all() and rows["label"].isna().all()


def test_stream_dtypes():
    rows = read_cnbc_headlines(load(FIXTURES / "headlines"), {}, "headlines").rows
    assert rows["published_at"].dtype == "datetime64[ns]"
    assert rows["ticker"].dtype == pd.StringDtype() and rows["label"].dtype == pd.StringDtype()
    assert rows["row_id"].dtype == rows["line"].dtype == "int64"


def test_guardian_month_only_dates_are_quarantined():
    result = read_guardian_headlines(load(FIXTURES / "headlines"), {}, "headlines")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (7, 4, 3)
    assert result.quarantine[["line", "reason"]].values.tolist() == [
        [8, "unparseable_date"], [9, "unparseable_date"], [14, "unparseable_date"],
    ]
    rows = result.rows
    assert rows["line"].tolist() == [2, 3, 4, 13]
    assert rows["published_at"].tolist() == [
        pd.Timestamp("2020-07-18"), pd.Timestamp("2020-07-18"), pd.Timestamp("2018-01-05"), pd.Timestamp("2018-06-29"),
    ]
    assert rows["headline"].iloc[2] == "Nils Pratley on finance Centrica left it far too late to tackle its problems"
    assert rows["headline"].iloc[1].startswith("\u2018I now fear the worst\u2019")
    assert set(rows["source"]) == {"guardian"}


def test_stockemotions_keeps_ticker_label_and_emotion():
    result = read_stockemotions(load(FIXTURES / "stockemotions"), {}, "stockemotions")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (9, 5, 4)
    assert result.quarantine[["file", "line", "reason"]].values.tolist() == [
        ["train_stockemo.csv", 7, "unknown_label"], ["train_stockemo.csv", 8, "unknown_label"],
        ["train_stockemo.csv", 9, "unparseable_date"], ["test_stockemo.csv", 2, "empty_text"],
    ]
    rows = result.rows
    assert rows.columns.tolist() == STREAM_COLUMNS + ["emotion"]
    assert rows["origin"].tolist() == ["train", "train", "train", "validation", "test"]
    assert rows["line"].tolist() == [2, 3, 6, 2, 3]
    assert rows["ticker"].tolist()[:2] == ["AMZN", "TSLA"] and rows["ticker"].isna().tolist()[2]
    assert rows["label"].tolist() == ["bullish", "bearish", "bullish", "bullish", "bearish"]
    assert rows["emotion"].tolist() == ["excitement", "anxiety", "optimism", "belief", "anger"]
    assert rows["headline"].iloc[1] == "$TSLA what a drop sold at open"
    assert rows["published_at"].iloc[0] == pd.Timestamp("2020-01-01")


def test_stockemotions_text_column_option():
    rows = read_stockemotions(load(FIXTURES / "stockemotions"), {"text_column": "processed"}, "stockemotions").rows
    assert rows["headline"].iloc[0] == "Amazon Dow futures up by 100 points already [partying face]"


def test_missing_file_names_it():
    with pytest.raises(RawInputError, match=r"'cnbc.csv' is missing.*guardian_headlines.csv"):
        read_cnbc_headlines(load(FIXTURES / "headlines"), {"file": "cnbc.csv"}, "headlines")


def test_columns_are_found_by_name_and_a_missing_one_is_an_error():
    swapped = {"cnbc_headlines.csv": b"Time,Headlines\r\n18-Jul-20,Markets rally\r\n"}
    assert read_cnbc_headlines(swapped, {}, "headlines").rows["headline"].tolist() == ["Markets rally"]
    renamed = {"cnbc_headlines.csv": b"Title,Time\r\nMarkets rally,18-Jul-20\r\n"}
    with pytest.raises(RawInputError, match=r"has columns \['Title', 'Time'\].*\['Headlines', 'Time'\]"):
        read_cnbc_headlines(renamed, {}, "headlines")
    with pytest.raises(RawInputError, match=r"missing \['text'\]"):
        read_stockemotions(load(FIXTURES / "stockemotions"), {"text_column": "text"}, "stockemotions")


def test_unknown_option_is_named():
    with pytest.raises(RawInputError, match=r"unknown reader option.*'files'.*allowed options.*'file'"):
        read_guardian_headlines(load(FIXTURES / "headlines"), {"files": "x.csv"}, "headlines")
