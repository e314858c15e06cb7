"""One entry point to adapt a model to a new task: `adapt(learner, support, strategy) -> predictor`.

    from fastadapt.adapt import adapt

    predictor = adapt(meta_learner, support, "prototype")          # support: text, label columns
    predictor.predict(["my card has not arrived"]), predictor.adaptation_seconds
    adapt("minilm-l6", support, "finetune_head", training={"max_steps": 100})
    adapt(None, support, "tfidf")                                   # the TF-IDF + LR baseline
    adapt(meta_learner, ner_support, "finetune_head")               # tokens, tags columns: a tagger

learner: a `MetaLearnedModel` (the meta-training pipeline's `meta_learner`), a `MetaAlgorithm`, a
    `Backbone`, a `MetaLearner`, a backbone name for `load_backbone` (`minilm-l6`, a model
    directory), or None (only for `tfidf`).
support: a table with columns text, label (classification) or tokens, tags (NER, IOB2 lists).
strategy (`AdaptStrategy`, the one vocabulary; `fastadapt.adaptation.strategies`):
    prototype       no gradient: class means of the support features. A meta-learned ProtoNet
                    uses its own metric and pooling (as meta-trained) unless `metric=` is given;
                    anything else the frozen encoder's features with `metric` (cosine by default).
    meta            the meta-learning algorithm's own adaptation: ProtoNet's prototypes, the
                    inner loop of MAML / FOMAML / ANIL / Reptile from the meta-learned weights.
    finetune_head   a linear head on the frozen (meta-learned) encoder's features.
    finetune_all    every encoder weight and a head, a few steps from the (meta-learned) weights.
    finetune_lora   LoRA adapters and a head, merged into the weights afterwards.
    nnshot          NER only, no gradient: each word takes, per tag, the similarity of its nearest
                    support word of that tag (`O` included), decoded to valid IOB2 (Yang and
                    Katiyar 2020; `fastadapt.adaptation.nnshot`).
    structshot      NNShot's emissions decoded with abstract transition scores from the source
                    domain: a source tagger's own (`pretrain_tagger`), else estimated on the support.
    tfidf           TF-IDF + logistic regression on the support texts (no learner needed).

A learner may also be a source tagger (`EncoderTagger`, e.g. from
`fastadapt.adaptation.transfer.pretrain_tagger`, or its saved directory): its fine-tuned encoder
is the starting point, its head is dropped (a new one is fitted for the task's tag set) and its
source transitions feed structshot.
options: for prototype / finetune_*: `fastadapt.adaptation.AdaptationConfig` settings (metric,
    temperature, pooling, max_length, batch_size, dropout, device, lora, training, head_init:
    prototype to start the head as the prototype classifier, label_names: class names as extra
    support where labels are words) and the
    keyword arguments of `fit_classifier` / `fit_tagger` (features, validation, seed,
    checkpoint_name, progress); for nnshot / structshot: `fit_nnshot`'s (temperature,
    transition_weight, transitions, max_length, batch_size, device, features, k, seed, progress);
    for tfidf: `TfidfLogisticRegression` settings. Options not given take the strategy's tuned
    defaults, `DEFAULT_OPTIONS` (the prototype-started head, class names, SetFit's contrastive step
    where it pays), which `new_task` uses too; mapping options (training, contrastive, lora) merge
    into them key by key, and `contrastive=None` turns the step off. `tuned=False` gives the
    settings classes' plain defaults instead (what the k-shot curves were measured with).

Nothing is trained here: the work is done by `fastadapt.adaptation.fit_classifier` /
`fit_tagger`, the meta-learning algorithms' `adapt` and `TfidfLogisticRegression.fit`. The result
is an `AdaptedPredictor`: the `TextClassifier` (`classes_`, `predict`, `predict_proba`) or
`SequenceTagger` (`predict`) protocol, with `adaptation_seconds` (wall time of the fit alone) and
`strategy`. A wrong strategy or option raises `ConfigError` naming it and the allowed values.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.adaptation.strategies import STRATEGIES, AdaptationConfig, AdaptStrategy
from fastadapt.config import Checks, ConfigError, Settings, check_keys, deep_merge

FIT_OPTIONS = {"features", "validation", "validation_features", "seed", "checkpoint_name", "progress", "k"}
# The settings of `AdaptationConfig` a strategy's options may hold (all of its fields but the strategy).
CONFIG_OPTIONS = {f.name for f in fields(AdaptationConfig)} - {"strategy"}
NNSHOT_OPTIONS = {"temperature", "transition_weight", "transitions", "max_length", "batch_size", "device", "features",
                  "k", "seed", "progress"}
NER_STRATEGIES = ["nnshot", "structshot", "prototype", "finetune_head", "finetune_all", "finetune_lora"]
TFIDF_OPTIONS = {"analyzer", "ngram_range", "min_df", "sublinear_tf", "C", "max_iter", "class_weight", "seed"}


# "A few steps" from the (meta-learned) initialisation: the defaults of each fine-tuning strategy,
# merged under `training=` (fastadapt.models.training.TrainingConfig).
DEFAULT_TRAINING = {
    "finetune_head": {"max_steps": 200, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0, "warmup_ratio": 0.0,
                      "log_every": 50},
    # The head starts untrained and shares the encoder's learning rate, so a few steps need a
    # larger rate than a long fine-tuning would (Banking77, 10 shots, 60 steps: 5e-5 reaches 23 %
    # accuracy, 3e-4 about 60 %; LoRA 1e-3 33 %, 5e-3 70 %).
    "finetune_all": {"max_steps": 60, "batch_size": 16, "lr": 3.0e-4, "warmup_ratio": 0.1, "log_every": 10},
    "finetune_lora": {"max_steps": 60, "batch_size": 16, "lr": 5.0e-3, "warmup_ratio": 0.1, "log_every": 10},
}


# Options of a text classifier only: a strategies block serves text and NER tasks alike, so an NER
# task leaves them out of it (passed to `adapt` for an NER support set directly, they are errors).
TEXT_ONLY_OPTIONS = ("contrastive", "label_names")

# The tuned options of each strategy: what `adapt()` and `new_task` (whose `new_task.strategies`
# holds overrides of these) take for an option not given. Where they were chosen:
# - prototype, finetune_*: `label_names` (class names join the support where labels are words) and
#   the prototype-started head at temperature 20, from the leave-one-domain-out table of
#   data/08_reporting/meta_learning.md; Python's plain defaults (random head, temperature 10, no
#   names) measured lower, pretrained MiniLM, k = 10, seeds 0-2: Banking77 0.841 against 0.853,
#   PhraseBank 0.523 against 0.527, ATIS 0.661 against 0.679.
# - finetune_head's contrastive step (SetFit's pairs, `fastadapt.adaptation.contrastive`): the
#   18-corpus table of benchmarks/README.md ("SetFit's contrastive step"): +5.7 points on average on
#   tasks of at most 15 classes with at least 10 texts per class (11 of 12 corpora up), -1.7 to +0.6
#   outside them, so it skips there; 20 steps adapt ~800 texts in about 25 s on 2 cores (30: 30-38 s).
# - nnshot / structshot: chosen on CoNLL testa over the four tag-set folds (benchmarks/ner_few_shot.py,
#   ner_few_shot.md: "Settings chosen on CoNLL testa"), never on testb or CrossNER.
# - finetune_lora and tfidf: their settings classes' defaults.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "prototype": {"label_names": True},
    "nnshot": {"temperature": 10.0},
    "structshot": {"temperature": 50.0, "transition_weight": 0.1},
    "finetune_head": {"head_init": "prototype", "label_names": True, "temperature": 20.0,
                      "contrastive": {"num_iterations": 5, "max_steps": 20, "lr": 1.0e-4, "max_classes": 15,
                                      "min_per_class": 10}},
    "finetune_all": {"head_init": "prototype", "label_names": True, "temperature": 20.0,
                     "training": {"max_steps": 75, "batch_size": 32, "lr": 5.0e-5, "warmup_ratio": 0.1}},
}


def default_options(strategy: str | AdaptStrategy, kind: str = "text_classification") -> dict[str, Any]:
    """The tuned options `adapt` gives `strategy` for a task of `kind` (NER leaves out the text-only ones)."""
    options = copy.deepcopy(DEFAULT_OPTIONS.get(str(strategy), {}))
    return {k: v for k, v in options.items() if k not in TEXT_ONLY_OPTIONS} if kind == "ner" else options


@dataclass
class AdaptedPredictor:
    """A predictor `adapt` made: the protocol calls go to `model`; other attributes too."""

    model: Any
    strategy: str
    adaptation_seconds: float
    kind: str  # text_classification | ner
    n_support: int
    source: str = ""  # what it was adapted from
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def classes_(self) -> list[str]:
        return list(self.model.classes_)

    def predict(self, items: Sequence[Any]) -> Any:
        """Classes of texts (an object array), or IOB2 tag lists of token lists (a tagger)."""
        return self.model.predict(items)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(texts), dtype=np.float64)

    def __getattr__(self, name: str) -> Any:  # predict_features, embed, backbone... of the model
        if name.startswith("__") or name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)


# What `auto` means (new_task's default): for text, a prototype-initialised head with class names on
# the frozen (meta-learned) encoder, the best strategy within the 30 s budget in the leave-one-
# domain-out table of data/08_reporting/meta_learning.md; for NER, StructShot, the best mean over
# the tag-set-extension folds and CrossNER domains of data/08_reporting/ner_few_shot.md.
AUTO_STRATEGY = {"text_classification": "finetune_head", "ner": "structshot"}


def resolve_strategy(strategy: str, kind: str) -> str:
    """`strategy`, or the default of the task kind when it is `auto`."""
    return AUTO_STRATEGY[kind] if strategy == "auto" else strategy


def strategy_options(block: Mapping[str, Any] | None, strategy: str | AdaptStrategy, where: str,
                     kind: str = "text_classification") -> dict[str, Any]:
    """The options `block` (strategy name -> `adapt` options, e.g. `new_task.strategies`) holds for
    `strategy` on a task of `kind`; a key that names no strategy raises `ConfigError` (a typo
    would be ignored)."""
    options = check_keys(block, STRATEGIES, where).get(str(strategy))
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"{where}.{strategy} is {options!r}; allowed: a mapping of adapt() options")
    options = dict(options or {})
    return {k: v for k, v in options.items() if k not in TEXT_ONLY_OPTIONS} if kind == "ner" else options


TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")  # a folder under data/01_raw/tasks
TASK_KINDS = ("auto", "text_classification", "ner")


@dataclass(frozen=True)
class TaskSettings(Settings):
    """The `task:` block of `kedro run --pipeline new_task` (conf/base/parameters_new_task.yml):
    which folder, how many shots of which draw, the strategy (`auto`: `AUTO_STRATEGY`), the kind
    (`auto`: from the files) and the model to adapt. Errors name `task.<key>`."""

    name: str | None = None
    shots: int | None = None  # examples per class (NER: mentions per type); None: all of train
    seed: int = 0
    strategy: AdaptStrategy | str = "auto"
    kind: str = "auto"
    model: str = "meta_learner"  # meta_learner | pretrained | a backbone name or model directory

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "task") -> TaskSettings:
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a mapping (name, shots, seed, strategy, kind, model); got {params!r}")
        return super().from_params(params, where)

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if self.name is None or self.name == "":
            raise ConfigError(f'{where}.name is missing: name the task folder, e.g. kedro run --pipeline new_task '
                              f'--params "{where}.name=<folder under data/01_raw/tasks>"')
        if not isinstance(self.name, str) or not TASK_NAME.fullmatch(self.name):
            check.fail("name", "allowed: the name of a folder under data/01_raw/tasks (letters, digits, _ and -)")
        shots = self.shots
        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
            check.fail("shots", "allowed: an integer >= 1 (examples per class, or mentions per entity type for "
                                "NER), or null for the whole train file")
        check.integer("seed", 0)
        if self.strategy != "auto":
            object.__setattr__(self, "strategy", check_strategy(self.strategy, f"{where}.strategy"))
        check.choice("kind", TASK_KINDS)
        if not isinstance(self.model, str) or not self.model:
            check.fail("model", "allowed: meta_learner, pretrained, minilm-l6 or a model directory")

    def resolved(self, kind: str) -> TaskSettings:
        """These settings with `strategy: auto` replaced by the default of the task kind."""
        return replace(self, strategy=check_strategy(resolve_strategy(self.strategy, kind)))


def check_strategy(strategy: str | AdaptStrategy, where: str = "strategy") -> AdaptStrategy:
    """The strategy, or a `ConfigError` naming `where` and the allowed values."""
    return AdaptStrategy.parse(strategy, where)


def adapt(learner: Any, support: pd.DataFrame, strategy: str | AdaptStrategy = "prototype",
          where: str = "strategy", *, tuned: bool = True, **options: Any) -> AdaptedPredictor:
    """A predictor adapted from `learner` to `support` with `strategy` (see the module docstring).

    `where` is the parameter name errors use (e.g. `task.strategy`); `options` merge over
    `default_options(strategy)` unless `tuned` is False.
    """
    name = check_strategy(strategy, where)
    kind = _support_kind(support)
    if tuned:
        options = deep_merge(default_options(name, kind), options)
    n_support = len(support)
    if name == "tfidf":
        return _timed(lambda: _tfidf(support, kind, options, where), name, kind, n_support, "tfidf")
    if learner is None:
        raise ConfigError(f"{where} '{name}' needs a learner (a meta-learned model or a backbone); "
                          f"only 'tfidf' works without one")
    learner = _saved_tagger(learner)
    if name in ("nnshot", "structshot"):
        return _timed(lambda: _nnshot(learner, support, kind, name, options, where), name, kind, n_support,
                      _source(learner))
    algorithm, backbone_source = _resolve(learner)
    if name == "meta":
        if algorithm is None:
            raise ConfigError(f"{where} 'meta' needs a meta-learned model (the meta_learner dataset); "
                              f"{type(learner).__name__} has no meta-learning algorithm; allowed for it: "
                              f"{[s for s in STRATEGIES if s != 'meta']}")
        if kind == "ner":
            raise ConfigError(f"{where} 'meta' adapts text classifiers only; for NER use {NER_STRATEGIES}")
        _no_options(options, where, name)
        texts, labels = _texts_and_labels(support)
        return _timed(lambda: algorithm.adapt(texts, labels), name, kind, n_support, _source(learner))
    if name == "prototype" and kind == "text_classification" and algorithm is not None \
            and algorithm.name == "protonet" and "metric" not in options:
        # A meta-learned ProtoNet adapts with the metric and features it was meta-trained with.
        options = dict(options)
        label_names = options.pop("label_names", False)
        if options:
            raise ConfigError(f"{where} 'prototype' on a meta-learned ProtoNet uses its own metric and features and "
                              f"takes no options (got {sorted(options)}); give metric= (cosine or euclidean) for "
                              f"prototypes on its frozen encoder's features with those options")
        texts, labels = _texts_and_labels(support)
        if label_names:
            from fastadapt.adaptation.fit import label_name_support

            named = label_name_support(sorted(set(labels)))
            texts, labels = texts + [t for t, _ in named], labels + [c for _, c in named]
        return _timed(lambda: algorithm.adapt(texts, labels), name, kind, n_support, _source(learner))
    config, fit_options = _adaptation_config(name, options, where)

    def fit() -> Any:
        from fastadapt.adaptation import fit_classifier, fit_tagger

        backbone = backbone_source()
        if kind == "ner":
            return fit_tagger(backbone, [list(t) for t in support["tokens"]], [list(t) for t in support["tags"]],
                              config, **fit_options)
        texts, labels = _texts_and_labels(support)
        return fit_classifier(backbone, texts, labels, config, **fit_options)

    return _timed(fit, name, kind, n_support, _source(learner))


# ---- helpers -------------------------------------------------------------------------------------


def _timed(fit, strategy: str, kind: str, n_support: int, source: str) -> AdaptedPredictor:
    started = time.perf_counter()
    model = fit()
    seconds = time.perf_counter() - started
    return AdaptedPredictor(model=model, strategy=str(strategy), adaptation_seconds=float(seconds), kind=kind,
                            n_support=n_support, source=source)


def _support_kind(support: pd.DataFrame) -> str:
    if not isinstance(support, pd.DataFrame):
        raise ValueError(f"support must be a pandas DataFrame (text, label or tokens, tags); got "
                         f"{type(support).__name__}")
    columns = set(support.columns)
    if {"text", "label"} <= columns:
        kind = "text_classification"
    elif {"tokens", "tags"} <= columns:
        kind = "ner"
    else:
        raise ValueError(f"support must have columns text, label (classification) or tokens, tags (NER); "
                         f"got {sorted(columns)}")
    if support.empty:
        raise ValueError("support is empty; adapt needs at least one labelled example")
    return kind


def _texts_and_labels(support: pd.DataFrame) -> tuple[list[str], list[str]]:
    return support["text"].astype(str).tolist(), support["label"].astype(str).tolist()


def _no_options(options: Mapping[str, Any], where: str, strategy: str) -> None:
    if options:
        raise ConfigError(f"{where} '{strategy}' takes no options; got {sorted(options)}")


def _saved_tagger(learner: Any) -> Any:
    """A saved source tagger's directory, loaded (an `EncoderTagger`); anything else as given."""
    from pathlib import Path

    from fastadapt.adaptation.ner import INFO_FILE, EncoderTagger

    if isinstance(learner, (str, Path)) and (Path(learner) / INFO_FILE).is_file():
        return EncoderTagger.load_directory(learner)
    return learner


