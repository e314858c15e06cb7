"""`kedro run --pipeline evaluation`: metrics for every (domain, model) listed in parameters."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from fastadapt.config import domain_configs, project_parameters
from fastadapt.pipelines.evaluation.nodes import evaluate_classification, evaluate_kshot, evaluate_ner
from fastadapt.pipelines.wiring import domain_node


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


def create_pipeline(**kwargs) -> Pipeline:
    parameters = project_parameters()
    models = parameters["evaluation"]["models"]
    kshot_models = parameters["evaluation"]["kshot_models"]
    unseen_models = parameters["evaluation"].get("unseen_kshot_models", [])
    return Pipeline(
        [
            domain_evaluation(
                domain, config.kind, models.get(config.kind, []), kshot_models.get(config.kind, []),
                unseen_models if config.unseen_classes is not None else [],
            )
            for domain, config in domain_configs(parameters).items()
        ]
    )
