"""Which models the evaluation and reporting pipelines read, per domain: derived from what the
baselines and adaptation pipelines write, unless `evaluation:` lists them.

The adaptation pipeline names its models `<backbone_short>_<strategy>` (`AdaptationPlan
.model_name`), so a list written by hand (`minilm_head`) goes stale when `adaptation.backbone`
changes. With `evaluation.models: null` (the default) the names come from the same plan: the
domain's baseline (`tfidf` for text, `crf` for NER) and its `full_data` strategies; the k-shot
and unseen-class lists likewise from its `kshot` strategies. A list under `evaluation:` (per
task kind) still picks models by hand, e.g. a subset in a test project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastadapt.adaptation.strategies import AdaptationPlan
from fastadapt.config import TASK_KINDS, Checks, ConfigError, Settings, domain_configs

# What `pipelines/baselines` writes per task kind: full-data models and k-shot models.
BASELINES = {"text_classification": ("tfidf",), "ner": ("crf",)}
KSHOT_BASELINES = {"text_classification": ("tfidf",), "ner": ()}


@dataclass(frozen=True)
class EvaluatedModels:
    """One domain's model names: full-data test metrics, k-shot curves, unseen-class k-shot."""

    models: tuple[str, ...]
    kshot_models: tuple[str, ...]
    unseen_kshot_models: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """The model lists of the `evaluation:` block; null (the default): derived per domain."""

    models: Mapping[str, list[str]] | None = None  # task kind -> model names
    kshot_models: Mapping[str, list[str]] | None = None
    unseen_kshot_models: list[str] | None = None  # domains with `unseen_classes:`

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        for key in ("models", "kshot_models"):
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, Mapping) or set(value) - set(TASK_KINDS):
                check.fail(key, f"allowed: a mapping of task kind {list(TASK_KINDS)} to model names, or null")
            for kind, names in value.items():
                _names(names, f"{where}.{key}.{kind}")
        if self.unseen_kshot_models is not None:
            _names(self.unseen_kshot_models, f"{where}.unseen_kshot_models")


def _names(value: Any, where: str) -> None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) and n for n in value):
        raise ConfigError(f"{where} is {value!r}; allowed: a list of model names (e.g. [tfidf, minilm_head])")


def evaluated_models(parameters: Mapping[str, Any]) -> dict[str, EvaluatedModels]:
    """Each domain's evaluated models (see the module docstring)."""
    block = dict(parameters.get("evaluation") or {})
    settings = EvaluationSettings.from_params(
        {key: block[key] for key in ("models", "kshot_models", "unseen_kshot_models") if key in block}, "evaluation")
    domains = domain_configs(parameters)
    plans = {}
    if parameters.get("adaptation"):
        plan = AdaptationPlan.from_params(parameters["adaptation"])
        plans = {name: (plan, domain_plan) for name, domain_plan in plan.for_domains(domains).items()}
    result = {}
    for name, domain in domains.items():
        plan, domain_plan = plans.get(name, (None, None))
        full = kshot = ()
        if plan is not None:
            full = tuple(plan.model_name(s) for s in domain_plan.full_data)
            kshot = tuple(plan.model_name(s) for s in domain_plan.kshot)
        kshot_names = KSHOT_BASELINES[domain.kind] + kshot
        unseen = kshot_names if domain.kind == "text_classification" else ()
        if settings.unseen_kshot_models is not None:
            unseen = tuple(settings.unseen_kshot_models)
        result[name] = EvaluatedModels(
            models=tuple(settings.models.get(domain.kind, ())) if settings.models is not None
            else BASELINES[domain.kind] + full,
            kshot_models=tuple(settings.kshot_models.get(domain.kind, ())) if settings.kshot_models is not None
            else kshot_names,
            unseen_kshot_models=unseen if domain.unseen_classes is not None else (),
        )
    return result


__all__ = ["BASELINES", "EvaluatedModels", "EvaluationSettings", "KSHOT_BASELINES", "evaluated_models"]
