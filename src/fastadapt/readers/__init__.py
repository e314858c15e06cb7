"""One module per raw format; each reader is `read(files, options, corpus) -> ReadResult`.

`READERS` maps the reader names used in parameters (`domains.<name>.reader`, `stream.sources`)
to the functions, so adding a corpus in a known format is configuration only.
"""

from __future__ import annotations

from typing import Callable, Mapping

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


def read_raw(reader: str, files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Run the named reader and check its accounting."""
    if reader not in READERS:
        raise RawInputError(f"{corpus}: unknown reader '{reader}'; allowed: {sorted(READERS)}")
    return READERS[reader](files, options, corpus).check(corpus)
