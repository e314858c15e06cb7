"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from fastadapt.hooks import RunParametersHook

HOOKS = (RunParametersHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Soft merge: an environment (`full`, `local`) overrides single keys of a parameter block
    # instead of replacing the whole block.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
