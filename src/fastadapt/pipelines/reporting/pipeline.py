"""`kedro run --pipeline reporting`: learning-curve plots and `data/08_reporting/summary.md`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import warnings

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs
from fastadapt.hooks import RUN_ENVIRONMENT
from fastadapt.pipelines.evaluation.models import evaluated_models
from fastadapt.pipelines.reporting.nodes import (
    learning_curve_plot,
    learning_curve_table,
    summary_report,
)
from fastadapt.pipelines.wiring import domain_node, from_run_parameters


def domain_curves(domain: str, models: list[str], kshot_models: list[str]) -> Pipeline:
    """The k-shot learning-curve table and plot of one domain."""
    curve_inputs = {f"kshot__{m}": f"kshot_metrics.{m}" for m in kshot_models}
    curve_inputs.update({f"full__{m}": f"metrics.{m}" for m in models})
    return Pipeline(
        [
            domain_node(domain, learning_curve_table, curve_inputs, "learning_curve_table",
                        "learning_curve_table_node"),
            domain_node(domain, learning_curve_plot, "learning_curve_table", "learning_curve",
                        "learning_curve_plot_node", domain=domain),
        ],
        tags=["cpu", "reporting"],
    )


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    evaluated = evaluated_models(parameters)
    pipeline = Pipeline([])
    summary_inputs = {
        "environment": RUN_ENVIRONMENT,
        "stream_accounting": "stream_accounting",
        "episodes": "class_split_episodes",
    }
    if parameters.get("dialogue_logs"):
        summary_inputs["dialogue_accounting"] = "dialogue_accounting"
        if parameters.get("answer_suggestion", {}).get("domain") in parameters["domains"]:
            summary_inputs["answer_suggestions"] = "answer_suggestions"
            summary_inputs["new_service_metrics"] = "new_service_metrics"
            summary_inputs["abstention_calibration"] = "abstention_calibration"
    for domain in domain_configs(parameters):
        summary_inputs[f"accounting__{domain}"] = f"{domain}.ingestion_accounting"
        names = evaluated[domain]
        for model in names.models:
            summary_inputs[f"metrics__{domain}__{model}"] = f"{domain}.metrics.{model}"
        for model in names.unseen_kshot_models:
            summary_inputs[f"unseen__{domain}__{model}"] = f"{domain}.unseen_kshot_metrics.{model}"
        if names.kshot_models:
            pipeline += domain_curves(domain, list(names.models), list(names.kshot_models))
            summary_inputs[f"curves__{domain}"] = f"{domain}.learning_curve_table"
    with warnings.catch_warnings():
        # The summary reads every domain's namespaced outputs on purpose; Kedro warns about
        # dotted names used outside their namespace.
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        summary = Node(summary_report, summary_inputs, "summary_report", name="summary_report_node")
    return pipeline + Pipeline([summary], tags=["cpu", "reporting"])
