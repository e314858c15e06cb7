"""`kedro run --pipeline meta_training`: meta-learning on Banking77 class splits, and its report.

Per run `<algorithm>_s<split>` (every algorithm of `meta_training.algorithms` on every split of
`meta_training.class_splits`; namespace `meta_training.<run>`):
- `meta_train_node` (gpu) -> `meta_training.<run>.learner` (model folder), `.history`,
  `.mlflow_metrics` (MLflow series), `.validation_curve` (PNG);
- `meta_test_node` (gpu) -> `meta_training.<run>.episode_results` (every fixed test episode).
Per class split: `baselines_node` (gpu) -> `meta_training.baselines_s<split>.episode_results`
(frozen-encoder prototypes without meta-training, TF-IDF + LR on each support set).
Then `select_meta_learner_node` -> `meta_learner` (the best meta-validation accuracy; what
`new_task` adapts), `meta_training_history`, `meta_training.runs`; per text domain
`kshot_curve_node` (gpu, `curve_nodes.py`) -> `meta_training.curves.<domain>` and `curve_plot_node`
-> its PNG; and
`meta_learning_report_node` -> data/08_reporting/meta_learning.md with its tables and plot.
With `meta_training.ner_source`: `ner_source_tagger_node` (gpu) -> `ner_source_tagger`, the NER
learner `new_task` adapts (a tagger fine-tuned on the NER domain's train split and those of the
NER corpora of `meta_sources:` it names, null: all). Text meta-training reads only the text corpora there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.config import ConfigError, meta_source_configs
from fastadapt.hooks import RUN_ENVIRONMENT
from fastadapt.meta.broad import SMLMT
from fastadapt.meta.plan import MetaTrainingPlan
from fastadapt.pipelines.meta_training.broad_nodes import (
    broad_meta_train_node,
    lodo_evaluate_node,
    lodo_summary_node,
    text_domain_names,
)
from fastadapt.pipelines.meta_training.curve_nodes import (
    curve_plot_node,
    kshot_curve_node,
)
from fastadapt.pipelines.meta_training.ner_nodes import ner_source_tagger_node
from fastadapt.pipelines.meta_training.nodes import (
    baselines_node,
    meta_learning_report_node,
    meta_test_node,
    meta_train_node,
    select_meta_learner,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters
from fastadapt.tasks.episodes import EpisodeSettings

PARAMS = "params:meta_training"
TFIDF_OPTIONS = "params:baselines.tfidf"


def backbone_inputs(*names: str) -> dict[str, str]:
    """The catalog entries these backbones need: the pretrained backbone, tiny-bert's tokeniser."""
    inputs = {}
    if "pretrained" in names:
        inputs["pretrained_backbone"] = "pretrained_backbone"
    if "tiny-bert" in names:
        inputs["wordpiece_tokenizer"] = "wordpiece_tokenizer"
    return inputs


