"""Readers for multi-turn customer-service dialogue logs, and the intent tables built from them.

Two raw formats give one turns table: Schema-Guided Dialogue (SGD) JSON folders, and a generic
JSON-lines export (one turn a line) that a support team can produce from its own tool. Both go
through one validation step, so a bad turn is quarantined for the same reason whatever the
format, and `n_in` (turns seen) always equals rows + quarantined.

Turn quarantine reasons: malformed_json, undecodable_bytes, missing_conversation_id,
invalid_turn_number, duplicate_turn, turn_out_of_order, missing_speaker, unknown_speaker,
empty_text, intent_on_agent_turn, invalid_timestamp, no_user_turn, and for SGD only
service_not_in_schema and intent_not_in_schema.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from typing import Any

import pandas as pd

from fastadapt.readers.quarantine import RawInputError, ReadResult, quarantine_frame, require_file

TURN_COLUMNS = [
    "row_id", "split", "conversation_id", "turn_index", "speaker", "text", "service", "intent",
    "timestamp", "file", "line",
]
INTENT_COLUMNS = ["row_id", "text", "label", "origin", "file", "line", "conversation_id", "service"]
REPLY_COLUMNS = ["intent", "user_text", "agent_text", "conversation_id", "split"]
SPLIT_NAMES = ("train", "validation", "test")
SGD_DEFAULT_SPLITS = {"train": "train", "validation": "dev", "test": "test"}
JSONL_DEFAULT_SPLITS = {"train": "train.jsonl", "test": "test.jsonl"}
SGD_SPEAKERS = {"USER": "user", "SYSTEM": "agent"}
JSONL_SPEAKERS = {"user": "user", "agent": "agent"}
NO_SGD_INTENT = "NONE"
RAW_PREVIEW_CHARS = 500


@dataclass(slots=True)
class _TurnCandidate:
    """One input turn as a format parser found it, before validation.

    `problem` is a reason the parser already knows (a line that is not JSON); the raw fields are
    kept unchecked so that the shared validation decides every other reason.
    """

    split: str
    file: str
    line: int
    raw: Any
    conversation_id: Any = None
    turn_number: Any = None
    speaker: Any = None
    text: Any = None
    service: Any = None
    intent: Any = None
    timestamp: Any = None
    problem: str | None = None


def read_sgd(files: Mapping[str, bytes], options: Mapping, corpus: str = "dialogue_sgd") -> ReadResult:
    """Turns of SGD `dialogues_*.json` files, one split per folder (SGD's `dev` is validation).

    Intents are service-qualified (`Banks_1.CheckBalance`) because SGD intent names are only
    unique within a service, and conversation ids are split-qualified because SGD dialogue ids
    are only unique within a split.
    """
    hint = _check_options(options, {"splits", "source_hint"}, corpus)
    splits = _check_splits(options.get("splits", SGD_DEFAULT_SPLITS), corpus)
    candidates: list[_TurnCandidate] = []
    for split, folder in splits.items():
        folder = folder.strip("/")
        dialogue_paths = sorted(
            path for path in files
            if posixpath.dirname(path) == folder and fnmatch(posixpath.basename(path), "dialogues_*.json")
        )
        if not dialogue_paths:
            require_file(files, f"{folder}/dialogues_*.json", corpus, hint)
        schema = _load_json_file(files, f"{folder}/schema.json", corpus, hint)
        schema_intents = _sgd_schema_intents(schema, f"{folder}/schema.json", corpus)
        for path in dialogue_paths:
            dialogues = _load_json_file(files, path, corpus, hint)
            candidates.extend(_sgd_turn_candidates(split, path, dialogues, schema_intents, corpus))
    return _validate_turns(candidates, SGD_SPEAKERS, corpus)


def read_dialogue_jsonl(
    files: Mapping[str, bytes], options: Mapping, corpus: str = "dialogue_jsonl"
) -> ReadResult:
    """Turns of a generic JSON-lines dialogue export, one file per split.

    Each line holds `conversation_id`, `turn` (its order), `speaker` (user/agent), `text` and
    optionally `intent`, `service` and an ISO 8601 `timestamp`.
    """
    hint = _check_options(options, {"splits", "source_hint"}, corpus)
    splits = _check_splits(options.get("splits", JSONL_DEFAULT_SPLITS), corpus)
    candidates: list[_TurnCandidate] = []
    for split, path in splits.items():
        candidates.extend(_jsonl_turn_candidates(split, path, require_file(files, path, corpus, hint)))
    return _validate_turns(candidates, JSONL_SPEAKERS, corpus)


def first_utterance_intents(turns: pd.DataFrame) -> pd.DataFrame:
    """Per conversation, the first user turn that carries an intent: the opening request.

    This is the classic intent-detection example (what did the customer come for); `row_id` is
    the turn's row id, so a label traces back to its turn.
    """
    labelled = _user_turns_with_intent(turns)
    return labelled.drop_duplicates("conversation_id", keep="first").reset_index(drop=True)


def user_turn_intents(turns: pd.DataFrame) -> pd.DataFrame:
    """Every user turn that carries an intent (later turns included), for more training text."""
    return _user_turns_with_intent(turns)


def agent_replies_after(turns: pd.DataFrame) -> pd.DataFrame:
    """For each user turn with an intent, the agent turn right after it, to suggest answers later.

    A user turn whose next turn is missing or is not an agent turn has no reply and is left out.
    """
    ordered = turns.sort_values(["conversation_id", "turn_index"], kind="stable")
    following = ordered.groupby("conversation_id", sort=False).shift(-1)
    is_pair = (
        (ordered["speaker"] == "user") & ordered["intent"].notna()
        & (following["speaker"] == "agent")
        & (following["turn_index"] == ordered["turn_index"] + 1)
    )
    replies = pd.DataFrame({
        "intent": ordered.loc[is_pair, "intent"],
        "user_text": ordered.loc[is_pair, "text"],
        "agent_text": following.loc[is_pair, "text"],
        "conversation_id": ordered.loc[is_pair, "conversation_id"],
        "split": ordered.loc[is_pair, "split"],
    })
    return replies.sort_index().reset_index(drop=True)[REPLY_COLUMNS]


def _user_turns_with_intent(turns: pd.DataFrame) -> pd.DataFrame:
    labelled = turns[(turns["speaker"] == "user") & turns["intent"].notna()]
    return pd.DataFrame({
        "row_id": labelled["row_id"],
        "text": labelled["text"],
        "label": labelled["intent"],
        "origin": labelled["split"],
        "file": labelled["file"],
        "line": labelled["line"],
        "conversation_id": labelled["conversation_id"],
        "service": labelled["service"],
    }).reset_index(drop=True)[INTENT_COLUMNS]


def _check_options(options: Mapping, allowed: set[str], corpus: str) -> str:
    """Reject unknown options (a typo would otherwise silently fall back to a default)."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise RawInputError(
            f"{corpus}: unknown reader option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return str(options.get("source_hint", "") or "")


def _check_splits(splits: Any, corpus: str) -> dict[str, str]:
    if not isinstance(splits, Mapping) or not splits:
        raise RawInputError(
            f"{corpus}: option 'splits' must map split names to folders or files, got {splits!r}"
        )
    bad_names = [name for name in splits if name not in SPLIT_NAMES]
    bad_paths = [name for name, path in splits.items() if not isinstance(path, str) or not path.strip("/")]
    if bad_names or bad_paths:
        raise RawInputError(
            f"{corpus}: option 'splits' has split names {bad_names} (allowed: {', '.join(SPLIT_NAMES)}) "
            f"and empty paths for {bad_paths}"
        )
    return dict(splits)


def _load_json_file(files: Mapping[str, bytes], path: str, corpus: str, hint: str) -> Any:
    """A whole-file JSON document; undecodable bytes inside strings survive as surrogates so
    that only the turns holding them are quarantined, while a corrupt file is an error."""
    text = require_file(files, path, corpus, hint).decode("utf-8", "surrogateescape")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RawInputError(
            f"{corpus}: '{path}' is not valid JSON ({error}); the file is corrupt, fetch it again."
        ) from None


def _sgd_schema_intents(schema: Any, path: str, corpus: str) -> dict[str, set[str]]:
    """Service name -> its intent names, from a split's schema.json."""
    try:
        return {
            service["service_name"]: {intent["name"] for intent in service["intents"]} for service in schema
        }
    except (TypeError, KeyError) as error:
        raise RawInputError(
            f"{corpus}: '{path}' is not an SGD schema (a list of services with service_name and "
            f"intents): {error!r}"
        ) from None


def _sgd_turn_candidates(
    split: str, path: str, dialogues: Any, schema_intents: dict[str, set[str]], corpus: str
) -> Iterator[_TurnCandidate]:
    if not isinstance(dialogues, list):
        raise RawInputError(f"{corpus}: '{path}' is not an SGD dialogue file (a JSON list of dialogues).")
    for line, dialogue in enumerate(dialogues, start=1):
        if not isinstance(dialogue, dict) or not isinstance(dialogue.get("turns"), list):
            raise RawInputError(
                f"{corpus}: '{path}' dialogue {line} is not an object with a 'turns' list; "
                "the file is not in SGD format."
            )
        previous_user_intents: dict[str, str] = {}
        for position, turn in enumerate(dialogue["turns"]):
            candidate = _TurnCandidate(split, path, line, turn, dialogue.get("dialogue_id"), position)
            frames = turn.get("frames", []) if isinstance(turn, dict) else None
            if not _sgd_frames_well_formed(frames):
                candidate.problem = "malformed_json"
                yield candidate
                continue
            candidate.speaker, candidate.text = turn.get("speaker"), turn.get("utterance")
            frame_intents = [(frame["service"], _sgd_active_intent(frame)) for frame in frames]
            service, intent = _sgd_pick_intent(frame_intents, previous_user_intents)
            if service is None and frame_intents:
                service = frame_intents[0][0]
            candidate.service = service
            candidate.intent = f"{service}.{intent}" if intent is not None else None
            if any(name not in schema_intents for name, _ in frame_intents):
                candidate.problem = "service_not_in_schema"
            elif intent is not None and intent not in schema_intents[service]:
                candidate.problem = "intent_not_in_schema"
            if candidate.speaker == "USER":
                previous_user_intents.update(frame_intents)
            yield candidate


def _sgd_frames_well_formed(frames: Any) -> bool:
    """Frames are a list of objects with a service name and, if any, a state with an intent name."""
    return isinstance(frames, list) and all(
        isinstance(frame, dict) and isinstance(frame.get("service"), str)
        and ("state" not in frame or isinstance(frame["state"], dict)
             and isinstance(frame["state"].get("active_intent", NO_SGD_INTENT), str))
        for frame in frames
    )


def _sgd_active_intent(frame: dict) -> str:
    return frame.get("state", {}).get("active_intent") or NO_SGD_INTENT


def _sgd_pick_intent(
    frame_intents: list[tuple[str, str]], previous_user_intents: dict[str, str]
) -> tuple[str | None, str | None]:
    """(service, intent) of a turn: the frame whose intent just changed (what the user asks for
    now in a multi-service dialogue), else the first frame with an active intent."""
    active = [(service, intent) for service, intent in frame_intents if intent != NO_SGD_INTENT]
    changed = [(service, intent) for service, intent in active
               if previous_user_intents.get(service) != intent]
    return (changed or active or [(None, None)])[0]


def _jsonl_turn_candidates(split: str, path: str, content: bytes) -> Iterator[_TurnCandidate]:
    """One candidate per non-blank line; blank lines hold no turn and are not counted."""
    for line_number, raw_line in enumerate(content.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        text = raw_line.decode("utf-8", "surrogateescape").rstrip("\r")
        candidate = _TurnCandidate(split, path, line_number, text)
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            candidate.problem = "undecodable_bytes" if _has_undecodable(text) else "malformed_json"
            yield candidate
            continue
        candidate.conversation_id = record.get("conversation_id")
        candidate.turn_number = record.get("turn")
        candidate.speaker = record.get("speaker")
        candidate.text = record.get("text")
        candidate.service = record.get("service")
        candidate.intent = record.get("intent")
        candidate.timestamp = record.get("timestamp")
        yield candidate


def _validate_turns(
    candidates: list[_TurnCandidate], speaker_names: Mapping[str, str], corpus: str
) -> ReadResult:
    """The shared checks of both formats: quarantine bad turns, then whole conversations with no
    user turn left, renumber turn_index 0.. and build the turns table."""
    quarantined: list[tuple[int, _TurnCandidate, str]] = []
    kept_by_conversation: dict[tuple[str, str], list[tuple[int, _TurnCandidate, dict]]] = {}
    turn_numbers_seen: dict[tuple[str, str], _TurnNumbersSeen] = {}
    for order, candidate in enumerate(candidates):
        conversation = _conversation_key(candidate)
        reason = _turn_problem(candidate)
        if reason is None:
            seen = turn_numbers_seen.setdefault(conversation, _TurnNumbersSeen())
            reason = seen.problem(candidate.turn_number)
        if reason is None:
            row, reason = _turn_row(candidate, speaker_names)
        if reason is not None:
            quarantined.append((order, candidate, reason))
        else:
            kept_by_conversation.setdefault(conversation, []).append((order, candidate, row))
    rows: list[dict] = []
    for turns in kept_by_conversation.values():
        if not any(row["speaker"] == "user" for _, _, row in turns):
            quarantined.extend((order, candidate, "no_user_turn") for order, candidate, _ in turns)
            continue
        for turn_index, (_, _, row) in enumerate(turns):
            rows.append({**row, "turn_index": turn_index})
    quarantined.sort(key=lambda entry: entry[0])
    quarantine = quarantine_frame([
        {"corpus": corpus, "file": candidate.file, "line": candidate.line, "reason": reason,
         "raw": _raw_preview(candidate.raw)}
        for _, candidate, reason in quarantined
    ])
    return ReadResult(rows=_turns_frame(rows), quarantine=quarantine, n_in=len(candidates)).check(corpus)


def _conversation_key(candidate: _TurnCandidate) -> tuple[str, str]:
    conversation_id = candidate.conversation_id
    if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
        conversation_id = str(conversation_id)
    return candidate.split, conversation_id.strip() if isinstance(conversation_id, str) else ""


def _turn_problem(candidate: _TurnCandidate) -> str | None:
    """The first reason a single turn is unusable on its own, or None (order checks come later)."""
    if candidate.problem:
        return candidate.problem
    fields = (candidate.conversation_id, candidate.speaker, candidate.text, candidate.service,
              candidate.intent, candidate.timestamp)
    if any(_has_undecodable(value) for value in fields if isinstance(value, str)):
        return "undecodable_bytes"
    if not _conversation_key(candidate)[1]:
        conversation_id = candidate.conversation_id
        missing = conversation_id is None or isinstance(conversation_id, str)
        return "missing_conversation_id" if missing else "malformed_json"
    turn_number = candidate.turn_number
    if not isinstance(turn_number, int) or isinstance(turn_number, bool) or turn_number < 0:
        return "invalid_turn_number"
    if any(value is not None and not isinstance(value, str)
           for value in (candidate.text, candidate.service, candidate.intent)):
        return "malformed_json"
    return None


@dataclass(slots=True)
class _TurnNumbersSeen:
    """The turn numbers of one conversation met so far, in file order."""

    numbers: set[int] = field(default_factory=set)
    highest: int = -1

    def problem(self, turn_number: int) -> str | None:
        """duplicate_turn (the first one is kept) or turn_out_of_order, else None."""
        if turn_number in self.numbers:
            return "duplicate_turn"
        self.numbers.add(turn_number)
        if turn_number < self.highest:
            return "turn_out_of_order"
        self.highest = turn_number
        return None


def _turn_row(candidate: _TurnCandidate, speaker_names: Mapping[str, str]) -> tuple[dict, str | None]:
    """The output fields of a turn that passed the structural checks, or the content problem."""
    if candidate.speaker is None or candidate.speaker == "":
        return {}, "missing_speaker"
    speaker = speaker_names.get(candidate.speaker) if isinstance(candidate.speaker, str) else None
    if speaker is None:
        return {}, "unknown_speaker"
    text = (candidate.text or "").strip()
    if not text:
        return {}, "empty_text"
    intent = (candidate.intent or "").strip() or None
    if intent is not None and speaker == "agent":
        return {}, "intent_on_agent_turn"
    try:
        timestamp = _parse_timestamp(candidate.timestamp)
    except (TypeError, ValueError):
        return {}, "invalid_timestamp"
    split, conversation_id = _conversation_key(candidate)
    return {
        "split": split, "conversation_id": f"{split}:{conversation_id}", "speaker": speaker,
        "text": text, "service": (candidate.service or "").strip() or None, "intent": intent,
        "timestamp": timestamp, "file": candidate.file, "line": candidate.line,
    }, None


def _parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 -> naive datetime; an offset-aware time is converted to UTC first."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"timestamp must be an ISO 8601 string, got {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _has_undecodable(text: str) -> bool:
    """True when the text holds lone surrogates: bytes that were not UTF-8 in the raw file."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _raw_preview(raw: Any) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:RAW_PREVIEW_CHARS]


def _turns_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[column for column in TURN_COLUMNS if column != "row_id"])
    frame.insert(0, "row_id", range(len(frame)))
    return frame.astype({
        "row_id": "int64", "split": "str", "conversation_id": "str", "turn_index": "int64",
        "speaker": "str", "text": "str", "service": "string", "intent": "string",
        "timestamp": "datetime64[ns]", "file": "str", "line": "int64",
    })[TURN_COLUMNS]
