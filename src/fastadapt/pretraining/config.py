"""`PretrainingConfig`: the `pretraining:` parameter block, validated, with errors naming the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fastadapt.config import ConfigError
from fastadapt.models.backbones import KNOWN_BACKBONES
from fastadapt.models.distributed import BACKENDS, RDZV_BACKENDS
from fastadapt.models.encoder import POOLINGS
from fastadapt.models.training import TrainingConfig

OBJECTIVES = ("mlm", "contrastive")
WHERE = "pretraining"


@dataclass(frozen=True)
class DistributedConfig:
    """How many processes train together: nproc_per_node x nnodes (1 x 1: in this process)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = "127.0.0.1:29400"
    rdzv_backend: str = "c10d"
    backend: str = "auto"  # auto (nccl on CUDA, else gloo) | gloo | nccl
    max_restarts: int = 0

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = f"{WHERE}.distributed") -> DistributedConfig:
        params = dict(params or {})
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {allowed}")
        config = cls(**params)
        for key, minimum in (("nproc_per_node", 1), ("nnodes", 1), ("node_rank", 0), ("max_restarts", 0)):
            value = getattr(config, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{where}.{key} is {value!r}; allowed: an integer >= {minimum}")
        if config.node_rank >= config.nnodes:
            raise ConfigError(f"{where}.node_rank is {config.node_rank}; allowed: 0 to nnodes-1")
        if config.backend not in BACKENDS:
            raise ConfigError(f"{where}.backend is {config.backend!r}; allowed: {list(BACKENDS)}")
        if config.rdzv_backend not in RDZV_BACKENDS:
            raise ConfigError(f"{where}.rdzv_backend is {config.rdzv_backend!r}; allowed: {list(RDZV_BACKENDS)}")
        if not isinstance(config.rdzv_endpoint, str) or ":" not in config.rdzv_endpoint:
            raise ConfigError(f"{where}.rdzv_endpoint is {config.rdzv_endpoint!r}; allowed: 'host:port'")
        return config


@dataclass(frozen=True)
class PretrainingConfig:
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
    def from_params(cls, params: Mapping[str, Any] | None) -> PretrainingConfig:
        """The settings of `params` (the `pretraining:` block); bad values raise `ConfigError`."""
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"{WHERE} must be a mapping of settings, got {params!r}")
        params = dict(params or {})
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigError(f"{WHERE}: unknown setting(s) {unknown}; allowed: {allowed}")

        backbone = params.get("backbone", cls.backbone)
        if not isinstance(backbone, str) or not (
            backbone in KNOWN_BACKBONES or Path(backbone).is_dir() or _looks_like_hub_id(backbone)
        ):
            raise ConfigError(
                f"{WHERE}.backbone is {backbone!r}; allowed: {list(KNOWN_BACKBONES)}, a local model "
                "directory, or a hub id owner/name (which needs the network)"
            )
        objectives = params.get("objectives", {"mlm": 1.0})
        objectives = validate_objectives(objectives)

        def number(key: str, low: float, high: float, default: float, closed_high: bool = False) -> float:
            value = params.get(key, default)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and low < value and (value <= high if closed_high else value < high)
            if not ok:
                raise ConfigError(f"{WHERE}.{key} is {value!r}; allowed: a number in ({low}, {high}"
                                  f"{']' if closed_high else ')'}")
            return float(value)

        mlm_probability = number("mlm_probability", 0, 1, cls.mlm_probability)
        temperature = number("temperature", 0, math.inf, cls.temperature)
        validation_fraction = params.get("validation_fraction", cls.validation_fraction)
        if (isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float))
                or not 0 <= validation_fraction < 1):
            raise ConfigError(f"{WHERE}.validation_fraction is {validation_fraction!r}; allowed: a number in [0, 1)")
        max_length = params.get("max_length", cls.max_length)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 4:
            raise ConfigError(f"{WHERE}.max_length is {max_length!r}; allowed: an integer >= 4")
        max_texts = params.get("max_texts")
        if max_texts is not None and (isinstance(max_texts, bool) or not isinstance(max_texts, int) or max_texts < 2):
            raise ConfigError(f"{WHERE}.max_texts is {max_texts!r}; allowed: an integer >= 2 or null (every text)")
        whole_word = params.get("whole_word_masking", False)
        if not isinstance(whole_word, bool):
            raise ConfigError(f"{WHERE}.whole_word_masking is {whole_word!r}; allowed: true or false")
        pooling = params.get("pooling", cls.pooling)
        if pooling not in POOLINGS:
            raise ConfigError(f"{WHERE}.pooling is {pooling!r}; allowed: {list(POOLINGS)}")
        backbone_config = params.get("backbone_config") or {}
        if not isinstance(backbone_config, Mapping):
            raise ConfigError(f"{WHERE}.backbone_config is {backbone_config!r}; allowed: a mapping of BERT config keys")
        if backbone_config and backbone != "tiny-bert":
            raise ConfigError(f"{WHERE}.backbone_config sets the size of tiny-bert only; backbone is {backbone!r}")
        return cls(
            backbone=backbone,
            objectives=objectives,
            whole_word_masking=whole_word,
            mlm_probability=mlm_probability,
            temperature=temperature,
            pooling=pooling,
            max_length=max_length,
            validation_fraction=float(validation_fraction),
            max_texts=max_texts,
            backbone_config=dict(backbone_config),
            training=TrainingConfig.from_params(params.get("training"), where=f"{WHERE}.training"),
            distributed=DistributedConfig.from_params(params.get("distributed")),
        )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(part and part.replace("-", "").replace("_", "").replace(".", "").isalnum()
                                   for part in parts)


def validate_objectives(objectives: Any) -> dict[str, float]:
    """{name: weight} with known names and non-negative weights, at least one positive."""
    where = f"{WHERE}.objectives"
    if isinstance(objectives, (list, tuple)):
        objectives = {name: 1.0 for name in objectives}
    if not isinstance(objectives, Mapping) or not objectives:
        raise ConfigError(f"{where} is {objectives!r}; allowed: a mapping of {list(OBJECTIVES)} to weights")
    unknown = sorted(str(name) for name in objectives if name not in OBJECTIVES)
    if unknown:
        raise ConfigError(f"{where}: unknown objective(s) {unknown}; allowed: {list(OBJECTIVES)}")
    weights = {}
    for name, weight in objectives.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{where}.{name} is {weight!r}; allowed: a weight >= 0")
        weights[name] = float(weight)
    if not any(weight > 0 for weight in weights.values()):
        raise ConfigError(f"{where}: every weight is 0; give at least one of {list(OBJECTIVES)} a weight > 0")
    return weights
