"""Adapting a backbone to a task: strategies (full, lora, head, prototype), the fitted
predictors they produce, and `adapt(config, backbone, support) -> predictor`."""

from fastadapt.adaptation.classifier import EncoderClassifier
from fastadapt.adaptation.fit import (
    adapt,
    fit_classifier,
    fit_nnshot,
    fit_tagger,
    kshot_support,
    ner_kshot_support,
)
from fastadapt.adaptation.ner import EncoderTagger, viterbi_iob2
from fastadapt.adaptation.strategies import (
    METRICS,
    STRATEGIES,
    AdaptationConfig,
    AdaptationPlan,
    DomainPlan,
    LoraSettings,
)

__all__ = [
    "METRICS", "STRATEGIES", "AdaptationConfig", "AdaptationPlan", "DomainPlan", "EncoderClassifier",
    "EncoderTagger", "LoraSettings", "adapt", "fit_classifier", "fit_nnshot", "fit_tagger", "kshot_support",
    "ner_kshot_support", "viterbi_iob2",
]
