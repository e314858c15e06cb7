"""`kedro run --pipeline features`: splits, k-shot sets, episodes and the unlabelled pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, meta_source_configs
from fastadapt.pipelines.features.nodes import (
    build_unlabelled_pool,
    draw_class_split_episodes,
    draw_kshot_sets,
    draw_unseen_kshot_sets,
    split_domain,
    train_pool_tokenizer,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters
from fastadapt.tasks.episodes import EpisodeSettings


def meta_source_features(name: str) -> Pipeline:
    """A meta-training source's splits (no k-shot sets: nothing is adapted to it)."""
    return Pipeline(
        [Node(bind(split_domain, domain=name, block="meta_sources"), inputs=["rows", "params:domain", "params:seed"], outputs="splits",
              name="split_rows_node")],
        tags=["cpu", "features"],
        namespace=name,
        parameters={"params:domain": f"params:meta_sources.{name}", "params:seed": "params:seed"},
    )


def domain_features(domain: str, unseen_classes: bool) -> Pipeline:
    unseen = [
        Node(
            bind(draw_unseen_kshot_sets, domain=domain),
            inputs=["splits", "params:kshot", "params:domain"],
            outputs="unseen_kshot_sets",
            name="draw_unseen_kshot_sets_node",
        )
    ] if unseen_classes else []
    template = Pipeline(
        [
            *unseen,
            Node(
                bind(split_domain, domain=domain),
                inputs=["rows", "params:domain", "params:seed"],
                outputs="splits",
                name="split_rows_node",
            ),
            Node(
                bind(draw_kshot_sets, domain=domain),
                inputs=["splits", "params:kshot", "params:domain"],
                outputs="kshot_sets",
                name="draw_kshot_sets_node",
            ),
        ],
        tags=["cpu", "features"],
    )
    return Pipeline(
        template,
        namespace=domain,
        parameters={
            "params:domain": f"params:domains.{domain}",
            "params:seed": "params:seed",
            "params:kshot": "params:kshot",
        },
    )


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    domains = domain_configs(parameters)
    pipeline = Pipeline(
        [domain_features(name, config.unseen_classes is not None) for name, config in domains.items()]
    )
    for name in meta_source_configs(parameters):
        pipeline += meta_source_features(name)
    episodes = EpisodeSettings.from_params(parameters.get("episodes"), where="episodes")
    shared = Pipeline(
        [
            Node(
                draw_class_split_episodes,
                inputs=[
                    f"{episodes.domain}.rows",
                    f"raw.{episodes.class_splits}",
                    "params:episodes",
                ],
                outputs="class_split_episodes",
                name="draw_class_split_episodes_node",
            ),
            Node(
                build_unlabelled_pool,
                inputs={
                    "news_stream": "news_stream",
                    "pool_params": "params:unlabelled_pool",
                    **({"dialogue_turns": "dialogue_turns"} if parameters.get("dialogue_logs") else {}),
                    **{name: f"{name}.splits" for name in domains},
                },
                outputs="unlabelled_pool",
                name="build_unlabelled_pool_node",
            ),
            Node(
                train_pool_tokenizer,
                inputs=["unlabelled_pool", "params:wordpiece_tokenizer"],
                outputs="wordpiece_tokenizer",
                name="train_wordpiece_tokenizer_node",
            ),
        ],
        tags=["cpu", "features"],
    )
    return pipeline + shared
