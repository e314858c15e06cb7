"""Meta-training nodes: train on class-split episodes, meta-test against baselines, learning
curves per domain, and the meta-learning report.

Settings come from the `meta_training:` parameter block (conf/base/parameters_meta_training.yml);
`MetaTrainingPlan.from_params` validates it once, and errors name the parameter.

Embeddings are computed once per text and encoder wherever the encoder is frozen: the meta-test
embeds every row of a split's episodes once (not once per episode), and each learning-curve
encoder embeds the test rows and the k-shot rows once for all its (k, seed) fits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from fastadapt.adapt import STRATEGIES, adapt, check_strategy
from fastadapt.config import ConfigError
from fastadapt.evaluation.lodo import lodo_section
from fastadapt.evaluation.metrics import classification_metrics, mean_confidence_interval, summarise_runs
from fastadapt.evaluation.plots import learning_curve_figure
from fastadapt.evaluation.report import markdown_table
from fastadapt.meta import (
    MetaConfig,
    ProtoNet,
    build_algorithm,
    build_learner,
    episode_summary,
    evaluate_episodes,
    meta_train,
)
from fastadapt.meta.learner import MetaLearner
from fastadapt.meta.saved import MetaLearnedModel
from fastadapt.models.backbones import Backbone, named_backbone
from fastadapt.models.encoder import embed_texts
from fastadapt.tasks.meta_episodes import (
    LabelledEpisodeSource,
    MixtureSource,
    SmlmtSource,
    banking77_class_split,
)

log = logging.getLogger(__name__)

SOURCE_KINDS = ("class_split", "domain", "smlmt")
CURVE_ARMS = ("random_init", "pretrained", "meta_trained", "tfidf")
RESULT_COLUMNS = ["run", "method", "setting", "split", "episode", "accuracy", "adaptation_seconds"]
FROZEN, TFIDF = "frozen_prototypes", "tfidf"


# ---- settings -----------------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings; got {value!r}")
    return dict(value)


def _keys(params: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(allowed)}")


def _int_list(value: Any, where: str, low: int = 0) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value):
        raise ConfigError(f"{where} must be a non-empty list of integers >= {low} or null; got {value!r}")
    return [int(v) for v in value]


def split_name(split: Any, where: str = "meta_training.class_splits") -> str:
    """A class split's folder name: `"01"` for 1, "01" or "1"."""
    text = str(split)
    if not text.isdigit():
        raise ConfigError(f"{where} names split {split!r}; allowed: split numbers such as \"01\" or 1")
    return f"{int(text):02d}"


@dataclass(frozen=True)
class RunSpec:
    """One meta-training run: an algorithm on one class split."""

    name: str  # <algorithm>_s<split>, e.g. protonet_s01
    algorithm: str
    split: str  # "01"
    config: MetaConfig


