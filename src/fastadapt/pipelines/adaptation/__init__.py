"""The `adaptation` pipeline."""

from fastadapt.pipelines.adaptation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
