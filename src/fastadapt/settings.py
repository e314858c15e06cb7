"""Kedro project settings."""

from fastadapt.config_loader import ProjectConfigLoader
from fastadapt.hooks import MissingInputsHook, RunParametersHook

HOOKS = (RunParametersHook(), MissingInputsHook())

# OmegaConfigLoader, with an unknown --env or a YAML syntax error reported in one line.
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Soft merge: an environment (`full`, `local`) overrides single keys of a parameter block
    # instead of replacing the whole block.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
