"""The `baselines` pipeline."""

from fastadapt.pipelines.baselines.pipeline import create_pipeline

__all__ = ["create_pipeline"]
