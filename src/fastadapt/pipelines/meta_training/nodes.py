"""Meta-training nodes of the class-split protocol (PROTOCOL.md section 3): train each run,
select the `meta_learner`, meta-test against the baselines, and the meta-learning report.

The nodes call the library: `fastadapt.meta.plan.MetaTrainingPlan` validates the
`meta_training:` block (errors name the parameter), `fastadapt.meta.class_split` builds each
run's episode sources, `fastadapt.meta` trains and meta-tests, `fastadapt.evaluation.meta_report`
computes the paired statistics and writes the report. Frozen encoders embed every row of a
split's episodes once (`MetaLearner.cached_features`), not once per episode.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fastadapt.config import ConfigError
from fastadapt.evaluation.meta_report import (
    FROZEN,
    TFIDF,
    episode_differences,
    episode_figure,
    history_metrics,
    meta_learning_report,
    summary_metrics,
)
from fastadapt.evaluation.plots import validation_curve_figure
from fastadapt.meta import ProtoNet, build_algorithm, build_learner, episode_summary, evaluate_episodes, meta_train
from fastadapt.meta.class_split import class_split_sources
from fastadapt.meta.evaluate import select_episodes, strategy_adapter
from fastadapt.meta.plan import MetaTrainingPlan
from fastadapt.meta.saved import MetaLearnedModel
from fastadapt.models.backbones import named_backbone
from fastadapt.models.encoder import resolve_device
from fastadapt.tasks.meta_episodes import banking77_class_split

log = logging.getLogger(__name__)

RESULT_COLUMNS = ["run", "method", "setting", "split", "episode", "accuracy", "adaptation_seconds"]


def meta_train_node(customer_intent_splits: pd.DataFrame, class_split_files: Mapping[str, bytes],
                    params: Mapping[str, Any], run: str, unlabelled_pool: pd.DataFrame | None = None,
                    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
                    **domain_splits: pd.DataFrame) -> tuple[MetaLearnedModel, pd.DataFrame, dict, Figure]:
    """Meta-train one run (algorithm x class split): the model, its history, MLflow series, curve.

    `domain_splits` are `<domain>_splits` tables for mixture sources of kind `domain`.
    """
    plan = MetaTrainingPlan.from_params(params).use_threads()
    spec = plan.run(run)
    try:
        class_lists = banking77_class_split(class_split_files, spec.split)
    except ValueError as error:
        raise ConfigError(f"meta_training.class_splits: {error}") from None
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer, pretrained_backbone,
                              seed=spec.config.seed)
    domains = {name.removesuffix("_splits"): table for name, table in domain_splits.items()}
    missing = sorted(set(plan.domains_needed) - set(domains))
    if missing:
        raise ValueError(f"meta_train_node: the splits of {missing} were not given")
    if plan.uses_pool and unlabelled_pool is None:
        raise ValueError("meta_train_node: an SMLMT source needs the unlabelled_pool")
    train_source, valid_source = class_split_sources(plan, spec, class_lists, customer_intent_splits,
                                                     unlabelled_pool, domains,
                                                     backbone.tokenizer.mask_token or "[MASK]")
    config = replace(spec.config, checkpoint_dir=plan.checkpoint_dir(spec))
    learner = build_learner(backbone, config)
    algorithm = build_algorithm(learner, config)
    result = meta_train(learner, algorithm, train_source, valid_source, config, description=f"meta-training {run}")
    history = result.history.copy()
    initial = history.loc[history["step"] == 0, "val_accuracy"]
    info = {
        "run": run, "class_split": spec.split, "backbone_param": plan.backbone,
        "best_step": result.best_step, "best_val_accuracy": result.best_val_accuracy,
        "initial_val_accuracy": float(initial.iloc[0]) if len(initial) else None,
        "stop_reason": result.stop_reason, "steps": int(history["step"].max()) if len(history) else 0,
        "seconds": round(float(result.seconds), 2), "checkpoint_dir": config.checkpoint_dir,
        "sources": plan.source_weights,
        "train_classes": len(class_lists["train"]), "valid_classes": len(class_lists["valid"]),
    }
    log.info("%s: %s after %d steps in %.0f s; meta-validation accuracy %.3f at step 0, best %.3f at step %s",
             run, result.stop_reason, info["steps"], result.seconds, info["initial_val_accuracy"] or math.nan,
             result.best_val_accuracy or math.nan, result.best_step)
    figure = validation_curve_figure(history, f"{run}: meta-validation on class split {spec.split}'s valid classes "
                                              f"(stop: {result.stop_reason})")
    return MetaLearnedModel(algorithm, config, info), history.assign(run=run), history_metrics(history), figure


def select_meta_learner(**inputs: Any) -> tuple[MetaLearnedModel, pd.DataFrame, pd.DataFrame]:
    """The run with the best meta-validation accuracy becomes `meta_learner`.

    Inputs are named `learner__<run>` and `history__<run>`. Outputs: the selected model, every run's
    history in one table (column run), and one summary row per run (column selected).
    """
    learners = {k.removeprefix("learner__"): v for k, v in inputs.items() if k.startswith("learner__")}
    histories = [v for k, v in sorted(inputs.items()) if k.startswith("history__")]
    release = inputs.get("release")
    if release is not None:  # the broad run on every source is what new_task adapts
        learners[str(release.info.get("run", "broad_all"))] = release
    if not learners:
        raise ValueError("select_meta_learner: no meta-trained runs")
    rows = []
    for run, model in sorted(learners.items()):
        rows.append({"run": run, "algorithm": model.config.algorithm,
                     **{k: model.info.get(k) for k in ("class_split", "best_step", "best_val_accuracy",
                                                       "initial_val_accuracy", "stop_reason", "steps", "seconds")}})
    runs = pd.DataFrame(rows)
    scores = runs["best_val_accuracy"].astype(float).fillna(-1.0)
    best = str(release.info.get("run", "broad_all")) if release is not None else str(runs.loc[scores.idxmax(), "run"])
    runs["selected"] = runs["run"] == best
    log.info("meta_learner: %s (%s)", best, learners[best].describe())
    return learners[best], pd.concat(histories, ignore_index=True), runs


def _results(frame: pd.DataFrame, run: str, method: str, seconds: float) -> pd.DataFrame:
    return frame.assign(run=run, method=method)[RESULT_COLUMNS].assign(eval_seconds=round(seconds, 2))


def meta_test_node(meta_model: MetaLearnedModel, class_split_episodes: pd.DataFrame,
                   customer_intent_splits: pd.DataFrame, params: Mapping[str, Any], run: str) -> pd.DataFrame:
    """Accuracy of the meta-learned model on every fixed test episode of its class split."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    spec = plan.run(run)
    table = select_episodes(class_split_episodes, spec.split, plan.evaluation)
    rows = customer_intent_splits[customer_intent_splits["row_id"].isin(set(table["row_id"]))]
    strategy = plan.evaluation.strategy
    started = time.perf_counter()
    learner = meta_model.learner
    learner.to(resolve_device(plan.meta_config.device))
    # Prototype-style adaptation never changes the encoder: embed each row once.
    frozen = strategy in ("prototype", "meta") and (spec.algorithm == "protonet" or
                                                     getattr(meta_model.algorithm, "head_only", False))
    with learner.cached_features(rows["text"].tolist(), plan.evaluation.batch_size) if frozen else nullcontext():
        results = evaluate_episodes(strategy_adapter(meta_model, strategy), table, rows, progress=False)
    seconds = time.perf_counter() - started
    log.info("%s: meta-test on %d episodes in %.0f s, mean accuracy %.3f", run, len(results), seconds,
             results["accuracy"].mean())
    return _results(results, run, spec.algorithm, seconds)