@dataclass(frozen=True)
class MetaTrainingPlan:
    """The validated `meta_training:` block."""

    backbone: str
    runs: tuple[RunSpec, ...]
    sources: dict[str, dict[str, Any]]  # source name -> its settings (kind, ...), weight > 0 only
    evaluation: dict[str, Any]
    curves: dict[str, Any]
    meta: MetaConfig  # the shared settings (the first algorithm's merged config)

    @property
    def splits(self) -> list[str]:
        return sorted({run.split for run in self.runs})

    @property
    def domains_needed(self) -> list[str]:
        """Domains whose splits a mixture source reads."""
        return sorted({spec["domain"] for spec in self.sources.values() if spec["kind"] == "domain"})

    @property
    def uses_pool(self) -> bool:
        return any(spec["kind"] == "smlmt" for spec in self.sources.values())

    def run(self, name: str) -> RunSpec:
        return next(run for run in self.runs if run.name == name)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "meta_training") -> MetaTrainingPlan:
        params = _mapping(params, where)
        if not params:
            raise ConfigError(f"parameters have no `{where}:` block; see conf/base/parameters_meta_training.yml")
        _keys(params, {"backbone", "class_splits", "algorithms", "meta", "algorithm_settings", "sources",
                       "evaluation", "curves", "broad", "ner_source"}, where)
        backbone = params.get("backbone", "minilm-l6")
        if not isinstance(backbone, str) or not backbone:
            raise ConfigError(f"{where}.backbone must be minilm-l6, tiny-bert, pretrained or a model directory; "
                              f"got {backbone!r}")
        splits = params.get("class_splits") or ["01"]
        if not isinstance(splits, (list, tuple)):
            raise ConfigError(f"{where}.class_splits must be a list of split numbers, e.g. [\"01\"]; got {splits!r}")
        splits = [split_name(s, f"{where}.class_splits") for s in splits]
        algorithms = params.get("algorithms") or ["protonet"]
        if not isinstance(algorithms, (list, tuple)):
            raise ConfigError(f"{where}.algorithms must be a list of algorithms; got {algorithms!r}")
        from fastadapt.meta import ALGORITHMS

        for name in algorithms:
            if name not in ALGORITHMS:
                raise ConfigError(f"{where}.algorithms names {name!r}; allowed: {list(ALGORITHMS)}")
        meta = _mapping(params.get("meta"), f"{where}.meta")
        per_algorithm = _mapping(params.get("algorithm_settings"), f"{where}.algorithm_settings")
        for name in per_algorithm:
            if name not in ALGORITHMS:
                raise ConfigError(f"{where}.algorithm_settings has {name!r}; allowed: {list(ALGORITHMS)}")
        configs = {}
        for name in algorithms:
            merged = {**meta, **_mapping(per_algorithm.get(name), f"{where}.algorithm_settings.{name}"),
                      "algorithm": name}
            configs[name] = MetaConfig.from_params(merged, where=f"{where}.meta")
        first = configs[algorithms[0]]
        weights = first.sources or {"banking77": 1.0}
        specs = _mapping(params.get("sources"), f"{where}.sources")
        sources = {}
        for source, weight in weights.items():
            if weight <= 0:
                continue
            if source not in specs and source != "banking77":
                raise ConfigError(f"{where}.meta.sources names '{source}', which {where}.sources does not define; "
                                  f"defined: {sorted(specs)}")
            spec = _mapping(specs.get(source, {"kind": "class_split"}), f"{where}.sources.{source}")
            kind = spec.get("kind")
            if kind not in SOURCE_KINDS:
                raise ConfigError(f"{where}.sources.{source}.kind is {kind!r}; allowed: {list(SOURCE_KINDS)}")
            allowed = {"class_split": {"kind"},
                       "domain": {"kind", "domain", "splits", "n_way"},
                       "smlmt": {"kind", "min_word_count", "max_texts", "exclude_sources", "seed"}}[kind]
            _keys(spec, allowed, f"{where}.sources.{source}")
            if kind == "domain" and not isinstance(spec.get("domain"), str):
                raise ConfigError(f"{where}.sources.{source}.domain must name a domain; got {spec.get('domain')!r}")
            sources[source] = {**spec, "weight": float(weight)}
        runs = tuple(RunSpec(f"{a}_s{s}", a, s, configs[a]) for a in algorithms for s in splits)
        evaluation = _mapping(params.get("evaluation"), f"{where}.evaluation")
        _keys(evaluation, {"strategy", "max_episodes", "settings", "batch_size"}, f"{where}.evaluation")
        evaluation = {"strategy": "meta", "max_episodes": None, "settings": None, "batch_size": 64, **evaluation}
        check_strategy(evaluation["strategy"], f"{where}.evaluation.strategy")
        if evaluation["strategy"] == "tfidf":
            raise ConfigError(f"{where}.evaluation.strategy is 'tfidf'; the meta-learned model is adapted with one "
                              f"of {[s for s in STRATEGIES if s != 'tfidf']} (TF-IDF is always a baseline)")
        if evaluation["max_episodes"] is not None:
            _int_list([evaluation["max_episodes"]], f"{where}.evaluation.max_episodes", 1)
        curves = _mapping(params.get("curves"), f"{where}.curves")
        _keys(curves, {"domains", "ks", "seeds", "max_test_rows", "arms", "random_init", "pretrained",
                       "strategy", "metric", "batch_size", "seed"}, f"{where}.curves")
        curves = {"domains": None, "ks": None, "seeds": None, "max_test_rows": None, "arms": list(CURVE_ARMS),
                  "random_init": {"backbone": "tiny-bert", "strategy": "prototype"},
                  "pretrained": {"backbone": "minilm-l6"}, "strategy": "prototype", "metric": "cosine",
                  "batch_size": 64, "seed": 0, **curves}
        for arm in curves["arms"]:
            if arm not in CURVE_ARMS:
                raise ConfigError(f"{where}.curves.arms names {arm!r}; allowed: {list(CURVE_ARMS)}")
        curves["ks"] = _int_list(curves["ks"], f"{where}.curves.ks", 1)
        curves["seeds"] = _int_list(curves["seeds"], f"{where}.curves.seeds", 0)
        if curves["max_test_rows"] is not None:
            _int_list([curves["max_test_rows"]], f"{where}.curves.max_test_rows", 1)
        for arm in ("random_init", "pretrained"):
            curves[arm] = _mapping(curves[arm], f"{where}.curves.{arm}")
            _keys(curves[arm], {"backbone", "strategy"}, f"{where}.curves.{arm}")
        for key, value in (("strategy", curves["strategy"]),
                           ("random_init.strategy", curves["random_init"].get("strategy", "prototype"))):
            if value not in ("prototype", "finetune_head"):
                raise ConfigError(f"{where}.curves.{key} is {value!r}; allowed: ['prototype', 'finetune_head'] "
                                  f"(frozen encoders: their features are computed once)")
        if curves["metric"] not in ("cosine", "euclidean"):
            raise ConfigError(f"{where}.curves.metric is {curves['metric']!r}; allowed: ['cosine', 'euclidean']")
        return cls(backbone=backbone, runs=runs, sources=sources, evaluation=evaluation, curves=curves, meta=first)


def plan_from(params: Mapping[str, Any]) -> MetaTrainingPlan:
    plan = MetaTrainingPlan.from_params(params)
    if plan.meta.num_threads and plan.meta.device in ("auto", "cpu"):
        torch.set_num_threads(plan.meta.num_threads)
    return plan


# ---- episode sources ------------------------------------------------------------------------------


def _enough_rows(rows: pd.DataFrame, per_class: int) -> pd.DataFrame:
    counts = rows["label"].astype(str).value_counts()
    return rows[rows["label"].astype(str).isin(counts[counts >= per_class].index)]


