"""`PretrainingConfig`: the `pretraining:` parameter block, validated, with errors naming the key.

`DistributedConfig` (its `distributed:` sub-block) lives beside `run_distributed` and is re-exported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fastadapt.config import Checks, ConfigError, Settings, check_keys, is_number
from fastadapt.models.backbones import KNOWN_BACKBONES
from fastadapt.models.distributed import DistributedConfig
from fastadapt.models.encoder import POOLINGS
from fastadapt.models.training import TrainingConfig

__all__ = ["OBJECTIVES", "DistributedConfig", "PretrainingConfig", "validate_objectives"]

OBJECTIVES = ("mlm", "contrastive")
WHERE = "pretraining"


@dataclass(frozen=True)
class PretrainingConfig(Settings):
    """Self-supervised pretraining of a backbone on the unlabelled pool.

    objectives: weights of the losses (mlm: masked-LM, contrastive: SimCSE with dropout views
    and in-batch negatives); a weight of 0 switches an objective off, at least one must be on.
    """

    backbone: str = "minilm-l6"
    objectives: dict[str, float] = field(default_factory=lambda: {"mlm": 1.0})
    whole_word_masking: bool = False
    mlm_probability: float = 0.15
    temperature: float = 0.05
    pooling: str = "mean"  # sentence vector for the contrastive loss
    max_length: int = 64
    validation_fraction: float = 0.05
    max_texts: int | None = None  # a cap on the pool (quick runs); None: every text
    backbone_config: dict[str, Any] = field(default_factory=dict)  # tiny-bert size overrides
    training: TrainingConfig = field(default_factory=TrainingConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    @property
    def active_objectives(self) -> dict[str, float]:
        return {name: weight for name, weight in self.objectives.items() if weight > 0}

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = WHERE) -> PretrainingConfig:
        """The settings of `params` (the `pretraining:` block); bad values raise `ConfigError`."""
        values = check_keys(params, [f.name for f in fields(cls)], where)
        values["training"] = TrainingConfig.from_params(values.get("training"), where=f"{where}.training")
        values["distributed"] = DistributedConfig.from_params(values.get("distributed"), where=f"{where}.distributed")
        if "objectives" in values:
            values["objectives"] = validate_objectives(values["objectives"], f"{where}.objectives")
        if values.get("backbone_config") is None:
            values.pop("backbone_config", None)
        config = super().from_params(values, where)
        # YAML `1` -> 1.0 once checked, so that the checkpoint fingerprint does not depend on it.
        return dataclasses.replace(config, **{key: float(getattr(config, key))
                                              for key in ("mlm_probability", "temperature", "validation_fraction")})

    def validate(self, where: str = WHERE) -> None:
        check = Checks(self, where)
        if not isinstance(self.backbone, str) or not (
            self.backbone in KNOWN_BACKBONES or Path(self.backbone).is_dir() or _looks_like_hub_id(self.backbone)
        ):
            check.fail("backbone", f"allowed: {list(KNOWN_BACKBONES)}, a local model directory, or a hub id "
                                   "owner/name (which needs the network)")
        validate_objectives(self.objectives, f"{where}.objectives")
        check.number("mlm_probability", 0, 1, strict_low=True)
        check.number("temperature", 0, strict_low=True)
        check.number("validation_fraction", 0, 1)
        check.integer("max_length", 4)
        check.integer("max_texts", 2, optional=True)
        check.boolean("whole_word_masking")
        check.choice("pooling", POOLINGS)
        if not isinstance(self.backbone_config, Mapping):
            check.fail("backbone_config", "allowed: a mapping of BERT config keys")
        if self.backbone_config and self.backbone != "tiny-bert":
            check.fail("backbone_config", f"sets the size of tiny-bert only; backbone is {self.backbone!r}")
        self.training.validate(f"{where}.training")
        self.distributed.validate(f"{where}.distributed")


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(part and part.replace("-", "").replace("_", "").replace(".", "").isalnum()
                                   for part in parts)


def validate_objectives(objectives: Any, where: str = f"{WHERE}.objectives") -> dict[str, float]:
    """{name: weight} with known names and non-negative weights, at least one positive."""
    if isinstance(objectives, (list, tuple)):
        objectives = {name: 1.0 for name in objectives}
    if not isinstance(objectives, Mapping) or not objectives:
        raise ConfigError(f"{where} is {objectives!r}; allowed: a mapping of {list(OBJECTIVES)} to weights")
    unknown = sorted(str(name) for name in objectives if name not in OBJECTIVES)
    if unknown:
        raise ConfigError(f"{where}: unknown objective(s) {unknown}; allowed: {list(OBJECTIVES)}")
    weights = {}
    for name, weight in objectives.items():
        if not is_number(weight) or weight < 0:
            raise ConfigError(f"{where}.{name} is {weight!r}; allowed: a weight >= 0")
        weights[name] = float(weight)
    if not any(weight > 0 for weight in weights.values()):
        raise ConfigError(f"{where}: every weight is 0; give at least one of {list(OBJECTIVES)} a weight > 0")
    return weights
