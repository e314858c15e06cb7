"""Small helpers the pipeline modules share for generating nodes per domain."""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any, Callable

from kedro.pipeline import Node


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