def episode_sources(plan: MetaTrainingPlan, run: RunSpec, class_lists: Mapping[str, list[str]],
                    customer_intent_splits: pd.DataFrame, unlabelled_pool: pd.DataFrame | None,
                    domain_splits: Mapping[str, pd.DataFrame], mask_token: str):
    """(meta-training source, meta-validation source) of a run (PROTOCOL.md section 3).

    Meta-training reads only the train and validation rows of the split's train classes (test rows
    stay unseen, so the k-shot curves on Banking77's test split stay fair) and the other sources;
    meta-validation all rows of the split's valid classes. No row or name of a test class is read.
    """
    config = run.config
    per_class = config.k_shot + config.n_query
    built = {}
    for name, spec in plan.sources.items():
        where = f"meta_training.sources.{name}"
        if spec["kind"] == "class_split":
            rows = customer_intent_splits[(customer_intent_splits["split"] != "test")
                                          & customer_intent_splits["label"].isin(class_lists["train"])]
            classes = sorted(set(rows["label"]))
            built[name] = LabelledEpisodeSource(rows, classes, n_way=min(config.n_way, len(classes)),
                                                k_shot=config.k_shot, n_query=config.n_query, name=name)
        elif spec["kind"] == "domain":
            rows = domain_splits[spec["domain"]]
            rows = _enough_rows(rows[rows["split"].isin(spec.get("splits", ["train", "validation"]))], per_class)
            classes = sorted(set(rows["label"].astype(str)))
            if len(classes) < 2:
                raise ConfigError(f"{where}: domain '{spec['domain']}' has {len(classes)} class(es) with at least "
                                  f"k_shot + n_query = {per_class} rows; episodes need 2")
            n_way = min(int(spec.get("n_way") or config.n_way), len(classes))
            built[name] = LabelledEpisodeSource(rows.assign(label=rows["label"].astype(str)), classes, n_way=n_way,
                                                k_shot=config.k_shot, n_query=config.n_query, name=name)
        else:
            pool = unlabelled_pool
            excluded = spec.get("exclude_sources", ["customer_intent"])
            pool = pool[~pool["source"].isin(excluded)]
            if spec.get("max_texts") and len(pool) > spec["max_texts"]:
                keep = np.random.default_rng(spec.get("seed", 0)).choice(len(pool), spec["max_texts"], replace=False)
                pool = pool.iloc[np.sort(keep)]
            try:
                built[name] = SmlmtSource(pool["text"].tolist(), n_way=config.n_way, k_shot=config.k_shot,
                                          n_query=config.n_query, min_word_count=spec.get("min_word_count", 30),
                                          mask_token=mask_token, name=name)
            except ValueError as error:
                raise ConfigError(f"{where}: {error}") from None
    if not built:
        raise ConfigError("meta_training.meta.sources gives every source weight 0; at least one must be > 0")
    train = next(iter(built.values())) if len(built) == 1 else MixtureSource(
        built, {name: plan.sources[name]["weight"] for name in built})
    valid_rows = customer_intent_splits[customer_intent_splits["label"].isin(class_lists["valid"])]
    valid = LabelledEpisodeSource(valid_rows, class_lists["valid"], n_way=min(config.n_way, len(class_lists["valid"])),
                                  k_shot=config.k_shot, n_query=config.n_query, name="banking77_valid")
    return train, valid


def _checkpoint_dir(plan: MetaTrainingPlan, run: RunSpec) -> str | None:
    """`<checkpoint_dir>/<run>-<hash of the settings>`: a run resumes only its own checkpoints."""
    if not run.config.checkpoint_dir:
        return None
    settings = {k: v for k, v in asdict(run.config).items()
                if k not in ("checkpoint_dir", "checkpoint_every", "device", "num_threads", "log_every")}
    key = json.dumps({"run": run.name, "backbone": plan.backbone, "config": settings, "sources": plan.sources},
                     sort_keys=True, default=str)
    return str(Path(run.config.checkpoint_dir) / f"{run.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}")


# ---- meta-training ------------------------------------------------------------------------------