def _nnshot(learner: Any, support: pd.DataFrame, kind: str, name: str, options: Mapping[str, Any], where: str):
    from fastadapt.adaptation import fit_nnshot
    from fastadapt.adaptation.ner import EncoderTagger
    from fastadapt.adaptation.nnshot import AbstractTransitions

    if kind != "ner":
        raise ConfigError(f"{where} '{name}' tags tokens (NER support: tokens, tags); for text classification use "
                          f"{[s for s in STRATEGIES if s not in ('nnshot', 'structshot')]}")
    unknown = sorted(set(options) - NNSHOT_OPTIONS)
    if unknown:
        raise ConfigError(f"{where} '{name}': unknown option(s) {unknown}; allowed: {sorted(NNSHOT_OPTIONS)}")
    settings = dict(options)
    transitions = settings.pop("transitions", None)
    if isinstance(transitions, Mapping):
        transitions = AbstractTransitions.from_dict(transitions)
    if transitions is not None and not isinstance(transitions, AbstractTransitions):
        raise ConfigError(f"{where} '{name}': transitions must be AbstractTransitions or their to_dict() mapping")
    if name == "structshot" and transitions is None and isinstance(learner, EncoderTagger):
        transitions = learner.transitions
    for option in ("temperature", "transition_weight"):
        value = settings.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{where} '{name}': {option} must be a number > 0; got {value!r}")
    _, backbone_source = _resolve(learner)
    return fit_nnshot(backbone_source(), [list(t) for t in support["tokens"]], [list(t) for t in support["tags"]],
                      structured=name == "structshot", transitions=transitions, **settings)


