"""`kedro run --pipeline evaluation`: metrics for every (domain, model) listed in parameters."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, project_parameters
from fastadapt.pipelines.evaluation.nodes import evaluate_classification, evaluate_kshot, evaluate_ner
from fastadapt.pipelines.wiring import bind


def create_pipeline(**kwargs) -> Pipeline:
    parameters = project_parameters()
    models = parameters["evaluation"]["models"]
    kshot_models = parameters["evaluation"]["kshot_models"]
    nodes = []
    for domain, config in domain_configs(parameters).items():
        for model in models.get(config.kind, []):
            if config.kind == "text_classification":
                nodes.append(
                    Node(
                        bind(evaluate_classification, domain=domain, model=model),
                        [f"{domain}.predictions.{model}", f"{domain}.splits", f"params:domains.{domain}"],
                        [
                            f"{domain}.metrics.{model}",
                            f"{domain}.class_report.{model}",
                            f"{domain}.confusion_matrix.{model}",
                            f"{domain}.mlflow_metrics.{model}",
                        ],
                        name=f"evaluate_{model}_node",
                        namespace=domain,
                    )
                )
            else:
                nodes.append(
                    Node(
                        bind(evaluate_ner, domain=domain, model=model),
                        f"{domain}.predictions.{model}",
                        [
                            f"{domain}.metrics.{model}",
                            f"{domain}.class_report.{model}",
                            f"{domain}.token_report.{model}",
                            f"{domain}.mlflow_metrics.{model}",
                        ],
                        name=f"evaluate_{model}_node",
                        namespace=domain,
                    )
                )
        for model in kshot_models.get(config.kind, []):
            nodes.append(
                Node(
                    evaluate_kshot,
                    f"{domain}.kshot_predictions.{model}",
                    f"{domain}.kshot_metrics.{model}",
                    name=f"evaluate_kshot_{model}_node",
                    namespace=domain,
                )
            )
    return Pipeline(nodes, tags=["cpu", "evaluation"])
