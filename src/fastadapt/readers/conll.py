"""Reader for CoNLL-style NER files (one token per line, blank line between sentences).

CoNLL-2003 is tagged IOB1 while seqeval's strict mode and our models use IOB2, so every sentence
leaves this reader in IOB2. Records are sentences: a sentence with one bad line is quarantined
whole, because a partial sentence would teach wrong entity boundaries.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastadapt.readers.quarantine import RawInputError, ReadResult
from fastadapt.readers.records import (
    QuarantineLog,
    choice_option,
    encoding_option,
    mapping_option,
    read_text,
    resolve_options,
    string_list_option,
)

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"
SCHEMES = ["iob1", "iob2", "auto"]
_TAG = re.compile(r"^(?:O|[BI]-\S+)$")
CONLL_DEFAULTS = {
    "splits": {"train": "train.conll", "test": "test.conll"},
    "scheme": "auto",
    "token_column": 0,
    "tag_column": -1,
    "entity_types": None,
    "encoding": "utf-8",
}
CONLL_DTYPES = {
    "doc_id": "int64", "sent_id": "int64", "tokens": "object", "tags": "object",
    "origin": "str", "file": "str", "line": "int64",
}


@dataclass
class Sentence:
    """A sentence as read: its place in the file and its token lines split into columns."""

    origin: str
    file: str
    doc_id: int
    sent_id: int
    lines: list[tuple[int, list[str], str]]

    @property
    def line(self) -> int:
        return self.lines[0][0]

    @property
    def raw(self) -> str:
        return "\n".join(raw for _, _, raw in self.lines)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB2 tags from IOB1: an I-X that starts an entity (after O or another type) becomes B-X."""
    converted: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def _starts_with_inside(tags: Sequence[str]) -> bool:
    """Whether some I-X starts an entity: never in valid IOB2, the mark of IOB1."""
    return iob1_to_iob2(tags) != list(tags)


def entity_starts(tags: Sequence[str]) -> tuple[int, int]:
    """(entities that start with B-, entities that start with I-) in one sentence's tags.

    An entity starts where a tag's type differs from the previous tag's (or follows O). IOB2
    starts every entity with B-; IOB1 starts it with I- and keeps B- for an entity right after
    one of the same type, which is not a start in this sense. So B- starts are IOB2's evidence
    and I- starts IOB1's.
    """
    b_starts = i_starts = 0
    previous = "O"
    for tag in tags:
        if tag != "O" and (previous == "O" or previous[2:] != tag[2:]):
            if tag.startswith("B-"):
                b_starts += 1
            else:
                i_starts += 1
        previous = tag
    return b_starts, i_starts


def detect_scheme(sentences_tags: Sequence[Sequence[str]]) -> tuple[str, int, int]:
    """The scheme of one file from its evidence: (scheme, B- starts, I- starts).

    The file is IOB1 only when entities starting with I- outnumber those starting with B-; a few
    stray I- after O in an IOB2 file do not turn the whole file into IOB1 (they are quarantined
    as `invalid_iob2` instead of inventing B- entities).
    """
    b_starts = i_starts = 0
    for tags in sentences_tags:
        b, i = entity_starts(tags)
        b_starts, i_starts = b_starts + b, i_starts + i
    return ("iob1" if i_starts > b_starts else "iob2"), b_starts, i_starts


def _split_sentences(text: str, origin: str, file: str) -> list[Sentence]:
    """The sentences of a file. DOCSTART lines open a new document (sentences before the first
    get document 0); any number of blank lines separate sentences; a final one needs none."""
    sentences: list[Sentence] = []
    current: list[tuple[int, list[str], str]] = []
    doc_id, sent_id = -1, 0

    def close_sentence() -> None:
        nonlocal doc_id, sent_id, current
        if current:
            doc_id = max(doc_id, 0)
            sentences.append(Sentence(origin, file, doc_id, sent_id, current))
            sent_id, current = sent_id + 1, []

    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        columns = raw.split()
        if not columns:
            close_sentence()
        elif columns[0] == DOCSTART:
            close_sentence()
            doc_id, sent_id = doc_id + 1, 0
        else:
            current.append((number, columns, raw))
    close_sentence()
    return sentences


