"""`kedro run --pipeline pretraining`: self-supervised pretraining of a backbone (tagged `gpu`)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fastadapt.config import project_parameters
from fastadapt.pipelines.pretraining.nodes import pretrain_backbone_node


def _backbone_name() -> str | None:
    block = project_parameters().get("pretraining") or {}
    return block.get("backbone") if isinstance(block, dict) else None


def create_pipeline(**kwargs) -> Pipeline:
    inputs = {"unlabelled_pool": "unlabelled_pool", "params": "params:pretraining"}
    if _backbone_name() == "tiny-bert":  # only tiny-bert needs our WordPiece tokeniser
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
