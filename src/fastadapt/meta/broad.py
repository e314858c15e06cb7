"""A broad meta-training distribution: every labelled text source, varied episode shapes, SMLMT.

An encoder learns to learn new tasks only from many different tasks (Bansal et al. 2020, "Self-
supervised meta-learning for few-shot natural language classification tasks"; Triantafillou et
al. 2020, "Meta-Dataset"). `BroadPlan` is the validated `meta_training.broad:` block; it names
which sources feed the released `meta_learner` and which leave-one-domain-out folds (PROTOCOL.md
section 8) are trained. `broad_sources` builds, for one fold, the meta-training mixture and the
meta-validation source:

- every labelled table given (the text domains of `domains:` and the corpora of `meta_sources:`,
  so a new domain or corpus joins by configuration): N-way K-shot episodes from its `train`
  split, with N and K drawn per episode from `n_way` / `k_shot` ranges, and the class names as
  extra support texts where the labels are words (`label_names`);
- SMLMT episodes from the unlabelled pool;
- each source drawn with its weight (`weights`, else `default_weight`);
- meta-validation: episodes from the `validation` splits of the same sources.

Fold D leaves out D, the corpora listed as made from the same data (`same_data`), and D's texts in
the SMLMT pool, so nothing of D is seen before D is evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from fastadapt.config import Checks, ConfigError, Settings, check_keys, is_number
from fastadapt.meta.config import MetaConfig
from fastadapt.meta.plan import SmlmtSettings, integer_list
from fastadapt.models.checkpoints import run_checkpoint_dir
from fastadapt.tasks.meta_episodes import (
    LabelledEpisodeSource,
    MixtureSource,
    SmlmtSource,
    classes_with_enough_rows,
    pool_texts,
)

log = logging.getLogger(__name__)

RELEASE = "all"  # the fold name of the released meta-learner: every source
SMLMT = "smlmt"


def _range(check: Checks, key: str, low: int) -> None:
    """`<key>` as (low, high) from an integer or [low, high] with `low` <= low <= high."""
    value = getattr(check.settings, key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value) and low <= value[0] <= value[1]):
        check.fail(key, f"allowed: an integer or [low, high] with {low} <= low <= high")
    setattr(check.settings, key, (int(value[0]), int(value[1])))


@dataclass
class LodoEvaluation(Settings):
    """How each fold's meta-learner is scored on its left-out domain (PROTOCOL.md section 8)."""

    strategies: list[str] = field(default_factory=lambda: ["prototype", "finetune_all"])  # new_task.strategies options
    ks: list[int] | None = None  # null: every k of the domain's k-shot sets
    seeds: list[int] | None = None  # null: every seed
    max_test_rows: int | None = None  # a fixed random sample of the test split (null: all of it)
    pretrained: str = "minilm-l6"  # the pretrained-only arm's backbone

    def validate(self, where: str) -> None:
        from fastadapt.adapt import check_strategy

        check = Checks(self, where)
        for strategy in self.strategies:
            check_strategy(strategy, f"{where}.strategies")
        integer_list(check, "ks", 1)
        integer_list(check, "seeds", 0)
        check.integer("max_test_rows", 1, optional=True)
        check.text("pretrained")


