"""Readers for dated headline streams (CNBC, The Guardian, StockEmotions) into one stream schema.

Monitoring counts headlines per day and ticker, so every source becomes the same columns:
row_id, published_at (tz-naive, the source's local time; midnight when it gives only a date),
source, headline (whitespace runs collapsed to one space), ticker and label (NA where the source
has none), origin, file, line. The sources spell dates differently; one tolerant parser reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

from fastadapt.readers.quarantine import ReadResult
from fastadapt.readers.records import (
    QuarantineLog,
    mapping_option,
    read_csv_table,
    read_text,
    resolve_options,
)

ENCODING = "utf-8"
UNSPLIT_ORIGIN = "unlabelled"
STREAM_DTYPES = {
    "published_at": "datetime64[ns]", "source": "str", "headline": "str", "ticker": "string",
    "label": "string", "origin": "str", "file": "str", "line": "int64",
}
SENTIMENTS = {"bullish", "bearish"}
EMOTIONS = {
    "ambiguous", "amusement", "anger", "anxiety", "belief", "confusion", "depression", "disgust",
    "excitement", "optimism", "panic", "surprise",
}
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_ZONES = {"et", "est", "edt", "ct", "pt", "gmt", "bst", "utc"}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?[Mm]\.?)?")
_DATE_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\s,.\-]")


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace (newlines and U+00A0 included) as one space, ends stripped."""
    return " ".join(text.split())


def _name_index(token: str, names: tuple[str, ...]) -> int | None:
    """Index of the name the token abbreviates (at least 3 letters: Sep, Sept, June), else None."""
    token = token.lower()
    if len(token) < 3:
        return None
    return next((index for index, name in enumerate(names) if name.startswith(token)), None)


def parse_loose_datetime(text: str) -> datetime | None:
    """A day, a month name and a year, in any spelling the sources use, or None.

    Accepts full, abbreviated or odd month names (`Sept`), 2- or 4-digit years, padding spaces, an
    optional clock time (12-hour with AM/PM, or 24-hour) and ignorable weekday and time-zone words:
    ' 7:51  PM ET Fri, 17 July 2020' and '5-Jan-18' both parse. A missing day (`Jul-18`), an
    unknown word or an impossible date gives None.
    """
    hour = minute = 0
    clock = _CLOCK.search(text)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if clock.group(3):
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if clock.group(3).lower() == "p" else 0)
        text = text[:clock.start()] + " " + text[clock.end():]
    numbers, months = [], []
    for token in _DATE_TOKEN.findall(text):
        if token.isdigit():
            numbers.append(token)
        elif token.isalpha() and _name_index(token, _MONTHS) is not None:
            months.append(_name_index(token, _MONTHS) + 1)
        elif not (token.isalpha() and (_name_index(token, _WEEKDAYS) is not None or token.lower() in _TIME_ZONES)):
            return None
    if len(months) != 1 or len(numbers) != 2 or len(numbers[0]) > 2 or len(numbers[1]) not in (2, 4):
        return None
    day, year = int(numbers[0]), int(numbers[1])
    if len(numbers[1]) == 2:
        year += 2000 if year < 69 else 1900
    try:
        return datetime(year, months[0], day, hour, minute)
    except ValueError:
        return None


def _parse_iso_date(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return None


RowBuilder = Callable[[dict[str, str]], tuple[dict, str | None]]


def _read_stream(
    files: Mapping[str, bytes],
    splits: Mapping[str, str],
    required_columns: list[str],
    build_row: RowBuilder,
    extra_dtypes: Mapping[str, str],
    corpus: str,
    source_hint: str,
) -> ReadResult:
    """Rows from each (origin, file) in order; build_row gives a row or a quarantine reason."""
    quarantine = QuarantineLog(corpus, ENCODING)
    rows: list[dict] = []
    n_in = 0
    for origin, name in splits.items():
        text = read_text(files, name, corpus, source_hint, ENCODING)
        for record, values in read_csv_table(text, name, required_columns, corpus, quarantine):
            n_in += 1
            if values is None:
                continue
            row, reason = build_row(values)
            if reason:
                quarantine.add(name, record.line, reason, record.raw)
            else:
                rows.append({**row, "origin": origin, "file": name, "line": record.line})
    return quarantine.result(rows, {**STREAM_DTYPES, **extra_dtypes}, n_in)


def _headline_row(source: str, headline: str, published_at: datetime | None) -> tuple[dict, str | None]:
    """A stream row without ticker or label, or the reason it cannot be one."""
    if not headline:
        return {}, "empty_text"
    if published_at is None:
        return {}, "unparseable_date"
    row = {"published_at": published_at, "source": source, "headline": headline, "ticker": None, "label": None}
    return row, None


def _read_headlines(files: Mapping[str, bytes], options: Mapping, corpus: str, source: str, default_file: str,
                    columns: list[str]) -> ReadResult:
    """One headline file of `source` with columns Headlines and Time (`columns`: the file's order)."""
    opts = resolve_options(options, {"file": default_file}, corpus)

    def build_row(values: dict[str, str]) -> tuple[dict, str | None]:
        return _headline_row(source, collapse_whitespace(values["Headlines"]), parse_loose_datetime(values["Time"]))

    return _read_stream(files, {UNSPLIT_ORIGIN: str(opts["file"])}, columns, build_row, {}, corpus,
                        opts["source_hint"])


def read_cnbc_headlines(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """CNBC headlines (columns Headlines, Time; Description unused). Options: file, source_hint.

    Times like ' 7:51  PM ET Fri, 17 July 2020' are kept in US Eastern time; blank `,,` rows are
    quarantined as empty_text.
    """
    return _read_headlines(files, options, corpus, "cnbc", "cnbc_headlines.csv", ["Headlines", "Time"])


def read_guardian_headlines(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Guardian headlines (columns Time, Headlines). Options: file, source_hint.

    Dates like '18-Jul-20' become midnight; month-only values ('Jul-18') are quarantined as
    unparseable_date rather than guessed.
    """
    return _read_headlines(files, options, corpus, "guardian", "guardian_headlines.csv", ["Time", "Headlines"])


def read_stockemotions(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """StockEmotions posts with ticker, label (senti_label) and emotion (emo_label).

    Options: splits (origin -> file), text_column (original or processed), source_hint.
    Dates are ISO days, so published_at is midnight.
    """
    defaults = {
        "splits": {"train": "train_stockemo.csv", "validation": "val_stockemo.csv", "test": "test_stockemo.csv"},
        "text_column": "original",
    }
    opts = resolve_options(options, defaults, corpus)
    splits = mapping_option(opts["splits"], "splits", corpus, "{train: train_stockemo.csv}")
    text_column = str(opts["text_column"])

    def build_row(values: dict[str, str]) -> tuple[dict, str | None]:
        row, reason = _headline_row("stockemotions", collapse_whitespace(values[text_column]),
                                    _parse_iso_date(values["date"]))
        label, emotion = values["senti_label"].strip(), values["emo_label"].strip()
        if reason is None and (label not in SENTIMENTS or emotion not in EMOTIONS):
            reason = "unknown_label"
        ticker = values["ticker"].strip() or None
        return {**row, "ticker": ticker, "label": label, "emotion": emotion}, reason

    required = [text_column, "date", "ticker", "senti_label", "emo_label"]
    return _read_stream(files, splits, required, build_row, {"emotion": "string"}, corpus, opts["source_hint"])
