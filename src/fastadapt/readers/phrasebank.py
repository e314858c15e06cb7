"""Reader for Financial PhraseBank v1.0 (`sentence@label` lines, CRLF, latin-1).

The main file (50 % agreement) holds every sentence; the stricter agreement files are used only to
tag each row with the highest agreement level that confirms its label, so that reports can give
figures on the AllAgree subset (PROTOCOL.md section 1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from fastadapt.readers import records
from fastadapt.readers.quarantine import RawInputError, ReadResult

BASE_AGREEMENT = 50
PHRASEBANK_DEFAULTS = {
    "main_file": "Sentences_50Agree.txt",
    "agreement_files": {},
    "encoding": "latin-1",
    "labels": ["negative", "neutral", "positive"],
}
PHRASEBANK_DTYPES = {
    "text": "str", "label": "str", "origin": "str", "file": "str", "line": "int64", "agreement": "int64",
}


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, CR of CRLF removed (LF-only copies read the same)."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line


def _split_record(line: str) -> tuple[str, str] | None:
    """(sentence, label) split at the last @, both stripped; None when the line has no @."""
    if "@" not in line:
        return None
    sentence, label = line.rsplit("@", 1)
    return sentence.strip(), label.strip()


def _agreement_levels(value: object, corpus: str) -> dict[int, str]:
    """agreement_files as {level: file}, levels as ints above the base level of 50."""
    if value == {}:
        return {}
    levels = {}
    agreement_files = records.mapping_option(value, "agreement_files", corpus, "{66: Sentences_66Agree.txt}")
    for key, file_name in agreement_files.items():
        if not key.isdigit() or not BASE_AGREEMENT < int(key) <= 100:
            raise RawInputError(
                f"{corpus}: option 'agreement_files' has level {key!r}; levels are integers in 51..100"
            )
        levels[int(key)] = file_name
    return levels


def read_phrasebank(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Sentiment rows (row_id, text, label, origin, file, line, agreement) from the main file.

    Options: main_file, agreement_files ({level: file}), encoding, labels, source_hint.
    origin is always "train": the corpus has no official test set. agreement is the highest
    level whose file holds the same sentence with the same label, else 50.
    """
    opts = records.resolve_options(options, PHRASEBANK_DEFAULTS, corpus)
    main_file = str(opts["main_file"])
    encoding = records.encoding_option(opts["encoding"], corpus)
    labels = set(records.string_list_option(opts["labels"], "labels", corpus))
    levels = _agreement_levels(opts["agreement_files"], corpus)

    confirmed: dict[int, set[tuple[str, str]]] = {}
    for level, file_name in levels.items():
        text = records.read_text(files, file_name, corpus, opts["source_hint"], encoding)
        confirmed[level] = {pair for _, line in _lines(text) if (pair := _split_record(line))}

    quarantine = records.QuarantineLog(corpus, encoding)
    rows: list[dict] = []
    n_in = 0
    text = records.read_text(files, main_file, corpus, opts["source_hint"], encoding)
    for number, line in _lines(text):
        n_in += 1
        record = _split_record(line)
        if quarantine.undecodable(main_file, number, line):
            continue
        if record is None:
            quarantine.add(main_file, number, "wrong_column_count", line)
        elif not record[0]:
            quarantine.add(main_file, number, "empty_text", line)
        elif record[1] not in labels:
            quarantine.add(main_file, number, "unknown_label", line)
        else:
            agreement = max((level for level, pairs in confirmed.items() if record in pairs), default=BASE_AGREEMENT)
            rows.append({
                "text": record[0], "label": record[1], "origin": "train",
                "file": main_file, "line": number, "agreement": agreement,
            })
    return quarantine.result(rows, PHRASEBANK_DTYPES, n_in)
