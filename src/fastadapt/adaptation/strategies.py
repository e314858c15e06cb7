"""Adaptation strategies: the one vocabulary (`AdaptStrategy`) and their validated settings.

`AdaptStrategy` names every way `fastadapt.adapt.adapt` turns a learner and a support set into a
predictor. Four of them fit an encoder-based model (`FITTED`) and are what the `adaptation`
pipeline runs:

- `finetune_all` (pipeline name `full`): fine-tune every encoder weight together with a linear head;
- `finetune_lora` (`lora`): train LoRA adapters (`fastadapt.adaptation.lora`) and the head, then
  merge the adapters into the encoder weights, so the saved model is a plain encoder again;
- `finetune_head` (`head`): freeze the encoder, compute its features once, train a linear head;
- `prototype`: no gradient at all; one prototype per class (the mean of its support features),
  scored by cosine similarity or negative squared Euclidean distance (Snell et al. 2017).

The pipeline names are the strategies' `short` names, the suffix of model names
(`minilm_head`); `AdaptStrategy.parse` is the one place that maps them, so YAML may use either.
`AdaptationConfig` is one strategy with its settings (what `fit_classifier` / `fit_tagger` take);
`AdaptationPlan` is the whole `adaptation:` parameter block: the backbone, which strategies run
on which domain, on the full train split and on the k-shot sets. Errors name the parameter and
the allowed values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from fastadapt.adaptation.lora import LoraSettings
from fastadapt.config import (
    Checks,
    ConfigError,
    DomainConfig,
    Settings,
    check_keys,
    deep_merge,
)

log = logging.getLogger(__name__)


class AdaptStrategy(str, Enum):
    """How `fastadapt.adapt.adapt` adapts a learner to a support set (see its module docstring)."""

    PROTOTYPE = "prototype"
    META = "meta"
    FINETUNE_HEAD = "finetune_head"
    FINETUNE_ALL = "finetune_all"
    FINETUNE_LORA = "finetune_lora"
    NNSHOT = "nnshot"
    STRUCTSHOT = "structshot"
    TFIDF = "tfidf"

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """The adaptation pipeline's name, the suffix of its model names (`full`, `lora`, `head`)."""
        return _SHORT.get(self.value, self.value)

    @classmethod
    def parse(cls, value: Any, where: str, allowed: Sequence[AdaptStrategy] | None = None,
              short_names: bool = False) -> AdaptStrategy:
        """The strategy `value` names (also by its short name when `short_names`), or `ConfigError`
        naming `where` and the allowed values."""
        allowed = tuple(cls) if allowed is None else tuple(allowed)
        for strategy in allowed:
            if value == strategy.value or (short_names and value == strategy.short):
                return strategy
        if short_names:
            names = f"{[s.short for s in allowed]} (or by name: {[s.value for s in allowed if s.short != s.value]})"
        else:
            names = str([s.value for s in allowed])
        raise ConfigError(f"{where} is {value!r}; allowed: {names}")


_SHORT = {"finetune_all": "full", "finetune_lora": "lora", "finetune_head": "head"}
STRATEGIES = tuple(s.value for s in AdaptStrategy)
# The strategies that fit an encoder model (fit_classifier / fit_tagger), in the pipeline's order.
FITTED = (AdaptStrategy.FINETUNE_ALL, AdaptStrategy.FINETUNE_LORA, AdaptStrategy.FINETUNE_HEAD,
          AdaptStrategy.PROTOTYPE)
PIPELINE_STRATEGIES = tuple(s.short for s in FITTED)  # full, lora, head, prototype
# Strategies that never change the encoder: their features can be computed once per domain.
FROZEN_STRATEGIES = (AdaptStrategy.FINETUNE_HEAD, AdaptStrategy.PROTOTYPE)
# Strategies whose fit runs torch optimisation (the nodes that run them are tagged `gpu`).
TRAINED_STRATEGIES = (AdaptStrategy.FINETUNE_ALL, AdaptStrategy.FINETUNE_LORA, AdaptStrategy.FINETUNE_HEAD)
METRICS = ("cosine", "euclidean")
POOLINGS = ("mean", "cls")
HEAD_INITS = ("random", "prototype")
KNOWN_BACKBONE_SHORT = {"minilm-l6": "minilm", "tiny-bert": "tinybert", "pretrained": "pretrained"}

