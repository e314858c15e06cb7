"""Small helpers the pipeline modules share for generating nodes per domain."""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any, Callable


def bind(func: Callable, **kwargs: Any) -> Callable:
    """`func` with keyword arguments fixed, keeping its name for Kedro-Viz and the logs."""
    return update_wrapper(partial(func, **kwargs), func)
