"""Project pipelines: each `pipelines/<name>` package registers itself through `find_pipelines`."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The quick default `kedro run`: raw data to the summary report.
DEFAULT_PIPELINES = (
    "ingestion", "features", "baselines", "adaptation", "evaluation", "answer_suggestion", "reporting",
)
# ...plus the retraining pipeline's first-champion nodes, so that a fresh project's registry has a
# champion for `kedro run --pipeline monitoring` to score with.
DEFAULT_EXTRA_NODES = ("seed_champion_node",)


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline by its folder name, and `__default__` = the data-to-report chain."""
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipelines NAME` makes Kedro load only NAME; the default exists when all load.
    if all(name in pipelines for name in DEFAULT_PIPELINES):
        default = sum((pipelines[name] for name in DEFAULT_PIPELINES), Pipeline([]))
        if "retraining" in pipelines:
            # Only for registered models whose current model and splits the chain makes.
            made = default.all_outputs()
            seeds = [n for n in pipelines["retraining"].nodes if n.name.rsplit(".", 1)[-1] in DEFAULT_EXTRA_NODES
                     and all(i.startswith("params:") or i in made for i in n.inputs)]
            default += Pipeline(seeds)
        pipelines["__default__"] = default
    return pipelines
