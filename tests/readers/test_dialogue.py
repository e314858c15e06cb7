"""Dialogue readers: SGD folders and JSON-lines exports, checked on tiny hand-written fixtures
(every bad-input kind with exact counts) and on the real SGD copy when it is present."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fastadapt.readers.dialogue import (
    INTENT_COLUMNS,
    REPLY_COLUMNS,
    TURN_COLUMNS,
    agent_replies_after,
    first_utterance_intents,
    read_dialogue_jsonl,
    read_sgd,
    user_turn_intents,
)
from fastadapt.readers.quarantine import QUARANTINE_COLUMNS, RawInputError
from fastadapt.tasks.kshot import unseen_class_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "readers"
REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_SGD_CANDIDATES = [
    REPO_ROOT / "data" / "01_raw" / "dialogue_sgd",
    REPO_ROOT.parent / "shared" / "data" / "dialogue_sgd",
]


def folder_files(folder: Path) -> dict[str, bytes]:
    """The reader input for a corpus folder: relative posix path -> raw bytes."""
    paths = sorted(path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in paths}


def turn_record(speaker, utterance, service="Banks_1", active_intent=None):
    """An SGD turn; a state (user turns in SGD) only when active_intent is given."""
    frame = {"service": service, "actions": []}
    if active_intent is not None:
        frame["state"] = {"active_intent": active_intent, "requested_slots": [], "slot_values": {}}
    turn = {"frames": [frame], "utterance": utterance}
    if speaker is not None:
        turn["speaker"] = speaker
    return turn


@pytest.fixture
def sgd_files() -> dict[str, bytes]:
    return folder_files(FIXTURES / "dialogue_sgd")


@pytest.fixture
def jsonl_files() -> dict[str, bytes]:
    return folder_files(FIXTURES / "dialogue_jsonl")


# --- SGD --------------------------------------------------------------------------------------


def test_sgd_fixture_reads_every_turn_with_its_split_and_qualified_ids(sgd_files):
    result = read_sgd(sgd_files, {}, "sgd")
    turns = result.rows
    assert list(turns.columns) == TURN_COLUMNS
    assert result.n_in == len(turns) == 10 + 6 + 13
    assert result.quarantine.empty and list(result.quarantine.columns) == QUARANTINE_COLUMNS
    assert turns["row_id"].tolist() == list(range(len(turns)))
    assert turns.groupby("split", sort=False)["conversation_id"].nunique().to_dict() == {
        "train": 2, "validation": 2, "test": 3,
    }
    # "1_00000" exists in every split: the split prefix keeps the conversations apart.
    assert {"train:1_00000", "validation:1_00000", "test:1_00000"} <= set(turns["conversation_id"])
    assert turns.groupby("conversation_id")["split"].nunique().max() == 1
    assert set(turns["speaker"]) == {"user", "agent"}
    assert turns.loc[turns["conversation_id"] == "train:1_00001", "text"].iloc[0] == "Hello there."
    assert turns.loc[turns["conversation_id"] == "test:2_00000", "line"].unique().tolist() == [2]
    assert turns["timestamp"].isna().all()
    assert turns.dtypes.astype(str).to_dict() == {
        "row_id": "int64", "split": "str", "conversation_id": "str", "turn_index": "int64",
        "speaker": "str", "text": "str", "service": "string", "intent": "string",
        "timestamp": "datetime64[ns]", "file": "str", "line": "int64",
    }


def test_sgd_intents_are_service_qualified_and_follow_the_changed_frame(sgd_files):
    turns = read_sgd(sgd_files, {}, "sgd").rows
    multi = turns[turns["conversation_id"] == "test:2_00000"]
    assert multi["intent"].tolist() == [
        "Restaurants_2.ReserveRestaurant",  # frames [Trains_1 NONE, Restaurants_2 ...]: NONE skipped
        pd.NA, "Trains_1.FindTrains",  # Trains_1 changed, Restaurants_2 did not
        pd.NA, "Trains_1.GetTrainTickets",
        pd.NA, "Restaurants_2.ReserveRestaurant",  # nothing changed: first non-NONE frame
    ]
    assert multi["service"].tolist() == [
        "Restaurants_2", "Restaurants_2", "Trains_1", "Trains_1", "Trains_1", "Trains_1", "Restaurants_2",
    ]
    opening = turns[turns["conversation_id"] == "train:1_00001"].iloc[0]
    assert pd.isna(opening["intent"]) and opening["service"] == "Restaurants_1"  # "NONE" -> NA
    assert turns.loc[turns["speaker"] == "agent", "intent"].isna().all()


def test_sgd_intent_tables(sgd_files):
    turns = read_sgd(sgd_files, {}, "sgd").rows
    first = first_utterance_intents(turns)
    assert list(first.columns) == INTENT_COLUMNS
    assert first.set_index("conversation_id")["label"].to_dict() == {
        "train:1_00000": "Banks_1.CheckBalance",
        "train:1_00001": "Restaurants_1.FindRestaurants",
        "validation:1_00000": "Banks_2.CheckBalance",
        "validation:1_00001": "Weather_1.GetWeather",
        "test:1_00000": "Banks_1.CheckBalance",
        "test:2_00000": "Restaurants_2.ReserveRestaurant",
        "test:2_00001": "Trains_1.FindTrains",
    }
    late_opening = first[first["conversation_id"] == "test:2_00001"].iloc[0]
    assert (late_opening["text"], late_opening["origin"], late_opening["file"], late_opening["line"]) == (
        "Find trains to Fresno.", "test", "test/dialogues_001.json", 3,
    )
    assert turns.loc[late_opening["row_id"], "text"] == late_opening["text"]
    every = user_turn_intents(turns)
    assert len(every) == 4 + 3 + 6 and every["label"].notna().all()
    replies = agent_replies_after(turns)
    assert list(replies.columns) == REPLY_COLUMNS
    assert len(replies) == 4 + 3 + 5  # the last user turn of test:2_00000 has no reply after it
    assert replies.iloc[0].to_dict() == {
        "intent": "Banks_1.CheckBalance", "user_text": "Hi, what's my checking balance?",
        "agent_text": "Your checking balance is $1,250.", "conversation_id": "train:1_00000",
        "split": "train",
    }


def unseen_services(turns: pd.DataFrame) -> list:
    """The services of the test rows the features pipeline treats as unseen (PROTOCOL.md section 5)."""
    return sorted(unseen_class_rows(turns, "service")["service"].unique())


def test_sgd_unseen_services(sgd_files):
    turns = read_sgd(sgd_files, {}, "sgd").rows
    assert unseen_services(turns) == ["Restaurants_2", "Trains_1"]
    services = {split: set(turns.loc[turns["split"] == split, "service"]) for split in ("train", "validation")}
    assert sorted(services["validation"] - services["train"]) == ["Banks_2", "Weather_1"]


def test_sgd_bad_turns_are_quarantined_with_exact_reasons(sgd_files):
    dialogues = [
        {"dialogue_id": "9_00000", "services": ["Banks_1"], "turns": [
            turn_record("USER", "What's my balance?", active_intent="CheckBalance"),
            turn_record(None, "Who is speaking?"),
            turn_record("SYSTEM", "   "),
            turn_record("BOT", "Automated notice."),
            turn_record("SYSTEM", "Your balance is $5.", active_intent="CheckBalance"),
            turn_record("USER", "@@UNDECODABLE@@", active_intent="CheckBalance"),
            turn_record("USER", "Pay my bill.", active_intent="PayBill"),
            turn_record("USER", "Book a flight.", service="Flights_9", active_intent="SearchFlight"),
            "not a turn",
            turn_record("SYSTEM", "Anything else?"),
        ]},
        {"dialogue_id": "9_00001", "services": ["Banks_1"], "turns": [
            turn_record("SYSTEM", "Hello?"), turn_record("SYSTEM", "Anyone there?"),
        ]},
    ]
    raw = json.dumps(dialogues).encode().replace(b"@@UNDECODABLE@@", b"Caf\xff balance")
    result = read_sgd({**sgd_files, "test/dialogues_002.json": raw}, {}, "sgd")
    bad = result.quarantine
    assert result.n_in == 29 + 12 == len(result.rows) + len(bad)
    assert bad["reason"].tolist() == [
        "missing_speaker", "empty_text", "unknown_speaker", "intent_on_agent_turn", "undecodable_bytes",
        "intent_not_in_schema", "service_not_in_schema", "malformed_json", "no_user_turn", "no_user_turn",
    ]
    assert bad["line"].tolist() == [1] * 8 + [2, 2]
    assert set(bad["file"]) == {"test/dialogues_002.json"} and set(bad["corpus"]) == {"sgd"}
    assert "\\udcff" in bad.loc[bad["reason"] == "undecodable_bytes", "raw"].iloc[0]
    kept = result.rows[result.rows["conversation_id"] == "test:9_00000"]
    assert kept[["turn_index", "speaker", "text"]].values.tolist() == [
        [0, "user", "What's my balance?"], [1, "agent", "Anything else?"],
    ]


def test_sgd_corrupt_file_is_an_error_naming_it(sgd_files):
    with pytest.raises(RawInputError, match="dev/dialogues_001.json"):
        read_sgd({**sgd_files, "dev/dialogues_001.json": b'[{"dialogue_id": "1_0'}, {}, "sgd")


def test_sgd_missing_folder_and_schema_are_errors_with_the_hint(sgd_files):
    without_test = {path: data for path, data in sgd_files.items() if not path.startswith("test/")}
    hint = "Copy it from shared/data/dialogue_sgd."
    missing_folder = r"sgd: raw file 'test/dialogues_\*\.json' is missing.*Copy it from"
    with pytest.raises(RawInputError, match=missing_folder):
        read_sgd(without_test, {"source_hint": hint}, "sgd")
    without_schema = {path: data for path, data in sgd_files.items() if path != "dev/schema.json"}
    with pytest.raises(RawInputError, match="'dev/schema.json' is missing"):
        read_sgd(without_schema, {}, "sgd")


def test_sgd_splits_option_selects_folders(sgd_files):
    turns = read_sgd(sgd_files, {"splits": {"train": "dev"}}, "sgd").rows
    assert set(turns["split"]) == {"train"} and set(turns["file"]) == {"dev/dialogues_001.json"}


@pytest.mark.parametrize("options, named", [
    ({"split": {"train": "train"}}, r"unknown reader option\(s\) split;"),
    ({"splits": {"dev": "dev"}}, "dev"),
    ({"splits": {}}, "splits"),
])
def test_bad_options_are_errors_naming_them(sgd_files, options, named):
    with pytest.raises(RawInputError, match=named):
        read_sgd(sgd_files, options, "sgd")


# --- JSON lines -------------------------------------------------------------------------------


def test_jsonl_every_bad_input_kind_is_quarantined_with_exact_counts(jsonl_files):
    result = read_dialogue_jsonl(jsonl_files, {}, "support")
    bad = result.quarantine
    assert result.n_in == 26 + 6  # the blank line holds no turn
    assert len(result.rows) + len(bad) == result.n_in and len(result.rows) == 11 + 6
    assert bad["reason"].value_counts().to_dict() == {
        "empty_text": 2, "no_user_turn": 2, "malformed_json": 2, "duplicate_turn": 1,
        "turn_out_of_order": 1, "missing_speaker": 1, "unknown_speaker": 1, "intent_on_agent_turn": 1,
        "undecodable_bytes": 1, "invalid_turn_number": 1, "missing_conversation_id": 1,
        "invalid_timestamp": 1,
    }
    assert bad[["line", "reason"]].values.tolist() == [
        [8, "duplicate_turn"], [11, "turn_out_of_order"], [13, "missing_speaker"], [14, "unknown_speaker"],
        [15, "empty_text"], [16, "intent_on_agent_turn"], [17, "no_user_turn"], [18, "empty_text"],
        [19, "no_user_turn"], [20, "malformed_json"], [21, "undecodable_bytes"], [23, "invalid_turn_number"],
        [24, "missing_conversation_id"], [25, "invalid_timestamp"], [27, "malformed_json"],
    ]
    assert set(bad["file"]) == {"train.jsonl"}
    duplicate_raw = bad.loc[bad["line"] == 8, "raw"].iloc[0]
    assert duplicate_raw.endswith('"text": "Your balance is $120 (sent twice).", "service": "accounts"}')


def test_jsonl_rows_keep_the_first_duplicate_and_renumber_turns(jsonl_files):
    turns = read_dialogue_jsonl(jsonl_files, {}, "support").rows
    assert list(turns.columns) == TURN_COLUMNS
    assert turns.loc[turns["conversation_id"] == "train:c2", "text"].tolist() == [
        "What's my balance?", "Your balance is $120.",
    ]
    c3 = turns[turns["conversation_id"] == "train:c3"]
    assert c3[["turn_index", "line"]].values.tolist() == [[0, 9], [1, 10], [2, 12]]
    c5 = turns[turns["conversation_id"] == "train:c5"]
    assert c5[["turn_index", "text"]].values.tolist() == [[0, "My card was declined at the caf\u00e9."]]
    assert "train:8" in set(turns["conversation_id"])
    assert not turns["conversation_id"].str.contains("c4").any()


def test_jsonl_fields_timestamps_services_and_split_qualified_ids(jsonl_files):
    turns = read_dialogue_jsonl(jsonl_files, {}, "support").rows
    c1 = turns[turns["conversation_id"] == "train:c1"]
    assert c1["text"].tolist()[2] == "Yes, please block it."
    assert c1["timestamp"].tolist()[:3] == [
        pd.Timestamp("2024-03-01 09:00:00"),  # "Z"
        pd.Timestamp("2024-03-01 09:00:05"),  # "+00:00"
        pd.Timestamp("2024-03-01 09:00:10"),  # "10:00:10+01:00", converted to UTC
    ]
    assert pd.isna(c1["timestamp"].iloc[3]) and c1["service"].isna().all()
    assert {"train:c1", "test:c1"} <= set(turns["conversation_id"])
    assert turns.dtypes["timestamp"] == "datetime64[ns]" and turns.dtypes["service"] == "string"
    assert unseen_services(turns) == ["cards", "online_banking"]


def test_jsonl_intent_tables(jsonl_files):
    turns = read_dialogue_jsonl(jsonl_files, {}, "support").rows
    first = first_utterance_intents(turns)
    assert first.set_index("conversation_id")["label"].to_dict() == {
        "train:c1": "report_lost_card", "train:c2": "check_balance", "train:c3": "close_account",
        "train:c5": "card_declined", "train:8": "other",
        "test:c1": "reset_password", "test:c2": "raise_limit",
    }
    late_opening = first.loc[first["conversation_id"] == "test:c2", ["text", "origin", "line", "service"]]
    assert late_opening.values.tolist() == [
        ["Can I raise my card limit?", "test", 5, "cards"],
    ]
    assert len(user_turn_intents(turns)) == 7
    replies = agent_replies_after(turns)
    # c3's reply comes from turn 2 (turn 1 was out of order), c5 and 8 have no agent reply.
    assert replies[["conversation_id", "agent_text"]].values.tolist() == [
        ["train:c1", "I can block it for you right away."],
        ["train:c2", "Your balance is $120."],
        ["train:c3", "Sorry to see you go. Why are you leaving?"],
        ["test:c1", "Use the Forgot password link on the login page."],
        ["test:c2", "Yes, I can raise it to $5,000."],
    ]


def test_jsonl_missing_file_is_an_error_with_the_hint(jsonl_files):
    with pytest.raises(RawInputError, match=r"support: raw file 'validation\.jsonl' is missing.*Export it"):
        read_dialogue_jsonl(
            jsonl_files,
            {"splits": {"validation": "validation.jsonl"}, "source_hint": "Export it from the helpdesk."},
            "support",
        )


def test_jsonl_unknown_option_is_an_error(jsonl_files):
    with pytest.raises(RawInputError, match="folder"):
        read_dialogue_jsonl(jsonl_files, {"folder": "x"}, "support")


# --- real SGD copy ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_sgd():
    folder = next((candidate for candidate in REAL_SGD_CANDIDATES if candidate.is_dir()), None)
    if folder is None:
        pytest.skip("real SGD copy not found in data/01_raw/dialogue_sgd or ../shared/data/dialogue_sgd")
    files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.glob("*/*.json")}
    return read_sgd(files, {}, "dialogue_sgd")


def test_real_sgd_matches_source_counts(real_sgd):
    result = real_sgd
    turns = result.rows
    # Two test SYSTEM turns (GOODBYE, dialogues_003 #56 and dialogues_006 #10) have an empty utterance.
    assert result.quarantine["reason"].tolist() == ["empty_text", "empty_text"]
    assert result.quarantine["file"].str.startswith("test/").all()
    counted = {}
    for split, split_turns in turns.groupby("split", sort=False):
        user_turns = split_turns[split_turns["speaker"] == "user"]
        services_per_dialogue = split_turns.groupby("conversation_id")["service"].nunique()
        counted[split] = (
            split_turns["conversation_id"].nunique(), len(split_turns), len(user_turns),
            split_turns["service"].nunique(), user_turns["intent"].nunique(),
            int((services_per_dialogue > 1).sum()),
        )
    assert counted == {
        "train": (4342, 66230, 33115, 21, 43, 0),
        "validation": (2098, 38768, 19384, 17, 30, 1262),
        "test": (2921, 49726 - 2, 24863, 21, 38, 1590),
    }
    assert result.n_in == 66230 + 38768 + 49726
    assert unseen_services(turns) == [
        "Alarm_1", "Buses_3", "Events_3", "Flights_4", "Homes_2", "Hotels_4", "Media_3", "Messaging_1",
        "Movies_3", "Music_3", "Payment_1", "RentalCars_3", "Restaurants_2", "Services_4", "Trains_1",
        "Travel_1", "Weather_1",
    ]
    assert len(first_utterance_intents(turns)) == 4342 + 2098 + 2921
