"""Adapting a backbone to a task: the strategy vocabulary (`AdaptStrategy`), their settings, the
fits (`fit_classifier`, `fit_tagger`, `fit_nnshot`) and the predictors they produce. The entry
point that takes a support table is `fastadapt.adapt.adapt`."""

from fastadapt.adaptation.classifier import EncoderClassifier
from fastadapt.adaptation.fit import (
    fit_classifier,
    fit_nnshot,
    fit_tagger,
    kshot_support,
    ner_kshot_support,
)
from fastadapt.adaptation.lora import LoraSettings, inject_lora, merged_copy
from fastadapt.adaptation.ner import EncoderTagger, viterbi_iob2
from fastadapt.adaptation.strategies import (
    FITTED,
    METRICS,
    STRATEGIES,
    AdaptationConfig,
    AdaptationPlan,
    AdaptStrategy,
    DomainPlan,
)

__all__ = [
    "FITTED", "METRICS", "STRATEGIES", "AdaptStrategy", "AdaptationConfig", "AdaptationPlan", "DomainPlan",
    "EncoderClassifier", "EncoderTagger", "LoraSettings", "fit_classifier", "fit_nnshot", "fit_tagger",
    "inject_lora", "kshot_support", "merged_copy", "ner_kshot_support", "viterbi_iob2",
]
