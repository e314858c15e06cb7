"""`dialogue_intents`: one labelled row per conversation or per user turn, the units without an
intent quarantined, and bad options named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastadapt.readers import read_raw
from fastadapt.readers.dialogue import (
    first_utterance_intents,
    read_dialogue_jsonl,
    read_sgd,
    user_turn_intents,
)
from fastadapt.readers.quarantine import RawInputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "readers"


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


SGD = folder_files(FIXTURES / "dialogue_sgd")
JSONL = folder_files(FIXTURES / "dialogue_jsonl")


def test_first_utterances_one_row_a_conversation_and_the_rest_quarantined():
    result = read_raw("dialogue_intents", SGD, {}, "banking")
    turns = read_sgd(SGD, {}, "banking").rows
    expected = first_utterance_intents(turns)
    conversations = turns["conversation_id"].nunique()
    assert len(result.rows) == len(expected) > 0
    assert list(result.rows["row_id"]) == list(range(len(expected)))
    assert list(result.rows["label"]) == list(expected["label"])
    assert result.n_in == conversations and len(result.quarantine) == conversations - len(expected)
    assert set(result.quarantine["reason"]) <= {"no_user_intent"}


def test_user_turns_one_row_a_user_turn_with_an_intent():
    options = {"format": "dialogue_jsonl", "unit": "user_turns"}
    result = read_raw("dialogue_intents", JSONL, options, "support")
    turns = read_dialogue_jsonl(JSONL, {}, "support").rows
    expected = user_turn_intents(turns)
    users = int((turns["speaker"] == "user").sum())
    assert list(result.rows["turn_row_id"]) == list(expected["row_id"]) and len(expected) > 0
    assert result.n_in == users and len(result.quarantine) == users - len(expected)
    assert set(result.quarantine["reason"]) <= {"no_user_intent"}


@pytest.mark.parametrize(("options", "message"), [
    ({"fromat": "sgd"}, r"^banking: unknown reader option\(s\) \['fromat'\]; allowed options: "),
    ({"format": "csv"}, r"^banking: option 'format' is 'csv'; allowed values: \['dialogue_jsonl', 'sgd'\]$"),
    ({"unit": "turns"}, r"^banking: option 'unit' is 'turns'; allowed values: \['first_utterance', 'user_turns'\]$"),
])
def test_bad_options_are_one_line_errors_naming_them(options, message):
    with pytest.raises(RawInputError, match=message):
        read_raw("dialogue_intents", SGD, options, "banking")
