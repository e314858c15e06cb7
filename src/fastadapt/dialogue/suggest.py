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
    """Suggests replies; `user_embeddings` / `reply_embeddings` are unit vectors, one per bank row.

    `abstain_below`: a message whose intent probability is under it gets no replies
    (`abstained`: True), so an agent is not shown answers the classifier is unsure of.
    """

    classifier: TextClassifier
    embed: Embedder
    bank: pd.DataFrame
    user_embeddings: np.ndarray
    reply_embeddings: np.ndarray
    neighbours: int = 20
    abstain_below: float = 0.0

    def __post_init__(self) -> None:
        # Plain arrays of the bank, looked up per message (pandas indexing there costs milliseconds).
        self._intents = self.bank["intent"].astype(str).to_numpy()
        self._agent = self.bank["agent_text"].astype(str).tolist()
        self._user = self.bank["user_text"].astype(str).tolist()
        self._keys = [text.casefold() for text in self._agent]
        self._rows_of = {intent: np.flatnonzero(self._intents == intent) for intent in np.unique(self._intents)}

    def suggest(self, messages: Sequence[str], top_n: int = 3) -> list[dict]:
        """For each message: the predicted intent, its probability and up to `top_n` replies."""
        return self.suggest_scored(messages, self.classifier.predict_proba(messages), self.embed(messages), top_n)

    def suggest_scored(
        self, messages: Sequence[str], probabilities: np.ndarray, message_vectors: np.ndarray, top_n: int = 3
    ) -> list[dict]:
        """`suggest` from class probabilities and unit message vectors computed beforehand.

        An evaluation that already holds both (features cached once for many support draws)
        suggests without encoding the messages again.
        """
        classes = np.asarray(list(self.classifier.classes_), dtype=object)
        best = np.asarray(probabilities).argmax(axis=1)
        suggestions = []
        for i, message in enumerate(messages):
            probability = float(probabilities[i][best[i]])
            abstained = probability < self.abstain_below
            rows = [] if abstained else self.reply_rows(str(classes[best[i]]), message_vectors[i], top_n)
            suggestions.append(
                {
                    "message": message,
                    "predicted_intent": str(classes[best[i]]),
                    "intent_probability": probability,
                    "abstained": bool(abstained),
                    "replies": [self._reply(position, score) for position, score in rows],
                    "reply_intents": [str(self._intents[position]) for position, _ in rows],
                }
            )
        return suggestions

    def reply_rows(self, intent: str, message_vector: np.ndarray, top_n: int) -> list[tuple[int, float]]:
        """(bank position, representativeness) of up to `top_n` distinct replies of `intent`, best first."""
        candidates = self._rows_of.get(intent)
        if candidates is None:
            return []
        similarity = self.user_embeddings[candidates] @ message_vector
        nearest = candidates[np.argsort(-similarity, kind="stable")[: self.neighbours]]
        replies = self.reply_embeddings[nearest]
        centrality = (replies @ replies.T).mean(axis=1)
        ranked, seen = [], set()
        for position in np.argsort(-centrality, kind="stable"):
            text = self._keys[nearest[position]]
            if text in seen:
                continue
            seen.add(text)
            ranked.append((int(nearest[position]), float(centrality[position])))
            if len(ranked) == top_n:
                break
        return ranked

    def _reply(self, position: int, representativeness: float) -> dict:
        return {
            "reply": self._agent[position],
            "representativeness": representativeness,
            "similar_request": self._user[position],
        }