def history_metrics(history: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """The history as kedro-mlflow metric series {name: [{value, step}, ...]} (NaNs left out)."""
    metrics = {}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        points = [{"value": float(v), "step": int(s)} for s, v in zip(history["step"], history[name])
                  if math.isfinite(float(v))]
        if points:
            metrics[name] = points
    return metrics


def validation_curve_figure(history: pd.DataFrame, title: str) -> Figure:
    """Meta-validation accuracy (held-out classes) and training episode accuracy against the step."""
    figure = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = figure.add_subplot()
    trained = history.dropna(subset=["accuracy"])
    if len(trained):
        ax.plot(trained["step"], trained["accuracy"], color="tab:blue", alpha=0.6,
                label="meta-training episodes (query accuracy)")
    validated = history.dropna(subset=["val_accuracy"])
    if len(validated):
        ax.plot(validated["step"], validated["val_accuracy"], "o-", color="tab:orange",
                label="meta-validation (held-out classes)")
        best = validated.loc[validated["val_accuracy"].idxmax()]
        ax.axvline(best["step"], color="tab:orange", linestyle=":", label=f"best: step {int(best['step'])}")
    ax.set_xlabel("outer step")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def meta_train_node(customer_intent_splits: pd.DataFrame, class_split_files: Mapping[str, bytes],
                    params: Mapping[str, Any], run: str, unlabelled_pool: pd.DataFrame | None = None,
                    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
                    **domain_splits: pd.DataFrame) -> tuple[MetaLearnedModel, pd.DataFrame, dict, Figure]:
    """Meta-train one run (algorithm x class split): the model, its history, MLflow series, curve.

    `domain_splits` are `<domain>_splits` tables for mixture sources of kind `domain`.
    """
    plan = plan_from(params)
    spec = plan.run(run)
    try:
        class_lists = banking77_class_split(class_split_files, spec.split)
    except ValueError as error:
        raise ConfigError(f"meta_training.class_splits: {error}") from None
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer,
                                   pretrained_backbone, seed=spec.config.seed)
    domains = {name.removesuffix("_splits"): table for name, table in domain_splits.items()}
    missing = sorted(set(plan.domains_needed) - set(domains))
    if missing:
        raise ValueError(f"meta_train_node: the splits of {missing} were not given")
    if plan.uses_pool and unlabelled_pool is None:
        raise ValueError("meta_train_node: an SMLMT source needs the unlabelled_pool")
    train_source, valid_source = episode_sources(plan, spec, class_lists, customer_intent_splits, unlabelled_pool,
                                                 domains, backbone.tokenizer.mask_token or "[MASK]")
    config = replace(spec.config, checkpoint_dir=_checkpoint_dir(plan, spec))
    learner = build_learner(backbone, config)
    algorithm = build_algorithm(learner, config)
    result = meta_train(learner, algorithm, train_source, valid_source, config,
                        description=f"meta-training {run}")
    history = result.history.copy()
    initial = history.loc[history["step"] == 0, "val_accuracy"]
    info = {
        "run": run, "class_split": spec.split, "backbone_param": plan.backbone,
        "best_step": result.best_step, "best_val_accuracy": result.best_val_accuracy,
        "initial_val_accuracy": float(initial.iloc[0]) if len(initial) else None,
        "stop_reason": result.stop_reason, "steps": int(history["step"].max()) if len(history) else 0,
        "seconds": round(float(result.seconds), 2), "checkpoint_dir": config.checkpoint_dir,
        "sources": {name: s["weight"] for name, s in plan.sources.items()},
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


# ---- meta-test on the fixed episodes ------------------------------------------------------------


@contextmanager
def cached_embeddings(learner: MetaLearner, texts: Sequence[str], batch_size: int = 64) -> Iterator[None]:
    """Within the block, `learner.embed` of these texts (with the learner's own weights) reads
    features computed once here: episodes share rows, and a frozen encoder embeds each once."""
    unique = list(dict.fromkeys(str(t) for t in texts))
    vectors = learner.embed(unique, batch_size=batch_size)
    index = {text: i for i, text in enumerate(unique)}
    original = learner.embed

    def embed(items: Sequence[str], params: Any = None, batch_size: int = 64) -> torch.Tensor:
        items = [str(t) for t in items]
        if params or any(t not in index for t in items):
            return original(items, params, batch_size)
        return vectors[[index[t] for t in items]]

    learner.embed = embed  # an instance attribute shadows the method for this block only
    try:
        yield
    finally:
        del learner.embed


def _episode_table(plan: MetaTrainingPlan, episodes: pd.DataFrame, split: str) -> pd.DataFrame:
    table = episodes[episodes["split"] == int(split)]
    if table.empty:
        raise ConfigError(f"meta_training.class_splits has split {split}, but class_split_episodes has no episodes "
                          f"of it (found splits {sorted(episodes['split'].unique().tolist())}); rerun the features "
                          f"pipeline")
    settings = plan.evaluation["settings"]
    if settings is not None:
        unknown = sorted(set(settings) - set(table["setting"]))
        if unknown:
            raise ConfigError(f"meta_training.evaluation.settings names {unknown}; the episodes have "
                              f"{sorted(set(table['setting']))}")
        table = table[table["setting"].isin(settings)]
    if plan.evaluation["max_episodes"] is not None:
        table = table[table["episode"] < plan.evaluation["max_episodes"]]
    return table


def _adapt_fn(learner: Any, strategy: str, **options: Any):
    def adapt_fn(texts: Sequence[str], labels: Sequence[str]):
        return adapt(learner, pd.DataFrame({"text": list(texts), "label": list(labels)}), strategy, **options)
    return adapt_fn


def _results(frame: pd.DataFrame, run: str, method: str, seconds: float) -> pd.DataFrame:
    return frame.assign(run=run, method=method)[RESULT_COLUMNS].assign(eval_seconds=round(seconds, 2))


def meta_test_node(meta_model: MetaLearnedModel, class_split_episodes: pd.DataFrame,
                   customer_intent_splits: pd.DataFrame, params: Mapping[str, Any], run: str) -> pd.DataFrame:
    """Accuracy of the meta-learned model on every fixed test episode of its class split."""
    plan = plan_from(params)
    spec = plan.run(run)
    table = _episode_table(plan, class_split_episodes, spec.split)
    rows = customer_intent_splits[customer_intent_splits["row_id"].isin(set(table["row_id"]))]
    strategy = plan.evaluation["strategy"]
    started = time.perf_counter()
    learner = meta_model.learner
    learner.to(torch.device(_device(plan)))
    # Prototype-style adaptation never changes the encoder: embed each row once.
    frozen = strategy in ("prototype", "meta") and (spec.algorithm == "protonet" or
                                                     getattr(meta_model.algorithm, "head_only", False))
    if frozen:
        with cached_embeddings(learner, rows["text"].tolist(), plan.evaluation["batch_size"]):
            results = evaluate_episodes(_adapt_fn(meta_model, strategy), table, rows, progress=False)
    else:
        results = evaluate_episodes(_adapt_fn(meta_model, strategy), table, rows, progress=False)
    seconds = time.perf_counter() - started
    log.info("%s: meta-test on %d episodes in %.0f s, mean accuracy %.3f", run, len(results), seconds,
             results["accuracy"].mean())
    return _results(results, run, spec.algorithm, seconds)


def _device(plan: MetaTrainingPlan) -> str:
    from fastadapt.models.encoder import resolve_device

    return str(resolve_device(plan.meta.device))


def baselines_node(class_split_episodes: pd.DataFrame, customer_intent_splits: pd.DataFrame,
                   params: Mapping[str, Any], baselines_params: Mapping[str, Any], split: str,
                   wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None) -> pd.DataFrame:
    """The same episodes with no meta-training: prototypes of the frozen starting encoder (same
    pooling, length and metric as the meta-learner) and TF-IDF + LR fitted on each support set."""
    plan = plan_from(params)
    table = _episode_table(plan, class_split_episodes, split)
    rows = customer_intent_splits[customer_intent_splits["row_id"].isin(set(table["row_id"]))]
    frames = []
    started = time.perf_counter()
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer, pretrained_backbone,
                                   seed=plan.meta.seed)
    config = replace(plan.meta, algorithm="protonet")
    learner = build_learner(backbone, config).to(torch.device(_device(plan)))
    frozen = ProtoNet(learner)
    with cached_embeddings(learner, rows["text"].tolist(), plan.evaluation["batch_size"]):
        results = evaluate_episodes(_adapt_fn(frozen, "meta"), table, rows, progress=False)
    frames.append(_results(results, f"baselines_s{split}", FROZEN, time.perf_counter() - started))
    started = time.perf_counter()
    tfidf = dict((baselines_params or {}).get("tfidf") or {})
    results = evaluate_episodes(_adapt_fn(None, "tfidf", **tfidf), table, rows, progress=False)
    frames.append(_results(results, f"baselines_s{split}", TFIDF, time.perf_counter() - started))
    for frame in frames:
        log.info("split %s: %s mean accuracy %.3f over %d episodes (%.0f s)", split, frame["method"].iloc[0],
                 frame["accuracy"].mean(), len(frame), frame["eval_seconds"].iloc[0])
    return pd.concat(frames, ignore_index=True)


