"""`fastadapt.adapt.adapt`: one entry point, every strategy, on a tiny BERT (seconds on a CPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastadapt.adapt import DEFAULT_OPTIONS, STRATEGIES, AdaptedPredictor, AdaptStrategy, adapt, default_options
from fastadapt.config import ConfigError
from fastadapt.meta import MetaConfig, build_algorithm, build_learner
from fastadapt.meta.saved import MetaLearnedModel
from fastadapt.models.backbones import load_backbone, train_wordpiece_tokenizer
from fastadapt.models.predictor import SequenceTagger, TextClassifier

KEYWORDS = {"sport": ["football", "goal", "match"], "money": ["bank", "loan", "cash"],
            "weather": ["rain", "snow", "wind"]}
FILLER = ["the", "a", "today", "we", "saw", "some", "very", "big", "and", "then"]
SENTENCES = [
    (["Jane", "Smith", "joined", "Acme", "Corp", "."], ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O"]),
    (["Acme", "opened", "an", "office", "in", "Paris", "."], ["B-ORG", "O", "O", "O", "O", "B-LOC", "O"]),
    (["Bob", "lives", "in", "London", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
    (["Globex", "hired", "Bob", "."], ["B-ORG", "O", "B-PER", "O"]),
]
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
FEW_STEPS = {"max_steps": 3, "batch_size": 4, "device": "cpu", "num_threads": 1, "log_every": 1}


def rows(per_class: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for label, words in KEYWORDS.items():
        for _ in range(per_class):
            tokens = list(rng.choice(FILLER, size=4)) + [str(rng.choice(words))]
            rng.shuffle(tokens)
            records.append((" ".join(tokens), label))
    return pd.DataFrame(records, columns=["text", "label"])


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone():
    corpus = rows(10)["text"].tolist() + [" ".join(tokens) for tokens, _ in SENTENCES]
    tokenizer = train_wordpiece_tokenizer(corpus, vocab_size=200, min_frequency=1)
    return load_backbone("tiny-bert", tokenizer=tokenizer, seed=0, config_overrides=TINY)


@pytest.fixture(scope="module")
def protonet(backbone):
    import copy

    config = MetaConfig.from_params({"algorithm": "protonet", "n_way": 3, "k_shot": 2, "n_query": 2,
                                     "max_length": 16, "device": "cpu"})
    learner = build_learner(copy.deepcopy(backbone), config)
    return MetaLearnedModel(build_algorithm(learner, config), config, {"class_split": "01"})


@pytest.mark.parametrize("strategy", ["prototype", "finetune_head", "finetune_all", "finetune_lora", "tfidf"])
def test_every_strategy_gives_a_text_classifier_with_its_adaptation_time(backbone, strategy):
    support, query = rows(4, seed=1), rows(2, seed=2)
    options = {}
    if strategy.startswith("finetune"):
        options["training"] = FEW_STEPS
    if strategy == "finetune_lora":
        options["lora"] = {"r": 2, "lora_alpha": 4}
    learner = None if strategy == "tfidf" else backbone
    predictor = adapt(learner, support, strategy, **options)
    assert isinstance(predictor, AdaptedPredictor) and isinstance(predictor, TextClassifier)
    assert predictor.strategy == strategy and predictor.kind == "text_classification"
    assert predictor.adaptation_seconds > 0 and predictor.n_support == len(support)
    assert predictor.classes_ == sorted(KEYWORDS)
    proba = predictor.predict_proba(query["text"].tolist())
    assert proba.shape == (len(query), 3) and np.allclose(proba.sum(1), 1.0)
    assert set(predictor.predict(query["text"].tolist())) <= set(KEYWORDS)


def test_options_not_given_take_the_tuned_defaults_merged_key_by_key(backbone):
    support = rows(4)  # 4 texts a class: under the contrastive step's min_per_class of 10
    tuned = adapt(backbone, support, "finetune_head", training=FEW_STEPS)
    assert tuned.model.training["contrastive"] == {"skipped": "4.0 texts per class < min_per_class 10"}
    # A partial block merges into the default one (its limits kept); None turns the step off.
    partial = adapt(backbone, support, "finetune_head", training=FEW_STEPS, contrastive={"lr": 3e-4})
    assert partial.model.training["contrastive"] == tuned.model.training["contrastive"]
    assert "contrastive" not in adapt(backbone, support, "finetune_head", training=FEW_STEPS,
                                      contrastive=None).model.training
    assert "contrastive" not in adapt(backbone, support, "finetune_head", tuned=False,
                                      training=FEW_STEPS).model.training
    runs = adapt(backbone, rows(10), "finetune_head", training=FEW_STEPS,
                 contrastive={"max_steps": 2, "batch_size": 4, "max_length": 16})
    assert runs.model.training["contrastive"]["steps"] == 2
    # NER leaves the text-only options out; callers get copies, never the table itself.
    assert set(default_options("finetune_head", "ner")) == {"head_init", "temperature"}
    default_options("finetune_head")["contrastive"]["lr"] = 1.0
    assert DEFAULT_OPTIONS["finetune_head"]["contrastive"]["lr"] == 1.0e-4
    assert default_options("tfidf") == {} and default_options("meta") == {}


def test_fine_tuning_never_changes_the_learner(backbone):
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    adapt(backbone, rows(3), "finetune_all", training={**FEW_STEPS, "lr": 0.1})
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_tfidf_learns_the_keywords():
    predictor = adapt(None, rows(6), AdaptStrategy.TFIDF)
    assert list(predictor.predict(["we saw some rain", "a big loan today"])) == ["weather", "money"]


def test_a_meta_learned_protonet_adapts_with_its_own_rule_and_as_a_backbone(protonet):
    support, query = rows(3, seed=3), rows(2, seed=4)
    own = adapt(protonet, support, "prototype", label_names=False)
    meta = adapt(protonet, support, "meta")
    texts = query["text"].tolist()
    assert np.allclose(own.predict_proba(texts), meta.predict_proba(texts))
    # By default the class names join the support: other prototypes than the support's alone.
    named = adapt(protonet, support, "prototype")
    assert not np.allclose(named.predict_proba(texts), meta.predict_proba(texts))
    assert own.source.startswith("protonet on tiny-bert, class split 01")
    cosine = adapt(protonet, support, "prototype", metric="cosine")  # options: the frozen-encoder route
    assert type(cosine.model).__name__ == "EncoderClassifier"
    head = adapt(protonet, support, "finetune_head", training=FEW_STEPS)
    assert head.predict_proba(texts).shape == (len(texts), 3)


def test_ner_support_gives_a_tagger(backbone, protonet):
    support = pd.DataFrame({"tokens": [t for t, _ in SENTENCES], "tags": [g for _, g in SENTENCES]})
    for learner, strategy in ((backbone, "prototype"), (protonet, "finetune_head")):
        options = {"training": FEW_STEPS} if strategy == "finetune_head" else {}
        tagger = adapt(learner, support, strategy, **options)
        assert isinstance(tagger, SequenceTagger) and tagger.kind == "ner"
        predicted = tagger.predict([["Bob", "joined", "Globex", "."]])
        assert len(predicted) == 1 and len(predicted[0]) == 4


def test_the_meta_learned_model_saves_and_loads_with_the_same_predictions(tmp_path, protonet):
    support, query = rows(3, seed=5), rows(2, seed=6)
    protonet.save_directory(tmp_path / "model")
    loaded = MetaLearnedModel.load_directory(tmp_path / "model")
    assert loaded.config == protonet.config and loaded.info == protonet.info
    texts = query["text"].tolist()
    assert np.allclose(adapt(loaded, support, "meta").predict_proba(texts),
                       adapt(protonet, support, "meta").predict_proba(texts), atol=1e-6)


def test_a_maml_learner_with_lora_round_trips_and_merges_for_fine_tuning(tmp_path, backbone):
    import copy

    config = MetaConfig.from_params({"algorithm": "fomaml", "n_way": 3, "max_length": 16, "inner_steps": 1,
                                     "inner_params": "lora", "lora": {"r": 2, "lora_alpha": 4, "lora_dropout": 0.0},
                                     "device": "cpu"})
    learner = build_learner(copy.deepcopy(backbone), config)
    with torch.no_grad():  # non-zero adapters, so that merging matters
        for name, parameter in learner.named_parameters():
            if "lora_B" in name:
                parameter.fill_(0.01)
    model = MetaLearnedModel(build_algorithm(learner, config), config)
    model.save_directory(tmp_path / "maml")
    loaded = MetaLearnedModel.load_directory(tmp_path / "maml")
    texts = rows(1)["text"].tolist()
    assert torch.allclose(loaded.learner.embed(texts), learner.embed(texts), atol=1e-5)
    merged = loaded.backbone
    assert not any("lora_" in name for name, _ in merged.model.named_parameters())
    from fastadapt.models.encoder import embed_texts

    plain = embed_texts(merged, texts, max_length=16, normalize=False, device="cpu", progress=False)
    assert np.allclose(plain, learner.embed(texts).numpy(), atol=1e-4)
    support = rows(3)
    assert adapt(loaded, support, "meta").predict(texts).shape == (len(texts),)


@pytest.mark.parametrize("strategy", ["fine_tune", "proto", ""])
def test_an_unknown_strategy_names_the_parameter_and_the_allowed_values(backbone, strategy):
    with pytest.raises(ConfigError) as raised:
        adapt(backbone, rows(2), strategy, where="task.strategy")
    assert str(raised.value) == f"task.strategy is {strategy!r}; allowed: {list(STRATEGIES)}"


def test_wrong_combinations_are_config_errors(backbone):
    with pytest.raises(ConfigError, match="'prototype' needs a learner"):
        adapt(None, rows(2), "prototype")
    with pytest.raises(ConfigError, match="'meta' needs a meta-learned model"):
        adapt(backbone, rows(2), "meta")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['steps'\]"):
        adapt(backbone, rows(2), "finetune_head", steps=3)
    with pytest.raises(ConfigError, match="'tfidf' is a text-classification baseline"):
        adapt(None, pd.DataFrame({"tokens": [["a"]], "tags": [["O"]]}), "tfidf")
    with pytest.raises(ConfigError, match=r"strategy.metric is 'manhattan'; allowed"):
        adapt(backbone, rows(2), "prototype", metric="manhattan")
    with pytest.raises(ValueError, match="columns text, label"):
        adapt(backbone, pd.DataFrame({"sentence": ["x"]}), "prototype")


def test_adapt_gives_predictors_that_evaluation_reads(backbone):
    """Moved from the second `adapt` (adaptation/fit.py), which is gone: the prediction tables."""
    from fastadapt.models.predictor import classification_predictions, ner_predictions

    support = rows(4)
    model = adapt(backbone, support, "prototype", device="cpu")
    table = classification_predictions(model, support.assign(row_id=range(len(support))))
    assert list(table.columns) == ["row_id", "label", "predicted", "proba__money", "proba__sport", "proba__weather"]
    sentences = pd.DataFrame({"tokens": [t for t, _ in SENTENCES], "tags": [t for _, t in SENTENCES]})
    tagger = adapt(backbone, sentences, "prototype", device="cpu")
    table = ner_predictions(tagger, sentences.assign(row_id=range(len(sentences))))
    assert list(table.columns) == ["row_id", "tags", "predicted"] and len(table) == len(SENTENCES)
    with pytest.raises(ValueError, match=r"text, label \(classification\) or tokens, tags \(NER\); got \['sentence'\]"):
        adapt(backbone, pd.DataFrame({"sentence": ["a"]}), "prototype")


def test_task_settings_and_strategy_options_name_the_parameter():
    from fastadapt.adapt import TaskSettings, strategy_options

    task = TaskSettings.from_params({"name": "tickets", "shots": 5})
    assert (task.strategy, task.kind, task.model, task.seed) == ("auto", "auto", "meta_learner", 0)
    assert task.resolved("ner").strategy is AdaptStrategy.STRUCTSHOT
    assert task.resolved("text_classification").strategy is AdaptStrategy.FINETUNE_HEAD
    for params, message in [({"name": "t", "shots": 0}, r"task\.shots is 0; allowed: an integer >= 1"),
                            ({"name": "t", "kind": "image"}, r"task\.kind is 'image'; allowed:"),
                            ({"name": "t", "shot": 5}, r"task: unknown setting\(s\) \['shot'\]"),
                            ({"name": "../t"}, r"task\.name is '\.\./t'; allowed: the name of a folder")]:
        with pytest.raises(ConfigError, match=message):
            TaskSettings.from_params(params)
    block = {"prototype": {"label_names": True}, "tfidf": None}
    assert strategy_options(block, AdaptStrategy.PROTOTYPE, "new_task.strategies") == {"label_names": True}
    assert strategy_options(block, "tfidf", "new_task.strategies") == {}
    head = {"finetune_head": {"head_init": "prototype", "label_names": True, "contrastive": {"max_classes": 20}}}
    assert strategy_options(head, "finetune_head", "new_task.strategies") == head["finetune_head"]
    # The text-only options stay out of an NER task's options: one block serves both kinds.
    assert strategy_options(head, "finetune_head", "new_task.strategies", "ner") == {"head_init": "prototype"}
    with pytest.raises(ConfigError, match=r"new_task\.strategies: unknown setting\(s\) \['finetune_heads'\]"):
        strategy_options({"finetune_heads": {}}, "prototype", "new_task.strategies")
