"""Answer suggestion for services that no training dialogue uses: each new service is a new task.

A classifier trained on the logged services cannot name an intent of a service it never saw (in
SGD, most test conversations belong to such services, PROTOCOL.md section 5). Here the suggester
adapts from a few labelled conversations of the new services instead, through the project's one
adaptation entry point (`fastadapt.adapt.adapt`, strategy `prototype` on the suggester's encoder
by default):

- support: k conversations per intent, drawn as PROTOCOL.md section 2 draws (the features
  pipeline's `unseen_kshot_sets`); the classifier is fitted on their opening requests, and their
  intent-opening (user turn, agent reply) pairs become the reply bank of the new intents;
- query: every other conversation of those services (a conversation in the support is never a
  query, whatever the draws table says);
- abstention: a message whose intent probability is under `abstain_below` gets no replies.

Measured per draw: intent accuracy, abstention rate, accuracy of the answered messages, and the
share of messages whose suggested replies all come from pairs of the gold intent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.adapt import AdaptedPredictor, adapt, check_strategy
from fastadapt.adaptation.strategies import AdaptStrategy
from fastadapt.config import Checks, ConfigError, Settings, check_keys
from fastadapt.dialogue.suggest import AnswerSuggester, reply_bank
from fastadapt.readers.dialogue import agent_replies_after

# Strategies that score cached encoder features (the encoder stays frozen), so every draw reuses
# one encoding of the texts instead of encoding them again.
FEATURE_STRATEGIES = (AdaptStrategy.PROTOTYPE, AdaptStrategy.FINETUNE_HEAD)
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))  # the calibration grid, 0.00 .. 0.95
# How many right suggestions one wrong one cancels in `threshold_table`'s utility: an agent shown
# replies of the wrong intent must notice, read and discard them, while an abstention only
# leaves them to answer as they would without the suggester.
WRONG_ANSWER_COST = 2.0
PREDICTION_COLUMNS = ["k", "seed", "row_id", "conversation_id", "label", "predicted", "confidence", "correct",
                      "n_replies", "replies_from_gold"]


@dataclass(frozen=True)
class NewServiceSettings(Settings):
    """`answer_suggestion.new_services` parameters, validated once (errors name the parameter)."""

    strategy: AdaptStrategy = AdaptStrategy.PROTOTYPE
    # adapt() options of the strategy, over its tuned defaults. No class names: abstain_below was
    # chosen without them (as parameters_answer_suggestion.yml).
    options: Mapping[str, Any] = field(default_factory=lambda: {"label_names": False})
    ks: tuple[int, ...] = (1, 5)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    abstain_below: float = 0.45  # as parameters_answer_suggestion.yml (chosen on the calibration split)
    calibration_split: str = "validation"
    example_k: int = 5
    # The suggester's own knobs, read from the `answer_suggestion` block around `new_services`.
    neighbours: int = 20
    top_n: int = 3
    max_pairs_per_intent: int = 60

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str = "answer_suggestion") -> NewServiceSettings:
        """From the whole `answer_suggestion` block: `new_services` plus the shared suggestion knobs."""
        block = params.get("new_services")
        if not isinstance(block, Mapping):
            raise ConfigError(f"{where}.new_services must be a mapping (strategy, ks, seeds, abstain_below, ...)")
        here = f"{where}.new_services"
        shared = ("neighbours", "top_n", "max_pairs_per_intent")
        values = check_keys(block, [f.name for f in fields(cls) if f.name not in shared], here)
        settings = cls(**values, **{key: params[key] for key in shared if key in params})
        settings.validate(here)
        return settings

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        object.__setattr__(self, "strategy", check_strategy(self.strategy, f"{where}.strategy"))
        if not isinstance(self.options, Mapping):
            check.fail("options", "allowed: a mapping of adapt() options")
        object.__setattr__(self, "options", dict(self.options))
        for key, minimum in (("ks", 1), ("seeds", 0)):
            check.integers(key, minimum)
            object.__setattr__(self, key, tuple(getattr(self, key)))
        check.number("abstain_below", 0, 1, strict_high=False)
        check.text("calibration_split")
        if self.example_k not in self.ks:
            check.fail("example_k", f"allowed: one of {where}.ks {list(self.ks)}")
        for key in ("neighbours", "top_n", "max_pairs_per_intent"):
            check.integer(key, 1)

    @property
    def uses_features(self) -> bool:
        return self.strategy in FEATURE_STRATEGIES


class TextFeatures:
    """Encoder features of texts, each distinct text encoded once (many draws share the texts).

    `embed` maps texts to pooled, un-normalised features (what `adapt(..., features=)` takes);
    `unit` gives the l2-normalised vectors the reply bank's neighbour search uses.
    """

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self._embed = embed
        self._rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def add(self, texts: Sequence[str]) -> None:
        """Encode, in one batch, the texts not encoded yet."""
        new = list(dict.fromkeys(t for t in map(str, texts) if t not in self._rows))
        if new:
            vectors = np.asarray(self._embed(new), dtype=np.float32)
            start = len(self._rows)
            self._rows.update({text: start + i for i, text in enumerate(new)})
            self._blocks.append(vectors)
            self._matrix = None

    def raw(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        self.add(texts)
        if self._matrix is None:
            self._matrix = np.concatenate(self._blocks)
        return self._matrix[[self._rows[t] for t in texts]]

    def unit(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.raw(texts)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def encoder_features(backbone: Any, settings: NewServiceSettings, batch_size: int = 64,
                     device: str = "auto") -> TextFeatures:
    """A `TextFeatures` of `backbone` computed as `adapt` computes its own: the pooling and
    token limit of the strategy's options (AdaptationConfig defaults otherwise), un-normalised."""
    from fastadapt.adaptation import AdaptationConfig
    from fastadapt.adaptation.classifier import token_limit
    from fastadapt.models.encoder import embed_texts

    defaults = AdaptationConfig()
    max_length = token_limit(backbone, int(settings.options.get("max_length", defaults.max_length)))
    pooling = str(settings.options.get("pooling", defaults.pooling))
    return TextFeatures(lambda texts: embed_texts(backbone, list(texts), batch_size=batch_size, max_length=max_length,
                                                  pooling=pooling, normalize=False, device=device, progress=False))