def _column_index(value: object, name: str, width: int, file: str, corpus: str) -> int:
    """A column index (negative counts from the end) valid for lines of the given width."""
    if isinstance(value, bool) or not isinstance(value, int) or not -width <= value < width:
        raise RawInputError(
            f"{corpus}: option '{name}' is {value!r}, but lines of {file} have {width} columns"
        )
    return value


def _bad_tag(tags: list[str], entity_types: set[str] | None) -> bool:
    return any(
        not _TAG.match(tag) or (entity_types is not None and tag != "O" and tag[2:] not in entity_types)
        for tag in tags
    )


def read_conll(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """NER rows (row_id, doc_id, sent_id, tokens, tags in IOB2, origin, file, line) per sentence.

    Options: splits (origin -> file), scheme (iob1 | iob2 | auto: per file, IOB1 when more
    entities start with I- than with B-, see `detect_scheme`; the choice is logged), token_column,
    tag_column, entity_types, encoding, source_hint.
    """
    opts = resolve_options(options, CONLL_DEFAULTS, corpus)
    splits = mapping_option(opts["splits"], "splits", corpus, "{train: train.conll, test: test.conll}")
    scheme = choice_option(opts["scheme"], "scheme", SCHEMES, corpus)
    encoding = encoding_option(opts["encoding"], corpus)
    entity_types = None
    if opts["entity_types"] is not None:
        entity_types = set(string_list_option(opts["entity_types"], "entity_types", corpus))

    quarantine = QuarantineLog(corpus, encoding)
    candidates: list[tuple[Sentence, list[str], list[str]]] = []
    n_in = 0
    for origin, name in splits.items():
        text = read_text(files, name, corpus, opts["source_hint"], encoding)
        sentences = _split_sentences(text, origin, name)
        n_in += len(sentences)
        widths = Counter(len(columns) for sentence in sentences for _, columns, _ in sentence.lines)
        if not widths:
            continue
        usual_width = widths.most_common(1)[0][0]
        token_column = _column_index(opts["token_column"], "token_column", usual_width, name, corpus)
        tag_column = _column_index(opts["tag_column"], "tag_column", usual_width, name, corpus)
        for sentence in sentences:
            if quarantine.undecodable(name, sentence.line, sentence.raw):
                continue
            if any(len(columns) != usual_width for _, columns, _ in sentence.lines):
                quarantine.add(name, sentence.line, "wrong_column_count", sentence.raw)
            else:
                tokens = [columns[token_column] for _, columns, _ in sentence.lines]
                tags = [columns[tag_column] for _, columns, _ in sentence.lines]
                if _bad_tag(tags, entity_types):
                    quarantine.add(name, sentence.line, "unknown_tag", sentence.raw)
                else:
                    candidates.append((sentence, tokens, tags))

    schemes = {}
    for name in dict.fromkeys(sentence.file for sentence, _, _ in candidates):
        file_tags = [tags for sentence, _, tags in candidates if sentence.file == name]
        detected, b_starts, i_starts = detect_scheme(file_tags)
        schemes[name] = detected if scheme == "auto" else scheme
        how = "detected" if scheme == "auto" else "declared"
        log.info("%s: %s read as %s (%s; %d entities start with B-, %d with I-)", corpus, name,
                 schemes[name].upper(), how, b_starts, i_starts)
        if scheme == "auto" and b_starts and i_starts:
            log.warning("%s: %s mixes schemes (%d entities start with B-, %d with I-); read as %s: declare "
                        "`scheme` if that is wrong", corpus, name, b_starts, i_starts, schemes[name].upper())
    rows: list[dict] = []
    for sentence, tokens, tags in candidates:
        scheme = schemes[sentence.file]
        if scheme == "iob2" and _starts_with_inside(tags):
            quarantine.add(sentence.file, sentence.line, "invalid_iob2", sentence.raw)
            continue
        rows.append({
            "doc_id": sentence.doc_id, "sent_id": sentence.sent_id, "tokens": tokens,
            "tags": iob1_to_iob2(tags) if scheme == "iob1" else tags,
            "origin": sentence.origin, "file": sentence.file, "line": sentence.line,
        })
    return quarantine.result(rows, CONLL_DTYPES, n_in)
