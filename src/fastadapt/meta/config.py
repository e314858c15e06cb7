"""`MetaConfig`: every meta-learning setting, validated once from parameters (`meta:` block).

Errors name the parameter (`meta.inner_lr`) and the allowed values. The budget, validation and
checkpoint fields carry the names and meaning of `fastadapt.models.training.TrainingConfig`
(max_steps, max_seconds, eval_every, early_stop_patience, checkpoint_every, checkpoint_dir,
seed, device, num_threads, log_every, max_grad_norm), so one vocabulary covers every loop.
`build_learner` and `build_algorithm` turn a config into objects.

    config = MetaConfig.from_params({"algorithm": "maml", "inner_steps": 3, "meta_sgd": True})
    learner = build_learner(load_backbone("minilm-l6"), config)
    algorithm = build_algorithm(learner, config)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastadapt.config import Checks, ConfigError, Settings, is_number
from fastadapt.models.precision import PRECISIONS
from fastadapt.models.training import check_loop_settings

if TYPE_CHECKING:  # pragma: no cover
    from fastadapt.adaptation.lora import LoraSettings
    from fastadapt.meta.algorithm import MetaAlgorithm
    from fastadapt.meta.learner import MetaLearner
    from fastadapt.models.backbones import Backbone

ALGORITHMS = ("protonet", "maml", "fomaml", "reptile", "anil")
INNER_PARAMS = ("all", "head", "lora")
OUTER_OPTIMIZERS = ("adam", "sgd")
POOLINGS = ("mean", "cls")
DISTANCES = ("euclidean", "cosine")


@dataclass
class MetaConfig(Settings):
    algorithm: str = "protonet"
    # learner
    pooling: str = "mean"
    max_length: int = 64
    distance: str = "euclidean"  # ProtoNet's metric: euclidean (Snell et al.) | cosine
    temperature: float = 10.0  # scale of the cosine
    # LoRA adapters in the encoder (needed by inner_params: lora): a `LoraSettings` block, peft's
    # names (r, lora_alpha, lora_dropout, target_modules); null: none.
    lora: LoraSettings | Mapping[str, Any] | None = None
    # inner loop (MAML family and Reptile)
    inner_steps: int = 1
    eval_inner_steps: int | None = None  # steps when adapting at test time (default inner_steps)
    inner_lr: float = 0.01
    inner_params: str | None = None  # all | head | lora; default: head for anil, all otherwise
    meta_sgd: bool = False  # learned per-parameter inner learning rates (Li et al. 2017)
    first_order: bool = False  # fomaml and reptile are first order whatever this says
    gradient_checkpointing: bool = False
    # outer loop
    outer_lr: float = 2e-5
    outer_optimizer: str = "adam"
    meta_batch_size: int = 4
    max_grad_norm: float | None = 1.0
    # episodes
    n_way: int = 5
    k_shot: int = 5
    n_query: int = 10
    sources: dict[str, float] = field(default_factory=dict)  # episode source -> sampling weight
    # budget, meta-validation, checkpoints (TrainingConfig's names)
    max_steps: int = 1000
    max_seconds: float | None = None
    eval_every: int = 50
    eval_episodes: int = 50  # fixed meta-validation episodes, drawn once from the seed
    early_stop_patience: int | None = None
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "auto"  # TrainingConfig's: auto (bf16 autocast where native) | no | bf16 | fp16
    num_threads: int | None = None
    log_every: int = 10

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "meta") -> MetaConfig:
        """Validated settings; a wrong key or value raises `ConfigError` naming `meta.<key>`."""
        return super().from_params(params, where)

    @classmethod
    def from_saved(cls, values: Mapping[str, Any]) -> MetaConfig:
        """The config a saved meta-learner's JSON holds (`asdict`), LoRA block rebuilt. Folders
        written before the LoRA block had `lora_rank` / `lora_alpha` and no adapter dropout."""
        values = dict(values)
        rank, alpha = values.pop("lora_rank", None), values.pop("lora_alpha", None)
        if rank is not None:
            values["lora"] = {"r": rank, "lora_alpha": alpha or 2 * rank, "lora_dropout": 0.0}
        config = cls(**values)
        config.validate("meta")
        return config

    @property
    def head(self) -> str:
        """ProtoNet scores with prototypes; every other algorithm adapts a linear head."""
        return "prototype" if self.algorithm == "protonet" else "linear"

    def validate(self, where: str = "meta") -> None:
        check = Checks(self, where)
        fail, choice, boolean, integer, number = check.fail, check.choice, check.boolean, check.integer, check.number

        choice("algorithm", ALGORITHMS)
        if self.inner_params is None:
            self.inner_params = "head" if self.algorithm == "anil" else "all"
        choice("pooling", POOLINGS)
        choice("distance", DISTANCES)
        choice("inner_params", INNER_PARAMS)
        choice("outer_optimizer", OUTER_OPTIMIZERS)
        choice("mixed_precision", PRECISIONS)
        for key in ("meta_sgd", "first_order", "gradient_checkpointing"):
            boolean(key)
        integer("max_length", 2)
        number("temperature", 0, strict_low=True)
        # Imported here, so that importing the config loads no torch.
        from fastadapt.adaptation.lora import LoraSettings

        if self.lora is not None and not isinstance(self.lora, LoraSettings):
            self.lora = LoraSettings.from_params(self.lora, f"{where}.lora")
        integer("inner_steps", 1)
        integer("eval_inner_steps", 1, optional=True)
        number("inner_lr", 0, strict_low=True)
        number("outer_lr", 0, strict_low=True)
        integer("meta_batch_size", 1)
        number("max_grad_norm", 0, optional=True)
        integer("n_way", 2)
        integer("k_shot", 1)
        integer("n_query", 1)
        integer("eval_episodes", 1)
        check_loop_settings(check)  # max_steps, max_seconds, eval_every, ..., device: as every loop
        if not isinstance(self.sources, Mapping):
            fail("sources", "allowed: a mapping of source name to sampling weight")
        for name, weight in self.sources.items():
            if not is_number(weight) or weight < 0:
                raise ConfigError(f"{where}.sources.{name} is {weight!r}; allowed: a number >= 0")
        if self.sources and sum(self.sources.values()) <= 0:
            fail("sources", "allowed: weights that are not all 0")

        # Combinations.
        if self.meta_sgd and self.algorithm in ("protonet", "reptile"):
            fail("meta_sgd", f"learned inner learning rates need an inner loop with a meta-gradient: "
                             f"algorithm {self.algorithm!r} has none; allowed: false")
        if self.algorithm == "anil" and self.inner_params != "head":
            fail("inner_params", "anil adapts only the head; allowed: head")
        if self.algorithm != "protonet" and self.inner_params == "lora" and self.lora is None:
            fail("inner_params", f"'lora' needs {where}.lora (LoRA adapters in the encoder, e.g. {{r: 4}})")
        if self.algorithm == "maml" and self.first_order:
            fail("first_order", "use algorithm: fomaml for first-order MAML; allowed with maml: false")


def build_learner(backbone: Backbone, config: MetaConfig) -> MetaLearner:
    """The `MetaLearner` a config describes (head from the algorithm)."""
    from fastadapt.meta.learner import MetaLearner

    return MetaLearner(
        backbone, head=config.head, pooling=config.pooling, max_length=config.max_length,
        n_way=config.n_way, distance=config.distance, temperature=config.temperature,
        lora=config.lora, precision=config.mixed_precision,
    )


def build_algorithm(learner: MetaLearner, config: MetaConfig) -> MetaAlgorithm:
    """The algorithm object a config names, with its knobs."""
    from fastadapt.meta.anil import ANIL
    from fastadapt.meta.maml import FOMAML, MAML
    from fastadapt.meta.protonet import ProtoNet
    from fastadapt.meta.reptile import Reptile

    outer = {"outer_lr": config.outer_lr, "outer_optimizer": config.outer_optimizer,
                 "max_grad_norm": config.max_grad_norm}
    if config.algorithm == "protonet":
        return ProtoNet(learner, gradient_checkpointing=config.gradient_checkpointing, **outer)
    inner = {"inner_lr": config.inner_lr, "inner_steps": config.inner_steps,
                 "eval_inner_steps": config.eval_inner_steps, "gradient_checkpointing": config.gradient_checkpointing}
    if config.algorithm == "reptile":
        return Reptile(learner, inner_params=config.inner_params, **inner, **outer)
    if config.algorithm == "anil":
        return ANIL(learner, meta_sgd=config.meta_sgd, first_order=config.first_order, **inner, **outer)
    kind = FOMAML if config.algorithm == "fomaml" else MAML
    return kind(learner, meta_sgd=config.meta_sgd, inner_params=config.inner_params, **inner, **outer)
