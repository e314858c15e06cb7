"""Answer-suggestion nodes: a reply bank from the logs, its embeddings, suggestions for messages,
and adaptation to the services no training dialogue uses (fastadapt.dialogue.new_services)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.config import ConfigError
from fastadapt.dialogue.new_services import (
    NewServiceSettings,
    TextFeatures,
    adapt_to_services,
    encoder_features,
    evaluate_new_services,
    opening_pairs,
    probabilities,
    service_suggester,
    threshold_table,
)
from fastadapt.dialogue.settings import AnswerSuggestionSettings
from fastadapt.dialogue.suggest import AnswerSuggester, reply_bank
from fastadapt.readers.dialogue import agent_replies_after
from fastadapt.tasks.kshot import support_query_sets

log = logging.getLogger(__name__)


def _settings(params: Mapping[str, Any]) -> AnswerSuggestionSettings:
    return AnswerSuggestionSettings.from_params(params, where="answer_suggestion")


def build_reply_bank(dialogue_turns: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """(user turn, agent reply) pairs of the training conversations, capped per intent."""
    settings = _settings(params)
    turns = dialogue_turns[dialogue_turns["split"].isin(settings.bank_splits)]
    bank = reply_bank(agent_replies_after(turns), settings.max_pairs_per_intent, settings.seed)
    log.info("reply bank: %d pairs over %d intents", len(bank), bank["intent"].nunique())
    return bank


def _backbone(settings: AnswerSuggestionSettings):
    from fastadapt.models.backbones import load_backbone

    return load_backbone(settings.backbone)


def _embedder(backbone, settings: AnswerSuggestionSettings):
    """Unit-length embeddings in the space of the logged reply bank."""
    from fastadapt.models.encoder import embed_texts

    return lambda texts: embed_texts(backbone, list(texts), batch_size=settings.batch_size,
                                     device=settings.device, progress=False)


def _features(backbone, settings: AnswerSuggestionSettings, services: NewServiceSettings) -> TextFeatures:
    return encoder_features(backbone, services, settings.batch_size, settings.device)


def embed_reply_bank(bank: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Unit-length embeddings of each pair's user turn and agent reply (cached for suggestion)."""
    settings = _settings(params)
    embed = _embedder(_backbone(settings), settings)
    user = embed(bank["user_text"].tolist())
    reply = embed(bank["agent_text"].tolist())
    return pd.DataFrame({"user_embedding": list(user), "reply_embedding": list(reply)})


def _service_rows(splits: pd.DataFrame, split: str) -> pd.DataFrame:
    rows = splits[splits["split"] == split].sort_values("row_id", kind="stable")
    return rows[["row_id", "text", "label", "conversation_id", "service"]].reset_index(drop=True)


