"""`kedro run --pipeline pretraining`: self-supervised pretraining of a backbone (tagged `gpu`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.pipelines.pretraining.nodes import pretrain_backbone_node
from fastadapt.pipelines.wiring import from_run_parameters


def _backbone_name(parameters: Mapping[str, Any]) -> str | None:
    block = parameters.get("pretraining") or {}
    return block.get("backbone") if isinstance(block, dict) else None


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    inputs = {"unlabelled_pool": "unlabelled_pool", "params": "params:pretraining"}
    if _backbone_name(parameters) == "tiny-bert":  # only tiny-bert needs our WordPiece tokeniser
        inputs["wordpiece_tokenizer"] = "wordpiece_tokenizer"
    return Pipeline(
        [
            Node(
                pretrain_backbone_node,
                inputs=inputs,
                outputs=["pretrained_backbone", "pretraining_history", "pretraining_mlflow_metrics",
                         "pretraining_loss_curve"],
                name="pretrain_backbone_node",
                tags=["gpu", "pretraining"],
            )
        ]
    )
