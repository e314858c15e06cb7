"""Strategy settings from parameters: defaults, and errors that name the parameter."""

from __future__ import annotations

import pytest

from fastadapt.adaptation import AdaptationConfig, AdaptationPlan, AdaptStrategy
from fastadapt.config import ConfigError, DomainConfig

DOMAINS = {
    "tickets": DomainConfig.from_params("tickets", {"kind": "text_classification"}),
    "entities": DomainConfig.from_params("entities", {"kind": "ner"}),
}


def plan_params(**changes):
    params = {
        "backbone": "minilm-l6",
        "strategies": {
            "prototype": {"metric": "euclidean"},
            "head": {"training": {"max_steps": 5}, "kshot_training": {"max_steps": 2}},
            "lora": {"lora": {"r": 4}, "training": {"max_steps": 3}},
        },
        "runs": {
            "text_classification": {"full_data": ["prototype", "head"], "kshot": ["prototype"]},
            "ner": {"full_data": ["head"], "kshot": []},
        },
        "domains": {"entities": {"full_data": ["lora"], "strategies": {"lora": {"training": {"lr": 0.01}}}}},
    }
    params.update(changes)
    return params


def test_strategy_defaults():
    prototype = AdaptationConfig.from_params({"strategy": "prototype"})
    assert (prototype.metric, prototype.training, prototype.normalize_features) == ("cosine", None, True)
    full = AdaptationConfig.from_params({"strategy": "full", "training": {"max_steps": 7}})
    assert full.training.max_steps == 7 and not full.normalize_features and not full.frozen_encoder
    lora = AdaptationConfig.from_params({"strategy": "lora", "lora": {"r": 2, "target_modules": "all-linear"}})
    assert (lora.lora.r, lora.lora.lora_alpha, lora.lora.target_modules) == (2, 16, "all-linear")
    assert lora.lora.peft_config().r == 2
    assert lora.lora.peft_config().lora_dropout == lora.lora.lora_dropout == 0.1
    # The pipeline's short names and the adapt() names are one vocabulary.
    assert (prototype.strategy, full.strategy, lora.strategy) == (
        AdaptStrategy.PROTOTYPE, AdaptStrategy.FINETUNE_ALL, AdaptStrategy.FINETUNE_LORA)
    assert AdaptationConfig.from_params({"strategy": "finetune_head"}).strategy is AdaptStrategy.FINETUNE_HEAD
    assert [s.short for s in (full.strategy, lora.strategy, AdaptStrategy.FINETUNE_HEAD)] == ["full", "lora", "head"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"strategy": "finetune"}, ["adaptation.strategy.strategy", "'finetune'", "prototype"]),
        ({"strategy": "prototype", "metric": "manhattan"}, ["adaptation.strategy.metric", "euclidean"]),
        ({"strategy": "prototype", "training": {}}, ["unknown setting", "'training'", "prototype"]),
        ({"strategy": "lora", "lora": {"r": 0}}, ["adaptation.strategy.lora.r", ">= 1"]),
        ({"strategy": "lora", "lora": {"rank": 4}}, ["adaptation.strategy.lora", "'rank'"]),
        ({"strategy": "lora", "lora": {"alpha": 4}}, ["adaptation.strategy.lora", "'alpha'", "lora_alpha"]),
        ({"strategy": "lora", "lora": {"lora_dropout": 1.5}}, ["adaptation.strategy.lora.lora_dropout", "<= 1"]),
        ({"strategy": "meta"}, ["adaptation.strategy.strategy", "'meta'", "finetune_all"]),
        ({"strategy": "lora", "lora": {"target_modules": []}}, ["adaptation.strategy.lora.target_modules"]),
        ({"strategy": "head", "training": {"lr": -1}}, ["adaptation.strategy.training.lr"]),
        ({"strategy": "head", "training": {"epochs": 3}}, ["adaptation.strategy.training", "'epochs'"]),
        ({"strategy": "head", "kshot_training": {"max_steps": 0}}, ["adaptation.strategy.kshot_training.max_steps"]),
        ({"strategy": "full", "dropout": 1.5}, ["adaptation.strategy.dropout"]),
    ],
)
def test_bad_strategy_settings_name_the_parameter(params, names):
    with pytest.raises(ConfigError) as error:
        AdaptationConfig.from_params(params)
    for name in names:
        assert name in str(error.value)