def baselines_node(class_split_episodes: pd.DataFrame, customer_intent_splits: pd.DataFrame,
                   params: Mapping[str, Any], tfidf_options: Mapping[str, Any] | None, split: str,
                   wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None) -> pd.DataFrame:
    """The same episodes with no meta-training: prototypes of the frozen starting encoder (same
    pooling, length and metric as the meta-learner) and TF-IDF + LR (`baselines.tfidf`) fitted on
    each support set."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    table = select_episodes(class_split_episodes, split, plan.evaluation)
    rows = customer_intent_splits[customer_intent_splits["row_id"].isin(set(table["row_id"]))]
    frames = []
    started = time.perf_counter()
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer, pretrained_backbone,
                              seed=plan.meta_config.seed)
    config = replace(plan.meta_config, algorithm="protonet")
    learner = build_learner(backbone, config).to(resolve_device(plan.meta_config.device))
    with learner.cached_features(rows["text"].tolist(), plan.evaluation.batch_size):
        results = evaluate_episodes(strategy_adapter(ProtoNet(learner), "meta"), table, rows, progress=False)
    frames.append(_results(results, f"baselines_s{split}", FROZEN, time.perf_counter() - started))
    started = time.perf_counter()
    results = evaluate_episodes(strategy_adapter(None, "tfidf", **dict(tfidf_options or {})), table, rows, progress=False)
    frames.append(_results(results, f"baselines_s{split}", TFIDF, time.perf_counter() - started))
    for frame in frames:
        log.info("split %s: %s mean accuracy %.3f over %d episodes (%.0f s)", split, frame["method"].iloc[0],
                 frame["accuracy"].mean(), len(frame), frame["eval_seconds"].iloc[0])
    return pd.concat(frames, ignore_index=True)


def meta_learning_report_node(runs: pd.DataFrame, params: Mapping[str, Any], n_episodes: int | None,
                              environment: str, **inputs: pd.DataFrame
                              ) -> tuple[str, pd.DataFrame, pd.DataFrame, Figure, dict]:
    """data/08_reporting/meta_learning.md, its tables, the episode plot and MLflow metrics.

    `inputs`: `results__<name>` episode results (meta-test runs and baselines), `curves__<domain>`
    learning-curve tables, and with broad runs `lodo__<fold>` results and `lodo_differences`.
    """
    plan = MetaTrainingPlan.from_params(params)
    results = pd.concat([v for k, v in sorted(inputs.items()) if k.startswith("results__")], ignore_index=True)
    curves = [v for k, v in sorted(inputs.items()) if k.startswith("curves__")]
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    lodo = pd.concat([v for k, v in sorted(inputs.items()) if k.startswith("lodo__")], ignore_index=True) \
        if "lodo_differences" in inputs else None
    summary = episode_summary(results)
    diffs = episode_differences(results, sorted({run.algorithm for run in plan.runs}), [FROZEN, TFIDF])
    report = meta_learning_report(plan, runs, results, summary, diffs, curves, n_episodes, environment, lodo,
                                  inputs.get("lodo_differences"))
    return report, summary, diffs, episode_figure(summary), summary_metrics(summary)


__all__ = ["baselines_node", "meta_learning_report_node", "meta_test_node", "meta_train_node", "select_meta_learner"]
