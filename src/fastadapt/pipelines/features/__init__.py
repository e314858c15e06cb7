"""The `features` pipeline."""

from fastadapt.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