# ---- k-shot learning curves -----------------------------------------------------------------------


def _curve_sets(kshot_sets: pd.DataFrame, plan: MetaTrainingPlan) -> list[tuple[int, int, list[int]]]:
    ks, seeds = plan.curves["ks"], plan.curves["seeds"]
    available = {(int(k), int(s)): g["row_id"].astype(int).tolist()
                 for (k, s), g in kshot_sets.groupby(["k", "seed"], sort=True)}
    chosen = [(k, s, ids) for (k, s), ids in available.items()
              if (ks is None or k in ks) and (seeds is None or s in seeds)]
    missing = [(k, s) for k in (ks or []) for s in (seeds or []) if (k, s) not in available]
    if missing:
        raise ConfigError(f"meta_training.curves asks for (k, seed) {missing[:5]} that <domain>.kshot_sets lacks; "
                          f"available: {sorted(available)[:10]}... (kshot.ks / kshot.seeds of the features pipeline)")
    return sorted(chosen)


def _test_rows(splits: pd.DataFrame, plan: MetaTrainingPlan) -> pd.DataFrame:
    test = splits[splits["split"] == "test"].sort_values("row_id")
    limit = plan.curves["max_test_rows"]
    if limit is not None and len(test) > limit:
        keep = np.random.default_rng(plan.curves["seed"]).choice(len(test), limit, replace=False)
        test = test.iloc[np.sort(keep)]
    return test


def kshot_curve_node(splits: pd.DataFrame, kshot_sets: pd.DataFrame, meta_model: MetaLearnedModel,
                     params: Mapping[str, Any], baselines_params: Mapping[str, Any], domain: str,
                     wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None) -> pd.DataFrame:
    """Accuracy and macro-F1 on the test split for every k-shot set and every arm: random init,
    pretrained only, meta-trained and TF-IDF. Columns domain, model, k, seed, accuracy, macro_f1,
    n_test, adaptation_seconds, seconds (the arm's wall time: embedding and every fit)."""
    plan = plan_from(params)
    curves = plan.curves
    sets = _curve_sets(kshot_sets, plan)
    test = _test_rows(splits, plan)
    by_id = splits.set_index("row_id", drop=False)
    labels = sorted(set(splits["label"].astype(str)))
    support_ids = sorted({i for _, _, ids in sets for i in ids})
    needed = pd.concat([by_id.loc[support_ids], test]).drop_duplicates("row_id")
    records = []

    def score(arm: str, k: int, seed: int, predicted: Sequence[str], seconds: float) -> None:
        frame = pd.DataFrame({"label": test["label"].astype(str).to_numpy(),
                              "predicted": np.asarray(predicted, dtype=object).astype(str)})
        metrics = classification_metrics(frame, labels)
        records.append({"domain": domain, "model": arm, "k": k, "seed": seed, "accuracy": metrics["accuracy"],
                        "macro_f1": metrics["macro_f1"], "n_test": len(test), "adaptation_seconds": seconds})

    def frozen_arm(arm: str, learner: Any, strategy: str, **options: Any) -> None:
        """A frozen encoder: its features of the needed rows once, then every (k, seed) fit."""
        started = time.perf_counter()
        backbone = learner.backbone if isinstance(learner, MetaLearnedModel) else learner
        features = pd.DataFrame({"row_id": needed["row_id"].to_numpy()})
        vectors = embed_texts(backbone, needed["text"].tolist(), batch_size=curves["batch_size"],
                              max_length=plan.meta.max_length, pooling=plan.meta.pooling, normalize=False,
                              device=plan.meta.device, progress=False)
        position = {int(r): i for i, r in enumerate(features["row_id"])}
        test_x = vectors[[position[int(r)] for r in test["row_id"]]]
        for k, seed, ids in sets:
            support = by_id.loc[ids, ["text", "label"]]
            predictor = adapt(backbone, support, strategy, features=vectors[[position[int(i)] for i in ids]],
                              max_length=plan.meta.max_length, pooling=plan.meta.pooling,
                              **({"metric": curves["metric"]} if strategy == "prototype" else {}), **options)
            score(arm, k, seed, predictor.predict_features(test_x), predictor.adaptation_seconds)
        log.info("%s curves: %s in %.0f s", domain, arm, time.perf_counter() - started)

    arms = curves["arms"]
    if "random_init" in arms:
        random_spec = curves["random_init"]
        backbone = named_backbone(random_spec.get("backbone", "tiny-bert"), "meta_training.curves.random_init."
                                       "backbone", wordpiece_tokenizer, pretrained_backbone, seed=curves["seed"])
        if random_spec.get("backbone", "tiny-bert") != "tiny-bert":  # that architecture, re-initialised
            torch.manual_seed(curves["seed"])
            for module in backbone.model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        frozen_arm("random_init", backbone, random_spec.get("strategy", "prototype"))
    if "pretrained" in arms:
        backbone = named_backbone(curves["pretrained"].get("backbone", "minilm-l6"),
                                       "meta_training.curves.pretrained.backbone", wordpiece_tokenizer,
                                       pretrained_backbone, seed=curves["seed"])
        frozen_arm("pretrained", backbone, curves["pretrained"].get("strategy", curves["strategy"]))
    if "meta_trained" in arms:
        if curves["strategy"] == "prototype" and meta_model.config.algorithm == "protonet":
            # ProtoNet adapts with the metric it was meta-trained with; its features are cached.
            started = time.perf_counter()
            learner = meta_model.learner.to(torch.device(_device(plan)))
            with cached_embeddings(learner, needed["text"].tolist(), curves["batch_size"]):
                for k, seed, ids in sets:
                    predictor = adapt(meta_model, by_id.loc[ids, ["text", "label"]], "prototype")
                    score("meta_trained", k, seed, predictor.predict(test["text"].tolist()),
                          predictor.adaptation_seconds)
            log.info("%s curves: meta_trained in %.0f s", domain, time.perf_counter() - started)
        else:
            frozen_arm("meta_trained", meta_model, curves["strategy"])
    if "tfidf" in arms:
        tfidf = dict((baselines_params or {}).get("tfidf") or {})
        for k, seed, ids in sets:
            predictor = adapt(None, by_id.loc[ids, ["text", "label"]], "tfidf", **tfidf)
            score("tfidf", k, seed, predictor.predict(test["text"].tolist()), predictor.adaptation_seconds)
    return pd.DataFrame.from_records(records)


