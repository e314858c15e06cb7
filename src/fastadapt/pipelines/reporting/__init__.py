"""The `reporting` pipeline."""

from fastadapt.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
