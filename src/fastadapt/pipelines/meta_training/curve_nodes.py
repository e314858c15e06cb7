"""k-shot learning-curve nodes: every arm (random init, pretrained only, meta-trained, TF-IDF) on
each k-shot set of a text domain, scored on its test split (`meta_training.curves`).

A frozen encoder embeds the needed rows (test and every support row) once for all its (k, seed)
fits; a meta-learned ProtoNet keeps its own metric and reads cached features
(`MetaLearner.cached_features`). Every arm adapts with the plain options (`adapt(..., tuned=False)`):
a curve compares encoders, not adaptation recipes, and the frozen arms' support features are
computed beforehand (class names as extra support would need encoding too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from fastadapt.adapt import adapt
from fastadapt.evaluation.metrics import label_metrics, summarise_runs
from fastadapt.evaluation.plots import learning_curve_figure
from fastadapt.meta.evaluate import kshot_draws, sampled_test_rows
from fastadapt.meta.plan import MetaTrainingPlan
from fastadapt.meta.saved import MetaLearnedModel
from fastadapt.models.backbones import named_backbone
from fastadapt.models.encoder import embed_texts, resolve_device

log = logging.getLogger(__name__)


def kshot_curve_node(splits: pd.DataFrame, kshot_sets: pd.DataFrame, meta_model: MetaLearnedModel,
                     params: Mapping[str, Any], tfidf_options: Mapping[str, Any] | None, domain: str,
                     wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None) -> pd.DataFrame:
    """Accuracy and macro-F1 on the test split for every k-shot set and every arm: random init,
    pretrained only, meta-trained and TF-IDF (`baselines.tfidf`). Columns domain, model, k, seed,
    accuracy, macro_f1, n_test, adaptation_seconds."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    curves, meta = plan.curves, plan.meta_config
    sets = kshot_draws(kshot_sets, curves.ks, curves.seeds, "meta_training.curves")
    test = sampled_test_rows(splits, curves.max_test_rows, curves.seed)
    by_id = splits.set_index("row_id", drop=False)
    labels = sorted(set(splits["label"].astype(str)))
    support_ids = sorted({i for _, _, ids in sets for i in ids})
    needed = pd.concat([by_id.loc[support_ids], test]).drop_duplicates("row_id")
    records = []

    def score(arm: str, k: int, seed: int, predicted: Sequence[str], seconds: float) -> None:
        records.append({"domain": domain, "model": arm, "k": k, "seed": seed,
                        **label_metrics(test["label"], predicted, labels), "n_test": len(test),
                        "adaptation_seconds": seconds})

    def frozen_arm(arm: str, learner: Any, strategy: str) -> None:
        """A frozen encoder: its features of the needed rows once, then every (k, seed) fit."""
        started = time.perf_counter()
        backbone = learner.backbone if isinstance(learner, MetaLearnedModel) else learner
        vectors = embed_texts(backbone, needed["text"].tolist(), batch_size=curves.batch_size,
                              max_length=meta.max_length, pooling=meta.pooling, normalize=False,
                              device=meta.device, progress=False)
        position = {int(r): i for i, r in enumerate(needed["row_id"])}
        test_x = vectors[[position[int(r)] for r in test["row_id"]]]
        for k, seed, ids in sets:
            predictor = adapt(backbone, by_id.loc[ids, ["text", "label"]], strategy, tuned=False,
                              features=vectors[[position[int(i)] for i in ids]], max_length=meta.max_length,
                              pooling=meta.pooling, **({"metric": curves.metric} if strategy == "prototype" else {}))
            score(arm, k, seed, predictor.predict_features(test_x), predictor.adaptation_seconds)
        log.info("%s curves: %s in %.0f s", domain, arm, time.perf_counter() - started)

    if "random_init" in curves.arms:
        backbone = named_backbone(curves.random_init.backbone, "meta_training.curves.random_init.backbone",
                                  wordpiece_tokenizer, pretrained_backbone, seed=curves.seed)
        if curves.random_init.backbone != "tiny-bert":  # that architecture, re-initialised
            torch.manual_seed(curves.seed)
            for module in backbone.model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        frozen_arm("random_init", backbone, curves.random_init.strategy)
    if "pretrained" in curves.arms:
        backbone = named_backbone(curves.pretrained.backbone, "meta_training.curves.pretrained.backbone",
                                  wordpiece_tokenizer, pretrained_backbone, seed=curves.seed)
        frozen_arm("pretrained", backbone, curves.pretrained_strategy)
    if "meta_trained" in curves.arms:
        if curves.strategy == "prototype" and meta_model.config.algorithm == "protonet":
            # ProtoNet adapts with the metric it was meta-trained with; its features are cached.
            started = time.perf_counter()
            learner = meta_model.learner.to(resolve_device(meta.device))
            with learner.cached_features(needed["text"].tolist(), curves.batch_size):
                for k, seed, ids in sets:
                    predictor = adapt(meta_model, by_id.loc[ids, ["text", "label"]], "prototype", tuned=False)
                    score("meta_trained", k, seed, predictor.predict(test["text"].tolist()),
                          predictor.adaptation_seconds)
            log.info("%s curves: meta_trained in %.0f s", domain, time.perf_counter() - started)
        else:
            frozen_arm("meta_trained", meta_model, curves.strategy)
    if "tfidf" in curves.arms:
        for k, seed, ids in sets:
            predictor = adapt(None, by_id.loc[ids, ["text", "label"]], "tfidf", **dict(tfidf_options or {}))
            score("tfidf", k, seed, predictor.predict(test["text"].tolist()), predictor.adaptation_seconds)
    return pd.DataFrame.from_records(records)


def curve_plot_node(curves: pd.DataFrame, domain: str) -> Figure:
    """Accuracy against k, one line per arm (mean ± sd over seeds)."""
    summary = summarise_runs(curves, ["model", "k"], ["accuracy"])
    n_test = int(curves["n_test"].iloc[0]) if len(curves) else 0
    return learning_curve_figure(summary, "accuracy", f"{domain}: accuracy against k ({n_test} test rows)")


__all__ = ["curve_plot_node", "kshot_curve_node"]
