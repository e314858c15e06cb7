"""Labelled CSV reader on small fixtures for the tweets, Banking77 and a user's own task folder."""

from pathlib import Path

import pytest

from fastadapt.readers.labelled_csv import read_labelled_csv
from fastadapt.readers.records import csv_records
from fastadapt.readers.quarantine import RawInputError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "readers"
TWEETS = {
    "splits": {"train": "sent_train.csv", "test": "sent_valid.csv"},
    "label_map": {"0": "Bearish", "1": "Bullish", "2": "Neutral"},
}
BANKING = {"label_column": "category", "labels_file": "categories.json"}


def load(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_csv_records_track_the_physical_start_line():
    records = list(csv_records('a,b\r\n"x\ny",1\r\n\r\nz,"2\r\n3"\r\nq,"open\n'))
    assert [(record.line, record.fields) for record in records] == [
        (1, ["a", "b"]), (2, ["x\ny", "1"]), (5, ["z", "2\r\n3"]), (7, None),
    ]
    assert records[1].raw == '"x\ny",1\r\n'


def test_tweets_embedded_newlines_and_label_codes():
    result = read_labelled_csv(load(FIXTURES / "financial_tweets"), TWEETS, "finance_tweets")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (11, 7, 4)
    assert result.n_in == len(result.rows) + len(result.quarantine)
    rows = result.rows
    assert rows["row_id"].tolist() == list(range(7))
    assert rows[["origin", "line", "label"]].values.tolist() == [
        ["train", 2, "Bearish"], ["train", 3, "Bearish"], ["train", 5, "Bullish"], ["train", 6, "Neutral"],
        ["train", 11, "Bearish"], ["test", 2, "Bullish"], ["test", 3, "Neutral"],
    ]
    texts = rows.set_index(["origin", "line"])["text"]
    assert texts[("train", 3)].endswith("trims targets\nhttps://t.co/9PbXF4Qsa3")
    assert texts[("train", 5)] == 'Stocks rally as "risk-on" returns'
    assert texts[("train", 6)] == "Markets are calm today"
    assert texts[("train", 11)] == "Oil slips\n\nas supply rises"


def test_tweets_quarantine_each_bad_record_with_its_reason():
    quarantine = read_labelled_csv(load(FIXTURES / "financial_tweets"), TWEETS, "finance_tweets").quarantine
    assert quarantine[["file", "line", "reason"]].values.tolist() == [
        ["sent_train.csv", 7, "empty_text"],
        ["sent_train.csv", 8, "unknown_label"],
        ["sent_train.csv", 9, "wrong_column_count"],
        ["sent_train.csv", 10, "undecodable_bytes"],
    ]
    assert set(quarantine["corpus"]) == {"finance_tweets"}
    assert quarantine["raw"].iloc[3] == "Caf\u00e9 chain shares jump \\xff\\xfe,1"


def test_banking77_labels_come_from_categories_json():
    result = read_labelled_csv(load(FIXTURES / "banking77"), BANKING, "customer_intent")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (7, 5, 2)
    assert result.quarantine[["file", "line", "reason"]].values.tolist() == [
        ["train.csv", 7, "unknown_label"], ["test.csv", 3, "empty_text"],
    ]
    rows = result.rows.set_index(["origin", "line"])
    assert rows.loc[("train", 3), "text"] == "How do I unblock my PIN?"
    assert rows.loc[("train", 6), "text"] == "Can I pay \u00a3100\u00a0with it?"
    assert rows.loc[("train", 5), "label"] == "card_not_working"


def test_labels_option_replaces_the_labels_file():
    options = {"label_column": "category", "labels": ["pin_blocked"]}
    result = read_labelled_csv(load(FIXTURES / "banking77"), options, "customer_intent")
    assert set(result.rows["label"]) == {"pin_blocked"}
    assert result.quarantine["reason"].value_counts().to_dict() == {"unknown_label": 4, "empty_text": 1}


def test_generic_task_with_default_options_accepts_any_label():
    result = read_labelled_csv(load(FIXTURES / "text_task"), {}, "my_task")
    assert result.rows[["text", "label", "origin", "line"]].values.tolist() == [
        ["reset my password", "account", "train", 2],
        ["charge twice,\nplease refund", "billing", "train", 3],
        ["locked out again", "account", "test", 2],
    ]
    assert result.quarantine[["line", "reason"]].values.tolist() == [[5, "empty_label"]]
    assert result.n_in == 4


def test_malformed_quoting_and_long_raw_text_are_quarantined_truncated():
    files = {
        "train.csv": b'text,label\n"stray "quote" inside",a\nok,a\n' + b"x" * 600 + b",a,b\n",
        "test.csv": b"text,label\nfine,a\n",
    }
    result = read_labelled_csv(files, {}, "my_task")
    assert result.quarantine[["line", "reason"]].values.tolist() == [[2, "malformed_csv"], [4, "wrong_column_count"]]
    assert len(result.quarantine["raw"].iloc[1]) == 500
    assert result.rows["text"].tolist() == ["ok", "fine"]


def test_header_without_the_label_column_names_file_and_columns():
    with pytest.raises(RawInputError, match=r"train.csv has columns \['text', 'category'\].*\['text', 'label'\]"):
        read_labelled_csv(load(FIXTURES / "banking77"), {}, "customer_intent")


def test_missing_split_file_names_it_and_the_hint():
    files = load(FIXTURES / "financial_tweets")
    del files["sent_valid.csv"]
    with pytest.raises(RawInputError, match=r"'sent_valid.csv' is missing.*sent_train.csv.*make data"):
        read_labelled_csv(files, {**TWEETS, "source_hint": "Run `make data`."}, "finance_tweets")


def test_missing_labels_file_is_an_error():
    files = load(FIXTURES / "banking77")
    del files["categories.json"]
    with pytest.raises(RawInputError, match="'categories.json' is missing"):
        read_labelled_csv(files, BANKING, "customer_intent")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"label_col": "category"}, r"unknown reader option.*label_col.*allowed options.*label_column"),
        ({"splits": ["train.csv"]}, r"'splits' must be a non-empty mapping"),
        ({"labels": ["a"], "labels_file": "categories.json"}, r"either option 'labels_file' or 'labels'"),
        ({"label_map": {"0": 1}}, r"'label_map' maps '0' to 1"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(RawInputError, match=message):
        read_labelled_csv(load(FIXTURES / "text_task"), options, "my_task")


def test_a_text_over_pythons_csv_field_limit_is_read_or_quarantined_under_a_configured_limit():
    import csv

    long_text = "growth " * 150_000  # about 1 MB, over csv.field_size_limit()'s default 131,072
    assert len(long_text) > csv.field_size_limit()
    files = {"train.csv": f'text,label\n"{long_text}",up\nshort one,down\n'.encode(), "test.csv": b"text,label\nx,up\n"}
    result = read_labelled_csv(files, {}, "long")
    assert result.quarantine.empty
    assert result.rows["text"].iloc[0] == long_text.strip() and len(result.rows) == 3
    assert csv.field_size_limit() == 131_072  # the process-wide setting is left as it was
    limited = read_labelled_csv(files, {"max_text_chars": 10_000}, "long")
    assert limited.quarantine[["file", "line", "reason"]].values.tolist() == [["train.csv", 2, "text_too_long"]]
    assert len(limited.rows) == 2
    with pytest.raises(RawInputError, match="option max_text_chars is 0"):
        read_labelled_csv(files, {"max_text_chars": 0}, "long")
