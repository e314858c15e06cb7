"""`kedro run --pipeline new_task --params "task.name=...,task.shots=..."` on hand-written task folders.

The meta-learned model is a ProtoNet on a one-layer tiny-bert saved where `meta_learner` lives, and
the NER source tagger a two-step tagger on the same backbone where `ner_source_tagger` lives, so no
meta-training runs here and every adaptation takes well under a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score
from tests.conftest import FIXTURES, end_session_state, make_project

from fastadapt.config import ConfigError
from fastadapt.readers.quarantine import RawInputError
from fastadapt.tasks.kshot import KShotError

TASKS = FIXTURES / "new_task"
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A throw-away project with the fixture task folders and a tiny saved `meta_learner`."""
    from kedro.io.core import Version

    from fastadapt.adaptation import AdaptationConfig
    from fastadapt.adaptation.transfer import pretrain_tagger
    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.meta import MetaConfig, build_algorithm, build_learner
    from fastadapt.meta.saved import MetaLearnedModel
    from fastadapt.models.backbones import load_backbone, train_wordpiece_tokenizer

    root = tmp_path_factory.mktemp("new_task")
    raw = {f"tasks/{name}": TASKS / name
           for name in ("support_tickets", "product_ner", "one_class", "no_test_file", "suspicious")}
    project = make_project(root, raw)
    corpus = pd.read_csv(TASKS / "support_tickets" / "train.csv")["text"].tolist()
    corpus += [line.split()[0] for line in (TASKS / "product_ner" / "train.conll").read_text().splitlines() if line]
    torch.set_num_threads(1)
    tokenizer = train_wordpiece_tokenizer(corpus, vocab_size=200, min_frequency=1)
    backbone = load_backbone("tiny-bert", tokenizer=tokenizer, seed=0, config_overrides=TINY)
    config = MetaConfig.from_params({"algorithm": "protonet", "max_length": 32, "device": "cpu"})
    model = MetaLearnedModel(build_algorithm(build_learner(backbone, config), config), config,
                             {"class_split": "01", "best_val_accuracy": 0.5})
    ModelDirectoryDataset(str(project / "data" / "06_models" / "meta_learner"), version=Version(None, None)).save(model)
    source = [(["Ann", "Lee", "met", "Bob", "in", "Oslo", "."], ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O"]),
              (["Oslo", "is", "far", "."], ["B-LOC", "O", "O", "O"])]
    tagger = pretrain_tagger(backbone, [t for t, _ in source], [g for _, g in source], AdaptationConfig.from_params(
        {"strategy": "full", "max_length": 32, "training": {"max_steps": 2, "batch_size": 2, "seed": 0}}),
        source="tiny source")
    ModelDirectoryDataset(str(project / "data" / "06_models" / "ner_source_tagger"),
                          version=Version(None, None)).save(tagger)
    return project


@pytest.fixture
def run_task(monkeypatch):
    """`kedro run --pipeline new_task --params <task>` in a real session (what the CLI does)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    def run(project: Path, params: dict | None = None, **task):
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.chdir(project)
        bootstrap_project(project)
        try:
            with KedroSession.create(project_path=project, runtime_params={"task": task, **(params or {})}) as session:
                return session.run(pipeline_names=["new_task"])
        finally:
            end_session_state()

    return run


def outputs(project: Path, name: str) -> tuple[dict, pd.DataFrame]:
    folder = project / "data" / "08_reporting" / "tasks" / name
    return json.loads((folder / "metrics.json").read_text()), pd.read_parquet(folder / "predictions.parquet")


def test_a_text_task_is_adapted_with_shots_per_class_and_scored_on_its_test_file(project, run_task):
    run_task(project, name="support_tickets", shots=2, seed=0)
    metrics, predictions = outputs(project, "support_tickets")
    assert metrics["task"] == "support_tickets" and metrics["kind"] == "text_classification"
    assert metrics["strategy"] == "finetune_head" and metrics["shots"] == 2 and metrics["seed"] == 0
    assert metrics["n_train"] == 6 and metrics["n_train_available"] == 18 and metrics["n_test"] == 6
    assert metrics["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert metrics["macro_f1"] == pytest.approx(f1_score(
        predictions["label"], predictions["predicted"], labels=metrics["classes"], average="macro", zero_division=0))
    assert metrics["adaptation_seconds"] > 0
    # The default head's contrastive step needs 10 texts per class: two are too few.
    assert metrics["contrastive"] == {"skipped": "2.0 texts per class < min_per_class 10"}
    assert metrics["source_model"].startswith("protonet on tiny-bert, class split 01")
    assert metrics["classes"] == ["account", "billing", "delivery"]
    assert list(predictions.columns[:3]) == ["row_id", "label", "predicted"]
    assert len(predictions) == 6 and {"proba__account", "proba__billing", "proba__delivery"} <= set(predictions)


def test_the_contrastive_step_runs_within_its_limits_and_the_metrics_record_it(project, run_task):
    head = {"head_init": "prototype", "label_names": True, "training": {"max_steps": 20},
            "contrastive": {"num_iterations": 1, "max_steps": 3, "max_classes": 3, "min_per_class": 6}}
    run_task(project, params={"new_task": {"strategies": {"finetune_head": head}}}, name="support_tickets",
             strategy="finetune_head")
    metrics, _ = outputs(project, "support_tickets")
    assert metrics["n_train"] == 18 and metrics["contrastive"]["steps"] == 3
    assert metrics["contrastive"]["pairs"] == 2 * 18


def test_without_shots_the_whole_train_file_is_used_and_tfidf_needs_no_model(project, run_task):
    run_task(project, name="support_tickets", strategy="tfidf")
    metrics, _ = outputs(project, "support_tickets")
    assert metrics["n_train"] == 18 and metrics["shots"] is None and metrics["strategy"] == "tfidf"
    assert metrics["model"] is None and metrics["source_model"] == "tfidf"


def test_unseen_test_labels_overlap_and_quarantine_are_warned_and_recorded(project, run_task, caplog):
    with caplog.at_level("WARNING", logger="fastadapt.pipelines.new_task.task_folder"):
        run_task(project, name="suspicious", strategy="tfidf")
    metrics, predictions = outputs(project, "suspicious")
    assert metrics["unseen_test_labels"] == ["card"] and metrics["n_test_unseen_label"] == 2
    assert metrics["n_test_in_train"] == 2 and metrics["n_test_in_train_same_label"] == 1
    assert metrics["quarantined"] == 1 and metrics["n_test"] == len(predictions) == 5
    quarantine = pd.read_parquet(project / "data" / "08_reporting" / "tasks" / "suspicious" / "quarantine.parquet")
    assert quarantine[["file", "line", "reason"]].values.tolist() == [["test.csv", 7, "malformed_csv"]]
    assert "2 test row(s) of test.csv carry labels never seen in train.csv: ['card']" in caplog.text
    assert "2 of 5 test row(s) of test.csv also appear in train.csv (1 with the same label)" in caplog.text
    assert "test.csv line 7: malformed_csv" in caplog.text


def test_a_task_folder_declares_its_conll_scheme():
    from fastadapt.pipelines.new_task.nodes import read_task

    folder = TASKS / "declared_iob1"
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    train, test, info = read_task(files, {"name": "declared_iob1"})
    assert info["quarantined"] == 0 and len(train) == 4
    assert train["tags"].tolist() == [["B-ORG", "I-ORG", "O", "B-PER", "I-PER"], ["B-PER", "O", "O", "B-LOC"],
                                      ["B-ORG", "O"], ["B-PER", "O"]]
    assert test["tags"].tolist() == [["B-LOC", "O"], ["B-PER", "O"]]
    undeclared = {name: data for name, data in files.items() if name != "task.yml"}
    _, _, auto = read_task(undeclared, {"name": "declared_iob1"})  # a tie of evidence: IOB2, quarantined
    assert auto["quarantined"] == 3
    with pytest.raises(RawInputError, match=r"task.yml may only set \['scheme'\] for a ner task"):
        read_task({**files, "task.yml": b"schema: iob1\n"}, {"name": "declared_iob1"})


def test_a_ner_task_gets_entity_f1(project, run_task):
    run_task(project, name="product_ner", shots=1, seed=0)
    metrics, predictions = outputs(project, "product_ner")
    assert metrics["kind"] == "ner"
    assert metrics["entity_f1"] == pytest.approx(seqeval_f1(
        [list(t) for t in predictions["tags"]], [list(p) for p in predictions["predicted"]], mode="strict",
        scheme=IOB2))
    assert metrics["entity_types"] == ["LOC", "ORG", "PER"]
    assert 1 <= metrics["n_train"] <= 3 and metrics["n_test"] == 2
    assert [len(p) for p in predictions["predicted"]] == [6, 4]
    # `task.strategy: auto` picks the NER default; the metrics say how valid the decoding is.
    assert metrics["strategy"] == "structshot" and metrics["valid_iob2"] == 1.0
    assert set(metrics["per_type_f1"]) <= {"LOC", "ORG", "PER"} and metrics["adaptation_seconds"] > 0
    # `task.model: meta_learner` adapts what meta_training released for NER: the source tagger.
    assert metrics["model"] == "meta_learner"
    assert metrics["source_model"] == "source tagger on tiny source (held out: [])"


def test_a_ner_task_fine_tunes_the_source_tagger_from_token_prototypes(project, run_task):
    run_task(project, name="product_ner", shots=1, seed=0, strategy="finetune_all")
    metrics, predictions = outputs(project, "product_ner")
    assert metrics["strategy"] == "finetune_all" and metrics["entity_types"] == ["LOC", "ORG", "PER"]
    assert metrics["source_model"] == "source tagger on tiny source (held out: [])"
    assert metrics["valid_iob2"] == 1.0 and [len(p) for p in predictions["predicted"]] == [6, 4]


@pytest.mark.parametrize(
    ("task", "error", "message"),
    [
        ({}, ConfigError, 'task.name is missing: name the task folder, e.g. kedro run --pipeline new_task '
                          '--params "task.name=<folder under data/01_raw/tasks>"'),
        ({"name": "no_such_task"}, RawInputError,
         "task 'no_such_task': the folder data/01_raw/tasks/no_such_task/ is missing or empty. A new task is a "
         "folder data/01_raw/tasks/<name>/ with train.csv and test.csv (columns text,label), or train.conll and "
         "test.conll for NER."),
        ({"name": "no_test_file"}, RawInputError,
         "task 'no_test_file' (data/01_raw/tasks/no_test_file/): raw file 'test.csv' is missing (the folder holds: "
         "train.csv). A new task is a folder"),
        ({"name": "one_class"}, RawInputError,
         "task 'one_class': data/01_raw/tasks/one_class/train.csv has a single class ('card'); a classifier needs "
         "examples of at least two classes"),
        ({"name": "support_tickets", "shots": 7}, KShotError,
         "task 'support_tickets': task.shots=7: cannot draw 7-shot: class 'account' has 6 rows, class 'billing' "
         "has 6 rows, class 'delivery' has 6 rows (fewer than k=7) in train.csv; lower task.shots or add examples"),
        ({"name": "product_ner", "shots": 5}, KShotError,
         "task 'product_ner': task.shots=5: cannot draw 5-shot NER: type 'ORG' has 4 mentions, type 'PER' has 3 "
         "mentions (fewer than k=5) in train.conll"),
        ({"name": "support_tickets", "strategy": "finetune"}, ConfigError,
         "task.strategy is 'finetune'; allowed: ['prototype', 'meta', 'finetune_head', 'finetune_all', "
         "'finetune_lora', 'nnshot', 'structshot', 'tfidf']"),
    ],
)
def test_user_mistakes_stop_the_run_with_a_message_naming_the_file_or_parameter(project, run_task, task, error,
                                                                                 message):
    with pytest.raises(error) as raised:
        run_task(project, **task)
    assert str(raised.value).startswith(message), str(raised.value)


def test_kedro_run_prints_a_missing_folder_in_one_line(project):
    environment = {**os.environ, "KEDRO_PROJECT_PATH": str(project), "KEDRO_DISABLE_TELEMETRY": "true",
                   "HF_HUB_OFFLINE": "1", "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipeline", "new_task", "--params",
                           "task.name=typo_task,task.shots=5"], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Error: task 'typo_task': the folder data/01_raw/tasks/typo_task/ is missing or empty." in output
    assert "Traceback" not in output and "╭" not in output
