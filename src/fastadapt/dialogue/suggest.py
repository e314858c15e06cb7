"""Answer suggestion from dialogue logs: the predicted intent plus the agent replies that most
typically followed similar requests with that intent.

For a new message: an intent classifier predicts the intent; among the logged (user turn, agent
reply) pairs of that intent, the user turns nearest to the message in the encoder's embedding
space are found; their replies are ranked by how representative they are of that neighbourhood
(mean cosine similarity to the other neighbours' replies), so a generic, typical answer wins over
one tied to a particular conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from fastadapt.models.predictor import TextClassifier

Embedder = Callable[[Sequence[str]], np.ndarray]


def reply_bank(replies: pd.DataFrame, max_pairs_per_intent: int, seed: int) -> pd.DataFrame:
    """At most `max_pairs_per_intent` (user turn, agent reply) pairs per intent, drawn with rng(seed)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _, group in replies.groupby("intent", sort=True):
        if len(group) > max_pairs_per_intent:
            group = group.iloc[np.sort(rng.choice(len(group), max_pairs_per_intent, replace=False))]
        frames.append(group)
    return pd.concat(frames, ignore_index=True)


@dataclass
class AnswerSuggester:
    """Suggests replies; `user_embeddings` / `reply_embeddings` are unit vectors, one per bank row."""

    classifier: TextClassifier
    embed: Embedder
    bank: pd.DataFrame
    user_embeddings: np.ndarray
    reply_embeddings: np.ndarray
    neighbours: int = 20

    def suggest(self, messages: Sequence[str], top_n: int = 3) -> list[dict]:
        """For each message: the predicted intent, its probability and up to `top_n` replies."""
        intents = self.classifier.predict(messages)
        probabilities = self.classifier.predict_proba(messages)
        classes = list(self.classifier.classes_)
        message_vectors = self.embed(messages)
        suggestions = []
        for i, message in enumerate(messages):
            intent = str(intents[i])
            suggestions.append(
                {
                    "message": message,
                    "predicted_intent": intent,
                    "intent_probability": float(probabilities[i][classes.index(intent)]),
                    "replies": self._replies_for(intent, message_vectors[i], top_n),
                }
            )
        return suggestions

    def _replies_for(self, intent: str, message_vector: np.ndarray, top_n: int) -> list[dict]:
        candidates = np.flatnonzero(self.bank["intent"].to_numpy() == intent)
        if candidates.size == 0:
            return []
        similarity = self.user_embeddings[candidates] @ message_vector
        nearest = candidates[np.argsort(-similarity, kind="stable")[: self.neighbours]]
        replies = self.reply_embeddings[nearest]
        centrality = (replies @ replies.T).mean(axis=1)
        ranked, seen = [], set()
        for position in np.argsort(-centrality, kind="stable"):
            text = str(self.bank["agent_text"].iloc[nearest[position]])
            if text.casefold() in seen:
                continue
            seen.add(text.casefold())
            ranked.append({
                "reply": text,
                "representativeness": float(centrality[position]),
                "similar_request": str(self.bank["user_text"].iloc[nearest[position]]),
            })
            if len(ranked) == top_n:
                break
        return ranked
