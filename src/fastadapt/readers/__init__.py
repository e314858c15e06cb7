"""One module per raw format; each reader is `read(files, options, corpus) -> ReadResult`.

`READERS` maps the reader names used in parameters (`domains.<name>.reader`, `stream.sources`)
to the functions, so adding a corpus in a known format is configuration only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastadapt.config import Checks, Settings
from fastadapt.readers.conll import read_conll
from fastadapt.readers.dialogue import read_dialogue_jsonl, read_sgd
from fastadapt.readers.dialogue_intents import read_dialogue_intents
from fastadapt.readers.labelled_csv import read_labelled_csv
from fastadapt.readers.phrasebank import read_phrasebank
from fastadapt.readers.quarantine import RawInputError, ReadResult
from fastadapt.readers.stream import (
    read_cnbc_headlines,
    read_guardian_headlines,
    read_stockemotions,
)

Reader = Callable[[Mapping[str, bytes], Mapping, str], ReadResult]

READERS: dict[str, Reader] = {
    "phrasebank": read_phrasebank,
    "labelled_csv": read_labelled_csv,
    "conll": read_conll,
    "cnbc_headlines": read_cnbc_headlines,
    "guardian_headlines": read_guardian_headlines,
    "stockemotions": read_stockemotions,
    "sgd": read_sgd,
    "dialogue_jsonl": read_dialogue_jsonl,
    "dialogue_intents": read_dialogue_intents,
}


@dataclass(frozen=True)
class SourceSpec(Settings):
    """One source of a multi-source table (`stream.sources.<name>`, `dialogue_logs.sources.<name>`):
    its raw folder (`raw.<raw>` in the catalog), its reader and the reader's options."""

    raw: str | None = None
    reader: str | None = None
    reader_options: Mapping[str, Any] | None = field(default_factory=dict)  # YAML `reader_options:`: none

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.text("raw")
        check.choice("reader", sorted(READERS))
        if self.reader_options is not None and not isinstance(self.reader_options, Mapping):
            check.fail("reader_options", "allowed: a mapping of the reader's options")


def read_raw(reader: str, files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Run the named reader and check its accounting."""
    if reader not in READERS:
        raise RawInputError(f"{corpus}: unknown reader '{reader}'; allowed: {sorted(READERS)}")
    return READERS[reader](files, options, corpus).check(corpus)