_COMMON_KEYS = {"pooling", "normalize", "max_length", "batch_size", "device", "label_names"}
_TRAINED_KEYS = _COMMON_KEYS | {"casing", "head_init", "metric", "temperature", "dropout", "training",
                                "kshot_training"}  # casing: NER only (adaptation.ner.casing_features)
_STRATEGY_KEYS = {
    AdaptStrategy.PROTOTYPE: _COMMON_KEYS | {"metric", "temperature", "contrastive"},
    AdaptStrategy.FINETUNE_HEAD: _TRAINED_KEYS | {"contrastive"},
    AdaptStrategy.FINETUNE_ALL: _TRAINED_KEYS | {"token_contrastive"},
    AdaptStrategy.FINETUNE_LORA: _TRAINED_KEYS | {"lora", "token_contrastive"},
}


def _mapping(value: Any, where: str) -> dict[str, Any]:
    """`value` as a dict (None: empty); anything but a mapping raises `ConfigError` naming `where`."""
    return check_keys(value, list(value) if isinstance(value, Mapping) else [], where)


@dataclass(frozen=True)
class AdaptationConfig(Settings):
    """One strategy and its settings.

    strategy: full | lora | head | prototype.
    metric, temperature: prototype scoring; cosine logits are `temperature * cos`, Euclidean
        logits are `-||x - prototype||^2` (temperature unused).
    pooling: mean | cls, how token states become a text's feature vector.
    normalize: L2-normalise features before the head (default: yes for head and prototype,
        whose features come from the frozen encoder; no for full and lora).
    max_length: subword tokens per text (longer texts are truncated; NER words past it get no
        emission of their own and are decoded from the transitions).
    batch_size: inference batch size (feature extraction and prediction).
    dropout: dropout before the linear head (full, lora, head).
    lora: `LoraSettings` (lora only).
    training: a `TrainingConfig` for the optimisation (full, lora, head); None for prototype.
    device: where features and predictions are computed (auto | cpu | cuda[:N]).
    head_init: random | prototype (full, lora, head). `prototype` starts the linear head as the
        prototype classifier of the support set under `metric` and `temperature` (cosine: weights
        `temperature * normalised class means` on normalised features; Euclidean: weights
        `2 * mean`, bias `-||mean||^2`), so training starts from what the (meta-learned) metric
        already knows instead of from chance (Triantafillou et al. 2020, "Proto-MAML").
    label_names: add each class name as one more support text where the label is words
        (`card_arrival` -> "card arrival"; `fastadapt.tasks.meta_episodes.label_text`).
    casing: NER taggers (full, lora, head) read each word's casing beside its state; MiniLM is
        lower-cased, so otherwise `Apple` and `apple` look alike.
    contrastive: a `ContrastiveSettings` block (head, prototype; text classifiers): SetFit's
        contrastive step tunes a copy of the encoder on support pairs before the head is fitted
        (`fastadapt.adaptation.contrastive`); None: the encoder stays as it is.
    token_contrastive: a `TokenContrastiveSettings` block (full, lora; NER taggers): CONTaiNER's
        contrastive token objective added to the head's cross-entropy
        (`fastadapt.adaptation.container`); None: cross-entropy alone.
    """

    strategy: AdaptStrategy = AdaptStrategy.PROTOTYPE
    metric: str = "cosine"
    temperature: float = 10.0
    pooling: str = "mean"
    normalize: bool | None = None
    max_length: int = 256
    batch_size: int = 64
    dropout: float = 0.1
    lora: LoraSettings = field(default_factory=LoraSettings)
    training: Any = None
    device: str = "auto"
    head_init: str = "random"
    label_names: bool = False
    casing: bool = False
    contrastive: Any = None  # ContrastiveSettings | None
    token_contrastive: Any = None  # TokenContrastiveSettings | None

    def __post_init__(self) -> None:  # `AdaptationConfig(strategy="head")` in code means the same
        object.__setattr__(self, "strategy", AdaptStrategy.parse(self.strategy, "strategy", FITTED, short_names=True))

    @property
    def normalize_features(self) -> bool:
        if self.normalize is None and self.head_init == "prototype":
            return self.metric == "cosine"  # the cosine prototype rule is linear in normalised features
        return self.frozen_encoder if self.normalize is None else bool(self.normalize)

    @property
    def frozen_encoder(self) -> bool:
        return self.strategy in FROZEN_STRATEGIES

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "adaptation.strategy",
                    training_key: str = "training") -> AdaptationConfig:
        """`params` holds `strategy` and that strategy's settings; `training_key` picks which
        training block becomes `training` (`kshot_training` is merged over `training`)."""
        values = check_keys(params, [*(f.name for f in fields(cls)), "kshot_training"], where)
        strategy = AdaptStrategy.parse(values.pop("strategy", None), f"{where}.strategy", FITTED, short_names=True)
        unknown = sorted(set(values) - _STRATEGY_KEYS[strategy])
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: "
                              f"{sorted(_STRATEGY_KEYS[strategy])} (for strategy '{strategy.short}')")
        if "lora" in values:
            values["lora"] = LoraSettings.from_params(values["lora"], f"{where}.lora")
        if values.get("contrastive") is not None:
            from fastadapt.adaptation.contrastive import ContrastiveSettings

            values["contrastive"] = ContrastiveSettings.from_params(values["contrastive"], f"{where}.contrastive")
        if values.get("token_contrastive") is not None:
            from fastadapt.adaptation.container import TokenContrastiveSettings

            values["token_contrastive"] = TokenContrastiveSettings.from_params(values["token_contrastive"],
                                                                               f"{where}.token_contrastive")
        kshot = values.pop("kshot_training", None)
        if strategy in TRAINED_STRATEGIES:
            from fastadapt.models.training import TrainingConfig

            block = _mapping(values.get("training"), f"{where}.training")
            values["training"] = TrainingConfig.from_params(block, f"{where}.training")
            if kshot is not None or training_key == "kshot_training":
                # Checked in both cases, so a bad k-shot budget fails before any fit starts.
                merged = {**block, **_mapping(kshot, f"{where}.kshot_training")}
                kshot_config = TrainingConfig.from_params(merged, f"{where}.kshot_training")
                values["training"] = kshot_config if training_key == "kshot_training" else values["training"]
        settings = cls(strategy=strategy, **values)
        settings.validate(where)
        return settings

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.choice("metric", METRICS)
        check.number("temperature", 0, strict_low=True)
        check.choice("pooling", POOLINGS)
        check.choice("normalize", (None, True, False))
        check.integer("max_length", 2)
        check.integer("batch_size", 1)
        check.number("dropout", 0, 1, strict_high=False)
        check.device()
        check.choice("head_init", HEAD_INITS)
        check.boolean("label_names")
        check.boolean("casing")


