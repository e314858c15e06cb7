"""The `answer_suggestion` pipeline."""

from fastadapt.pipelines.answer_suggestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
