"""Labelled intent rows from dialogue logs, as a domain reader (`reader: dialogue_intents`).

A dialogue-log domain reads the turns with the log's own reader, then keeps one labelled row per
unit: the conversation's opening request (`first_utterance`, one label a conversation) or every
user turn with an active intent (`user_turns`). Its accounting counts those units: a
conversation (or user turn) without an intent is quarantined as `no_user_intent`. Bad turns are
counted where they are quarantined, in the dialogue ingestion (`dialogue_turns`).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastadapt.readers.dialogue import (
    first_utterance_intents,
    read_dialogue_jsonl,
    read_sgd,
    user_turn_intents,
)
from fastadapt.readers.quarantine import ReadResult, quarantine_frame
from fastadapt.readers.records import choice_option, resolve_options

TURN_READERS = {"sgd": read_sgd, "dialogue_jsonl": read_dialogue_jsonl}
UNITS = ("first_utterance", "user_turns")
DEFAULTS = {"format": "sgd", "unit": "first_utterance", "format_options": {}}


def read_dialogue_intents(files: Mapping[str, bytes], options: Mapping, corpus: str) -> ReadResult:
    """Options: `format` (sgd | dialogue_jsonl), `unit` (first_utterance | user_turns),
    `format_options` (passed to the turn reader), `source_hint`."""
    opts = resolve_options(options, DEFAULTS, corpus)
    log_format = choice_option(opts["format"], "format", sorted(TURN_READERS), corpus)
    unit = choice_option(opts["unit"], "unit", list(UNITS), corpus)
    turn_options = dict(opts["format_options"] or {})
    if opts["source_hint"]:
        turn_options.setdefault("source_hint", opts["source_hint"])
    turns = TURN_READERS[log_format](files, turn_options, corpus).check(corpus).rows

    if unit == "first_utterance":
        rows = first_utterance_intents(turns)
        units = turns.sort_values(["conversation_id", "turn_index"]).drop_duplicates("conversation_id")
        missing = units[~units["conversation_id"].isin(rows["conversation_id"])]
    else:
        rows = user_turn_intents(turns)
        user_turns = turns[turns["speaker"] == "user"]
        missing = user_turns[~user_turns["row_id"].isin(rows["row_id"])]
    quarantine = quarantine_frame(
        [
            {"corpus": corpus, "file": r.file, "line": int(r.line), "reason": "no_user_intent",
             "raw": f"{r.conversation_id}: {r.text}"[:500]}
            for r in missing.itertuples()
        ]
    )
    rows = rows.rename(columns={"row_id": "turn_row_id"})
    rows.insert(0, "row_id", range(len(rows)))
    return ReadResult(rows=rows.reset_index(drop=True), quarantine=quarantine, n_in=len(rows) + len(missing))
