"""Small helpers the pipeline modules share: building a pipeline from the run's parameters, and
generating nodes per domain."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial, update_wrapper, wraps
from typing import Any, Callable

from kedro.pipeline import Node, Pipeline

from fastadapt.config import project_parameters


def from_run_parameters(build: Callable[[Mapping[str, Any]], Pipeline]) -> Callable[..., Pipeline]:
    """A `create_pipeline` for Kedro's `find_pipelines` out of `build(parameters)`, a pure function of
    the parameters (namespaces per domain, the task of `new_task`).

    Kedro registers pipelines without a context and calls `create_pipeline()` with no arguments
    (kedro-org/kedro#3093), so the parameters of the run being started (its `--env` and `--params`,
    handed over by `fastadapt.hooks.RunParametersHook`) are read here, the one place that does;
    `create_pipeline(parameters)` builds from the parameters given (tests, the missing-input hint).
    """
    @wraps(build)
    def create_pipeline(parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> Pipeline:
        return build(project_parameters() if parameters is None else parameters)

    return create_pipeline


def bind(func: Callable, **kwargs: Any) -> Callable:
    """`func` with keyword arguments fixed, keeping its name for Kedro-Viz and the logs."""
    return update_wrapper(partial(func, **kwargs), func)


def _qualify(name: str, domain: str) -> str:
    return name if name.startswith("params:") or name.startswith(f"{domain}.") else f"{domain}.{name}"


def domain_node(
    namespace: str,
    func: Callable,
    inputs: str | list[str] | dict[str, str],
    outputs: str | list[str],
    name: str,
    **bound: Any,
) -> Node:
    """A node in `namespace` (a domain) whose dataset names get the `<namespace>.` prefix.

    Names that already carry it, and parameters, are left alone; `bound` fixes keyword arguments.
    """
    if isinstance(inputs, dict):
        inputs = {arg: _qualify(data, namespace) for arg, data in inputs.items()}
    elif isinstance(inputs, list):
        inputs = [_qualify(data, namespace) for data in inputs]
    else:
        inputs = _qualify(inputs, namespace)
    if isinstance(outputs, list):
        outputs = [_qualify(output, namespace) for output in outputs]
    else:
        outputs = _qualify(outputs, namespace)
    return Node(bind(func, **bound) if bound else func, inputs, outputs, name=name, namespace=namespace)
