"""`kedro run --pipeline evaluation`: metrics for every (domain, model) the baselines and adaptation
pipelines write (`models.evaluated_models`), or those `evaluation:` lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Pipeline

from fastadapt.config import domain_configs
from fastadapt.pipelines.evaluation.models import evaluated_models
from fastadapt.pipelines.evaluation.nodes import (
    evaluate_classification,
    evaluate_kshot,
    evaluate_ner,
)
from fastadapt.pipelines.wiring import domain_node, from_run_parameters


def domain_evaluation(
    domain: str, kind: str, models: list[str], kshot_models: list[str], unseen_kshot_models: list[str]
) -> Pipeline:
    """One domain's nodes: each model's predictions in, metrics, reports and plots out."""
    nodes = []
    for model in models:
        if kind == "text_classification":
            nodes.append(
                domain_node(
                    domain, evaluate_classification,
                    [f"predictions.{model}", "splits", f"params:domains.{domain}"],
                    [f"metrics.{model}", f"class_report.{model}", f"confusion_matrix.{model}",
                     f"mlflow_metrics.{model}"],
                    f"evaluate_{model}_node", domain=domain, model=model,
                )
            )
        else:
            nodes.append(
                domain_node(
                    domain, evaluate_ner, f"predictions.{model}",
                    [f"metrics.{model}", f"class_report.{model}", f"token_report.{model}",
                     f"mlflow_metrics.{model}"],
                    f"evaluate_{model}_node", domain=domain, model=model,
                )
            )
    for model in kshot_models:
        nodes.append(
            domain_node(domain, evaluate_kshot, f"kshot_predictions.{model}", f"kshot_metrics.{model}",
                        f"evaluate_kshot_{model}_node")
        )
    for model in unseen_kshot_models:
        nodes.append(
            domain_node(domain, evaluate_kshot, f"unseen_kshot_predictions.{model}", f"unseen_kshot_metrics.{model}",
                        f"evaluate_unseen_kshot_{model}_node")
        )
    return Pipeline(nodes, tags=["cpu", "evaluation"])


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    kinds = {name: config.kind for name, config in domain_configs(parameters).items()}
    return Pipeline([
        domain_evaluation(domain, kinds[domain], list(names.models), list(names.kshot_models),
                          list(names.unseen_kshot_models))
        for domain, names in evaluated_models(parameters).items()
    ])
