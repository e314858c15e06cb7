"""The quarantine record every reader produces, and the row accounting check.

A reader never drops a record silently: each input record ends either in the rows it returns or
in its quarantine table, with the file, the 1-based line where the record starts and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from fastadapt.errors import UserInputError

QUARANTINE_COLUMNS = ["corpus", "file", "line", "reason", "raw"]


class RawInputError(UserInputError):
    """A raw input that cannot be read at all (a missing file, a wrong header, bad options).

    The message names the file or option and says what to do; rows that are merely bad are
    quarantined instead.
    """


class AccountingError(RuntimeError):
    """Records in != rows out + records quarantined: a reader lost or invented records."""


def quarantine_frame(records: list[dict] | None = None) -> pd.DataFrame:
    """A quarantine table with the standard columns and dtypes (empty when no records)."""
    frame = pd.DataFrame(records or [], columns=QUARANTINE_COLUMNS)
    return frame.astype(
        {"corpus": "string", "file": "string", "line": "int64", "reason": "string", "raw": "string"}
    )


@dataclass
class ReadResult:
    """What a reader returns: the good rows, the quarantined records and how many records it saw."""

    rows: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=quarantine_frame)
    n_in: int = 0

    def check(self, corpus: str = "") -> "ReadResult":
        """Raise AccountingError unless every record seen is either a row or quarantined."""
        n_out, n_quarantined = len(self.rows), len(self.quarantine)
        if self.n_in != n_out + n_quarantined:
            raise AccountingError(
                f"{corpus or 'reader'}: {self.n_in} records in, but {n_out} out + "
                f"{n_quarantined} quarantined = {n_out + n_quarantined}"
            )
        return self

    def accounting(self, corpus: str) -> dict:
        """The in / out / quarantined counts, with quarantine reasons counted."""
        reasons = self.quarantine["reason"].value_counts().sort_index()
        return {
            "corpus": corpus,
            "rows_in": int(self.n_in),
            "rows_out": int(len(self.rows)),
            "rows_quarantined": int(len(self.quarantine)),
            "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        }


def concat_results(results: list[ReadResult]) -> ReadResult:
    """One ReadResult from several (for example one per file), row ids renumbered from 0."""
    rows = pd.concat([r.rows for r in results], ignore_index=True) if results else pd.DataFrame()
    if "row_id" in rows.columns:
        rows["row_id"] = range(len(rows))
    quarantine = pd.concat([r.quarantine for r in results], ignore_index=True) if results else quarantine_frame()
    return ReadResult(rows=rows, quarantine=quarantine_frame(quarantine.to_dict("records")),
                      n_in=sum(r.n_in for r in results))


def require_file(files: dict[str, bytes], name: str, corpus: str, hint: str = "") -> bytes:
    """The bytes of a raw file, or a RawInputError that names it and says where to get it."""
    if name not in files:
        where = f" {hint}" if hint else ""
        present = ", ".join(sorted(files)[:10]) or "nothing"
        raise RawInputError(
            f"{corpus}: raw file '{name}' is missing (the folder holds: {present}).{where}"
        )
    return files[name]
