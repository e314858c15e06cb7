"""Nodes of the broad meta-training runs and the leave-one-domain-out evaluation (PROTOCOL.md
section 8). The work is in `fastadapt.meta.broad` (sources), `fastadapt.meta` (the loop),
`fastadapt.adapt` (every strategy) and `fastadapt.evaluation.lodo` (the statistics).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.adapt import adapt
from fastadapt.config import domain_configs
from fastadapt.evaluation.lodo import lodo_differences, lodo_figure
from fastadapt.evaluation.metrics import label_metrics
from fastadapt.meta import build_algorithm, build_learner, meta_train
from fastadapt.meta.broad import RELEASE, broad_sources
from fastadapt.meta.evaluate import kshot_draws, sampled_test_rows
from fastadapt.meta.plan import FROZEN_STRATEGIES, MetaTrainingPlan
from fastadapt.meta.saved import MetaLearnedModel
from fastadapt.models.backbones import named_backbone

log = logging.getLogger(__name__)

LODO_COLUMNS = ["fold", "model", "strategy", "k", "seed", "accuracy", "macro_f1", "n_test", "adaptation_seconds"]


def broad_meta_train_node(params: Mapping[str, Any], text_domains: list[str], fold: str,
                          unlabelled_pool: pd.DataFrame | None = None, wordpiece_tokenizer: Any = None,
                          pretrained_backbone: Any = None, **tables: pd.DataFrame
                          ) -> tuple[MetaLearnedModel, pd.DataFrame]:
    """Meta-train on every source but the fold's (`all`: every source) -> the model, its history.

    `tables` are `<source>_splits` tables of the text domains and the meta-training corpora.
    """
    plan = MetaTrainingPlan.from_params(params).use_threads()  # torch threads from the shared settings
    broad = plan.broad_plan(text_domains)
    sources = {name.removesuffix("_splits"): table for name, table in tables.items()}
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer,
                                   pretrained_backbone, seed=broad.config.seed)
    train, valid, used = broad_sources(broad, fold, sources, unlabelled_pool,
                                       backbone.tokenizer.mask_token or "[MASK]")
    config = replace(broad.config, device=plan.meta_config.device, num_threads=plan.meta_config.num_threads,
                     checkpoint_dir=broad.checkpoint_dir(fold, used, plan.backbone))
    learner = build_learner(backbone, config)
    algorithm = build_algorithm(learner, config)
    result = meta_train(learner, algorithm, train, valid, config, description=f"broad meta-training ({fold})")
    info = {"run": f"broad_{fold}", "fold": fold, "left_out": sorted(broad.left_out(fold)), "sources": used,
            "backbone_param": plan.backbone, "best_step": result.best_step,
            "best_val_accuracy": result.best_val_accuracy, "stop_reason": result.stop_reason,
            "steps": int(result.history["step"].max()) if len(result.history) else 0,
            "seconds": round(float(result.seconds), 2), "n_way": list(broad.n_way), "k_shot": list(broad.k_shot),
            "label_names": broad.label_names}
    initial = result.history.loc[result.history["step"] == 0, "val_accuracy"]
    info["initial_val_accuracy"] = float(initial.iloc[0]) if len(initial) else None
    log.info("broad meta-training (%s): %d sources, %s after %d steps in %.0f s; validation %.3f -> %.3f", fold,
             len(used), result.stop_reason, info["steps"], result.seconds, info["initial_val_accuracy"] or np.nan,
             result.best_val_accuracy or np.nan)
    return MetaLearnedModel(algorithm, config, info), result.history.assign(run=f"broad_{fold}")


def lodo_evaluate_node(fold_model: MetaLearnedModel, splits: pd.DataFrame, kshot_sets: pd.DataFrame,
                       params: Mapping[str, Any], strategy_options_of: Mapping[str, Any] | None,
                       tfidf_options: Mapping[str, Any] | None, text_domains: list[str], fold: str,
                       wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
                       peers: bool = True) -> pd.DataFrame:
    """Fold D: the meta-learner that never saw D and the pretrained encoder, adapted with the same
    strategies (options: `new_task.strategies`) on the same k-shot draws of D, and TF-IDF + LR
    (`baselines.tfidf`); scored on D's whole test split.

    peers: False scores the meta-learner alone (benchmarks/meta_ablation.py scores the peers once
    for all its variants)."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    broad = plan.broad_plan(text_domains)
    settings = broad.evaluation
    sets = kshot_draws(kshot_sets, settings.ks, settings.seeds, "meta_training.broad.evaluation")
    test = sampled_test_rows(splits, settings.max_test_rows, 0)
    labels = sorted(set(splits["label"].astype(str)))
    by_id = splits.set_index("row_id", drop=False)
    records = []

    def score(model: str, strategy: str, k: int, seed: int, predicted: Any, seconds: float) -> None:
        records.append({"fold": fold, "model": model, "strategy": strategy, "k": k, "seed": seed,
                        **label_metrics(test["label"], predicted, labels), "n_test": len(test),
                        "adaptation_seconds": seconds})

    arms = {"meta_trained": fold_model.backbone}
    if peers:
        arms["pretrained"] = named_backbone(settings.pretrained, "meta_training.broad.evaluation.pretrained",
                                            wordpiece_tokenizer, pretrained_backbone, seed=broad.config.seed)
    test_texts = test["text"].tolist()
    for model, backbone in arms.items():
        started = time.perf_counter()
        test_features: dict[tuple, np.ndarray] = {}  # frozen encoder: its test features once per (length, pooling)
        for strategy in settings.strategies:
            strategy_options = dict((strategy_options_of or {}).get(strategy) or {})
            if strategy == "prototype":
                strategy_options = {"metric": broad.config.distance, "max_length": broad.config.max_length,
                                    "pooling": broad.config.pooling, **strategy_options}
            for k, seed, ids in sets:
                support = by_id.loc[ids, ["text", "label"]]
                predictor = adapt(backbone, support, strategy, seed=seed, **strategy_options)
                if strategy in FROZEN_STRATEGIES:
                    key = (predictor.max_length, predictor.pooling)
                    if key not in test_features:
                        test_features[key] = predictor.embed(test_texts)
                    predicted = predictor.predict_features(test_features[key])
                else:
                    predicted = predictor.predict(test_texts)
                score(model, strategy, k, seed, predicted, predictor.adaptation_seconds)
        log.info("fold %s: %s arms in %.0f s", fold, model, time.perf_counter() - started)
    for k, seed, ids in sets if peers else ():
        predictor = adapt(None, by_id.loc[ids, ["text", "label"]], "tfidf", **dict(tfidf_options or {}))
        score("tfidf", "tfidf", k, seed, predictor.predict(test["text"].tolist()), predictor.adaptation_seconds)
    return pd.DataFrame.from_records(records, columns=LODO_COLUMNS)


def lodo_summary_node(**results: pd.DataFrame):
    """Every fold's results -> the paired differences table and the accuracy-against-k plot."""
    table = pd.concat([v for _, v in sorted(results.items())], ignore_index=True)
    return lodo_differences(table), lodo_figure(table)


def text_domain_names(parameters: Mapping[str, Any]) -> list[str]:
    return [name for name, config in domain_configs(parameters).items() if config.kind == "text_classification"]


__all__ = ["RELEASE", "broad_meta_train_node", "lodo_evaluate_node", "lodo_summary_node", "text_domain_names"]
