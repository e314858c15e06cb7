"""Mixed-domain training rows: explicit label maps, split and source filters, date ranges."""

from __future__ import annotations

import pandas as pd
import pytest

from fastadapt.config import ConfigError
from fastadapt.tasks.mixed import mixed_rows, parse_sources

PHRASEBANK = pd.DataFrame({"text": ["a", "b", "c"], "label": ["negative", "positive", "neutral"],
                           "split": ["train", "train", "test"]})
TWEETS = pd.DataFrame({"text": ["t1", "t2"], "label": ["Bearish", "Neutral"], "split": ["train", "validation"]})
STREAM = pd.DataFrame({
    "headline": ["early bear", "early bull", "late bear", "news"],
    "label": ["bearish", "bullish", "bearish", None],
    "source": ["stockemotions", "stockemotions", "stockemotions", "guardian"],
    "published_at": pd.to_datetime(["2020-03-01 00:00", "2020-08-31 23:00", "2020-09-01 00:00", "2020-03-01 00:00"]),
})
SOURCES = {
    "phrasebank": {"table": "pb", "label_map": {"negative": "negative", "neutral": "neutral", "positive": "positive"}},
    "tweets": {"table": "tw", "splits": ["train", "validation"],
               "label_map": {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}},
    "stockemotions": {"table": "stream", "source": "stockemotions", "text_column": "headline",
                      "label_map": {"bearish": "negative", "bullish": "positive"}, "date_until": "2020-09-01"},
}


def test_each_source_keeps_its_rows_and_maps_its_labels():
    rows = mixed_rows({"pb": PHRASEBANK, "tw": TWEETS, "stream": STREAM}, parse_sources(SOURCES, "x"))
    assert rows.to_dict("records") == [
        {"text": "a", "label": "negative", "source": "phrasebank"},
        {"text": "b", "label": "positive", "source": "phrasebank"},
        {"text": "t1", "label": "negative", "source": "tweets"},
        {"text": "t2", "label": "neutral", "source": "tweets"},
        {"text": "early bear", "label": "negative", "source": "stockemotions"},
        {"text": "early bull", "label": "positive", "source": "stockemotions"},
    ]  # the test split, the guardian row and the post of 2020-09-01 (the check's range) stay out


def test_a_label_the_map_does_not_name_is_an_error_naming_it():
    sources = parse_sources({"tweets": {**SOURCES["tweets"], "label_map": {"Bearish": "negative"}}}, "p.extra")
    with pytest.raises(ConfigError, match=r"p\.extra\.tweets\.label_map does not map the label\(s\) \['Neutral'\]"):
        mixed_rows({"tw": TWEETS}, sources)


@pytest.mark.parametrize("spec, message", [
    ({"table": "tw"}, r"^p\.tweets\.label_map must map"),
    ({"table": "tw", "label_map": {"a": "b"}, "date_until": "soon"},
     r"^p\.tweets\.date_until is 'soon'; allowed: a date \(YYYY-MM-DD\)"),
    ({"table": "tw", "label_map": {"a": "b"}, "colour": 1}, r"^p\.tweets: unknown setting\(s\) \['colour'\]"),
    ({"table": "tw", "label_map": {"a": "b"}, "name": "x"}, r"^p\.tweets: unknown setting\(s\) \['name'\]"),
    ({"label_map": {"a": "b"}, "splits": "train"}, r"^p\.tweets\.splits is 'train'; allowed: a non-empty list"),
    ({"label_map": {"a": "b"}, "text_column": 3}, r"^p\.tweets\.text_column is 3; allowed: a non-empty string"),
])
def test_bad_settings_name_the_parameter(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_sources({"tweets": spec}, "p")


def test_yaml_dates_and_a_table_named_like_the_source():
    import datetime

    (source,) = parse_sources({"tw": {"label_map": {"Bearish": "negative"}, "date_from": datetime.date(2020, 3, 1)}},
                              "p")
    assert (source.name, source.table, source.date_from, source.where) == ("tw", "tw", "2020-03-01", "p.tw")


def test_an_unknown_table_names_the_available_ones():
    with pytest.raises(ConfigError, match=r"table is 'pb'; available: \['tw'\]"):
        mixed_rows({"tw": TWEETS}, parse_sources({"phrasebank": SOURCES["phrasebank"]}, "p"))
