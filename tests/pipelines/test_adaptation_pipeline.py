"""`kedro run --pipeline adaptation` on a tiny throw-away project, then evaluation on its output.

The tasks are the hand-written generic-format fixtures (a 4-class text task, a small CoNLL task);
the backbone is tiny-bert on the WordPiece tokeniser the features pipeline trains, so nothing is
downloaded and every fit takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from tests.conftest import FIXTURES, make_project

from fastadapt.models.baselines import repair_iob2

pytestmark = pytest.mark.slow

TEXT, NER = "support_intent", "product_ner"
LABELS = ["account", "billing", "card", "delivery"]
TRAINING = {"max_steps": 20, "batch_size": 8, "lr": 0.01, "device": "cpu", "num_threads": 1, "log_every": 5,
            "eval_every": 10}

PARAMETERS = {
    "seed": 42,
    "test_origins": ["test"],
    "domains": {TEXT: {"kind": "text_classification"}, NER: {"kind": "ner"}},
    "stream": {"sources": {
        "cnbc": {"raw": "headlines", "reader": "cnbc_headlines", "reader_options": {"file": "cnbc_headlines.csv"}},
        "stockemotions": {"raw": "stockemotions", "reader": "stockemotions", "reader_options": {}},
    }},
    "kshot": {"ks": [1, 2], "seeds": [0, 1], "ner_ks": [1]},
    "episodes": {"domain": TEXT, "class_splits": "class_splits", "n_query": 1, "n_episodes": 3,
                 "settings": {"2way_1shot": {"n_way": 2, "k_shot": 1}}},
    "wordpiece_tokenizer": {"vocab_size": 400, "lowercase": True, "min_frequency": 1},
    "adaptation": {
        "backbone": "tiny-bert",
        "max_length": 64,
        "batch_size": 16,
        "device": "cpu",
        "strategies": {
            "prototype": {"metric": "cosine"},
            "head": {"training": {**TRAINING, "early_stop_patience": 2}, "kshot_training": {"max_steps": 10}},
            "lora": {"lora": {"r": 2, "lora_alpha": 4}, "training": {**TRAINING, "max_steps": 6, "lr": 0.001}},
        },
        "runs": {
            "text_classification": {"full_data": ["prototype", "head", "lora"], "kshot": ["prototype", "head"]},
            "ner": {"full_data": ["head"], "kshot": ["prototype"]},
        },
    },
    "evaluation": {
        "models": {"text_classification": ["tinybert_prototype", "tinybert_head", "tinybert_lora"],
                   "ner": ["tinybert_head"]},
        "kshot_models": {"text_classification": ["tinybert_prototype", "tinybert_head"], "ner": []},
    },
}
PIPELINES = ["ingestion", "features", "adaptation", "evaluation"]


def adaptation_project(root: Path) -> Path:
    raw = {
        f"tasks/{TEXT}": FIXTURES / "pipelines" / "text_task",
        f"tasks/{NER}": FIXTURES / "pipelines" / "ner_task",
        "class_splits": FIXTURES / "pipelines" / "class_splits",
        "headlines": FIXTURES / "readers" / "headlines",
        "stockemotions": FIXTURES / "readers" / "stockemotions",
        "dialogue_sgd": FIXTURES / "readers" / "dialogue_sgd",  # read by the copied ingestion settings
    }
    project = make_project(root, raw, yaml.safe_dump(PARAMETERS, sort_keys=False))

    # Kedro refuses a top-level key defined in two files of one environment: the keys set above
    # are dropped from the copied conf/base/parameters_*.yml files.
    for path in sorted((project / "conf" / "base").glob("parameters_*.yml")):
        kept = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k not in PARAMETERS}
        path.write_text(yaml.safe_dump(kept, sort_keys=False)) if kept else path.unlink()
    return project


@pytest.fixture(autouse=True)
def no_stale_mlflow_run():
    """kedro-mlflow can leave its finished run on this thread's fluent stack; end it."""
    while mlflow.active_run():
        mlflow.end_run()
    yield
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = adaptation_project(tmp_path_factory.mktemp("adaptation"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.chdir(project)
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=PIPELINES)
    while mlflow.active_run():
        mlflow.end_run()
    return project


def read(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(project / "data" / relative)


def test_text_predictions_follow_the_contract(project):
    splits = read(project, f"04_feature/{TEXT}/splits.parquet")
    test_ids = sorted(splits.loc[splits["split"] == "test", "row_id"])
    for model in ("tinybert_prototype", "tinybert_head", "tinybert_lora"):
        table = read(project, f"07_model_output/{TEXT}/{model}/test_predictions.parquet")
        assert list(table.columns) == ["row_id", "label", "predicted", *[f"proba__{c}" for c in LABELS]], model
        assert sorted(table["row_id"]) == test_ids
        assert table["predicted"].isin(LABELS).all()
        proba = table[[f"proba__{c}" for c in LABELS]].to_numpy()
        assert np.allclose(proba.sum(1), 1.0)
        assert (table["predicted"].to_numpy() == np.asarray(LABELS)[proba.argmax(1)]).all()
        metrics = json.loads((project / "data" / "08_reporting" / TEXT / model / "metrics.json").read_text())
        assert metrics["model"] == model
        assert metrics["test"]["accuracy"] == pytest.approx((table["label"] == table["predicted"]).mean())


def test_kshot_predictions_one_model_per_set(project):
    kshot_sets = read(project, f"04_feature/{TEXT}/kshot_sets.parquet")
    splits = read(project, f"04_feature/{TEXT}/splits.parquet")
    n_test = int((splits["split"] == "test").sum())
    for model in ("tinybert_prototype", "tinybert_head"):
        table = read(project, f"07_model_output/{TEXT}/{model}/kshot_predictions.parquet")
        assert list(table.columns[:5]) == ["k", "seed", "row_id", "label", "predicted"]
        sets = table.groupby(["k", "seed"]).size().to_dict()
        assert sets == {key: n_test for key in kshot_sets.groupby(["k", "seed"]).groups}
        report = pd.read_csv(project / "data" / "08_reporting" / TEXT / model / "kshot_metrics.csv")
        assert sorted(zip(report["k"], report["seed"])) == sorted(sets)


def test_ner_predictions_are_valid_iob2_and_scored(project):
    splits = read(project, f"04_feature/{NER}/splits.parquet")
    test = splits[splits["split"] == "test"].set_index("row_id")
    table = read(project, f"07_model_output/{NER}/tinybert_head/test_predictions.parquet")
    assert list(table.columns) == ["row_id", "tags", "predicted"] and sorted(table["row_id"]) == sorted(test.index)
    for row_id, predicted in zip(table["row_id"], table["predicted"]):
        predicted = list(predicted)
        assert len(predicted) == len(test.loc[row_id, "tokens"]) and repair_iob2(predicted) == predicted
    metrics = json.loads((project / "data" / "08_reporting" / NER / "tinybert_head" / "metrics.json").read_text())
    assert metrics["test"]["entity_f1"] == pytest.approx(seqeval_f1(
        [list(t) for t in table["tags"]], [list(p) for p in table["predicted"]], mode="strict", scheme=IOB2))
    kshot = read(project, f"07_model_output/{NER}/tinybert_prototype/kshot_predictions.parquet")
    assert set(zip(kshot["k"], kshot["seed"])) == {(1, 0), (1, 1)}
    assert all(repair_iob2(list(p)) == list(p) for p in kshot["predicted"])


def test_models_are_versioned_directories_that_reload(project):
    from kedro.io.core import Version

    from fastadapt.adaptation import EncoderClassifier, EncoderTagger
    from fastadapt.datasets import ModelDirectoryDataset

    splits = read(project, f"04_feature/{TEXT}/splits.parquet")
    test = splits[splits["split"] == "test"].sort_values("row_id")
    for domain, model, kind in ((TEXT, "tinybert_head", EncoderClassifier), (TEXT, "tinybert_lora", EncoderClassifier),
                                (NER, "tinybert_head", EncoderTagger)):
        folder = project / "data" / "06_models" / domain / model
        assert len(list(folder.iterdir())) == 1  # one version per run
        loaded = ModelDirectoryDataset(str(folder), version=Version(None, None)).load()
        assert isinstance(loaded, kind) and loaded.strategy.short == model.split("_")[1]
    # The head was fitted and scored on cached features; on raw texts it answers the same.
    head = ModelDirectoryDataset(str(project / "data" / "06_models" / TEXT / "tinybert_head"),
                                 version=Version(None, None)).load()
    stored = read(project, f"07_model_output/{TEXT}/tinybert_head/test_predictions.parquet").sort_values("row_id")
    proba = head.predict_proba(test["text"].tolist())
    assert np.allclose(proba, stored[[f"proba__{c}" for c in head.classes_]].to_numpy(), atol=1e-4)
    embeddings = read(project, f"05_model_input/{TEXT}/embeddings_tinybert.parquet")
    assert sorted(embeddings["row_id"]) == sorted(splits["row_id"]) and len(embeddings["embedding"].iloc[0]) == 128


def test_nodes_are_tagged_and_named(project, monkeypatch):
    from fastadapt.pipelines.adaptation import create_pipeline

    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    tags = {node.name: node.tags for node in create_pipeline().nodes}
    assert tags[f"{TEXT}.embed_tinybert_node"] >= {"gpu", "adaptation"}
    assert "cpu" in tags[f"{TEXT}.fit_tinybert_prototype_node"]
    assert "cpu" in tags[f"{TEXT}.predict_tinybert_head_node"]  # reads the cache: no torch compute
    assert "gpu" in tags[f"{TEXT}.fit_tinybert_head_node"] and "gpu" in tags[f"{TEXT}.fit_tinybert_lora_node"]
    assert "gpu" in tags[f"{TEXT}.predict_tinybert_lora_node"]
    assert "gpu" in tags[f"{NER}.kshot_tinybert_prototype_node"]  # encodes the sentences
    assert all(len(t & {"cpu", "gpu"}) == 1 for t in tags.values())


def test_bad_configurations_stop_with_a_clear_message(project, monkeypatch):
    from kedro.io.core import Version

    from fastadapt.config import ConfigError
    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.pipelines.adaptation import create_pipeline
    from fastadapt.pipelines.adaptation.nodes import kshot_fit_predict
    from fastadapt.tasks.kshot import KShotError

    splits = read(project, f"04_feature/{TEXT}/splits.parquet")
    kshot_sets = read(project, f"04_feature/{TEXT}/kshot_sets.parquet")
    params = {**PARAMETERS["adaptation"], "kshot_sets": {"ks": [3, 50], "seeds": [0]}}
    with pytest.raises(KShotError, match=rf"adaptation\.kshot_sets\.ks asks for k=50 on domain '{TEXT}': "
                                         r"cannot draw 50-shot: class 'account' has \d+ rows"):
        kshot_fit_predict(splits, kshot_sets, params, PARAMETERS["domains"], TEXT, "prototype")
    # A k that the features pipeline did not draw, but the train split allows, is drawn here.
    tokenizer = ModelDirectoryDataset(str(project / "data" / "06_models" / "wordpiece_tokenizer"),
                                      version=Version(None, None)).load()
    params["kshot_sets"] = {"ks": [3], "seeds": [0]}
    table = kshot_fit_predict(splits, kshot_sets, params, PARAMETERS["domains"], TEXT, "prototype",
                              wordpiece_tokenizer=tokenizer)
    assert set(zip(table["k"], table["seed"])) == {(3, 0)}
    assert table.groupby(["k", "seed"]).size().to_dict() == {(3, 0): int((splits["split"] == "test").sum())}

    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    local = project / "conf" / "local" / "parameters.yml"
    local.write_text(yaml.safe_dump({"adaptation": {"runs": {"text_classification": {"full_data": ["finetune"]}}}}))
    try:
        with pytest.raises(ConfigError, match=r"adaptation\.runs\.text_classification\.full_data\[0\] is "
                                              r"'finetune'; allowed: \['full', 'lora', 'head', 'prototype'\]"):
            create_pipeline()
    finally:
        local.unlink()