def _resolve(learner: Any):
    """(the meta-learning algorithm or None, a function giving the backbone to fit on)."""
    from fastadapt.adaptation.ner import EncoderTagger
    from fastadapt.meta.algorithm import MetaAlgorithm
    from fastadapt.meta.learner import MetaLearner
    from fastadapt.meta.saved import MetaLearnedModel
    from fastadapt.models.backbones import Backbone, load_backbone

    if isinstance(learner, MetaLearnedModel):
        return learner.algorithm, lambda: learner.backbone
    if isinstance(learner, MetaAlgorithm):
        return learner, lambda: _learner_backbone(learner.learner)
    if isinstance(learner, MetaLearner):
        return None, lambda: _learner_backbone(learner)
    if isinstance(learner, Backbone):
        return None, lambda: learner
    if isinstance(learner, EncoderTagger):  # a source tagger: its encoder, a new head
        return None, lambda: learner.backbone
    if isinstance(learner, str):
        loaded: list[Backbone] = []

        def load() -> Backbone:  # loaded when fitting, timed with it
            if not loaded:
                loaded.append(load_backbone(learner))
            return loaded[0]
        return None, load
    raise TypeError(f"learner must be a MetaLearnedModel, MetaAlgorithm, MetaLearner, Backbone, EncoderTagger, a "
                    f"backbone name or directory, or None; got {type(learner).__name__}")


