"""`kedro run --pipeline adaptation`: every strategy of `adaptation:` on every domain.

Per domain (namespace = the domain) and per strategy listed for it:
- `fit_<model>_node` -> `<domain>.adapted_model.<model>` (full train split, versioned model folder);
- `predict_<model>_node` -> `<domain>.predictions.<model>` (test split, evaluation contract);
- `kshot_<model>_node` -> `<domain>.kshot_predictions.<model>` (one fit per k-shot set);
- `unseen_kshot_<model>_node` -> `<domain>.unseen_kshot_predictions.<model>` (domains with
  `unseen_classes:`, k-shot strategies);
with `<model>` = `<backbone_short>_<strategy's short name>` (e.g. minilm_prototype, minilm_head). Text domains whose
strategies include a frozen encoder (head, prototype) first run `embed_<backbone>_node` ->
`<domain>.embeddings.<backbone>`, which all those fits and predictions read. Nodes that run torch
(encoding, training, encoder inference) are tagged `gpu`; the others `cpu`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.adaptation.strategies import (
    FROZEN_STRATEGIES,
    AdaptationPlan,
    AdaptStrategy,
    DomainPlan,
)
from fastadapt.config import domain_configs
from fastadapt.pipelines.adaptation.nodes import (
    embed_domain,
    fit_full_data,
    kshot_fit_predict,
    predict_test,
    unseen_kshot_fit_predict,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters

log = logging.getLogger(__name__)

PARAMS = {"adaptation_params": "params:adaptation", "domains_params": "params:domains"}


def backbone_inputs(plan: AdaptationPlan) -> dict[str, str]:
    """The catalog entries the backbone needs: the pretrained backbone, tiny-bert's tokeniser."""
    if plan.backbone == "pretrained":
        return {"pretrained_backbone": "pretrained_backbone"}
    if plan.backbone == "tiny-bert":
        return {"wordpiece_tokenizer": "wordpiece_tokenizer"}
    return {}


def _node(namespace: str, func: Callable, inputs: dict[str, str], outputs: str, name: str, gpu: bool,
          **bound: Any) -> Node:
    return Node(bind(func, **bound) if bound else func, inputs, outputs, name=name, namespace=namespace,
                tags=["gpu" if gpu else "cpu", "adaptation"])


def domain_adaptation(plan: AdaptationPlan, domain_plan: DomainPlan, unseen_classes: bool) -> Pipeline:
    domain, backbone = domain_plan.domain, backbone_inputs(plan)
    text = domain_plan.kind == "text_classification"
    embeddings = f"{domain}.embeddings.{plan.backbone_short}"
    cached = text and domain_plan.uses_frozen_features
    nodes = []
    if cached:
        nodes.append(_node(domain, embed_domain, {"splits": f"{domain}.splits", **PARAMS, **backbone},
                           embeddings, f"embed_{plan.backbone_short}_node", True, domain=domain))

    def inputs(strategy: AdaptStrategy, **extra: str) -> dict[str, str]:
        use_cache = cached and strategy in FROZEN_STRATEGIES
        return {"splits": f"{domain}.splits", **extra, **PARAMS, **backbone,
                **({"embeddings": embeddings} if use_cache else {})}

    for strategy in domain_plan.full_data:
        model = plan.model_name(strategy)
        frozen_text = text and strategy in FROZEN_STRATEGIES
        # A prototype on cached features needs no torch compute; everything else runs the encoder
        # or trains.
        nodes.append(_node(domain, fit_full_data, inputs(strategy), f"{domain}.adapted_model.{model}",
                           f"fit_{model}_node", not (frozen_text and strategy is AdaptStrategy.PROTOTYPE),
                           domain=domain, strategy=strategy))
        predict_inputs = {"model": f"{domain}.adapted_model.{model}", "splits": f"{domain}.splits"}
        if frozen_text:
            predict_inputs["embeddings"] = embeddings
        nodes.append(_node(domain, predict_test, predict_inputs, f"{domain}.predictions.{model}",
                           f"predict_{model}_node", not frozen_text))
    for strategy in domain_plan.kshot:
        model = plan.model_name(strategy)
        cpu_only = text and strategy is AdaptStrategy.PROTOTYPE
        nodes.append(_node(domain, kshot_fit_predict, inputs(strategy, kshot_sets=f"{domain}.kshot_sets"),
                           f"{domain}.kshot_predictions.{model}", f"kshot_{model}_node", not cpu_only,
                           domain=domain, strategy=strategy))
        if text and unseen_classes:
            nodes.append(_node(domain, unseen_kshot_fit_predict,
                               inputs(strategy, unseen_kshot_sets=f"{domain}.unseen_kshot_sets"),
                               f"{domain}.unseen_kshot_predictions.{model}", f"unseen_kshot_{model}_node",
                               not cpu_only, domain=domain, strategy=strategy))
    return Pipeline(nodes)


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    if "adaptation" not in parameters:
        log.warning("no `adaptation:` parameters (conf/base/parameters_adaptation.yml): no adaptation nodes")
        return Pipeline([])
    domains = domain_configs(parameters)
    plan = AdaptationPlan.from_params(parameters["adaptation"])
    plans = plan.for_domains(domains)
    return Pipeline([
        domain_adaptation(plan, plans[name], config.unseen_classes is not None)
        for name, config in domains.items()
    ])
