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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.config import ConfigError
from fastadapt.meta.config import MetaConfig
from fastadapt.tasks.meta_episodes import LabelledEpisodeSource, MixtureSource, SmlmtSource

log = logging.getLogger(__name__)

RELEASE = "all"  # the fold name of the released meta-learner: every source
SMLMT = "smlmt"
_KEYS = {"release", "folds", "algorithm", "meta", "n_way", "k_shot", "label_names", "default_weight", "weights",
         "exclude", "same_data", "smlmt", "evaluation"}


def _range(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value) and 2 <= value[0] <= value[1]):
        raise ConfigError(f"{where} must be an integer or [low, high] with 2 <= low <= high; got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class BroadPlan:
    """The validated `meta_training.broad:` block (see the module docstring)."""

    release: bool
    folds: tuple[str, ...]
    config: MetaConfig
    n_way: tuple[int, int]
    k_shot: tuple[int, int]
    label_names: bool
    default_weight: float
    weights: dict[str, float]
    exclude: tuple[str, ...]
    same_data: dict[str, tuple[str, ...]]
    smlmt: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> tuple[str, ...]:
        """The folds to meta-train: `all` (the release) first, then each left-out domain."""
        return ((RELEASE,) if self.release else ()) + self.folds

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, text_domains: Sequence[str],
                    where: str = "meta_training.broad") -> BroadPlan | None:
        """None when the block is absent or empty (only the class-split runs are trained)."""
        if not params:
            return None
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings; got {params!r}")
        unknown = sorted(set(params) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(_KEYS)}")
        folds = tuple(params.get("folds") or ())
        if not isinstance(params.get("folds") or [], (list, tuple)):
            raise ConfigError(f"{where}.folds must be a list of text-classification domains; got {params['folds']!r}")
        absent = [f for f in folds if f not in text_domains]
        if absent:  # the quick default names Banking77; a project without it still meta-trains
            log.warning("%s.folds names %s, which are not text-classification domains of this project (%s): "
                        "no leave-one-domain-out fold for them", where, absent, list(text_domains))
            folds = tuple(f for f in folds if f in text_domains)
        release = params.get("release", True)
        if not isinstance(release, bool):
            raise ConfigError(f"{where}.release must be true or false; got {release!r}")
        if not release and not folds:
            raise ConfigError(f"{where}: release is false and no fold names a domain of this project: nothing to "
                              f"train; set release: true or name folds among {list(text_domains)}")
        meta = dict(params.get("meta") or {})
        meta["algorithm"] = params.get("algorithm", "protonet")
        n_way, k_shot = _range(params.get("n_way", [3, 10]), f"{where}.n_way"), None
        k_value = params.get("k_shot", [1, 5])  # n_way and k_shot as parameters_meta_training.yml
        if isinstance(k_value, int) and not isinstance(k_value, bool):
            k_value = [k_value, k_value]
        if not (isinstance(k_value, (list, tuple)) and len(k_value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in k_value) and 1 <= k_value[0] <= k_value[1]):
            raise ConfigError(f"{where}.k_shot must be an integer or [low, high] with 1 <= low <= high; got {k_value!r}")
        k_shot = (int(k_value[0]), int(k_value[1]))
        meta.setdefault("n_way", n_way[1])
        meta.setdefault("k_shot", k_shot[1])
        config = MetaConfig.from_params(meta, f"{where}.meta")
        if config.algorithm != "protonet" and n_way[0] != n_way[1]:
            raise ConfigError(f"{where}.n_way: varied N-way episodes need a head that takes any number of classes "
                              f"(algorithm protonet); {config.algorithm!r} needs one N, e.g. n_way: 5")
        weights = dict(params.get("weights") or {})
        for name, weight in {"default_weight": params.get("default_weight", 1.0), **weights}.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ConfigError(f"{where}.{'weights.' if name != 'default_weight' else ''}{name} must be a "
                                  f"number >= 0; got {weight!r}")
        label_names = params.get("label_names", True)
        if not isinstance(label_names, bool):
            raise ConfigError(f"{where}.label_names must be true or false; got {label_names!r}")
        same_data = {str(k): tuple(v or ()) for k, v in dict(params.get("same_data") or {}).items()}
        return cls(release=release, folds=folds, config=config, n_way=n_way, k_shot=k_shot, label_names=label_names,
                   default_weight=float(params.get("default_weight", 1.0)),
                   weights={k: float(v) for k, v in weights.items()}, exclude=tuple(params.get("exclude") or ()),
                   same_data=same_data, smlmt=dict(params.get("smlmt") or {}),
                   evaluation=dict(params.get("evaluation") or {}))

    def left_out(self, fold: str) -> set[str]:
        """The sources fold `fold` never reads: the domain and the corpora made from its data."""
        if fold == RELEASE:
            return set(self.exclude)
        return {fold, *self.same_data.get(fold, ()), *self.exclude}

    def weight(self, source: str) -> float:
        return self.weights.get(source, self.default_weight)


def _labelled(rows: pd.DataFrame, plan: BroadPlan, name: str, split: str, per_class: int,
              n_way: tuple[int, int] | int) -> LabelledEpisodeSource | None:
    """Episodes from one split of one table; None when fewer than 2 classes have enough rows."""
    rows = rows[rows["split"] == split]
    labels = rows["label"].astype(str)
    counts = labels.value_counts()
    keep = counts[counts >= per_class].index
    if len(keep) < 2:
        return None
    rows = rows[labels.isin(keep)].assign(label=lambda t: t["label"].astype(str))
    if isinstance(n_way, tuple):
        n_way = (min(n_way[0], len(keep)), min(n_way[1], len(keep)))
    else:
        n_way = min(n_way, len(keep))
    k_shot = plan.k_shot if split == "train" else plan.config.k_shot
    return LabelledEpisodeSource(rows, sorted(keep), n_way=n_way, k_shot=k_shot, n_query=plan.config.n_query,
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
        pool = unlabelled_pool[~unlabelled_pool["source"].isin(left_out)]
        max_texts = plan.smlmt.get("max_texts")
        if max_texts and len(pool) > max_texts:
            keep = np.random.default_rng(plan.smlmt.get("seed", 0)).choice(len(pool), max_texts, replace=False)
            pool = pool.iloc[np.sort(keep)]
        try:
            train[SMLMT] = SmlmtSource(pool["text"].tolist(), n_way=plan.config.n_way, k_shot=plan.config.k_shot,
                                       n_query=plan.config.n_query,
                                       min_word_count=plan.smlmt.get("min_word_count", 30),
                                       mask_token=mask_token, name=SMLMT)
        except ValueError as error:
            raise ConfigError(f"meta_training.broad.smlmt: {error}") from None
    if not train:
        raise ConfigError(f"meta_training.broad: fold '{fold}' has no episode source left (every source is left "
                          f"out, weighted 0 or has fewer than 2 classes with {per_class} training rows)")
    mixture = MixtureSource(train, {name: plan.weight(name) for name in train})
    validation = MixtureSource(valid) if valid else None
    return mixture, validation, sorted(train)


__all__ = ["RELEASE", "SMLMT", "BroadPlan", "broad_sources"]
