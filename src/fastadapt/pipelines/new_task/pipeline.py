"""`kedro run --pipeline new_task --params "task.name=<name>,task.shots=5,task.seed=0"`.

Adapts what `kedro run --pipeline meta_training` released (`meta_learner` for text classification,
`ner_source_tagger` for NER, with `task.model: meta_learner`) to the task folder
`data/01_raw/tasks/<name>/` with `task.shots` examples per class (mentions per
entity type for NER) drawn from its train file (all of it when shots is null), evaluates on its
test file and writes `data/08_reporting/tasks/<name>/metrics.json` and `predictions.parquet`.

The task's datasets are named after `task.name` (`new_task.<name>.raw`, `.outputs`: metrics and
predictions written as one unit; factories in catalog_new_task.yml), so the pipeline is built from the run's
parameters, `--params` included (see `fastadapt.hooks`). Without a name it is still registered;
its first node then stops the run saying how to name the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.adapt import TaskSettings
from fastadapt.config import ConfigError
from fastadapt.pipelines.new_task import nodes
from fastadapt.pipelines.wiring import from_run_parameters


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    try:
        task = TaskSettings.from_params(parameters.get("task"))
    except ConfigError:  # registered all the same: its first node then stops the run in one line
        task = TaskSettings(name=nodes.UNSET)
    strategy, model = task.strategy, task.model
    prefix = f"new_task.{task.name}"
    adapt_inputs = {"train": f"{prefix}.train", "test": f"{prefix}.test", "read_info": f"{prefix}.read_info",
                    "task": "params:task", "strategies": "params:new_task.strategies"}
    if strategy != "tfidf" and model == "meta_learner":
        adapt_inputs["meta_learner"] = "meta_learner"
        if (parameters.get("meta_training") or {}).get("ner_source"):
            adapt_inputs["ner_source_tagger"] = "ner_source_tagger"  # what meta_training releases for NER
    elif strategy != "tfidf" and model == "pretrained":
        adapt_inputs["pretrained_backbone"] = "pretrained_backbone"
    return Pipeline([
        Node(nodes.read_task, {"files": f"{prefix}.raw", "task": "params:task"},
             [f"{prefix}.train", f"{prefix}.test", f"{prefix}.read_info"], name="read_task_node",
             tags=["cpu", "new_task"]),
        Node(nodes.adapt_task, adapt_inputs, [f"{prefix}.metrics", f"{prefix}.predictions"], name="adapt_task_node",
             tags=["cpu" if strategy == "tfidf" else "gpu", "new_task"]),
        Node(nodes.task_outputs, [f"{prefix}.metrics", f"{prefix}.predictions", f"{prefix}.read_info"], f"{prefix}.outputs",
             name="write_task_outputs_node", tags=["cpu", "new_task"]),
    ])