@dataclass(frozen=True)
class DomainPlan:
    """What the adaptation pipeline runs for one domain."""

    domain: str
    kind: str
    full_data: tuple[AdaptStrategy, ...]
    kshot: tuple[AdaptStrategy, ...]
    configs: dict[AdaptStrategy, AdaptationConfig]        # settings for the full train split
    kshot_configs: dict[AdaptStrategy, AdaptationConfig]  # settings for the k-shot sets
    kshot_ks: tuple[int, ...] | None = None     # None: every k in `<domain>.kshot_sets`
    kshot_seeds: tuple[int, ...] | None = None

    @property
    def uses_frozen_features(self) -> bool:
        return any(s in FROZEN_STRATEGIES for s in (*self.full_data, *self.kshot))

    def kshot_sets_to_fit(self, train: pd.DataFrame, kshot_sets: pd.DataFrame) -> list[tuple[int, int, list[int]]]:
        """(k, seed, row ids) of every k-shot set to fit: those of `<domain>.kshot_sets`, filtered by
        `adaptation.kshot_sets`; a (k, seed) the table lacks is drawn from the train split here."""
        from fastadapt.tasks.kshot import KShotError, draw_kshot, draw_ner_kshot

        available = {(int(k), int(seed)): group["row_id"].astype(int).tolist()
                     for (k, seed), group in kshot_sets.groupby(["k", "seed"], sort=True)}
        ks = self.kshot_ks or sorted({k for k, _ in available})
        seeds = self.kshot_seeds or sorted({s for _, s in available})
        chosen = []
        for k in ks:
            for seed in seeds:
                if (k, seed) in available:
                    chosen.append((k, seed, available[(k, seed)]))
                    continue
                try:
                    ids = draw_ner_kshot(train, k, seed) if self.kind == "ner" else draw_kshot(train, k, seed)
                except KShotError as error:
                    raise KShotError(f"adaptation.kshot_sets.ks asks for k={k} on domain '{self.domain}': "
                                     f"{error}") from None
                chosen.append((k, seed, ids))
        return chosen


