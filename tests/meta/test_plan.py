"""`MetaTrainingPlan`: the `meta_training:` block built once, defaults in one place, errors naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fastadapt.config import ConfigError, deep_merge
from fastadapt.meta.plan import ClassSplitSpec, DomainSpec, MetaTrainingPlan, SmlmtSpec

CONF = Path(__file__).resolve().parents[2] / "conf"


def block(env: str) -> dict:
    return yaml.safe_load((CONF / env / "parameters_meta_training.yml").read_text())["meta_training"]


def test_the_base_and_full_blocks_build_the_runs_their_comments_promise():
    base = MetaTrainingPlan.from_params(block("base"))
    assert [run.name for run in base.runs] == ["protonet_s01"]
    assert base.source_weights == {"banking77": 1.0} and not base.uses_pool and base.domains_needed == []
    assert base.meta_config.max_steps == 30 and base.runs[0].config is base.meta_config
    assert base.evaluation.strategy == "meta" and base.evaluation.batch_size == 64
    assert base.curves.ks == [1, 5, 10] and base.curves.random_init.backbone == "tiny-bert"
    assert base.curves.pretrained_strategy == "prototype"
    assert isinstance(base.sources["smlmt"], SmlmtSpec) and base.sources["smlmt"].max_texts == 20000

    full = MetaTrainingPlan.from_params(deep_merge(block("base"), block("full")))
    assert len(full.runs) == 25 and full.splits == ["01", "02", "03", "04", "05"]
    assert full.run("maml_s03").config.inner_steps == 3 and full.run("reptile_s01").config.outer_optimizer == "sgd"
    assert full.domains_needed == ["dialogue_intent", "finance_tweets"] and full.uses_pool
    assert list(full.source_weights) == ["banking77", "dialogue_intent", "finance_tweets", "smlmt"]


def test_defaults_live_on_the_fields():
    plan = MetaTrainingPlan.from_params({"backbone": "tiny-bert"})
    assert [run.name for run in plan.runs] == ["protonet_s01"]
    assert isinstance(plan.source("banking77"), ClassSplitSpec)
    assert plan.curves.arms == ["random_init", "pretrained", "meta_trained", "tfidf"]
    assert plan.broad_plan(["customer_intent"]) is None and plan.ner_source_settings is None
    assert MetaTrainingPlan.from_params({"class_splits": [1, "2"]}).splits == ["01", "02"]


@pytest.mark.parametrize("params, message", [
    ({"algorithm": ["protonet"]}, r"meta_training: unknown setting\(s\) \['algorithm'\]"),
    ({"algorithms": ["protonet", "matching_networks"]},
     r"meta_training\.algorithms names 'matching_networks'; allowed: \['protonet', 'maml'"),
    ({"class_splits": ["one"]}, r"meta_training\.class_splits names split 'one'"),
    ({"algorithms": "protonet"}, r"meta_training\.algorithms is 'protonet'; allowed: a list of algorithms"),
    ({"meta": {"k_shots": 5}}, r"meta_training\.meta: unknown setting\(s\) \['k_shots'\]"),
    ({"algorithm_settings": {"maml": {"inner_lr": 0}}, "algorithms": ["maml"]},
     r"meta_training\.meta\.inner_lr is 0; allowed: a number > 0"),
    ({"meta": {"sources": {"news": 1.0}}}, r"meta_training\.meta\.sources names 'news', which meta_training\.sources "
                                          r"does not define"),
    ({"sources": {"news": {"kind": "rss"}}}, r"meta_training\.sources\.news\.kind is 'rss'; allowed: \['class_split', "
                                           r"'domain', 'smlmt'\]"),
    ({"sources": {"news": {"kind": "domain"}}}, r"meta_training\.sources\.news\.domain is None"),
    ({"sources": {"news": {"kind": "class_split", "n_way": 3}}},
     r"meta_training\.sources\.news: unknown setting\(s\) \['n_way'\]"),
    ({"evaluation": {"strategy": "tfidf"}}, r"meta_training\.evaluation\.strategy is 'tfidf'; the meta-learned"),
    ({"evaluation": {"max_episodes": 0}}, r"meta_training\.evaluation\.max_episodes is 0; allowed: an integer >= 1"),
    ({"curves": {"ks": [0, 5]}}, r"meta_training\.curves\.ks is \[0, 5\]; allowed: a non-empty list of integers >= 1"),
    ({"curves": {"strategy": "finetune_all"}}, r"meta_training\.curves\.strategy is 'finetune_all'; allowed: "
                                              r"\['prototype', 'finetune_head'\] \(frozen encoders"),
    ({"curves": {"random_init": {"strategy": "meta"}}}, r"meta_training\.curves\.random_init\.strategy is 'meta'"),
    ({"curves": {"arms": ["oracle"]}}, r"meta_training\.curves\.arms names 'oracle'"),
    ({"broad": ["all"]}, r"meta_training\.broad is \['all'\]; allowed: a mapping"),
])
def test_errors_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        MetaTrainingPlan.from_params(params)


def test_a_missing_block_names_the_file():
    with pytest.raises(ConfigError, match="parameters_meta_training.yml"):
        MetaTrainingPlan.from_params(None)


def test_domain_sources_default_to_train_and_validation():
    plan = MetaTrainingPlan.from_params({"meta": {"sources": {"banking77": 1.0, "tweets": 0.5, "off": 0.0}},
                                         "sources": {"tweets": {"kind": "domain", "domain": "finance_tweets"},
                                                     "off": {"kind": "domain", "domain": "elsewhere"}}})
    assert plan.source("tweets") == DomainSpec(domain="finance_tweets")
    assert plan.source("tweets").splits == ["train", "validation"]
    assert plan.domains_needed == ["finance_tweets"]  # weight 0 reads nothing


def test_a_run_resumes_its_checkpoints_whatever_its_budget_device_or_threads():
    def folder(**meta):
        plan = MetaTrainingPlan.from_params({"meta": {"checkpoint_dir": "ckpt", **meta}})
        return plan.checkpoint_dir(plan.runs[0])

    same = folder()
    assert same.startswith("ckpt/protonet_s01-")
    for change in ({"max_seconds": 60}, {"device": "cpu"}, {"num_threads": 4}, {"log_every": 3},
                   {"checkpoint_every": 5}):
        assert folder(**change) == same
    for change in ({"outer_lr": 1.0e-4}, {"seed": 1}, {"k_shot": 2}):
        assert folder(**change) != same
    off = MetaTrainingPlan.from_params({"backbone": "tiny-bert"})
    assert off.checkpoint_dir(off.runs[0]) is None
