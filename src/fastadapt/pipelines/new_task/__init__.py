"""The `new_task` pipeline."""

from fastadapt.pipelines.new_task.pipeline import create_pipeline

__all__ = ["create_pipeline"]
