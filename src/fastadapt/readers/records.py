"""Helpers every reader shares: option checking, per-record decoding, CSV records with their
physical start line, and the quarantine log, so that each reader quarantines bad records the
same way.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pandas as pd

from fastadapt.readers.quarantine import (
    RawInputError,
    ReadResult,
    quarantine_frame,
    require_file,
)

RAW_PREVIEW_CHARS = 500
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def resolve_options(options: Mapping, defaults: Mapping, corpus: str) -> dict:
    """The defaults overlaid with the given options (None means "use the default").

    An unknown name raises, so that a typo in parameters.yml is not silently ignored.
    """
    allowed = {**defaults, "source_hint": ""}
    unknown = sorted(str(name) for name in options if name not in allowed)
    if unknown:
        raise RawInputError(
            f"{corpus}: unknown reader option(s) {unknown}; allowed options: {sorted(allowed)}"
        )
    resolved = dict(allowed)
    resolved.update({name: value for name, value in options.items() if value is not None})
    return resolved


def mapping_option(value: object, name: str, corpus: str, example: str) -> dict[str, str]:
    """A non-empty mapping to non-empty strings, keys as strings (YAML may give ints)."""
    if not isinstance(value, Mapping) or not value:
        raise RawInputError(f"{corpus}: option '{name}' must be a non-empty mapping such as {example}, got {value!r}")
    for key, item in value.items():
        if not isinstance(item, str) or not item:
            raise RawInputError(f"{corpus}: option '{name}' maps {key!r} to {item!r}; expected a non-empty string")
    return {str(key): item for key, item in value.items()}


def string_list_option(value: object, name: str, corpus: str) -> list[str]:
    """A non-empty list of non-empty strings."""
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(item, str) and item for item in value):
        raise RawInputError(f"{corpus}: option '{name}' must be a non-empty list of strings, got {value!r}")
    return list(value)


def choice_option(value: object, name: str, allowed: list, corpus: str) -> object:
    """The value itself, when it is one of the allowed values."""
    if value not in allowed:
        raise RawInputError(f"{corpus}: option '{name}' is {value!r}; allowed values: {allowed}")
    return value


def encoding_option(value: object, corpus: str) -> str:
    """A codec name Python knows."""
    try:
        return codecs.lookup(str(value)).name
    except LookupError:
        raise RawInputError(
            f"{corpus}: option 'encoding' is {value!r}, which Python does not know "
            "(for example utf-8 or latin-1)"
        ) from None


def decode_file(data: bytes, encoding: str) -> str:
    """The file's text; bad byte sequences become lone surrogates so only their records fail."""
    text = data.decode(encoding, errors="surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def read_text(files: Mapping[str, bytes], name: str, corpus: str, hint: str, encoding: str) -> str:
    """File `name` of the corpus, decoded (`decode_file`); a missing file names the corpus and `hint`."""
    return decode_file(require_file(files, name, corpus, hint), encoding)


def is_undecodable(text: str) -> bool:
    """Whether the text holds bytes that the file's encoding could not decode."""
    return _UNDECODABLE.search(text) is not None


@dataclass
class QuarantineLog:
    """Collects quarantined records; raw text is shown with undecodable bytes as \\xNN escapes."""

    corpus: str
    encoding: str
    records: list[dict] = field(default_factory=list)

    def add(self, file: str, line: int, reason: str, raw: str) -> None:
        printable = raw.rstrip("\r\n").encode(self.encoding, "surrogateescape")
        self.records.append({
            "corpus": self.corpus,
            "file": file,
            "line": line,
            "reason": reason,
            "raw": printable.decode(self.encoding, "backslashreplace")[:RAW_PREVIEW_CHARS],
        })

    def undecodable(self, file: str, line: int, raw: str) -> bool:
        """Quarantine the record as `undecodable_bytes` if the encoding could not decode it; whether it did."""
        if is_undecodable(raw):
            self.add(file, line, "undecodable_bytes", raw)
            return True
        return False

    def frame(self) -> pd.DataFrame:
        return quarantine_frame(self.records)

    def result(self, rows: list[dict], dtypes: Mapping[str, str], n_in: int) -> ReadResult:
        """The reader's result: the kept rows typed as `dtypes`, this quarantine, accounting checked."""
        return ReadResult(rows=rows_frame(rows, dtypes), quarantine=self.frame(), n_in=n_in).check(self.corpus)


@dataclass
class CsvRecord:
    """One CSV record: its physical start line, its raw text and its fields (None if unparseable)."""

    line: int
    raw: str
    fields: list[str] | None


def csv_records(text: str) -> Iterator[CsvRecord]:
    """The records of a CSV text, blank lines skipped, each with the physical line it starts on.

    Quoted fields may hold newlines, so records are not lines; strict quoting makes a stray quote a
    malformed record (fields None) instead of silently merged text.
    """
    consumed: list[str] = []

    def physical_lines() -> Iterator[str]:
        for physical_line in io.StringIO(text, newline="\n"):
            consumed.append(physical_line)
            yield physical_line

    reader = csv.reader(physical_lines(), strict=True)
    # Python's csv refuses fields over csv.field_size_limit() (128 KiB), which would quarantine a
    # valid long text as malformed; no field can be longer than the text, so that is the limit
    # while this reader reads (the setting is process-wide, hence restored after each record).
    field_limit = len(text) + 1
    start_line = 1
    while True:
        previous_limit = csv.field_size_limit(max(field_limit, csv.field_size_limit()))
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = None
        finally:
            csv.field_size_limit(previous_limit)
        raw = "".join(consumed)
        consumed.clear()
        if fields != []:
            yield CsvRecord(line=start_line, raw=raw, fields=fields)
        start_line = reader.line_num + 1


def read_csv_table(
    text: str, file: str, required_columns: list[str], corpus: str, quarantine: QuarantineLog
) -> Iterator[tuple[CsvRecord, dict[str, str] | None]]:
    """Every record after the header, with its column -> value dict (None once quarantined).

    Undecodable, unparseable and wrong-width records go to the quarantine as they come, so the
    quarantine keeps file order; a header that lacks a required column raises, because then no
    record can be read.
    """
    records = csv_records(text)
    header_record = next(records, None)
    header = [name.strip() for name in (header_record.fields or [])] if header_record else []
    missing = [name for name in required_columns if name not in header]
    if missing:
        raise RawInputError(
            f"{corpus}: {file} has columns {header}, but needs {required_columns} "
            f"(missing {missing}); check the reader options that name columns"
        )
    for record in records:
        values = None
        if quarantine.undecodable(file, record.line, record.raw):
            pass
        elif record.fields is None:
            quarantine.add(file, record.line, "malformed_csv", record.raw)
        elif len(record.fields) != len(header):
            quarantine.add(file, record.line, "wrong_column_count", record.raw)
        else:
            values = dict(zip(header, record.fields))
        yield record, values


def rows_frame(rows: list[dict], dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Rows as a frame with the given columns and dtypes, led by row_id 0..n-1 in row order."""
    frame = pd.DataFrame(rows, columns=list(dtypes)).astype(dict(dtypes))
    frame.insert(0, "row_id", pd.Series(range(len(frame)), dtype="int64"))
    return frame
