"""The `answer_suggestion:` parameter block (conf/base/parameters_answer_suggestion.yml), validated once.

`AnswerSuggestionSettings.from_params(params["answer_suggestion"], where="answer_suggestion")`
checks every key (`ConfigError` naming `answer_suggestion.<key>`); its field defaults are the
values of conf/base. The `new_services` block is validated by
`fastadapt.dialogue.new_services.NewServiceSettings` and handed over as `services`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastadapt.config import Checks, Settings
from fastadapt.dialogue.new_services import NewServiceSettings


@dataclass(frozen=True)
class AnswerSuggestionSettings(Settings):
    """Where the suggestions come from and how they are made.

    - ``domain`` / ``classifier``: the intent classifier, catalog ``<domain>.model.<classifier>``;
    - ``backbone``: the encoder whose embedding space finds neighbours (``batch_size``, ``device``);
    - ``bank_splits``, ``max_pairs_per_intent``: the conversations of the reply bank, capped;
    - ``neighbours``, ``top_n``: the bank rows searched and the replies returned per message;
    - ``examples`` real test messages for the report, drawn with ``seed``;
    - ``new_services``: adaptation to the services no training dialogue uses;
    - ``registered_model``: the MLflow registered model name of the served suggester.
    """

    domain: str = "dialogue_intent"
    classifier: str = "tfidf"
    backbone: str = "minilm-l6"
    device: str = "auto"
    batch_size: int = 64
    bank_splits: tuple[str, ...] = ("train",)
    max_pairs_per_intent: int = 60
    neighbours: int = 20
    top_n: int = 3
    examples: int = 8
    seed: int = 0
    new_services: Mapping[str, Any] = field(default_factory=dict)
    registered_model: str = "answer_suggester"

    def __post_init__(self) -> None:
        if isinstance(self.bank_splits, list):
            object.__setattr__(self, "bank_splits", tuple(self.bank_splits))

    def validate(self, where: str = "answer_suggestion") -> None:
        check = Checks(self, where)
        for key in ("domain", "classifier", "backbone", "registered_model"):
            check.text(key)
        # The device is resolved where the encoder runs (models.encoder), so that the cpu nodes
        # of this pipeline import no torch.
        check.text("device")
        minimums = {"max_pairs_per_intent": 1, "neighbours": 1, "top_n": 1, "examples": 1, "batch_size": 1, "seed": 0}
        for key, minimum in minimums.items():
            check.integer(key, minimum)
        if not isinstance(self.bank_splits, tuple) or not self.bank_splits or not all(
                isinstance(split, str) for split in self.bank_splits):
            check.fail("bank_splits", "allowed: a non-empty list of split names, e.g. [train]")
        self.service_settings(where)

    def service_settings(self, where: str = "answer_suggestion") -> NewServiceSettings:
        """The validated `new_services` settings (with the shared neighbours, top_n and cap)."""
        return NewServiceSettings.from_params(
            {"new_services": self.new_services, "neighbours": self.neighbours, "top_n": self.top_n,
             "max_pairs_per_intent": self.max_pairs_per_intent}, where)
