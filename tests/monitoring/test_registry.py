"""Champion / challenger on a real MLflow SQLite registry: promotion both ways, margin, restore."""

from __future__ import annotations

import json
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from fastadapt.models.baselines import TfidfLogisticRegression
from fastadapt.models.persistence import save_model
from fastadapt.monitoring import registry
from fastadapt.monitoring.cli import append_decision
from fastadapt.monitoring.cli import main as cli

GOOD = ["profit", "growth", "gain", "record", "beat", "upgrade"]
BAD = ["loss", "decline", "fall", "miss", "cut", "downgrade"]


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.choice(GOOD if positive else BAD, 2)
        texts.append(f"company reports {words[0]} and {words[1]} today")
        labels.append("positive" if positive else "negative")
    return pd.DataFrame({"text": texts, "label": labels})


TRAIN, TEST = rows(40, 0), rows(30, 1)


def model(noise: float, seed: int = 0) -> TfidfLogisticRegression:
    """A TF-IDF model trained with a fraction `noise` of flipped labels (worse with more noise)."""
    rng = np.random.default_rng(seed)
    labels = TRAIN["label"].to_numpy().copy()
    flip = rng.random(len(labels)) < noise
    labels[flip] = np.where(labels[flip] == "positive", "negative", "positive")
    return TfidfLogisticRegression(C=10.0).fit(TRAIN["text"].tolist(), labels.tolist())


@pytest.fixture(scope="module")
def tracking(tmp_path_factory, sqlite_tracking):
    """A fresh SQLite tracking store and registry, the current MLflow URI for the module."""
    root = tmp_path_factory.mktemp("registry")
    with sqlite_tracking(root, "registry-test") as uri:
        yield {"root": root, "uri": uri, "log": root / "decisions.jsonl"}


@pytest.fixture(scope="module")
def models():
    weak, strong = model(0.45, seed=3), model(0.0)
    assert registry.evaluate_classifier(strong, TEST)["macro_f1"] > registry.evaluate_classifier(weak, TEST)["macro_f1"] + 0.2
    return {"weak": weak, "strong": strong}


def champion(name: str) -> str:
    return str(registry.champion_version(name).version)


def test_champion_challenger_both_ways_then_restore(tracking, models):
    name, log = "sentiment", tracking["log"]
    first = registry.champion_challenger(models["weak"], name, TEST, margin=0.05)
    assert first["action"] == "first_champion" and first["promoted"]
    assert champion(name) == "1"
    assert not log.exists()  # the registry only returns the record: the caller (catalog, CLI) logs it
    append_decision(log, first)

    # A better challenger (by more than the margin) is promoted.
    second = registry.champion_challenger(models["strong"], name, TEST, margin=0.05)
    append_decision(log, second)
    assert second["action"] == "promoted" and champion(name) == "2"
    assert second["champion_score"] == pytest.approx(first["challenger_score"])
    assert second["challenger_score"] - second["champion_score"] >= 0.05
    version = MlflowClient().get_model_version(name, "2")
    assert version.tags["previous_champion"] == "1" and version.tags["decision"] == "promoted"

    # A worse challenger is registered but not promoted.
    third = registry.champion_challenger(models["weak"], name, TEST, margin=0.05)
    append_decision(log, third)
    assert third["action"] == "rejected" and not third["promoted"] and champion(name) == "2"
    assert third["challenger_version"] == 3 and third["delta"] < 0

    # Every decision is an MLflow run with both scores, and a line of the log.
    run = mlflow.get_run(third["mlflow_run_id"])
    assert run.data.metrics["challenger_macro_f1"] == pytest.approx(third["challenger_score"])
    assert run.data.metrics["champion_macro_f1"] == pytest.approx(third["champion_score"])
    assert run.data.tags["fastadapt.decision"] == "rejected"
    logged = registry.read_decisions(log, name)
    assert [r["action"] for r in logged] == ["first_champion", "promoted", "rejected"]
    assert {"challenger_score", "champion_score", "margin", "test_set_hash", "mlflow_run_id"} <= set(logged[-1])
    assert len({r["test_set_hash"] for r in logged}) == 1  # the same fixed test set every time

    # The served champion predicts like the promoted model.
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(TEST[["text"]])
    assert served["label"].tolist() == list(models["strong"].predict(TEST["text"].tolist()))

    # Restore: back to version 1; once more, nothing earlier to go back to.
    restored = registry.restore_previous_champion(name, log)
    append_decision(log, restored)
    assert restored["champion_version_before"] == 2 and champion(name) == "1"
    assert MlflowClient().get_model_version(name, "2").tags.get("demoted_at")
    with pytest.raises(registry.RegistryError, match="nothing to restore"):
        registry.restore_previous_champion(name, log)
    assert registry.read_decisions(log, name)[-1]["action"] == "restored"


