"""The `retraining` pipeline."""

from fastadapt.pipelines.retraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]