def _learner_backbone(learner):
    from fastadapt.adaptation.lora import merged_copy
    from fastadapt.models.backbones import Backbone

    encoder = merged_copy(learner.encoder) if learner.lora is not None else learner.encoder
    return Backbone(name=learner.backbone_name, model=encoder, tokenizer=learner.tokenizer)


def _source(learner: Any) -> str:
    describe = getattr(learner, "describe", None)
    if callable(describe):
        return str(describe())
    if isinstance(learner, str):
        return learner
    training = getattr(learner, "training", None)
    if isinstance(training, dict) and "held_out" in training:  # a source tagger
        return f"source tagger on {training.get('source') or 'source data'} (held out: {training['held_out']})"
    return str(getattr(learner, "name", type(learner).__name__))


def _adaptation_config(strategy: str, options: Mapping[str, Any], where: str):
    from fastadapt.adaptation import AdaptationConfig

    unknown = sorted(set(options) - CONFIG_OPTIONS - FIT_OPTIONS)
    if unknown:
        raise ConfigError(f"{where} '{strategy}': unknown option(s) {unknown}; allowed: "
                          f"{sorted(CONFIG_OPTIONS | FIT_OPTIONS)}")
    settings = {k: v for k, v in options.items() if k in CONFIG_OPTIONS}
    if strategy in DEFAULT_TRAINING:
        training = settings.get("training") or {}
        if not isinstance(training, Mapping):
            raise ConfigError(f"{where}.training must be a mapping of training settings; got {training!r}")
        settings["training"] = {**DEFAULT_TRAINING[strategy], **training}
    elif "training" in settings or "lora" in settings:
        raise ConfigError(f"{where} '{strategy}' trains nothing: options training and lora do not apply")
    if strategy != "finetune_lora" and "lora" in settings:
        raise ConfigError(f"{where} '{strategy}': option lora applies to finetune_lora only")
    config = AdaptationConfig.from_params({"strategy": strategy, **settings}, where)
    return config, {k: v for k, v in options.items() if k in FIT_OPTIONS}


