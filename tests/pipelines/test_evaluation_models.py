"""`evaluated_models`: the evaluation and reporting model names follow `adaptation:`."""

from __future__ import annotations

import pytest

from fastadapt.config import ConfigError
from fastadapt.pipelines.evaluation.models import EvaluatedModels, evaluated_models

DOMAINS = {"tickets": {"kind": "text_classification", "unseen_classes": {"group_column": "service"}},
           "entities": {"kind": "ner"}}
ADAPTATION = {
    "backbone": "minilm-l6",
    "runs": {"text_classification": {"full_data": ["prototype", "head"], "kshot": ["head"]},
             "ner": {"full_data": ["head"], "kshot": []}},
    "domains": {"entities": {"full_data": ["finetune_all", "lora"]}},
}


def test_names_are_derived_from_the_adaptation_plan():
    names = evaluated_models({"domains": DOMAINS, "adaptation": ADAPTATION, "evaluation": {"models": None}})
    assert names["tickets"] == EvaluatedModels(models=("tfidf", "minilm_prototype", "minilm_head"),
                                               kshot_models=("tfidf", "minilm_head"),
                                               unseen_kshot_models=("tfidf", "minilm_head"))
    # A per-domain override counts, and either name of a strategy gives the same model name.
    assert names["entities"] == EvaluatedModels(models=("crf", "minilm_full", "minilm_lora"), kshot_models=(),
                                                unseen_kshot_models=())
    # Another backbone: the names follow, nothing to edit by hand.
    tiny = evaluated_models({"domains": DOMAINS, "adaptation": {**ADAPTATION, "backbone": "tiny-bert"}})
    assert tiny["tickets"].models == ("tfidf", "tinybert_prototype", "tinybert_head")


def test_lists_pick_models_by_hand_and_no_adaptation_means_baselines_only():
    evaluation = {"models": {"text_classification": ["tfidf"]}, "kshot_models": {"text_classification": []},
                  "unseen_kshot_models": ["tfidf"]}
    names = evaluated_models({"domains": DOMAINS, "adaptation": ADAPTATION, "evaluation": evaluation})
    assert names["tickets"] == EvaluatedModels(models=("tfidf",), kshot_models=(), unseen_kshot_models=("tfidf",))
    assert names["entities"] == EvaluatedModels(models=(), kshot_models=(), unseen_kshot_models=())
    baselines = evaluated_models({"domains": DOMAINS})
    assert (baselines["tickets"].models, baselines["entities"].models) == (("tfidf",), ("crf",))


@pytest.mark.parametrize(("evaluation", "message"), [
    ({"models": ["tfidf"]}, r"evaluation\.models is \['tfidf'\]; allowed: a mapping of task kind"),
    ({"models": {"text_classification": "tfidf"}}, r"evaluation\.models\.text_classification is 'tfidf'"),
    ({"unseen_kshot_models": [1]}, r"evaluation\.unseen_kshot_models is \[1\]"),
])
def test_bad_lists_name_the_parameter(evaluation, message):
    with pytest.raises(ConfigError, match=message):
        evaluated_models({"domains": DOMAINS, "evaluation": evaluation})