def curve_plot_node(curves: pd.DataFrame, domain: str) -> Figure:
    summary = summarise_runs(curves, ["model", "k"], ["accuracy"])
    n_test = int(curves["n_test"].iloc[0]) if len(curves) else 0
    return learning_curve_figure(summary, "accuracy", f"{domain}: accuracy against k ({n_test} test rows)")


# ---- the report ---------------------------------------------------------------------------------


def paired_differences(results: pd.DataFrame, methods: Sequence[str], against: Sequence[str]) -> pd.DataFrame:
    """Per setting x split: mean of (method - baseline) accuracy over the same episodes, 95 % CI."""
    wide = results.pivot_table(index=["setting", "split", "episode"], columns="method", values="accuracy")
    rows = []
    for method in methods:
        for baseline in against:
            if method not in wide or baseline not in wide:
                continue
            diff = (wide[method] - wide[baseline]).dropna()
            for (setting, split), group in diff.groupby(level=["setting", "split"], sort=True):
                mean, half = mean_confidence_interval(group.to_numpy())
                rows.append({"method": method, "baseline": baseline, "setting": setting, "split": f"{int(split):02d}",
                             "episodes": len(group), "difference": mean, "ci95": half,
                             "low": mean - half, "high": mean + half})
    table = pd.DataFrame(rows, columns=["method", "baseline", "setting", "split", "episodes", "difference", "ci95",
                                        "low", "high"])
    means = []
    for (method, baseline, setting), group in table.groupby(["method", "baseline", "setting"], sort=True):
        mean = float(group["difference"].mean())
        half = float(np.sqrt((group["ci95"] ** 2).sum()) / len(group))
        means.append({"method": method, "baseline": baseline, "setting": setting, "split": "mean",
                      "episodes": int(group["episodes"].sum()), "difference": mean, "ci95": half,
                      "low": mean - half, "high": mean + half})
    return pd.concat([table, pd.DataFrame(means, columns=table.columns)], ignore_index=True)


def episode_figure(summary: pd.DataFrame) -> Figure:
    """Accuracy with 95 % CI per setting (one panel each), one bar per method and split."""
    settings = sorted(summary["setting"].unique(), key=_setting_order)
    methods = list(dict.fromkeys(sorted(summary["method"].unique(), key=_method_order)))
    splits = sorted(summary["split"].unique(), key=lambda s: (s == "mean", s))
    if len(splits) == 2:  # one split: its mean is the same bar again
        splits = [s for s in splits if s != "mean"]
    figure = Figure(figsize=(4.2 * len(settings), 4.0), layout="constrained")
    axes = figure.subplots(1, len(settings), squeeze=False)[0]
    width = 0.8 / max(len(methods), 1)
    for ax, setting in zip(axes, settings):
        for m, method in enumerate(methods):
            part = summary[(summary["setting"] == setting) & (summary["method"] == method)].set_index("split")
            values = [part["accuracy"].get(s, np.nan) for s in splits]
            errors = [part["ci95"].get(s, 0.0) for s in splits]
            ax.bar(np.arange(len(splits)) + (m - (len(methods) - 1) / 2) * width, values, width, yerr=errors,
                   capsize=3, color=f"C{m}", label=method)
        ax.set_xticks(np.arange(len(splits)), [f"split {s}" if s != "mean" else "mean" for s in splits])
        ax.set_ylim(0, 1)
        ax.set_title(setting)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("query accuracy (95 % CI)")
    axes[-1].legend(fontsize=8, loc="lower right")
    return figure


def _setting_order(setting: str) -> tuple:
    digits = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in setting.split("_")]
    return tuple(digits)


def _method_order(method: str) -> tuple:
    return (method in (FROZEN, TFIDF), method == TFIDF, method)


def _verdict(diffs: pd.DataFrame, method: str, baseline: str) -> list[str]:
    """Plain sentences: where the method beat the baseline (CI above 0), lost, or could not be told apart."""
    part = diffs[(diffs["method"] == method) & (diffs["baseline"] == baseline)]
    if part["split"].nunique() == 2:  # one split: its mean row says the same again
        part = part[part["split"] != "mean"]
    lines = []
    for row in part.itertuples(index=False):
        where = f"{row.setting}, " + ("mean over splits" if row.split == "mean" else f"split {row.split}")
        change = f"{100 * row.difference:+.1f} points (95 % CI {100 * row.low:+.1f} to {100 * row.high:+.1f})"
        if row.low > 0:
            lines.append(f"- {where}: **helped**, {change}.")
        elif row.high < 0:
            lines.append(f"- {where}: **hurt**, {change}.")
        else:
            lines.append(f"- {where}: **no clear difference**, {change}.")
    return lines


def _curve_summary(curves: pd.DataFrame) -> pd.DataFrame:
    summary = summarise_runs(curves, ["domain", "model", "k"], ["accuracy", "macro_f1"])
    return summary