def _tfidf(support: pd.DataFrame, kind: str, options: Mapping[str, Any], where: str):
    from fastadapt.models.baselines import TfidfLogisticRegression

    if kind == "ner":
        raise ConfigError(f"{where} 'tfidf' is a text-classification baseline; for NER use {NER_STRATEGIES}")
    unknown = sorted(set(options) - TFIDF_OPTIONS)
    if unknown:
        raise ConfigError(f"{where} 'tfidf': unknown option(s) {unknown}; allowed: {sorted(TFIDF_OPTIONS)}")
    settings = dict(options)
    if "ngram_range" in settings:
        settings["ngram_range"] = tuple(settings["ngram_range"])
    texts, labels = _texts_and_labels(support)
    if len(set(labels)) < 2:
        raise ValueError(f"a classifier needs at least two classes in labels; found only {labels[0]!r}")
    try:
        return TfidfLogisticRegression(**settings).fit(texts, labels)
    except ValueError as error:
        if "must be" in str(error):  # a bad setting: name the option
            raise ConfigError(f"{where} 'tfidf': {error}") from None
        raise


__all__ = ["AUTO_STRATEGY", "DEFAULT_OPTIONS", "STRATEGIES", "AdaptStrategy", "AdaptedPredictor", "TaskSettings", "adapt",
           "check_strategy", "default_options", "resolve_strategy", "strategy_options"]


if __name__ == "__main__":  # `python -m fastadapt.adapt`: the tuned defaults, as YAML
    import yaml

    print(yaml.safe_dump(DEFAULT_OPTIONS, sort_keys=False), end="")
