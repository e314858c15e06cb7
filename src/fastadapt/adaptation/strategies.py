"""Adaptation strategies as validated settings objects, built once from parameters.

A strategy says how a backbone becomes a task model from labelled support data:

- `full`: fine-tune every encoder weight together with a linear head;
- `lora`: train low-rank adapters (peft `LoraConfig`) and the head, then merge the adapters into
  the encoder weights for inference, so the saved model is a plain encoder again;
- `head`: freeze the encoder, compute its features once, train a linear head on them;
- `prototype`: no gradient at all; one prototype per class (the mean of its support features),
  scored by cosine similarity or negative squared Euclidean distance (Snell et al. 2017).

`AdaptationConfig` is one strategy with its settings (the object `adapt(config, backbone,
support)` takes); `AdaptationPlan` is the whole `adaptation:` parameter block: the backbone, which
strategies run on which domain, on the full train split and on the k-shot sets. Errors name the
parameter and the allowed values.
"""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastadapt.config import ConfigError, DomainConfig, deep_merge

log = logging.getLogger(__name__)

STRATEGIES = ("full", "lora", "head", "prototype")
METRICS = ("cosine", "euclidean")
POOLINGS = ("mean", "cls")
# Strategies that never change the encoder: their features can be computed once per domain.
FROZEN_STRATEGIES = ("head", "prototype")
# Strategies whose fit runs torch optimisation (the nodes that run them are tagged `gpu`).
TRAINED_STRATEGIES = ("full", "lora", "head")
KNOWN_BACKBONE_SHORT = {"minilm-l6": "minilm", "tiny-bert": "tinybert", "pretrained": "pretrained"}

_COMMON_KEYS = {"pooling", "normalize", "max_length", "batch_size", "device", "label_names"}
HEAD_INITS = ("random", "prototype")
_CASING_KEYS = {"casing"}  # NER only: the head reads each word's casing (fastadapt.adaptation.ner.casing_features)
_INIT_KEYS = {"head_init", "metric", "temperature"}
_STRATEGY_KEYS = {
    "prototype": _COMMON_KEYS | {"metric", "temperature"},
    "head": _COMMON_KEYS | _CASING_KEYS | _INIT_KEYS | {"dropout", "training", "kshot_training"},
    "full": _COMMON_KEYS | _CASING_KEYS | _INIT_KEYS | {"dropout", "training", "kshot_training"},
    "lora": _COMMON_KEYS | _CASING_KEYS | _INIT_KEYS | {"dropout", "training", "kshot_training", "lora"},
}


def _check_number(where: str, value: Any, *, integer: bool, low: float, strict: bool,
                  high: float | None = None) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > low if strict else value >= low)
    ok = ok and (high is None or value <= high)
    if not ok:
        what = "an integer" if integer else "a number"
        bound = f"> {low}" if strict else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ConfigError(f"{where} must be {what} {bound}; got {value!r}")


def _check_choice(where: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{where} is {value!r}; allowed: {list(allowed)}")


def _check_mapping(where: str, value: Any) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings; got {value!r}")
    return value


def _check_keys(where: str, params: Mapping, allowed: set[str], hint: str = "") -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(allowed)}{hint}")


def training_config(params: Mapping[str, Any] | None, where: str):
    """A `TrainingConfig` from `params`; errors name `<where>.<key>` and the allowed values."""
    from fastadapt.models.training import TrainingConfig

    return TrainingConfig.from_params(dict(_check_mapping(where, params)), where=where)


