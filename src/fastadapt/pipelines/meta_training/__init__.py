"""The `meta_training` pipeline."""

from fastadapt.pipelines.meta_training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
