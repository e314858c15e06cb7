"""The `pretraining` pipeline."""

from fastadapt.pipelines.pretraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]
