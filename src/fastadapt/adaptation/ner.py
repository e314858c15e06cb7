"""`EncoderTagger`: a token-classification head on a transformer encoder, decoded to valid IOB2.

Labelling: a word is represented by its first subword; the other subwords of a word (and the
special tokens) carry the label -100 in training, which cross-entropy ignores, and are not read
at inference. Words that get no subword at all (truncated past `max_length`, or characters the
tokeniser drops) have a flat emission and take the tag the transitions favour.

Decoding: the head gives per-word log-probabilities; `viterbi_iob2` finds the most probable tag
sequence among the valid IOB2 ones (no I-X at the start, after O, or after a tag of another
type). A plain arg-max or a post-hoc repair can cut an entity or change its type; searching only
the valid paths keeps the best whole-sentence reading. It is written here, in numpy, because no
maintained library does constrained decoding over a transformers head on CPU (pytorch-crf learns
transitions, which the heads here do not have, and cannot forbid any of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fastadapt.adaptation.classifier import load_parts, save_parts, token_limit
from fastadapt.adaptation.strategies import AdaptStrategy
from fastadapt.models.backbones import Backbone
from fastadapt.models.batching import length_bucketed_batches, pad_batch
from fastadapt.models.encoder import resolve_device
from fastadapt.models.precision import autocast
from fastadapt.models.predictor import check_token_lists

INFO_FILE = "tagger.json"
IGNORE_INDEX = -100


def tag_set(tag_lists: Sequence[Sequence[str]]) -> list[str]:
    """O, then B-X and I-X for every entity type X seen, types sorted: every valid path exists."""
    types = set()
    for i, tags in enumerate(tag_lists):
        for tag in tags:
            if tag == "O":
                continue
            prefix, _, entity_type = str(tag).partition("-")
            if prefix not in ("B", "I") or not entity_type:
                raise ValueError(f"tag_lists[{i}] must hold IOB2 tags ('O', 'B-<type>', 'I-<type>'); got {tag!r}")
            types.add(entity_type)
    return ["O"] + [f"{prefix}-{t}" for t in sorted(types) for prefix in ("B", "I")]


def iob2_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start_allowed[T], allowed[T_prev, T_next]) for IOB2: I-X only after B-X or I-X."""
    n = len(tags)
    start = np.ones(n, dtype=bool)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = False
            for i, previous in enumerate(tags):
                allowed[i, j] = previous in (f"B-{tag[2:]}", f"I-{tag[2:]}")
    return start, allowed