def test_an_improvement_below_the_margin_keeps_the_champion(tracking, models):
    name = "margin"
    registry.champion_challenger(models["weak"], name, TEST, margin=0.0)
    score = registry.evaluate_classifier(models["strong"], TEST)["macro_f1"]
    weak_score = registry.evaluate_classifier(models["weak"], TEST)["macro_f1"]
    margin = (score - weak_score) + 0.01  # just out of reach
    decision = registry.champion_challenger(models["strong"], name, TEST, margin=margin)
    assert decision["action"] == "rejected" and champion(name) == "1"
    # An equal model never wins, even with margin 0.
    tie = registry.champion_challenger(models["weak"], name, TEST, margin=0.0)
    assert tie["delta"] == pytest.approx(0.0) and tie["action"] == "rejected"
    assert registry.champion_challenger(models["strong"], name, TEST, margin=margin - 0.02)["action"] == "promoted"
    with pytest.raises(ValueError, match="margin must be a number >= 0"):
        registry.champion_challenger(models["strong"], name, TEST, margin=-1)
    with pytest.raises(ValueError, match="metric 'auc' is unknown"):
        registry.champion_challenger(models["strong"], name, TEST, metric="auc")


def test_restore_command_line(tracking, models):
    name, log = "cli", tracking["root"] / "cli.jsonl"
    runner = CliRunner()
    args = ["--tracking-uri", tracking["uri"], "--decision-log", str(log)]
    result = runner.invoke(cli, ["restore-champion", "--name", name, *args])
    assert result.exit_code != 0 and "has no 'champion' alias" in result.output
    append_decision(log, registry.ensure_champion(models["weak"], name, TEST))
    append_decision(log, registry.champion_challenger(models["strong"], name, TEST, margin=0.01))
    assert champion(name) == "2"
    result = runner.invoke(cli, ["restore-champion", "--name", name, "--reason", "bad week", *args])
    assert result.exit_code == 0, result.output
    assert "restored from version 2 to 1" in result.output and champion(name) == "1"
    assert json.loads(log.read_text().splitlines()[-1])["reason"] == "bad week"
    listing = runner.invoke(cli, ["versions", "--name", name, "--tracking-uri", tracking["uri"]])
    assert listing.exit_code == 0 and "champion" in listing.output
    # ensure_champion leaves an existing champion alone, and a kept champion adds no line to the log.
    kept = registry.ensure_champion(models["strong"], name, TEST)
    assert kept["action"] == "kept" and champion(name) == "1" and registry.decision_line(kept) == ""
    lines = log.read_text().splitlines()
    append_decision(log, kept)
    assert log.read_text().splitlines() == lines and [json.loads(line)["action"] for line in lines] == [
        "first_champion", "promoted", "restored"]


def record(output: str) -> dict:
    """The JSON record the command prints (MLflow's own messages may come around it)."""
    return json.loads(re.search(r'\{"timestamp".*\}', output).group(0))


def test_register_command_registers_and_promotes_by_hand(tracking, models, tmp_path):
    name, log = "by_hand", tmp_path / "log.jsonl"
    for key in ("weak", "strong"):
        save_model(models[key], tmp_path / key)
    args = ["--tracking-uri", tracking["uri"], "--decision-log", str(log)]
    runner = CliRunner()
    first = runner.invoke(cli, ["register", "--name", name, "--model", str(tmp_path / "weak"), *args])
    assert first.exit_code == 0, first.output
    assert record(first.output)["action"] == "first_champion" and champion(name) == "1"
    second = runner.invoke(cli, ["register", "--name", name, "--model", str(tmp_path / "strong"), "--promote", *args])
    assert second.exit_code == 0, second.output
    assert record(second.output)["action"] == "promoted_by_hand" and champion(name) == "2"
    restored = runner.invoke(cli, ["restore-champion", "--name", name, *args])
    assert restored.exit_code == 0 and champion(name) == "1"