@dataclass(frozen=True)
class LoraSettings:
    """peft `LoraConfig` options: rank, scaling alpha, dropout, which linear layers get adapters."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    # BERT-family names (MiniLM and tiny-bert are BERT models); "all-linear" is peft's shortcut.
    target_modules: tuple[str, ...] | str = ("query", "value")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> LoraSettings:
        params = _check_mapping(where, params)
        _check_keys(where, params, {"r", "alpha", "dropout", "target_modules"})
        settings = cls(**{k: v for k, v in params.items() if k != "target_modules"})
        _check_number(f"{where}.r", settings.r, integer=True, low=1, strict=False)
        _check_number(f"{where}.alpha", settings.alpha, integer=False, low=0, strict=True)
        _check_number(f"{where}.dropout", settings.dropout, integer=False, low=0, strict=False, high=1)
        targets = params.get("target_modules", cls.target_modules)
        if isinstance(targets, str):
            if targets != "all-linear":
                raise ConfigError(
                    f"{where}.target_modules must be a list of module names (e.g. [query, value]) "
                    f"or 'all-linear'; got {targets!r}"
                )
        elif not (
            isinstance(targets, (list, tuple)) and targets
            and all(isinstance(t, str) and t for t in targets)
        ):
            raise ConfigError(
                f"{where}.target_modules must be a non-empty list of module names or 'all-linear'; "
                f"got {targets!r}"
            )
        else:
            targets = tuple(targets)
        return replace(settings, target_modules=targets)

    def peft_config(self):
        from peft import LoraConfig

        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=targets, bias="none")


@dataclass(frozen=True)
class AdaptationConfig:
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
    """

    strategy: str = "prototype"
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

    @property
    def normalize_features(self) -> bool:
        if self.normalize is None and self.head_init == "prototype":
            return self.metric == "cosine"  # the cosine prototype rule is linear in normalised features
        return self.strategy in FROZEN_STRATEGIES if self.normalize is None else bool(self.normalize)

    @property
    def frozen_encoder(self) -> bool:
        return self.strategy in FROZEN_STRATEGIES

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], where: str = "adaptation.strategy", training_key: str = "training"
    ) -> AdaptationConfig:
        """`params` holds `strategy` and that strategy's settings; `training_key` picks which
        training block becomes `training` (`kshot_training` is merged over `training`)."""
        params = _check_mapping(where, params)
        strategy = params.get("strategy")
        if strategy not in STRATEGIES:
            raise ConfigError(f"{where}.strategy is {strategy!r}; allowed: {list(STRATEGIES)}")
        settings = {k: v for k, v in params.items() if k != "strategy"}
        _check_keys(where, settings, _STRATEGY_KEYS[strategy],
                    hint=f" (for strategy '{strategy}')")
        metric = settings.get("metric", cls.metric)
        _check_choice(f"{where}.metric", metric, METRICS)
        temperature = settings.get("temperature", cls.temperature)
        _check_number(f"{where}.temperature", temperature, integer=False, low=0, strict=True)
        pooling = settings.get("pooling", cls.pooling)
        _check_choice(f"{where}.pooling", pooling, POOLINGS)
        normalize = settings.get("normalize")
        if normalize not in (None, True, False):
            raise ConfigError(f"{where}.normalize must be true, false or null; got {normalize!r}")
        max_length = settings.get("max_length", cls.max_length)
        _check_number(f"{where}.max_length", max_length, integer=True, low=2, strict=False)
        batch_size = settings.get("batch_size", cls.batch_size)
        _check_number(f"{where}.batch_size", batch_size, integer=True, low=1, strict=False)
        dropout = settings.get("dropout", cls.dropout)
        _check_number(f"{where}.dropout", dropout, integer=False, low=0, strict=False, high=1)
        device = settings.get("device", cls.device)
        if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", device):
            raise ConfigError(f"{where}.device is {device!r}; allowed: auto, cpu, cuda, cuda:N")
        lora = LoraSettings.from_params(settings.get("lora"), f"{where}.lora")
        head_init = settings.get("head_init", cls.head_init)
        _check_choice(f"{where}.head_init", head_init, HEAD_INITS)
        label_names = settings.get("label_names", cls.label_names)
        if not isinstance(label_names, bool):
            raise ConfigError(f"{where}.label_names must be true or false; got {label_names!r}")
        casing = settings.get("casing", False)
        if casing not in (True, False):
            raise ConfigError(f"{where}.casing must be true or false; got {casing!r}")
        training = None
        if strategy in TRAINED_STRATEGIES:
            block = dict(_check_mapping(f"{where}.training", settings.get("training")))
            training = training_config(block, f"{where}.training")
            if "kshot_training" in settings or training_key == "kshot_training":
                # Checked in both cases, so a bad k-shot budget fails before any fit starts.
                extra = _check_mapping(f"{where}.kshot_training", settings.get("kshot_training"))
                kshot = training_config({**block, **extra}, f"{where}.kshot_training")
                training = kshot if training_key == "kshot_training" else training
        return cls(strategy=strategy, metric=metric, temperature=float(temperature), pooling=pooling,
                   normalize=normalize, max_length=int(max_length), batch_size=int(batch_size),
                   dropout=float(dropout), lora=lora, training=training, device=device, head_init=head_init,
                   label_names=label_names, casing=bool(casing))