def test_plan_per_kind_runs_and_domain_overrides():
    plan = AdaptationPlan.from_params(plan_params())
    assert plan.model_name("prototype") == "minilm_prototype"
    assert plan.model_name(AdaptStrategy.FINETUNE_HEAD) == plan.model_name("head") == "minilm_head"
    plans = plan.for_domains(DOMAINS)
    tickets, entities = plans["tickets"], plans["entities"]
    prototype, head, lora = AdaptStrategy.PROTOTYPE, AdaptStrategy.FINETUNE_HEAD, AdaptStrategy.FINETUNE_LORA
    assert (tickets.full_data, tickets.kshot) == ((prototype, head), (prototype,))
    assert tickets.configs[prototype].metric == "euclidean"
    assert tickets.configs[head].training.max_steps == 5
    assert tickets.kshot_configs[prototype].metric == "euclidean"
    assert (entities.full_data, entities.kshot) == ((lora,), ())
    lora = entities.configs[lora]
    assert (lora.lora.r, lora.training.max_steps, lora.training.lr) == (4, 3, 0.01)  # deep-merged
    assert tickets.uses_frozen_features and not entities.uses_frozen_features


def test_kshot_training_is_merged_over_training():
    params = plan_params(runs={"text_classification": {"full_data": ["head"], "kshot": ["head"]}})
    tickets = AdaptationPlan.from_params(params).for_domains(DOMAINS)["tickets"]
    assert tickets.configs[AdaptStrategy.FINETUNE_HEAD].training.max_steps == 5
    assert tickets.kshot_configs[AdaptStrategy.FINETUNE_HEAD].training.max_steps == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runs": {"text_classification": {"full_data": ["protonet"]}}},
         (r"adaptation\.runs\.text_classification\.full_data\[0\] is 'protonet'; allowed: \['full', 'lora', "
          r"'head', 'prototype'\] \(or by name: \['finetune_all'")),
        ({"strategies": {"maml": {}}}, r"adaptation\.strategies key is 'maml'"),
        ({"runs": {"text_classification": {"full_data": ["head", "finetune_head"]}}},
         r"adaptation\.runs\.text_classification\.full_data lists a strategy twice"),
        ({"domains": {"tickets": {"kshot_sets": {"ks": [0]}}}}, r"adaptation\.domains\.tickets\.kshot_sets\.ks"),
        ({"kshot_sets": {"ks": "5"}}, r"adaptation\.kshot_sets\.ks"),
        ({"backbone_short": "Mini-LM"}, r"adaptation\.backbone_short"),
        ({"epochs": 3}, r"adaptation: unknown setting\(s\) \['epochs'\]"),
        ({"strategies": {"prototype": {"metric": "dot"}}}, r"adaptation\.strategies\.prototype\.metric is 'dot'"),
        ({"strategies": {"prototype": {"pooling": "cls"}, "head": {}}},
         r"head and prototype share tickets's cached features, so their pooling and max_length must agree"),
    ],
)
def test_bad_plans_name_the_parameter(changes, message):
    with pytest.raises(ConfigError, match=message):
        AdaptationPlan.from_params(plan_params(**changes)).for_domains(DOMAINS)


def test_backbone_short_names():
    for backbone, short in [("minilm-l6", "minilm"), ("tiny-bert", "tinybert"), ("pretrained", "pretrained"),
                            ("/models/My_Encoder-v2", "myencoderv2")]:
        assert AdaptationPlan.from_params(plan_params(backbone=backbone)).backbone_short == short


def test_overrides_of_domains_not_declared_are_ignored_with_a_warning(caplog):
    plans = AdaptationPlan.from_params(plan_params(domains={"sentiment": {"full_data": ["head"]}})).for_domains(DOMAINS)
    assert set(plans) == {"tickets", "entities"}
    assert "adaptation.domains names ['sentiment']" in caplog.text