def evaluate_unseen_services(
    dialogue_turns: pd.DataFrame, splits: pd.DataFrame, unseen_kshot_sets: pd.DataFrame, params: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Adapt to the test services no training dialogue uses from k of their conversations per
    intent (the features pipeline's section 5 draws), and measure the suggestions on the rest."""
    settings = _settings(params)
    services, backbone = settings.service_settings(), _backbone(settings)
    pairs = opening_pairs(dialogue_turns[dialogue_turns["split"] == "test"])
    metrics, predictions = evaluate_new_services(_service_rows(splits, "test"), unseen_kshot_sets, pairs, backbone,
                                                 services, _features(backbone, settings, services))
    for row in metrics.itertuples():
        log.info("unseen services k=%d seed=%d: accuracy %.3f, abstained %.3f, replies from the gold intent %.3f",
                 row.k, row.seed, row.accuracy, row.abstention_rate, row.reply_gold_rate)
    return metrics, predictions


def calibrate_abstention(
    dialogue_turns: pd.DataFrame, splits: pd.DataFrame, params: Mapping[str, Any]
) -> pd.DataFrame:
    """Coverage and accuracy against the abstention threshold, measured on the calibration split.

    Every service of that split (SGD's dev) is treated as new: support drawn as section 2 draws
    from its conversations, the others are the queries. `abstain_below` is chosen from this
    table, never from the test services it is then applied to.
    """
    settings = _settings(params)
    services = settings.service_settings()
    split = services.calibration_split
    rows = _service_rows(splits, split)
    if rows.empty:
        raise ConfigError(f"answer_suggestion.new_services.calibration_split: split '{split}' has no rows; "
                          f"use one of {sorted(splits['split'].unique())}")
    backbone = _backbone(settings)
    draws = support_query_sets(rows, services.ks, services.seeds)
    pairs = opening_pairs(dialogue_turns[dialogue_turns["split"] == split])
    _, predictions = evaluate_new_services(rows, draws, pairs, backbone, services,
                                           _features(backbone, settings, services))
    return threshold_table(predictions).assign(split=split, n_classes=rows["label"].nunique())


def suggest_for_test_messages(
    classifier: Any, bank: pd.DataFrame, embeddings: pd.DataFrame, splits: pd.DataFrame,
    dialogue_turns: pd.DataFrame, unseen_kshot_sets: pd.DataFrame, params: Mapping[str, Any],
) -> list[dict]:
    """Suggestions for a reproducible sample of real test-split messages.

    A message of a service the training logs hold goes to the trained classifier and reply bank;
    one of a new service to the suggester adapted from that draw's support conversations
    (k = `new_services.example_k`, seed = `seed`), which abstains under `abstain_below`. The
    support conversations themselves are never sampled.
    """
    settings = _settings(params)
    services, seed = settings.service_settings(), settings.seed
    draw = unseen_kshot_sets[(unseen_kshot_sets["k"] == services.example_k) & (unseen_kshot_sets["seed"] == seed)]
    if draw.empty:
        raise ConfigError(f"answer_suggestion.seed {seed} with new_services.example_k {services.example_k}: no such "
                          f"support draw in the features pipeline's unseen_kshot_sets")
    test = _service_rows(splits, "test")
    support = test[test["row_id"].isin(set(draw.loc[draw["role"] == "support", "row_id"]))]
    candidates = test[~test["conversation_id"].isin(set(support["conversation_id"]))]
    rng = np.random.default_rng(seed)
    sample = candidates.iloc[np.sort(rng.choice(len(candidates), min(settings.examples, len(candidates)),
                                                replace=False))]
    seen = set(splits.loc[splits["split"] == "train", "service"].dropna())
    new = ~sample["service"].isin(seen)

    backbone = _backbone(settings)
    trained = AnswerSuggester(
        classifier=classifier,
        embed=_embedder(backbone, settings),
        bank=bank,
        user_embeddings=np.stack(embeddings["user_embedding"].to_numpy()),
        reply_embeddings=np.stack(embeddings["reply_embedding"].to_numpy()),
        neighbours=settings.neighbours,
    )
    features = _features(backbone, settings, services)
    predictor = adapt_to_services(backbone, support, services, features)
    pairs = opening_pairs(dialogue_turns[dialogue_turns["split"] == "test"])
    adapted = service_suggester(predictor, support, pairs, services, features, seed, services.abstain_below)

    suggestions: list[dict] = [{}] * len(sample)
    top_n = settings.top_n
    for is_new, suggester in ((False, trained), (True, adapted)):
        positions = np.flatnonzero(new.to_numpy() == is_new)
        if not len(positions):
            continue
        texts = sample["text"].iloc[positions].tolist()
        if is_new:
            made = suggester.suggest_scored(texts, probabilities(predictor, texts, services, features),
                                            features.unit(texts), top_n)
        else:
            made = suggester.suggest(texts, top_n=top_n)
        for position, suggestion in zip(positions, made):
            suggestions[position] = {
                **suggestion,
                "service": str(sample["service"].iloc[position]),
                "suggester": (f"adapted to the new services ({services.strategy}, k={services.example_k}, "
                              f"seed {seed})" if is_new else "trained on the logged services"),
                "abstain_below": services.abstain_below if is_new else None,
                "gold_intent": str(sample["label"].iloc[position]),
            }
    return suggestions