@dataclass(frozen=True)
class DomainPlan:
    """What the adaptation pipeline runs for one domain."""

    domain: str
    kind: str
    full_data: tuple[str, ...]
    kshot: tuple[str, ...]
    configs: dict[str, AdaptationConfig]        # strategy -> settings for the full train split
    kshot_configs: dict[str, AdaptationConfig]  # strategy -> settings for the k-shot sets
    kshot_ks: tuple[int, ...] | None = None     # None: every k in `<domain>.kshot_sets`
    kshot_seeds: tuple[int, ...] | None = None

    @property
    def uses_frozen_features(self) -> bool:
        return any(s in FROZEN_STRATEGIES for s in (*self.full_data, *self.kshot))


_PLAN_KEYS = {"backbone", "backbone_short", "pooling", "max_length", "batch_size", "device",
              "num_threads", "strategies", "runs", "domains", "kshot_sets"}
_RUN_KEYS = {"full_data", "kshot"}
_DOMAIN_KEYS = _RUN_KEYS | {"strategies", "kshot_sets"}


def _strategy_list(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of strategies from {list(STRATEGIES)}; got {value!r}")
    for strategy in value:
        if strategy not in STRATEGIES:
            raise ConfigError(f"{where} names strategy {strategy!r}; allowed: {list(STRATEGIES)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where} lists a strategy twice: {list(value)}")
    return tuple(value)


def _int_list(where: str, value: Any, low: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} must be a non-empty list of integers or null; got {value!r}")
    for item in value:
        _check_number(where, item, integer=True, low=low, strict=False)
    return tuple(int(v) for v in value)


def backbone_short_name(backbone: str) -> str:
    """The backbone's part of model names: minilm, tinybert, pretrained or the folder's name."""
    if backbone in KNOWN_BACKBONE_SHORT:
        return KNOWN_BACKBONE_SHORT[backbone]
    short = re.sub(r"[^0-9a-zA-Z]+", "", Path(str(backbone)).name).lower()
    return short or "encoder"


@dataclass(frozen=True)
class AdaptationPlan:
    """The `adaptation:` parameter block, validated against the domains."""

    backbone: str
    backbone_short: str
    num_threads: int | None
    domains: dict[str, DomainPlan]

    def model_name(self, strategy: str) -> str:
        return f"{self.backbone_short}_{strategy}"

    @classmethod
    def from_params(cls, params: Mapping[str, Any], domains: Mapping[str, DomainConfig],
                    where: str = "adaptation") -> AdaptationPlan:
        params = _check_mapping(where, params)
        if not params:
            raise ConfigError(f"parameters have no `{where}:` block; see conf/base/parameters_adaptation.yml")
        _check_keys(where, params, _PLAN_KEYS)
        backbone = params.get("backbone", "minilm-l6")
        if not isinstance(backbone, str) or not backbone:
            raise ConfigError(
                f"{where}.backbone must be minilm-l6, tiny-bert, pretrained or a model directory; got {backbone!r}"
            )
        short = params.get("backbone_short") or backbone_short_name(backbone)
        if not re.fullmatch(r"[a-z0-9]+", str(short)):
            raise ConfigError(f"{where}.backbone_short must be lower-case letters and digits; got {short!r}")
        num_threads = params.get("num_threads")
        if num_threads is not None:
            _check_number(f"{where}.num_threads", num_threads, integer=True, low=1, strict=False)
        shared = {key: params[key] for key in ("pooling", "max_length", "batch_size", "device") if key in params}
        strategies = _check_mapping(f"{where}.strategies", params.get("strategies"))
        for name in strategies:
            if name not in STRATEGIES:
                raise ConfigError(f"{where}.strategies has {name!r}; allowed strategies: {list(STRATEGIES)}")
        runs = _check_mapping(f"{where}.runs", params.get("runs"))
        for kind in runs:
            if kind not in ("text_classification", "ner"):
                raise ConfigError(f"{where}.runs has {kind!r}; allowed: ['text_classification', 'ner']")
        kshot_block = _check_mapping(f"{where}.kshot_sets", params.get("kshot_sets"))
        _check_keys(f"{where}.kshot_sets", kshot_block, {"ks", "seeds"})
        overrides = _check_mapping(f"{where}.domains", params.get("domains"))
        unknown = sorted(set(overrides) - set(domains))
        if unknown:
            # Not an error: a project (or a test) with other domains keeps the shipped overrides.
            log.warning("%s.domains names %s, which are not in `domains:` (%s); ignored", where, unknown,
                        sorted(domains))

        plans = {}
        for name, domain in domains.items():
            run = _check_mapping(f"{where}.runs.{domain.kind}", runs.get(domain.kind))
            _check_keys(f"{where}.runs.{domain.kind}", run, _RUN_KEYS)
            override = _check_mapping(f"{where}.domains.{name}", overrides.get(name))
            _check_keys(f"{where}.domains.{name}", override, _DOMAIN_KEYS)
            full_data = _strategy_list(
                f"{where}.domains.{name}.full_data" if "full_data" in override
                else f"{where}.runs.{domain.kind}.full_data",
                override.get("full_data", run.get("full_data")),
            )
            kshot = _strategy_list(
                f"{where}.domains.{name}.kshot" if "kshot" in override else f"{where}.runs.{domain.kind}.kshot",
                override.get("kshot", run.get("kshot")),
            )
            local = _check_mapping(f"{where}.domains.{name}.strategies", override.get("strategies"))
            configs, kshot_configs = {}, {}
            for strategy in sorted(set(full_data) | set(kshot)):
                settings = deep_merge(
                    _check_mapping(f"{where}.strategies.{strategy}", strategies.get(strategy)),
                    _check_mapping(f"{where}.domains.{name}.strategies.{strategy}", local.get(strategy)),
                )
                path = (f"{where}.domains.{name}.strategies.{strategy}" if strategy in local
                        else f"{where}.strategies.{strategy}")
                merged = {"strategy": strategy, **shared, **settings}
                if strategy in full_data:
                    configs[strategy] = AdaptationConfig.from_params(merged, path)
                if strategy in kshot:
                    kshot_configs[strategy] = AdaptationConfig.from_params(merged, path, "kshot_training")
            frozen = {(c.pooling, c.max_length) for c in (*configs.values(), *kshot_configs.values())
                      if c.frozen_encoder}
            if domain.kind == "text_classification" and len(frozen) > 1:
                raise ConfigError(
                    f"{where}: head and prototype share {name}'s cached features, so their pooling and "
                    f"max_length must agree; got {sorted(frozen)} (set them once, under `{where}:`)"
                )
            for strategy in local:
                if strategy not in STRATEGIES:
                    raise ConfigError(
                        f"{where}.domains.{name}.strategies has {strategy!r}; allowed: {list(STRATEGIES)}"
                    )
            sets = _check_mapping(f"{where}.domains.{name}.kshot_sets", override.get("kshot_sets"))
            _check_keys(f"{where}.domains.{name}.kshot_sets", sets, {"ks", "seeds"})
            sets_where = f"{where}.domains.{name}.kshot_sets" if sets else f"{where}.kshot_sets"
            plans[name] = DomainPlan(
                domain=name, kind=domain.kind, full_data=full_data, kshot=kshot,
                configs=configs, kshot_configs=kshot_configs,
                kshot_ks=_int_list(f"{sets_where}.ks", sets.get("ks", kshot_block.get("ks")), 1),
                kshot_seeds=_int_list(f"{sets_where}.seeds", sets.get("seeds", kshot_block.get("seeds")), 0),
            )
        return cls(backbone=backbone, backbone_short=str(short),
                   num_threads=None if num_threads is None else int(num_threads), domains=plans)