def meta_learning_report_node(runs: pd.DataFrame, params: Mapping[str, Any], episodes_params: Mapping[str, Any],
                              environment: str, **inputs: pd.DataFrame
                              ) -> tuple[str, pd.DataFrame, pd.DataFrame, Figure, dict]:
    """data/08_reporting/meta_learning.md, its tables, the episode plot and MLflow metrics.

    `inputs`: `results__<name>` episode results (meta-test runs and baselines) and
    `curves__<domain>` learning-curve tables.
    """
    plan = plan_from(params)
    results = pd.concat([v for k, v in sorted(inputs.items()) if k.startswith("results__")], ignore_index=True)
    curves = [v for k, v in sorted(inputs.items()) if k.startswith("curves__")]
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    summary = episode_summary(results)
    algorithms = sorted({run.algorithm for run in plan.runs})
    diffs = paired_differences(results, algorithms, [FROZEN, TFIDF])
    n_episodes = results.groupby(["setting", "split"])["episode"].nunique()
    configured = (episodes_params or {}).get("n_episodes")

    lines = ["# Meta-learning: does learning to learn help?", ""]
    lines += [f"Configuration environment `{environment}`; backbone `{plan.backbone}`; algorithms "
              f"{', '.join(f'`{a}`' for a in algorithms)}; Banking77 class splits {', '.join(plan.splits)} "
              f"(PROTOCOL.md section 3: meta-training on each split's 25 train classes, meta-validation with early "
              f"stopping on its 25 valid classes, meta-test on its 27 test classes, never seen before).", ""]
    limits = []
    if int(n_episodes.min()) < 600:
        limits.append(f"{int(n_episodes.min())} test episodes per setting and split, not the protocol's 600 "
                      f"(features pipeline `episodes.n_episodes: {configured}`"
                      + (f", `meta_training.evaluation.max_episodes: {plan.evaluation['max_episodes']}`"
                         if plan.evaluation["max_episodes"] else "") + ")")
    if len(plan.splits) < 5:
        limits.append(f"class split(s) {', '.join(plan.splits)} only, not all five")
    meta = plan.meta
    limits.append(f"meta-training budget: at most {meta.max_steps} outer steps of {meta.meta_batch_size} "
                  f"{meta.n_way}-way {meta.k_shot}-shot episodes"
                  + (f" or {meta.max_seconds:g} s" if meta.max_seconds else ""))
    if plan.curves["max_test_rows"] or plan.curves["ks"] or plan.curves["seeds"]:
        limits.append(f"learning curves on k = {plan.curves['ks'] or 'all'}, seeds {plan.curves['seeds'] or 'all'}"
                      + (f", at most {plan.curves['max_test_rows']} test rows per domain (a fixed random sample)"
                         if plan.curves["max_test_rows"] else ""))
    if environment == "base":
        lines += ["**Quick configuration.** These figures come from the quick config (`conf/base`), so they are "
                  "indicative: " + "; ".join(limits) + ". `kedro run --pipeline meta_training --env full` runs the "
                  "protocol in full.", ""]
    else:
        lines += ["Limits of this run: " + "; ".join(limits) + ".", ""]

    # -- the verdict first
    lines += ["## Verdict", ""]
    for algorithm in algorithms:
        mean_rows = diffs[(diffs["method"] == algorithm) & (diffs["split"] == "mean")]
        against_frozen = mean_rows[mean_rows["baseline"] == FROZEN]
        helped = against_frozen[against_frozen["low"] > 0]["setting"].tolist()
        hurt = against_frozen[against_frozen["high"] < 0]["setting"].tolist()
        unclear = against_frozen[(against_frozen["low"] <= 0) & (against_frozen["high"] >= 0)]["setting"].tolist()
        sentence = f"**{algorithm}** against the same encoder without meta-training (frozen prototypes), paired over " \
                   f"the same episodes: "
        parts = []
        for label, settings in (("helped in", helped), ("hurt in", hurt), ("made no clear difference in", unclear)):
            if settings:
                parts.append(f"{label} {', '.join(sorted(settings, key=_setting_order))}")
        best = against_frozen.loc[against_frozen["difference"].idxmax()] if len(against_frozen) else None
        lines.append(sentence + "; ".join(parts) + "."
                     + (f" Largest change: {100 * best['difference']:+.1f} points ({best['setting']})."
                        if best is not None else ""))
        lines += [""] + _verdict(diffs, algorithm, FROZEN) + [""]
        lines += ["Against TF-IDF + logistic regression fitted on each support set:", ""]
        lines += _verdict(diffs, algorithm, TFIDF) + [""]
    if len(curves):
        lines += ["k-shot learning curves (meta-trained against pretrained-only, paired over the same k-shot "
                  "sets; details below):", ""]
        for domain in sorted(curves["domain"].unique()):
            verdicts = _curve_verdicts(curves[curves["domain"] == domain])
            if not verdicts:
                continue
            groups = {}
            for k, word, mean, _ in verdicts:
                groups.setdefault(word, []).append(f"k={k} ({100 * mean:+.1f})")
            lines.append(f"- {domain}: " + "; ".join(f"{word} at {', '.join(ks)}" for word, ks in groups.items())
                         + ".")
        lines.append("")
    if len(runs):
        lines += ["Meta-validation (held-out valid classes) before and after meta-training:", ""]
        for row in runs.itertuples(index=False):
            initial = "n/a" if row.initial_val_accuracy is None or pd.isna(row.initial_val_accuracy) \
                else f"{row.initial_val_accuracy:.3f}"
            best = "n/a" if row.best_val_accuracy is None or pd.isna(row.best_val_accuracy) \
                else f"{row.best_val_accuracy:.3f}"
            lines.append(f"- `{row.run}`: {initial} at step 0, best {best} at step {row.best_step} "
                         f"({row.steps} steps, stop: {row.stop_reason}, {row.seconds:.0f} s)"
                         + (" — selected as `meta_learner`" if row.selected else ""))
        lines.append("")
        if (runs["best_step"] == 0).any():
            lines += ["A run whose best step is 0 never beat its starting weights on meta-validation, so the "
                      "model kept is the pretrained encoder itself.", ""]

    # -- tables
    lines += ["## Class-split episodes: accuracy with 95 % CI", "",
              "Mean query accuracy over the fixed episodes (episode i of split s drawn with `rng([s, i])`, "
              "the same for every method); CI = 1.96 sd / sqrt(n). Split `mean` is the mean of the split means.", "",
              "![episode accuracy](meta_training/episode_accuracy.png)", ""]
    wide = summary.assign(cell=[f"{a:.3f} ± {c:.3f}" for a, c in zip(summary["accuracy"], summary["ci95"])])
    for setting in sorted(summary["setting"].unique(), key=_setting_order):
        part = wide[wide["setting"] == setting].pivot(index="method", columns="split", values="cell")
        if len(plan.splits) == 1:
            part = part.drop(columns="mean")
        part = part.loc[sorted(part.index, key=_method_order)].reset_index()
        lines += [f"### {setting}", "", markdown_table(part)]
    shown = diffs if len(plan.splits) > 1 else diffs[diffs["split"] != "mean"]
    lines += ["### Paired differences (method − baseline, same episodes)", "",
              markdown_table(shown.drop(columns=["low", "high"]), "{:.4f}"), ""]
    seconds = summary[summary["split"] == "mean"].pivot(index="method", columns="setting",
                                                         values="adaptation_seconds").reset_index()
    lines += ["Mean adaptation time per episode (seconds; features of the frozen encoders cached, so prototypes "
              "cost only the class means):", "", markdown_table(seconds, "{:.4f}")]

    # -- curves
    if len(curves):
        lines += ["## k-shot learning curves per domain", "",
                  "Each k-shot set (PROTOCOL.md section 2) adapted by: `random_init` (tiny-bert with random weights, "
                  "frozen), `pretrained` (MiniLM-L6 frozen, no meta-training), `meta_trained` (the selected "
                  "`meta_learner`), `tfidf` (TF-IDF + LR). Accuracy on the test split, mean ± sd over seeds.", ""]
        table = _curve_summary(curves)
        for domain in sorted(curves["domain"].unique()):
            part = table[table["domain"] == domain]
            cells = part.assign(cell=[f"{m:.3f} ± {s:.3f}" for m, s in zip(part["accuracy_mean"],
                                                                           part["accuracy_std"])])
            pivot = cells.pivot(index="model", columns="k", values="cell").reset_index()
            pivot.columns = [str(c) if c == "model" else f"k={c}" for c in pivot.columns]
            lines += [f"### {domain}", "", f"![{domain}](meta_training/curves/{domain}.png)", "",
                      markdown_table(pivot)]
            lines += _curve_verdict(curves[curves["domain"] == domain], domain) + [""]
        if "customer_intent" in set(curves["domain"]):
            lines += ["Banking77 (`customer_intent`) is the domain meta-training drew from: its 77-way curve "
                      "includes the split's 25 meta-training classes (from train and validation rows only; "
                      "the test rows were never seen), so it is not an unseen-class figure — the class-split "
                      "episodes above are.", ""]

    if "lodo_differences" in inputs:
        lodo = pd.concat([v for k, v in sorted(inputs.items()) if k.startswith("lodo__")], ignore_index=True)
        lines += lodo_section(lodo, inputs["lodo_differences"])

    # -- wall time
    lines += ["## Wall time", ""]
    for row in runs.itertuples(index=False):
        lines.append(f"- meta-training `{row.run}`: {row.seconds:.0f} s")
    for (run, method), group in results.groupby(["run", "method"], sort=True):
        lines.append(f"- meta-test `{method}` ({run}): {group['eval_seconds'].iloc[0]:.0f} s for {len(group)} episodes")
    lines.append("")
    report = "\n".join(lines)

    metrics = {}
    for row in summary.itertuples(index=False):
        metrics[f"{row.method}.{row.setting}.split_{row.split}.accuracy"] = {"value": float(row.accuracy), "step": 0}
    figure = episode_figure(summary)
    return report, summary, diffs, figure, metrics


