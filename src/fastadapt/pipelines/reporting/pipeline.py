"""`kedro run --pipeline reporting`: learning-curve plots and `data/08_reporting/summary.md`."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, project_parameters
from fastadapt.pipelines.reporting.nodes import learning_curve_plot, learning_curve_table, summary_report
from fastadapt.pipelines.wiring import bind


def create_pipeline(**kwargs) -> Pipeline:
    parameters = project_parameters()
    models = parameters["evaluation"]["models"]
    kshot_models = parameters["evaluation"]["kshot_models"]
    nodes = []
    summary_inputs = {
        "environment": "params:report_environment",
        "stream_accounting": "stream_accounting",
        "episodes": "class_split_episodes",
    }
    for domain, config in domain_configs(parameters).items():
        summary_inputs[f"accounting__{domain}"] = f"{domain}.ingestion_accounting"
        for model in models.get(config.kind, []):
            summary_inputs[f"metrics__{domain}__{model}"] = f"{domain}.metrics.{model}"
        if kshot_models.get(config.kind):
            curve_inputs = {f"kshot__{m}": f"{domain}.kshot_metrics.{m}" for m in kshot_models[config.kind]}
            curve_inputs.update({f"full__{m}": f"{domain}.metrics.{m}" for m in models.get(config.kind, [])})
            nodes += [
                Node(learning_curve_table, curve_inputs, f"{domain}.learning_curve_table",
                     name="learning_curve_table_node", namespace=domain),
                Node(bind(learning_curve_plot, domain=domain), f"{domain}.learning_curve_table",
                     f"{domain}.learning_curve", name="learning_curve_plot_node", namespace=domain),
            ]
            summary_inputs[f"curves__{domain}"] = f"{domain}.learning_curve_table"
    nodes.append(Node(summary_report, summary_inputs, "summary_report", name="summary_report_node"))
    return Pipeline(nodes, tags=["cpu", "reporting"])
