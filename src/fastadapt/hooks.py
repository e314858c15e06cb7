"""Project hooks."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from fastadapt import config
from fastadapt.datasets.raw_folder import RawFolderDataset
from fastadapt.errors import UserInputError

# The catalog entry that holds the run's configuration environment (see RunParametersHook).
RUN_ENVIRONMENT = "run_environment"


class RunParametersHook:
    """Hands the run's parameters (its `--env` and `--params` included) to the pipeline registry,
    and the name of its configuration environment to the nodes that write reports.

    Pipelines are generated from parameters (one namespace per domain, the task of `new_task`),
    but Kedro builds them without a context; the context exists just before, so this records its
    parameters for `fastadapt.config.project_parameters`, which
    `fastadapt.pipelines.wiring.from_run_parameters` reads for every pipeline's `create_pipeline`
    (the one reader). The environment is derived from the run itself (`--env`), so a report cannot name another configuration than the one that made
    it: the catalog gets it as the in-memory dataset `run_environment`.
    """

    def __init__(self) -> None:
        self._environment = config.BASE_ENVIRONMENT

    @hook_impl
    def after_context_created(self, context) -> None:
        # Not `context.params`: Kedro validates those against the pipelines, which would build
        # them before this hook could hand over the parameters. The loader's view already holds
        # the `--params` of the run.
        config.set_run_parameters(context.config_loader["parameters"])
        self._environment = config.environment_label(context.env)

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        catalog[RUN_ENVIRONMENT] = self._environment


class MissingInputsHook:
    """Stops a run whose inputs are missing with one line saying what to run or to fix.

    Kedro loads a node's inputs before the node runs, so a missing model or table (`new_task`
    before `meta_training`) or a mistyped raw folder would surface as a `DatasetError` with a long
    traceback. Before the run (and before kedro-mlflow opens an MLflow run: `tryfirst`), every free
    input that is neither a parameter nor in memory is checked: a missing raw folder names the
    parameter that points at it, a missing output of another pipeline names that pipeline.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        problems = []
        parameters = config.project_parameters()  # the run's (RunParametersHook)
        for name in sorted(pipeline.inputs()):
            if name == "parameters" or name.startswith("params:"):
                continue
            dataset = catalog.get(name)
            if dataset is None or type(dataset).__name__ == "MemoryDataset":
                continue
            try:
                if dataset.exists():
                    continue
            except Exception:  # a dataset that cannot tell (remote, registry): leave it to the run
                continue
            if type(dataset) is RawFolderDataset:
                problems.append(_raw_folder_problem(name, dataset, parameters))
            else:
                producer = _producing_pipeline(name, parameters)
                if producer is not None:
                    where = _location(dataset)
                    problems.append(f"{name}{f' ({where})' if where else ''} does not exist yet: run "
                                    f"`kedro run --pipeline {producer}` first")
        if problems:
            more = f" (and {len(problems) - 1} more missing input(s))" if len(problems) > 1 else ""
            raise UserInputError(problems[0] + more)


def _location(dataset: Any) -> str:
    """The dataset's path, relative to the project folder when inside it (as the catalog spells it)."""
    described = dataset._describe() if hasattr(dataset, "_describe") else {}
    path = str(described.get("path") or described.get("filepath") or "")
    root = str(config.project_root().resolve())
    return path[len(root) + 1:] if path.startswith(root + "/") else path


def _producing_pipeline(name: str, parameters: Mapping[str, Any]) -> str | None:
    """The smallest pipeline package of `fastadapt.pipelines` whose pipeline, built from `parameters`,
    writes dataset `name`.

    Built here rather than read from `kedro.framework.project.pipelines`, which holds only the
    pipelines the run asked for (Kedro loads them selectively).
    """
    import fastadapt.pipelines as package

    candidates = []
    for info in pkgutil.iter_modules(package.__path__):
        try:
            built = importlib.import_module(f"{package.__name__}.{info.name}").create_pipeline(parameters)
        except Exception:  # a pipeline that cannot be built from these parameters writes nothing here
            continue
        if info.ispkg and name in built.all_outputs():
            candidates.append((len(built.nodes), info.name))
    return min(candidates)[1] if candidates else None


def _raw_keys(value: Any, folder: str, prefix: str = "") -> Iterator[str]:
    """Dotted parameter keys `...raw` whose value is `folder`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if key == "raw" and item == folder:
                yield dotted
            else:
                yield from _raw_keys(item, folder, dotted)


def _raw_folder_problem(name: str, dataset: RawFolderDataset, parameters: Mapping[str, Any]) -> str:
    path = _location(dataset)
    folder = name.removeprefix("raw.")
    keys = list(_raw_keys(parameters, folder))
    domains = parameters.get("domains") if isinstance(parameters.get("domains"), Mapping) else {}
    keys += [f"domains.{domain}.raw (by default tasks.<domain>)" for domain, block in domains.items()
             if isinstance(block, Mapping) and "raw" not in block and folder == f"tasks.{domain}"]
    parent = config.project_root() / Path(path).parent
    present = sorted(p.name for p in parent.iterdir() if p.is_dir() or p.is_symlink()) if parent.is_dir() else []
    close = difflib.get_close_matches(Path(path).name, present, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    named = f"{' and '.join(keys)} is '{folder}', but " if keys else ""
    source_hint = f" {dataset._source_hint}" if getattr(dataset, "_source_hint", "") else ""
    return (f"{named}the raw folder {path} does not exist{hint}; fix the name in the parameters or add the "
            f"folder (folders there: {', '.join(present[:12]) or 'none'}).{source_hint}")
