"""Answer-suggestion nodes: a reply bank from the logs, its embeddings, suggestions for messages."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fastadapt.dialogue.suggest import AnswerSuggester, reply_bank
from fastadapt.readers.dialogue import agent_replies_after

log = logging.getLogger(__name__)


def build_reply_bank(dialogue_turns: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """(user turn, agent reply) pairs of the training conversations, capped per intent."""
    turns = dialogue_turns[dialogue_turns["split"].isin(params["bank_splits"])]
    bank = reply_bank(agent_replies_after(turns), int(params["max_pairs_per_intent"]), int(params["seed"]))
    log.info("reply bank: %d pairs over %d intents", len(bank), bank["intent"].nunique())
    return bank


def _embedder(params: Mapping[str, Any]):
    from fastadapt.models.backbones import load_backbone
    from fastadapt.models.encoder import embed_texts

    backbone = load_backbone(params["backbone"])
    return lambda texts: embed_texts(
        backbone, list(texts), batch_size=int(params["batch_size"]), device=params["device"], progress=False
    )


def embed_reply_bank(bank: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Unit-length embeddings of each pair's user turn and agent reply (cached for suggestion)."""
    embed = _embedder(params)
    user = embed(bank["user_text"].tolist())
    reply = embed(bank["agent_text"].tolist())
    return pd.DataFrame({"user_embedding": list(user), "reply_embedding": list(reply)})


def suggest_for_test_messages(
    classifier: Any, bank: pd.DataFrame, embeddings: pd.DataFrame, splits: pd.DataFrame, params: Mapping[str, Any]
) -> list[dict]:
    """Suggestions for a reproducible sample of real test-split messages."""
    test = splits[splits["split"] == "test"].sort_values("row_id")
    rng = np.random.default_rng(int(params["seed"]))
    sample = test.iloc[np.sort(rng.choice(len(test), min(int(params["examples"]), len(test)), replace=False))]
    suggester = AnswerSuggester(
        classifier=classifier,
        embed=_embedder(params),
        bank=bank,
        user_embeddings=np.stack(embeddings["user_embedding"].to_numpy()),
        reply_embeddings=np.stack(embeddings["reply_embedding"].to_numpy()),
        neighbours=int(params["neighbours"]),
    )
    suggestions = suggester.suggest(sample["text"].tolist(), top_n=int(params["top_n"]))
    for suggestion, gold in zip(suggestions, sample["label"]):
        suggestion["gold_intent"] = str(gold)
    return suggestions