def opening_pairs(turns: pd.DataFrame) -> pd.DataFrame:
    """Per conversation and intent, the user turn that opened the intent and the agent's reply.

    What an agent answers to a request for a new intent; later turns of a conversation (a slot
    value, a confirmation) would only add replies that do not fit an opening request.
    """
    pairs = agent_replies_after(turns)
    return pairs.drop_duplicates(["conversation_id", "intent"], keep="first").reset_index(drop=True)


def adapt_to_services(learner: Any, support: pd.DataFrame, settings: NewServiceSettings,
                      features: TextFeatures | None = None) -> AdaptedPredictor:
    """`adapt()` on the support conversations' opening requests (columns text, label)."""
    options = dict(settings.options)
    if features is not None and settings.uses_features:
        options["features"] = features.raw(support["text"].tolist())
    return adapt(learner, support[["text", "label"]].reset_index(drop=True), settings.strategy,
                 where="answer_suggestion.new_services.strategy", **options)


def service_suggester(predictor: AdaptedPredictor, support: pd.DataFrame, pairs: pd.DataFrame,
                      settings: NewServiceSettings, features: TextFeatures, seed: int,
                      abstain_below: float) -> AnswerSuggester:
    """A suggester whose reply bank is the support conversations' intent-opening pairs."""
    bank = pairs[pairs["conversation_id"].isin(set(support["conversation_id"]))]
    bank = bank[bank["intent"].isin(set(predictor.classes_))]
    if bank.empty:  # no pair to suggest from: the suggester still classifies, with no replies
        empty = np.zeros((0, 1), dtype=np.float32)
        return AnswerSuggester(classifier=predictor, embed=features.unit, bank=bank.reset_index(drop=True),
                               user_embeddings=empty, reply_embeddings=empty, neighbours=settings.neighbours,
                               abstain_below=abstain_below)
    bank = reply_bank(bank, settings.max_pairs_per_intent, seed)
    return AnswerSuggester(classifier=predictor, embed=features.unit, bank=bank,
                           user_embeddings=features.unit(bank["user_text"].tolist()),
                           reply_embeddings=features.unit(bank["agent_text"].tolist()),
                           neighbours=settings.neighbours, abstain_below=abstain_below)