def _curve_verdicts(curves: pd.DataFrame) -> list[tuple[int, str, float, float]]:
    """(k, helped | hurt | no clear difference, mean, CI half-width) of meta-trained minus
    pretrained-only accuracy, paired over the same k-shot sets (seeds)."""
    wide = curves.pivot_table(index=["k", "seed"], columns="model", values="accuracy")
    if "meta_trained" not in wide or "pretrained" not in wide:
        return []
    verdicts = []
    for k, group in (wide["meta_trained"] - wide["pretrained"]).groupby(level="k"):
        mean, half = mean_confidence_interval(group.to_numpy())
        word = "helped" if mean - half > 0 else "hurt" if mean + half < 0 else "no clear difference"
        verdicts.append((int(k), word, mean, half))
    return verdicts


def _curve_verdict(curves: pd.DataFrame, domain: str) -> list[str]:
    """Where meta-training beat pretrained-only on the curve (paired over the same k-shot sets)."""
    n_seeds = curves["seed"].nunique()
    return [f"- k={k}: meta-trained vs pretrained-only {100 * mean:+.1f} points (95 % CI ±{100 * half:.1f}, "
            f"{n_seeds} seeds): {word}." for k, word, mean, half in _curve_verdicts(curves)]


__all__ = [
    "MetaTrainingPlan", "baselines_node", "cached_embeddings", "curve_plot_node",
    "kshot_curve_node", "meta_learning_report_node", "meta_test_node", "meta_train_node", "paired_differences",
    "select_meta_learner",
]