@dataclass(frozen=True)
class KShotSets(Settings):
    """Which k-shot sets to fit (`adaptation.kshot_sets`); null: every k / seed of the table."""

    ks: list[int] | None = None
    seeds: list[int] | None = None

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        for key, low in (("ks", 1), ("seeds", 0)):
            check.integers(key, low, optional=True)
            if getattr(self, key) is not None:
                object.__setattr__(self, key, tuple(getattr(self, key)))


def _strategy_list(where: str, value: Any) -> tuple[AdaptStrategy, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of strategies from {list(PIPELINE_STRATEGIES)}; got {value!r}")
    strategies = tuple(AdaptStrategy.parse(name, f"{where}[{i}]", FITTED, short_names=True)
                       for i, name in enumerate(value))
    if len(set(strategies)) != len(strategies):
        raise ConfigError(f"{where} lists a strategy twice: {list(value)}")
    return strategies


def backbone_short_name(backbone: str) -> str:
    """The backbone's part of model names: minilm, tinybert, pretrained or the folder's name."""
    if backbone in KNOWN_BACKBONE_SHORT:
        return KNOWN_BACKBONE_SHORT[backbone]
    short = re.sub(r"[^0-9a-zA-Z]+", "", Path(str(backbone)).name).lower()
    return short or "encoder"


_RUN_KEYS = ("full_data", "kshot")
_DOMAIN_KEYS = (*_RUN_KEYS, "strategies", "kshot_sets")
_SHARED_KEYS = ("pooling", "max_length", "batch_size", "device")  # set once for every strategy


@dataclass(frozen=True)
class AdaptationPlan(Settings):
    """The `adaptation:` parameter block; `for_domains` validates it against the domains.

    pooling, max_length, batch_size, device: set for every strategy (null: each strategy's own).
    strategies: settings per strategy (`AdaptationConfig`), keyed by pipeline name (full, lora,
        head, prototype). runs: per task kind, the strategies of the full-data and k-shot fits.
    domains: per-domain overrides (full_data, kshot, kshot_sets, strategies.<strategy>.<key>).
    """

    REQUIRED_IN: ClassVar[str | None] = "conf/base/parameters_adaptation.yml"

    backbone: str = "minilm-l6"
    backbone_short: str | None = None  # null: derived from the backbone (`backbone_short_name`)
    pooling: str | None = None
    max_length: int | None = None
    batch_size: int | None = None
    device: str | None = None
    num_threads: int | None = None
    strategies: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    domains: dict[str, Any] = field(default_factory=dict)
    kshot_sets: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "adaptation") -> AdaptationPlan:
        return super().from_params(params, where)

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.text("backbone")
        if self.backbone_short is None:
            object.__setattr__(self, "backbone_short", backbone_short_name(self.backbone))
        if not isinstance(self.backbone_short, str) or not re.fullmatch(r"[a-z0-9]+", self.backbone_short):
            check.fail("backbone_short", "allowed: lower-case letters and digits, or null")
        check.integer("num_threads", 1, optional=True)
        for key in ("strategies", "runs", "domains", "kshot_sets"):
            object.__setattr__(self, key, _mapping(getattr(self, key), f"{where}.{key}"))
        for name in self.strategies:
            AdaptStrategy.parse(name, f"{where}.strategies key", FITTED, short_names=True)
        check_keys(self.runs, ("text_classification", "ner"), f"{where}.runs")
        object.__setattr__(self, "kshot_sets", KShotSets.from_params(self.kshot_sets, f"{where}.kshot_sets"))

    def model_name(self, strategy: AdaptStrategy) -> str:
        """`<backbone_short>_<strategy's short name>`, e.g. minilm_head: what the catalog names."""
        return f"{self.backbone_short}_{AdaptStrategy.parse(strategy, 'strategy', FITTED, short_names=True).short}"

    def for_domains(self, domains: Mapping[str, DomainConfig], where: str = "adaptation") -> dict[str, DomainPlan]:
        """What runs on each domain; an override of a domain not in `domains` is only logged, so
        a project (or a test) with other domains keeps the shipped overrides."""
        unknown = sorted(set(self.domains) - set(domains))
        if unknown:
            log.warning("%s.domains names %s, which are not in `domains:` (%s); ignored", where, unknown,
                        sorted(domains))
        return {name: self._domain_plan(name, domain, where) for name, domain in domains.items()}

    def _domain_plan(self, name: str, domain: DomainConfig, where: str) -> DomainPlan:
        run = check_keys(self.runs.get(domain.kind), _RUN_KEYS, f"{where}.runs.{domain.kind}")
        here = f"{where}.domains.{name}"
        override = check_keys(self.domains.get(name), _DOMAIN_KEYS, here)
        full_data, kshot = (
            _strategy_list(f"{here}.{key}" if key in override else f"{where}.runs.{domain.kind}.{key}",
                           override.get(key, run.get(key)))
            for key in _RUN_KEYS
        )
        local = _mapping(override.get("strategies"), f"{here}.strategies")
        local = {AdaptStrategy.parse(key, f"{here}.strategies key", FITTED, short_names=True): (key, value)
                 for key, value in local.items()}
        shared = {key: getattr(self, key) for key in _SHARED_KEYS if getattr(self, key) is not None}
        configs, kshot_configs = {}, {}
        for strategy in sorted(set(full_data) | set(kshot)):
            key, own = local.get(strategy, (None, None))
            path = f"{here}.strategies.{key}" if key is not None else f"{where}.strategies.{strategy.short}"
            base = next((v for k, v in self.strategies.items()
                         if AdaptStrategy.parse(k, where, FITTED, short_names=True) is strategy), None)
            settings = deep_merge(_mapping(base, f"{where}.strategies.{strategy.short}"), _mapping(own, path))
            merged = {"strategy": strategy, **shared, **settings}
            if strategy in full_data:
                configs[strategy] = AdaptationConfig.from_params(merged, path)
            if strategy in kshot:
                kshot_configs[strategy] = AdaptationConfig.from_params(merged, path, "kshot_training")
        frozen = {(c.pooling, c.max_length) for c in (*configs.values(), *kshot_configs.values()) if c.frozen_encoder}
        if domain.kind == "text_classification" and len(frozen) > 1:
            raise ConfigError(
                f"{where}: head and prototype share {name}'s cached features, so their pooling and "
                f"max_length must agree; got {sorted(frozen)} (set them once, under `{where}:`)"
            )
        sets = KShotSets.from_params(override["kshot_sets"], f"{here}.kshot_sets") if "kshot_sets" in override \
            else self.kshot_sets
        return DomainPlan(domain=name, kind=domain.kind, full_data=full_data, kshot=kshot, configs=configs,
                          kshot_configs=kshot_configs, kshot_ks=sets.ks, kshot_seeds=sets.seeds)


__all__ = [
    "FITTED", "FROZEN_STRATEGIES", "METRICS", "PIPELINE_STRATEGIES", "STRATEGIES", "TRAINED_STRATEGIES",
    "AdaptStrategy", "AdaptationConfig", "AdaptationPlan", "DomainPlan", "KShotSets", "LoraSettings",
    "backbone_short_name",
]