def viterbi_iob2(log_probs: np.ndarray, tags: Sequence[str],
                 scores: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """The highest-scoring valid IOB2 tag sequence for per-word log-probabilities (n, T).

    scores: optional (start[T], transition[T, T]) log-scores added to the path (StructShot's
    abstract transitions); the IOB2 constraints hold whatever they say.
    """
    n = len(log_probs)
    if n == 0:
        return []
    start, allowed = iob2_transitions(tags)
    start_score, transition = np.zeros(len(tags)), np.zeros((len(tags), len(tags)))
    if scores is not None:
        start_score, transition = np.asarray(scores[0], dtype=np.float64), np.asarray(scores[1], dtype=np.float64)
    transition = np.where(allowed, transition, -np.inf)
    score = np.where(start, log_probs[0] + start_score, -np.inf)
    backpointers = np.zeros((n, len(tags)), dtype=np.int64)
    for position in range(1, n):
        candidates = score[:, None] + transition  # (previous, next)
        backpointers[position] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[position]
    best = [int(score.argmax())]
    for position in range(n - 1, 0, -1):
        best.append(int(backpointers[position, best[-1]]))
    return [tags[i] for i in reversed(best)]


def encode_words(tokenizer, token_lists: Sequence[Sequence[str]], max_length: int) -> tuple[list[list[int]], list[np.ndarray]]:
    """Subword ids per sentence and, per word, the position of its first subword (-1: none)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("NER needs a fast (Rust) tokeniser for word alignment; this backbone's is not")
    ids: list[list[int]] = []
    firsts: list[np.ndarray] = []
    for start in range(0, len(token_lists), 1024):
        chunk = [list(tokens) for tokens in token_lists[start:start + 1024]]
        encoded = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length, padding=False)
        for row, tokens in enumerate(chunk):
            first = np.full(len(tokens), -1, dtype=np.int64)
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and first[word] < 0:
                    first[word] = position
            ids.append(list(encoded["input_ids"][row]))
            firsts.append(first)
    return ids, firsts


def subword_labels(first: np.ndarray, length: int, targets: Sequence[int]) -> list[int]:
    """Training labels per subword: the word's tag on its first subword, -100 everywhere else."""
    labels = [IGNORE_INDEX] * length
    for word, position in enumerate(first):
        if position >= 0:
            labels[position] = int(targets[word])
    return labels


def word_features(
    backbone: Backbone,
    token_lists: Sequence[Sequence[str]],
    max_length: int = 256,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """First-subword hidden states per sentence (n_words, hidden) float32, and a mask of the
    words that have a subword (the others get zeros)."""
    ids, firsts = encode_words(backbone.tokenizer, token_lists, token_limit(backbone, max_length))
    target = resolve_device(device)
    model = backbone.model.to(target).eval()
    hidden_size = backbone.hidden_size
    features = [np.zeros((len(f), hidden_size), dtype=np.float32) for f in firsts]
    batches = length_bucketed_batches([len(i) for i in ids], batch_size)
    with torch.inference_mode(), autocast("auto", target):
        for batch in tqdm(batches, desc="word features", unit="batch", disable=not progress, leave=False):
            inputs = {k: v.to(target) for k, v in pad_batch([ids[i] for i in batch],
                                                            backbone.tokenizer.pad_token_id).items()}
            hidden = model(**inputs).last_hidden_state.float().cpu().numpy()
            for row, index in enumerate(batch):
                present = firsts[index] >= 0
                features[index][present] = hidden[row, firsts[index][present]]
    return features, [f >= 0 for f in firsts]


CASING_CLASSES = ("lower", "upper", "title", "mixed", "digit", "other")
OTHER_CASING = CASING_CLASSES.index("other")


def casing_class(token: str) -> int:
    """The casing of a token, an index into `CASING_CLASSES` (the word-shape feature of classic
    taggers: Collobert et al. 2011, Chiu and Nichols 2016). MiniLM's tokeniser lower-cases, so
    without it `Apple` and `apple`, `US` and `us` are the same input."""
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return CASING_CLASSES.index("digit") if any(c.isdigit() for c in token) else OTHER_CASING
    if all(c.islower() for c in letters):
        return CASING_CLASSES.index("lower")
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return CASING_CLASSES.index("upper")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return CASING_CLASSES.index("title")
    return CASING_CLASSES.index("mixed")


def casing_features(token_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """One-hot casing per word, (n_words, 6) float32 per sentence, what a cased head reads
    beside the encoder's state. A linear head on [state, one-hot] is a linear head on the state
    plus a learned casing embedding in the tag space: the casing embedding of the issue, with no
    extra size to choose."""
    eye = np.eye(len(CASING_CLASSES), dtype=np.float32)
    return [eye[[casing_class(token) for token in tokens]].reshape(len(tokens), len(CASING_CLASSES))
            for tokens in token_lists]


def subword_casing(first: np.ndarray, length: int, casing: np.ndarray) -> list[int]:
    """Casing class per subword: the word's on its first subword, `other` elsewhere (those
    positions carry no label and are never read)."""
    ids = [OTHER_CASING] * length
    for word, position in enumerate(first):
        if position >= 0:
            ids[position] = int(casing[word].argmax())
    return ids


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of per-subword logits against first-subword labels (IGNORE_INDEX elsewhere)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                       ignore_index=IGNORE_INDEX)


class TokenClassifierModule(nn.Module):
    """Encoder -> per-subword (optionally normalised) states [+ one-hot casing] -> head: what
    full and LoRA train."""

    def __init__(self, encoder: nn.Module, head: nn.Module, normalize: bool = False, casing: bool = False) -> None:
        super().__init__()
        self.encoder, self.head, self.normalize, self.casing = encoder, head, normalize, casing

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                casing: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state, casing)

    def classify(self, hidden: torch.Tensor, casing: torch.Tensor | None = None) -> torch.Tensor:
        """The head's logits for the encoder's per-subword states `hidden`."""
        if self.normalize:
            hidden = nn.functional.normalize(hidden, dim=-1)
        if self.casing:
            if casing is None:
                raise ValueError("this tagger reads casing: pass casing (subword casing classes)")
            one_hot = nn.functional.one_hot(casing, len(CASING_CLASSES)).to(hidden.dtype)
            hidden = torch.cat([hidden, one_hot], dim=-1)
        return self.head(hidden)


class EncoderTagger:
    """A fitted `SequenceTagger`: encoder + head over first subwords + constrained Viterbi.

    tags_: the tag set, the column order of the emissions.
    transitions: `AbstractTransitions` (StructShot) whose log-scores, times `transition_weight`,
        are added to the Viterbi path; None: every valid IOB2 step scores 0.
    casing: the head reads each word's one-hot casing after its (normalised) state.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        tags: Sequence[str],
        *,
        strategy: AdaptStrategy | str,
        normalize: bool = False,
        max_length: int = 256,
        batch_size: int = 64,
        device: str = "auto",
        training: dict[str, Any] | None = None,
        transitions: Any = None,
        transition_weight: float = 1.0,
        casing: bool = False,
    ) -> None:
        self.backbone, self.head = backbone, head.eval()
        self.tags_: list[str] = [str(t) for t in tags]
        self.classes_ = self.tags_
        # `parse`: folders saved before the one vocabulary hold short names (head, full, lora).
        self.strategy = AdaptStrategy.parse(strategy, "strategy", short_names=True)
        self.normalize = normalize
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
        self.training = dict(training or {})
        self.transitions, self.transition_weight, self.casing = transitions, float(transition_weight), bool(casing)

    def word_features(self, token_lists: Sequence[Sequence[str]], progress: bool = False):
        return word_features(self.backbone, token_lists, self.max_length, self.batch_size, self.device, progress)

    def log_probs_features(self, features: Sequence[np.ndarray], present: Sequence[np.ndarray],
                           casing: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Per-word tag log-probabilities; words without a subword get a flat row. `casing`
        (`casing_features` of the same sentences) is needed when the tagger reads casing."""
        if self.casing and casing is None:
            raise ValueError("this tagger reads casing: pass casing=casing_features(token_lists)")
        target = resolve_device(self.device)
        head = self.head.to(target).eval()
        out = []
        lengths = [len(f) for f in features]
        flat = np.concatenate(features) if features and sum(lengths) else np.zeros((0, 1), np.float32)
        flat_casing = np.concatenate(casing) if self.casing and len(flat) else None
        log_probs = np.zeros((len(flat), len(self.tags_)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(flat), 8192):
                x = torch.as_tensor(flat[start:start + 8192], device=target)
                if self.normalize:
                    x = nn.functional.normalize(x, dim=-1)
                if flat_casing is not None:
                    x = torch.cat([x, torch.as_tensor(flat_casing[start:start + 8192], device=target)], dim=-1)
                log_probs[start:start + len(x)] = torch.log_softmax(head(x).float(), dim=-1).cpu().numpy()
        offset = 0
        for length, mask in zip(lengths, present):
            rows = log_probs[offset:offset + length].copy()
            rows[~mask] = -np.log(len(self.tags_))
            out.append(rows)
            offset += length
        return out

    def transition_scores(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.transitions is None:
            return None
        start, matrix = self.transitions.log_scores(self.tags_)
        return self.transition_weight * start, self.transition_weight * matrix

    def predict_features(self, features: Sequence[np.ndarray], present: Sequence[np.ndarray],
                         casing: Sequence[np.ndarray] | None = None) -> list[list[str]]:
        scores = self.transition_scores()
        return [viterbi_iob2(rows, self.tags_, scores) for rows in self.log_probs_features(features, present, casing)]

    def predict(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        """One valid IOB2 tag list per token list, of the same length."""
        token_lists = check_token_lists(token_lists)
        if not token_lists:
            return []
        features, present = self.word_features(token_lists)
        return self.predict_features(features, present, casing_features(token_lists) if self.casing else None)

    def save_directory(self, directory: str | Path) -> None:
        info = {"tags": self.tags_, "strategy": self.strategy, "normalize": self.normalize,
                "max_length": self.max_length, "batch_size": self.batch_size, "training": self.training,
                "transitions": None if self.transitions is None else self.transitions.to_dict(),
                "transition_weight": self.transition_weight, "casing": self.casing}
        save_parts(directory, self.backbone, self.head, info, INFO_FILE)

    @classmethod
    def load_directory(cls, directory: str | Path) -> EncoderTagger:
        from fastadapt.adaptation.nnshot import AbstractTransitions

        backbone, head, info = load_parts(directory, INFO_FILE)
        transitions = info.get("transitions")
        return cls(backbone, head, info["tags"], strategy=info["strategy"], normalize=info["normalize"],
                   max_length=info["max_length"], batch_size=info["batch_size"], training=info.get("training"),
                   transitions=None if transitions is None else AbstractTransitions.from_dict(transitions),
                   transition_weight=info.get("transition_weight", 1.0), casing=info.get("casing", False))

    def __repr__(self) -> str:
        return f"EncoderTagger(backbone={self.backbone.name!r}, strategy={self.strategy!r}, tags={self.tags_})"
