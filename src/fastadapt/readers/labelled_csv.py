"""Reader for labelled text-classification CSVs.

One reader serves the financial tweets, Banking77 and a user's own task folder, because they differ
only in file names, column names and how labels are spelled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastadapt.readers.quarantine import RawInputError, ReadResult, require_file
from fastadapt.readers.records import (
    QuarantineLog,
    encoding_option,
    mapping_option,
    read_csv_table,
    read_text,
    resolve_options,
    string_list_option,
)

TEXT_ROW_DTYPES = {"text": "str", "label": "str", "origin": "str", "file": "str", "line": "int64"}

LABELLED_CSV_DEFAULTS = {
    "splits": {"train": "train.csv", "test": "test.csv"},
    "text_column": "text",
    "label_column": "label",
    "label_map": None,
    "labels_file": None,
    "labels": None,
    "encoding": "utf-8",
    "max_text_chars": None,
}


def _allowed_labels(opts: dict, files: Mapping[str, bytes], corpus: str) -> set[str] | None:
    """The label names records may carry, from labels_file or labels; None when not given."""
    if opts["labels_file"] is not None and opts["labels"] is not None:
        raise RawInputError(f"{corpus}: give either option 'labels_file' or 'labels', not both")
    if opts["labels"] is not None:
        return set(string_list_option(opts["labels"], "labels", corpus))
    if opts["labels_file"] is None:
        return None
    name = opts["labels_file"]
    data = require_file(files, name, corpus, opts["source_hint"])
    try:
        labels = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RawInputError(f"{corpus}: labels_file {name} is not UTF-8 JSON ({error})") from None
    return set(string_list_option(labels, f"labels_file ({name})", corpus))




def read_labelled_csv(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Text-classification rows (row_id, text, label, origin, file, line) from one CSV per split.

    Options: splits (origin -> file), text_column, label_column, label_map (raw label -> name),
    labels_file (JSON list of label names in the folder) or labels, encoding, source_hint,
    max_text_chars (longer texts are quarantined as `text_too_long`; none: any length is read).
    Labels are checked only when label_map, labels_file or labels make them known.
    """
    opts = resolve_options(options, LABELLED_CSV_DEFAULTS, corpus)
    splits = mapping_option(opts["splits"], "splits", corpus, "{train: train.csv, test: test.csv}")
    encoding = encoding_option(opts["encoding"], corpus)
    label_map = None
    if opts["label_map"] is not None:
        label_map = mapping_option(opts["label_map"], "label_map", corpus, '{"0": Bearish, "1": Bullish}')
    allowed = _allowed_labels(opts, files, corpus)
    text_column, label_column = str(opts["text_column"]), str(opts["label_column"])
    max_chars = opts["max_text_chars"]
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise RawInputError(f"{corpus}: option max_text_chars is {max_chars!r}; allowed: an integer >= 1 or null")

    quarantine = QuarantineLog(corpus, encoding)
    rows: list[dict] = []
    n_in = 0
    for origin, name in splits.items():
        text = read_text(files, name, corpus, opts["source_hint"], encoding)
        for record, values in read_csv_table(text, name, [text_column, label_column], corpus, quarantine):
            n_in += 1
            if values is None:
                continue
            sentence, raw_label = values[text_column].strip(), values[label_column].strip()
            label = label_map.get(raw_label) if label_map is not None else raw_label
            if not sentence:
                quarantine.add(name, record.line, "empty_text", record.raw)
            elif max_chars is not None and len(sentence) > max_chars:
                quarantine.add(name, record.line, "text_too_long", record.raw)
            elif not raw_label:
                quarantine.add(name, record.line, "empty_label", record.raw)
            elif label is None or (allowed is not None and label not in allowed):
                quarantine.add(name, record.line, "unknown_label", record.raw)
            else:
                rows.append({"text": sentence, "label": label, "origin": origin, "file": name, "line": record.line})
    return quarantine.result(rows, TEXT_ROW_DTYPES, n_in)
