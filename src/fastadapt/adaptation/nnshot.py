"""NNShot and StructShot (Yang and Katiyar 2020, "Simple and Effective Few-Shot Named Entity
Recognition with Structured Nearest Neighbor Learning", EMNLP).

NNShot scores a query token against every support token: a tag's emission is the similarity of
the nearest support token carrying that tag. `O` is a tag like the others, scored by its nearest
`O` support token. A single `O` prototype (the mean of every non-entity token) sits in the middle
of very different words (verbs, dates, punctuation) and is far from most of them, so entity
prototypes win and more than half of all tokens get tagged as entities; the nearest `O` token is
usually close.

StructShot decodes NNShot's emissions with the constrained IOB2 Viterbi and transition scores
estimated on the source domain. The target's tag set differs from the source's, so the source
gives *abstract* transitions, between kinds of tags rather than tags: O to O, O to B, B or I to
O, to the B of the same type, to the B of another type, to the I of the same type. Each abstract
probability is shared evenly among the target tags it stands for (O -> B is split over the
target's types). `AbstractTransitions` is that estimate; it is a plain JSON-able table so a
saved tagger carries it.

Written here because no maintained library implements them: the authors' code is a research
repository (asappresearch/structshot) on an old transformers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

# Abstract IOB2 transitions: from each kind of tag (or the sentence start), the kinds that may follow.
ABSTRACT = {
    "start": ("O", "B"),
    "O": ("O", "B"),
    "B": ("O", "B_same", "B_other", "I_same"),
    "I": ("O", "B_same", "B_other", "I_same"),
}


def _state(tag: str | None) -> str:
    return "start" if tag is None else ("O" if tag == "O" else tag[0])


def abstract_kind(previous: str | None, tag: str) -> str | None:
    """The abstract transition from `previous` (None: sentence start) to `tag`; None when IOB2
    forbids it (an I-X that does not continue an X)."""
    state = _state(previous)
    if tag == "O":
        return "O"
    if tag.startswith("B-"):
        if state in ("start", "O"):
            return "B"
        return "B_same" if previous[2:] == tag[2:] else "B_other"
    if tag.startswith("I-") and state in ("B", "I") and previous[2:] == tag[2:]:
        return "I_same"
    return None


@dataclass(frozen=True)
class AbstractTransitions:
    """P(abstract transition | kind of the previous tag), estimated on source tag sequences.

    probabilities: {"start" | "O" | "B" | "I": {abstract kind: probability}}, each row summing to 1.
    """

    probabilities: Mapping[str, Mapping[str, float]]

    @classmethod
    def from_tag_sequences(cls, tag_lists: Sequence[Sequence[str]], smoothing: float = 1.0) -> AbstractTransitions:
        """Counts of each abstract transition in valid IOB2 sequences, add-`smoothing` per row
        (a kind never seen in the source keeps a small probability). Forbidden pairs are skipped."""
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0; got {smoothing!r}")
        counts: dict[str, Counter[str]] = {state: Counter() for state in ABSTRACT}
        for tags in tag_lists:
            previous = None
            for tag in tags:
                kind = abstract_kind(previous, str(tag))
                if kind is not None:
                    counts[_state(previous)][kind] += 1
                previous = str(tag)
        probabilities = {}
        for state, kinds in ABSTRACT.items():
            total = sum(counts[state][kind] + smoothing for kind in kinds)
            probabilities[state] = {kind: (counts[state][kind] + smoothing) / total if total else 1.0 / len(kinds)
                                    for kind in kinds}
        return cls(probabilities)

    def log_scores(self, tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(start[T], transition[T_prev, T_next]) log-probabilities over the target `tags`;
        -inf where IOB2 forbids the step. Each abstract probability is split evenly over the
        target tags of its kind, then each row is renormalised over the allowed tags."""
        tags = [str(t) for t in tags]

        def row(previous: str | None) -> np.ndarray:
            kinds = [abstract_kind(previous, tag) for tag in tags]
            sizes = Counter(kind for kind in kinds if kind is not None)
            table = self.probabilities[_state(previous)]
            values = np.array([table.get(kind, 0.0) / sizes[kind] if kind is not None else 0.0 for kind in kinds])
            total = values.sum()
            with np.errstate(divide="ignore"):
                return np.log(values / total) if total > 0 else np.where(values > 0, 0.0, -np.inf)

        return row(None), np.stack([row(previous) for previous in tags])

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {state: {kind: float(p) for kind, p in row.items()} for state, row in self.probabilities.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, float]]) -> AbstractTransitions:
        missing = sorted(set(ABSTRACT) - set(data))
        if missing:
            raise ValueError(f"abstract transitions lack the row(s) {missing}; expected {sorted(ABSTRACT)}")
        return cls({state: {kind: float(data[state].get(kind, 0.0)) for kind in kinds}
                    for state, kinds in ABSTRACT.items()})


class NearestNeighbourHead(nn.Module):
    """NNShot emissions: logit of tag t = -temperature * min over support tokens of tag t of the
    squared Euclidean distance (on L2-normalised features: temperature * (2 cos - 2)).

    Tags without a support token are never chosen. The support tokens are buffers, so a saved
    tagger keeps them.
    """

    kind = "nearest"

    def __init__(self, support: torch.Tensor, targets: torch.Tensor, n_classes: int, temperature: float = 10.0) -> None:
        super().__init__()
        if len(support) != len(targets) or len(support) == 0:
            raise ValueError(f"NNShot needs support tokens with one target each; got {len(support)} and {len(targets)}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature!r}")
        self.register_buffer("support", support.detach().clone().float())
        self.register_buffer("targets", targets.detach().clone().long())
        self.n_classes, self.temperature = int(n_classes), float(temperature)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shape = features.shape
        x = features.reshape(-1, shape[-1]).float()
        distances = (x.pow(2).sum(1, keepdim=True) - 2 * x @ self.support.T
                     + self.support.pow(2).sum(1)[None, :]).clamp(min=0)
        nearest = torch.full((len(x), self.n_classes), -math.inf, device=x.device)
        nearest = nearest.scatter_reduce(1, self.targets[None, :].expand(len(x), -1), -distances, reduce="amax")
        logits = (self.temperature * nearest).clamp(min=-1e4)  # an absent tag: -1e4, never chosen
        return logits.reshape(*shape[:-1], self.n_classes)

    def settings(self) -> dict[str, Any]:
        return {"head": self.kind, "n_classes": self.n_classes, "temperature": self.temperature,
                "hidden_size": int(self.support.shape[1])}


__all__ = ["ABSTRACT", "AbstractTransitions", "NearestNeighbourHead", "abstract_kind"]