def _node(func, inputs, outputs, name: str, gpu: bool, namespace: str | None = None, **bound) -> Node:
    return Node(bind(func, **bound) if bound else func, inputs, outputs, name=name, namespace=namespace,
                tags=["gpu" if gpu else "cpu", "meta_training"])


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    plan = MetaTrainingPlan.from_params(parameters.get("meta_training"))
    backbone = backbone_inputs(plan.backbone)
    # The class-split episodes' domain (Banking77) and raw class-split folder, as the features
    # pipeline drew them (PROTOCOL.md section 3).
    episodes = EpisodeSettings.from_params(parameters.get("episodes"), where="episodes")
    splits = f"{episodes.domain}.splits"
    class_split_folder = f"raw.{episodes.class_splits}"
    nodes = []
    results = {}
    for run in plan.runs:
        namespace = f"meta_training.{run.name}"
        inputs = {"customer_intent_splits": splits, "class_split_files": class_split_folder,
                  "params": PARAMS, **backbone}
        if plan.uses_pool:
            inputs["unlabelled_pool"] = "unlabelled_pool"
        for domain in plan.domains_needed:
            inputs[f"{domain}_splits"] = f"{domain}.splits"
        nodes.append(_node(meta_train_node, inputs,
                           [f"{namespace}.learner", f"{namespace}.history", f"{namespace}.mlflow_metrics",
                            f"{namespace}.validation_curve"],
                           "meta_train_node", True, namespace, run=run.name))
        nodes.append(_node(meta_test_node,
                           {"meta_model": f"{namespace}.learner", "class_split_episodes": "class_split_episodes",
                            "customer_intent_splits": splits, "params": PARAMS},
                           f"{namespace}.episode_results", "meta_test_node", True, namespace, run=run.name))
        results[f"results__{run.name}"] = f"{namespace}.episode_results"
    for split in plan.splits:
        namespace = f"meta_training.baselines_s{split}"
        nodes.append(_node(baselines_node,
                           {"class_split_episodes": "class_split_episodes", "customer_intent_splits": splits,
                            "params": PARAMS, "tfidf_options": TFIDF_OPTIONS, **backbone},
                           f"{namespace}.episode_results", "baselines_node", True, namespace, split=split))
        results[f"results__baselines_s{split}"] = f"{namespace}.episode_results"
    select_inputs = {}
    for run in plan.runs:
        select_inputs[f"learner__{run.name}"] = f"meta_training.{run.name}.learner"
        select_inputs[f"history__{run.name}"] = f"meta_training.{run.name}.history"
    text_domains = text_domain_names(parameters)
    broad = plan.broad_plan(text_domains)
    meta_sources = meta_source_configs(parameters)
    lodo = {}
    if broad is not None:
        text_sources = [name for name, config in meta_sources.items() if config.kind == "text_classification"]
        tables = {f"{name}_splits": f"{name}.splits" for name in [*text_domains, *text_sources]}
        pool = {"unlabelled_pool": "unlabelled_pool"} if broad.weight(SMLMT) > 0 else {}
        for fold in broad.runs:
            run = f"broad_{fold}"
            nodes.append(_node(broad_meta_train_node, {"params": PARAMS, **tables, **pool, **backbone},
                               [f"meta_training.{run}.learner", f"meta_training.{run}.history"],
                               "broad_meta_train_node", True, f"meta_training.{run}", fold=fold,
                               text_domains=text_domains))
            if fold == "all":
                select_inputs["release"] = f"meta_training.{run}.learner"
            select_inputs[f"history__{run}"] = f"meta_training.{run}.history"
        evaluation_backbones = backbone_inputs(broad.evaluation.pretrained)
        for fold in broad.folds:
            nodes.append(_node(lodo_evaluate_node,
                               {"fold_model": f"meta_training.broad_{fold}.learner", "splits": f"{fold}.splits",
                                "kshot_sets": f"{fold}.kshot_sets", "params": PARAMS,
                                "strategy_options_of": "params:new_task.strategies", "tfidf_options": TFIDF_OPTIONS,
                                **evaluation_backbones},
                               f"meta_training.lodo_results.{fold}", "lodo_evaluate_node", True,
                               f"meta_training.lodo_{fold}", fold=fold, text_domains=text_domains))
            lodo[f"lodo__{fold}"] = f"meta_training.lodo_results.{fold}"
    if lodo:
        nodes.append(_node(lodo_summary_node, lodo, ["meta_training.lodo_differences", "meta_training.lodo_plot"],
                           "lodo_summary_node", False, "meta_training"))
    ner_source = plan.ner_source_settings
    if ner_source is not None:
        ner_corpora = [name for name, config in meta_sources.items() if config.kind == "ner"]
        named = ner_corpora if ner_source.sources is None else list(ner_source.sources)
        unknown = [name for name in named if name not in ner_corpora]
        if unknown:
            raise ConfigError(f"meta_training.ner_source.sources names {unknown}, which are not NER corpora of "
                              f"meta_sources:; allowed: {ner_corpora}, or null for all of them")
        sources = {f"{name}_splits": f"{name}.splits" for name in named}
        nodes.append(_node(ner_source_tagger_node, {"splits": f"{ner_source.domain}.splits", "params": PARAMS,
                                                    **sources, **backbone},
                           "ner_source_tagger", "ner_source_tagger_node", True, "meta_training"))
    nodes.append(_node(select_meta_learner, select_inputs, ["meta_learner", "meta_training_history",
                                                            "meta_training.runs"],
                       "select_meta_learner_node", False, "meta_training"))

    curves = {}
    arms = plan.curves.arms
    curve_backbones = backbone_inputs(*([plan.curves.random_init.backbone] if "random_init" in arms else []),
                                      *([plan.curves.pretrained.backbone] if "pretrained" in arms else []))
    wanted = plan.curves.domains
    for domain in (text_domains if wanted is None else [d for d in text_domains if d in wanted]):
        inputs = {"splits": f"{domain}.splits", "kshot_sets": f"{domain}.kshot_sets", "meta_model": "meta_learner",
                  "params": PARAMS, "tfidf_options": TFIDF_OPTIONS, **curve_backbones}
        nodes.append(_node(kshot_curve_node, inputs, f"meta_training.curves.{domain}", "kshot_curve_node", True,
                           f"meta_training.{domain}", domain=domain))
        nodes.append(_node(curve_plot_node, {"curves": f"meta_training.curves.{domain}"},
                           f"meta_training.curve_plot.{domain}", "curve_plot_node", False,
                           f"meta_training.{domain}", domain=domain))
        curves[f"curves__{domain}"] = f"meta_training.curves.{domain}"

    lodo_inputs = {"lodo_differences": "meta_training.lodo_differences", **lodo} if broad is not None and lodo else {}
    nodes.append(_node(meta_learning_report_node,
                       {"runs": "meta_training.runs", "params": PARAMS, "n_episodes": "params:episodes.n_episodes",
                        "environment": RUN_ENVIRONMENT, **results, **curves, **lodo_inputs},
                       ["meta_learning_report", "meta_training.episode_summary", "meta_training.paired_differences",
                        "meta_training.episode_plot", "meta_training.summary_mlflow_metrics"],
                       "meta_learning_report_node", False, "meta_training"))
    return Pipeline(nodes)

