"""The `monitoring` pipeline."""

from fastadapt.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
