"""`kedro run --pipeline pretraining` on a tiny pool in a throw-away project (tiny-bert, tiny budget)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from tests.conftest import make_project

pytestmark = pytest.mark.slow

WORDS = ["rates", "bank", "card", "shares", "fee", "transfer", "report", "market", "savings", "payment",
         "declined", "rose", "fell", "pending", "refunded", "strong", "weak", "today", "again", "overnight"]
POOL = pd.DataFrame({
    "text": [" ".join(combo) for combo in itertools.islice(itertools.permutations(WORDS, 4), 0, 24000, 150)],
    "source": "tiny",
})

PARAMETERS = {
    "pretraining": {
        "backbone": "tiny-bert",
        "objectives": {"mlm": 1.0, "contrastive": 0.5},
        "whole_word_masking": True,
        "max_length": 16,
        "validation_fraction": 0.1,
        "max_texts": 120,
        "backbone_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64},
        "training": {"max_steps": 6, "batch_size": 16, "lr": 1e-3, "eval_every": 3, "log_every": 2,
                     "device": "cpu", "num_threads": 1, "seed": 0, "max_seconds": 60},
    }
}


@pytest.fixture(autouse=True)
def no_stale_mlflow_run():
    """kedro-mlflow finishes its run in the tracking store but can leave it on this thread's
    fluent run stack; a later session in the same process would then log into it."""
    while mlflow.active_run():
        mlflow.end_run()
    yield
    while mlflow.active_run():
        mlflow.end_run()


def pretraining_project(root: Path, parameters: dict) -> Path:
    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.models.backbones import SavedTokenizer, train_wordpiece_tokenizer

    project = make_project(root, {})

    (project / "conf" / "base" / "parameters_pretraining.yml").write_text(yaml.safe_dump(parameters))
    POOL.to_parquet(project / "data" / "04_feature" / "unlabelled_pool.parquet", index=False)
    tokenizer = train_wordpiece_tokenizer(POOL["text"], vocab_size=100, min_frequency=1)
    ModelDirectoryDataset(str(project / "data" / "06_models" / "wordpiece_tokenizer"),
                          version=Version(None, None)).save(SavedTokenizer(tokenizer))
    return project


def test_pretraining_pipeline_writes_backbone_history_curve_and_mlflow_metrics(tmp_path, run_project):
    project = pretraining_project(tmp_path, PARAMETERS)
    run_project(project, "pretraining")

    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.models.backbones import Backbone

    versions = list((project / "data" / "06_models" / "pretrained_backbone").iterdir())
    assert len(versions) == 1  # versioned: one folder per run
    backbone = ModelDirectoryDataset(str(project / "data" / "06_models" / "pretrained_backbone"),
                                     version=Version(None, None)).load()  # the newest version
    assert isinstance(backbone, Backbone) and backbone.name == "tiny-bert" and backbone.hidden_size == 32
    assert list(versions[0].glob("*/model.safetensors")) and list(versions[0].glob("*/tokenizer.json"))
    with torch.no_grad():
        encoded = backbone.tokenizer(["bank rates rose"], return_tensors="pt")
        assert backbone.model(**encoded).last_hidden_state.shape[-1] == 32

    reports = project / "data" / "08_reporting" / "pretraining"
    history = pd.read_csv(reports / "history.csv")
    assert history["step"].tolist() == [2, 3, 4, 6]
    assert history["val_loss"].notna().tolist() == [False, True, False, True]
    assert (reports / "loss_curve.png").stat().st_size > 0

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("fastadapt-test").experiment_id])[0]
    losses = client.get_metric_history(run.info.run_id, "pretraining.loss")
    assert [m.step for m in sorted(losses, key=lambda m: m.step)] == [2, 3, 4, 6]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "pretraining.val_loss")] == [3, 6]
    assert client.list_artifacts(run.info.run_id, "pretraining")[0].path == "pretraining/loss_curve.png"


def test_a_bad_objective_stops_the_session_with_a_value_error_naming_it(tmp_path, run_project):
    parameters = {"pretraining": {**PARAMETERS["pretraining"], "objectives": {"mlm": 1.0, "electra": 1.0}}}
    project = pretraining_project(tmp_path, parameters)
    with pytest.raises(ValueError, match=r"pretraining\.objectives: unknown objective\(s\) \['electra'\]; "
                                         r"allowed: \['mlm', 'contrastive'\]"):
        run_project(project, "pretraining")
    assert not (project / "data" / "06_models" / "pretrained_backbone").exists()


def test_kedro_run_reports_an_unknown_backbone_in_one_line_without_a_traceback(tmp_path):
    parameters = {"pretraining": {**PARAMETERS["pretraining"], "backbone": "bert-huge", "backbone_config": {}}}
    project = pretraining_project(tmp_path, parameters)
    environment = {**os.environ, "KEDRO_PROJECT_PATH": str(project), "KEDRO_DISABLE_TELEMETRY": "true",
                   "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipeline", "pretraining"], cwd=project,
                          env=environment, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Error: pretraining.backbone is 'bert-huge'; allowed: ['minilm-l6', 'tiny-bert']" in output
    assert "Traceback" not in output and "╭" not in output
