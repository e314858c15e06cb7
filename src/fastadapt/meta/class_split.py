"""The episode sources of one class-split run (PROTOCOL.md section 3): meta-training and meta-validation.

Meta-training reads only the train and validation rows of the split's train classes (test rows
stay unseen, so the k-shot curves on Banking77's test split stay fair) and the other weighted
sources of `meta_training.meta.sources` (domains, SMLMT); meta-validation reads all rows of the
split's valid classes. No row or name of a test class is read.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from fastadapt.config import ConfigError
from fastadapt.meta.plan import DomainSpec, MetaTrainingPlan, RunSpec, SmlmtSpec
from fastadapt.tasks.meta_episodes import (
    LabelledEpisodeSource,
    MixtureSource,
    SmlmtSource,
    classes_with_enough_rows,
    pool_texts,
)


def class_split_sources(plan: MetaTrainingPlan, run: RunSpec, class_lists: Mapping[str, list[str]],
                        customer_intent_splits: pd.DataFrame, unlabelled_pool: pd.DataFrame | None,
                        domain_splits: Mapping[str, pd.DataFrame], mask_token: str):
    """(meta-training source, meta-validation source) of `run`; `class_lists` are the split's
    train / valid / test classes, `domain_splits` the splits tables of the domain sources."""
    config = run.config
    per_class = config.k_shot + config.n_query
    built = {}
    for name in plan.source_weights:
        spec, where = plan.source(name), f"meta_training.sources.{name}"
        if isinstance(spec, DomainSpec):
            rows = domain_splits[spec.domain]
            rows, classes = classes_with_enough_rows(rows[rows["split"].isin(spec.splits)], per_class)
            if len(classes) < 2:
                raise ConfigError(f"{where}: domain '{spec.domain}' has {len(classes)} class(es) with at least "
                                  f"k_shot + n_query = {per_class} rows; episodes need 2")
            built[name] = LabelledEpisodeSource(rows, classes, n_way=min(spec.n_way or config.n_way, len(classes)),
                                                k_shot=config.k_shot, n_query=config.n_query, name=name)
        elif isinstance(spec, SmlmtSpec):
            texts = pool_texts(unlabelled_pool, spec.exclude_sources, spec.max_texts, spec.seed)
            try:
                built[name] = SmlmtSource(texts, n_way=config.n_way, k_shot=config.k_shot, n_query=config.n_query,
                                          min_word_count=spec.min_word_count, mask_token=mask_token, name=name)
            except ValueError as error:
                raise ConfigError(f"{where}: {error}") from None
        else:
            rows = customer_intent_splits[(customer_intent_splits["split"] != "test")
                                          & customer_intent_splits["label"].isin(class_lists["train"])]
            classes = sorted(set(rows["label"]))
            built[name] = LabelledEpisodeSource(rows, classes, n_way=min(config.n_way, len(classes)),
                                                k_shot=config.k_shot, n_query=config.n_query, name=name)
    if not built:
        raise ConfigError("meta_training.meta.sources gives every source weight 0; at least one must be > 0")
    train = next(iter(built.values())) if len(built) == 1 else MixtureSource(
        built, {name: plan.source_weights[name] for name in built})
    valid_rows = customer_intent_splits[customer_intent_splits["label"].isin(class_lists["valid"])]
    valid = LabelledEpisodeSource(valid_rows, class_lists["valid"], n_way=min(config.n_way, len(class_lists["valid"])),
                                  k_shot=config.k_shot, n_query=config.n_query, name="banking77_valid")
    return train, valid


__all__ = ["class_split_sources"]