@dataclass
class BroadPlan(Settings):
    """The validated `meta_training.broad:` block (see the module docstring)."""

    release: bool = True  # train the released meta_learner on every source
    folds: tuple[str, ...] = ()  # one meta-learner per left-out text domain
    algorithm: str = "protonet"
    meta: dict[str, Any] = field(default_factory=dict)  # MetaConfig settings (n_way, k_shot: the ranges' highs)
    n_way: tuple[int, int] = (3, 10)  # N drawn per episode (capped by the source's classes)
    k_shot: tuple[int, int] = (1, 5)  # K drawn per episode
    label_names: bool = True  # class names as extra support texts where the labels are words
    default_weight: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()  # sources no fold reads
    same_data: dict[str, tuple[str, ...]] = field(default_factory=dict)  # fold -> sources made from its data
    smlmt: SmlmtSettings = field(default_factory=SmlmtSettings)
    evaluation: LodoEvaluation = field(default_factory=LodoEvaluation)

    @property
    def runs(self) -> tuple[str, ...]:
        """The folds to meta-train: `all` (the release) first, then each left-out domain."""
        return ((RELEASE,) if self.release else ()) + self.folds

    @property
    def config(self) -> MetaConfig:
        """The meta-training settings of every fold."""
        return self._config

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, text_domains: Sequence[str],  # type: ignore[override]
                    where: str = "meta_training.broad") -> BroadPlan | None:
        """None when the block is absent or empty (only the class-split runs are trained); folds
        that are not among `text_domains` are dropped with a warning."""
        if not params:
            return None
        plan = super().from_params(params, where)
        absent = [f for f in plan.folds if f not in text_domains]
        if absent:  # the quick default names Banking77; a project without it still meta-trains
            log.warning("%s.folds names %s, which are not text-classification domains of this project (%s): "
                        "no leave-one-domain-out fold for them", where, absent, list(text_domains))
            plan.folds = tuple(f for f in plan.folds if f in text_domains)
        if not plan.release and not plan.folds:
            raise ConfigError(f"{where}: release is false and no fold names a domain of this project: nothing to "
                              f"train; set release: true or name folds among {list(text_domains)}")
        return plan

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not isinstance(self.folds, (list, tuple)):
            check.fail("folds", "allowed: a list of text-classification domains")
        self.folds = tuple(self.folds)
        check.boolean("release")
        _range(check, "n_way", 2)
        _range(check, "k_shot", 1)
        own = check_keys(self.meta, [f.name for f in fields(MetaConfig)], f"{where}.meta")
        meta = {"n_way": self.n_way[1], "k_shot": self.k_shot[1], **own, "algorithm": self.algorithm}
        self._config = MetaConfig.from_params(meta, f"{where}.meta")
        if self._config.algorithm != "protonet" and self.n_way[0] != self.n_way[1]:
            raise ConfigError(f"{where}.n_way: varied N-way episodes need a head that takes any number of classes "
                              f"(algorithm protonet); {self._config.algorithm!r} needs one N, e.g. n_way: 5")
        check.number("default_weight", 0)
        self.weights = check_keys(self.weights, list(self.weights or {}), f"{where}.weights")
        for name, weight in self.weights.items():
            if not is_number(weight) or weight < 0:
                raise ConfigError(f"{where}.weights.{name} is {weight!r}; allowed: a number >= 0")
        self.weights = {name: float(weight) for name, weight in self.weights.items()}
        self.default_weight = float(self.default_weight)
        check.boolean("label_names")
        self.exclude = tuple(self.exclude or ())
        self.same_data = {str(k): tuple(v or ()) for k, v in dict(self.same_data or {}).items()}
        if not isinstance(self.smlmt, SmlmtSettings):
            self.smlmt = SmlmtSettings.from_params(self.smlmt, f"{where}.smlmt")
        if not isinstance(self.evaluation, LodoEvaluation):
            self.evaluation = LodoEvaluation.from_params(self.evaluation, f"{where}.evaluation")

    def left_out(self, fold: str) -> set[str]:
        """The sources fold `fold` never reads: the domain and the corpora made from its data."""
        if fold == RELEASE:
            return set(self.exclude)
        return {fold, *self.same_data.get(fold, ()), *self.exclude}

    def checkpoint_dir(self, fold: str, sources: Sequence[str], backbone: str) -> str | None:
        """`<meta.checkpoint_dir>/broad_<fold>-<fingerprint>` (`models.checkpoints`): a fold resumes only its own."""
        return run_checkpoint_dir(self.config.checkpoint_dir, f"broad_{fold}", {
            "fold": fold, "sources": list(sources), "backbone": backbone, "config": self.config,
            "shape": [self.n_way, self.k_shot, self.label_names], "weights": {name: self.weight(name) for name in sources}})

    def weight(self, source: str) -> float:
        return self.weights.get(source, self.default_weight)


def _labelled(rows: pd.DataFrame, plan: BroadPlan, name: str, split: str, per_class: int,
              n_way: tuple[int, int] | int) -> LabelledEpisodeSource | None:
    """Episodes from one split of one table; None when fewer than 2 classes have enough rows."""
    rows, keep = classes_with_enough_rows(rows[rows["split"] == split], per_class)
    if len(keep) < 2:
        return None
    if isinstance(n_way, tuple):
        n_way = (min(n_way[0], len(keep)), min(n_way[1], len(keep)))
    else:
        n_way = min(n_way, len(keep))
    k_shot = plan.k_shot if split == "train" else plan.config.k_shot
    return LabelledEpisodeSource(rows, keep, n_way=n_way, k_shot=k_shot, n_query=plan.config.n_query,
                                 name=name, label_names=plan.label_names)


def broad_sources(plan: BroadPlan, fold: str, tables: Mapping[str, pd.DataFrame],
                  unlabelled_pool: pd.DataFrame | None, mask_token: str):
    """(meta-training mixture, meta-validation source, the sources used) for fold `fold`.

    `tables` maps a source name to its splits table (text, label, split); the fold's left-out
    sources are dropped before anything is read.
    """
    left_out = plan.left_out(fold)
    per_class = plan.k_shot[1] + plan.config.n_query
    train, valid = {}, {}
    for name in sorted(tables):
        if name in left_out or plan.weight(name) <= 0:
            continue
        source = _labelled(tables[name], plan, name, "train", per_class, plan.n_way)
        if source is not None:
            train[name] = source
        check = _labelled(tables[name], plan, name, "validation", plan.config.k_shot + plan.config.n_query,
                          plan.config.n_way)
        if check is not None:
            valid[name] = check
    if unlabelled_pool is not None and plan.weight(SMLMT) > 0:
        texts = pool_texts(unlabelled_pool, sorted(left_out), plan.smlmt.max_texts, plan.smlmt.seed)
        try:
            train[SMLMT] = SmlmtSource(texts, n_way=plan.config.n_way, k_shot=plan.config.k_shot,
                                       n_query=plan.config.n_query, min_word_count=plan.smlmt.min_word_count,
                                       mask_token=mask_token, name=SMLMT)
        except ValueError as error:
            raise ConfigError(f"meta_training.broad.smlmt: {error}") from None
    if not train:
        raise ConfigError(f"meta_training.broad: fold '{fold}' has no episode source left (every source is left "
                          f"out, weighted 0 or has fewer than 2 classes with {per_class} training rows)")
    mixture = MixtureSource(train, {name: plan.weight(name) for name in train})
    validation = MixtureSource(valid) if valid else None
    return mixture, validation, sorted(train)


__all__ = ["RELEASE", "SMLMT", "BroadPlan", "LodoEvaluation", "broad_sources"]
