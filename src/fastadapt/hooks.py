"""Project hooks."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from fastadapt import config


class RunParametersHook:
    """Hands the run's parameters (its `--env` and `--params` included) to the pipeline registry.

    Pipelines are generated from parameters (one namespace per domain, the task of `new_task`),
    but Kedro builds them without a context; the context exists just before, so this records its
    parameters for `fastadapt.config.project_parameters`.
    """

    @hook_impl
    def after_context_created(self, context) -> None:
        # Not `context.params`: Kedro validates those against the pipelines, which would build
        # them before this hook could hand over the parameters. The loader's view already holds
        # the `--params` of the run.
        config.set_run_parameters(context.config_loader["parameters"])