def probabilities(predictor: AdaptedPredictor, texts: Sequence[str], settings: NewServiceSettings,
                  features: TextFeatures) -> np.ndarray:
    """Class probabilities of `texts`, from the cached features where the strategy allows."""
    if settings.uses_features and hasattr(predictor.model, "predict_proba_features"):
        return predictor.model.predict_proba_features(features.raw(texts))
    return predictor.predict_proba(list(texts))


def evaluate_new_services(rows: pd.DataFrame, draws: pd.DataFrame, pairs: pd.DataFrame, learner: Any,
                          settings: NewServiceSettings, features: TextFeatures) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one metrics row per (k, seed) draw, one prediction row per query message).

    rows: the split's conversations (row_id, text, label, conversation_id); draws: k, seed,
    row_id, role (support / query), as `fastadapt.tasks.kshot.support_query_sets` makes them;
    pairs: `opening_pairs` of the split's turns. Replies are computed for every query, so the
    metrics at any threshold follow from the predictions (`threshold_table`). adaptation_seconds
    is the `adapt()` call alone; for FEATURE_STRATEGIES the support was encoded beforehand.
    """
    missing = sorted({(k, s) for k in settings.ks for s in settings.seeds}
                     - set(map(tuple, draws[["k", "seed"]].drop_duplicates().to_numpy().tolist())))
    if missing:
        raise ConfigError(f"answer_suggestion.new_services: no support draws for (k, seed) {missing}; ks and seeds "
                          f"must be among the features pipeline's draws (kshot.seeds, domains.<domain>.unseen_classes.ks)")
    by_id = rows.set_index("row_id")
    chosen = draws[draws["k"].isin(settings.ks) & draws["seed"].isin(settings.seeds)]
    supports = set(by_id.loc[chosen.loc[chosen["role"] == "support", "row_id"], "conversation_id"])
    bank_pairs = pairs[pairs["conversation_id"].isin(supports)]
    # One encoding pass over every text the draws need, in length-bucketed batches.
    features.add([*by_id.loc[chosen["row_id"].unique(), "text"], *bank_pairs["user_text"], *bank_pairs["agent_text"]])
    frames, metrics = [], []
    for k in settings.ks:
        for seed in settings.seeds:
            draw = draws[(draws["k"] == k) & (draws["seed"] == seed)]
            support = by_id.loc[draw.loc[draw["role"] == "support", "row_id"]].reset_index()
            query = by_id.loc[draw.loc[draw["role"] == "query", "row_id"]].reset_index()
            query = query[~query["conversation_id"].isin(set(support["conversation_id"]))]
            started = time.perf_counter()
            predictor = adapt_to_services(learner, support, settings, features)
            seconds = time.perf_counter() - started
            suggester = service_suggester(predictor, support, pairs, settings, features, seed, abstain_below=0.0)
            texts = query["text"].tolist()
            suggestions = suggester.suggest_scored(texts, probabilities(predictor, texts, settings, features),
                                                   features.unit(texts), settings.top_n)
            gold = query["label"].astype(str).to_numpy()
            predictions = pd.DataFrame({
                "k": int(k), "seed": int(seed), "row_id": query["row_id"].to_numpy(),
                "conversation_id": query["conversation_id"].astype(str).to_numpy(), "label": gold,
                "predicted": [s["predicted_intent"] for s in suggestions],
                "confidence": [s["intent_probability"] for s in suggestions],
                "n_replies": [len(s["reply_intents"]) for s in suggestions],
                "replies_from_gold": [bool(s["reply_intents"]) and all(i == g for i in s["reply_intents"])
                                      for s, g in zip(suggestions, gold)],
            })
            predictions["correct"] = predictions["predicted"] == predictions["label"]
            frames.append(predictions[PREDICTION_COLUMNS])
            metrics.append({"k": int(k), "seed": int(seed), "n_classes": len(predictor.classes_),
                            "n_support": len(support), "n_query": len(query), "bank_pairs": len(suggester.bank),
                            **draw_metrics(predictions, settings.abstain_below),
                            "adaptation_seconds": seconds})
    return pd.DataFrame(metrics), pd.concat(frames, ignore_index=True)


def draw_metrics(predictions: pd.DataFrame, abstain_below: float) -> dict[str, float]:
    """The figures of one draw's predictions when messages under `abstain_below` get no replies.

    accuracy: the predicted intent is the gold one (every message, abstained or not);
    abstention_rate: share of messages under the threshold; answered_accuracy: accuracy of the
    others (NaN when none is answered); wrong_answer_rate: share of all messages answered with a
    wrong intent; reply_gold_rate: share of all messages that get replies
    and whose replies all come from pairs of the gold intent (an abstention counts as no);
    answered_reply_gold_rate: the same among the answered messages.
    """
    answered = predictions["confidence"].to_numpy() >= abstain_below
    correct = predictions["correct"].to_numpy(dtype=bool)
    from_gold = predictions["replies_from_gold"].to_numpy(dtype=bool) & answered
    n = max(len(predictions), 1)
    return {
        "abstain_below": float(abstain_below),
        "accuracy": float(correct.sum() / n),
        "abstention_rate": float((~answered).sum() / n),
        "answered_accuracy": float(correct[answered].mean()) if answered.any() else float("nan"),
        "wrong_answer_rate": float((answered & ~correct).sum() / n),
        "reply_gold_rate": float(from_gold.sum() / n),
        "answered_reply_gold_rate": float(from_gold[answered].mean()) if answered.any() else float("nan"),
    }


def threshold_table(predictions: pd.DataFrame, thresholds: Sequence[float] = THRESHOLDS,
                    wrong_answer_cost: float = WRONG_ANSWER_COST) -> pd.DataFrame:
    """Per k and threshold, the draw metrics averaged over seeds: how abstention trades coverage
    for accuracy (the measurement `abstain_below` is chosen from, on the calibration split).

    utility: per message, right answers minus `wrong_answer_cost` times wrong answers.
    """
    rows = []
    for k, by_k in predictions.groupby("k", sort=True):
        for threshold in thresholds:
            per_seed = pd.DataFrame([draw_metrics(draw, threshold) for _, draw in by_k.groupby("seed", sort=True)])
            summary = per_seed.mean(numeric_only=True)
            rows.append({"k": int(k), "abstain_below": float(threshold), "coverage": 1 - summary["abstention_rate"],
                         "answered_accuracy": summary["answered_accuracy"],
                         "wrong_answer_rate": summary["wrong_answer_rate"],
                         "reply_gold_rate": summary["reply_gold_rate"],
                         # right answers (answered minus wrong) less the cost of the wrong ones
                         "utility": (1 - summary["abstention_rate"])
                         - (1 + wrong_answer_cost) * summary["wrong_answer_rate"],
                         "n_seeds": len(per_seed)})
    return pd.DataFrame(rows)


__all__ = [
    "FEATURE_STRATEGIES",
    "NewServiceSettings",
    "TextFeatures",
    "adapt_to_services",
    "draw_metrics",
    "encoder_features",
    "evaluate_new_services",
    "opening_pairs",
    "probabilities",
    "service_suggester",
    "threshold_table",
]
