"""`kedro run --pipeline retraining`: champion / challenger for every model in `retraining.models`.

Per registered model (namespace `retraining.<name>`): seed the registry with the catalog's current
model when it has no champion; when `labelled_folder` is set, read the new rows (`raw.<folder>`),
fit a challenger and decide. The seed and the decision also go to the decision log
(`retraining.<name>.seed_log` / `.decision_log`, one appended file). The challenger's fit (and the
decision, which scores both models) is tagged `gpu` for a neural challenger (`kind: adaptation`),
`cpu` for TF-IDF.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.monitoring.retraining import RetrainedModel, extra_source_tables
from fastadapt.pipelines.monitoring.pipeline import device_tag
from fastadapt.pipelines.retraining.nodes import (
    decide,
    fit_challenger,
    read_labelled,
    seed_champion,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters

PARAMS = "params:retraining"


def model_retraining(name: str, params: Mapping[str, Any]) -> Pipeline:
    """The nodes of one registered model (`params`: its block under `retraining.models`)."""
    settings = RetrainedModel.from_params(params, f"retraining.models.{name}")
    namespace, domain, current = f"retraining.{name}", settings.domain, settings.current
    train_tag = "cpu" if settings.challenger.kind == "tfidf" else "gpu"

    def node(func, inputs, outputs, short: str, tag: str) -> Node:
        return Node(bind(func, name=name), inputs, outputs, name=f"{short}_node", namespace=namespace,
                    tags=[tag, "retraining"])

    nodes = [node(seed_champion, [current, f"{domain}.splits", PARAMS], [f"{namespace}.seed", f"{namespace}.seed_log"],
                  "seed_champion", device_tag(current))]
    folder = settings.labelled_folder
    if folder:
        nodes += [
            node(read_labelled, [f"raw.{folder}", PARAMS], [f"{namespace}.new_rows", f"{namespace}.new_quarantine"],
                 "read_labelled", "cpu"),
            node(fit_challenger, [f"{namespace}.new_rows", f"{domain}.splits", PARAMS,
                                  *extra_source_tables(settings.challenger)], f"{namespace}.challenger",
                 "fit_challenger", train_tag),
            node(decide, [f"{namespace}.challenger", f"{namespace}.new_rows", f"{domain}.splits", f"{namespace}.seed",
                          PARAMS], [f"{namespace}.decision", f"{namespace}.decision_log"], "decide", train_tag),
        ]
    return Pipeline(nodes)


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    settings = parameters.get("retraining") or {}
    models = settings.get("models") or {}
    return sum((model_retraining(name, spec or {}) for name, spec in models.items()), Pipeline([]))
