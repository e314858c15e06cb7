"""The registry command line (`python -m fastadapt.monitoring.cli`, `fastadapt-registry`): where it
finds the tracking store and the decision log, and its one-line errors, run as a real process.
Champion restore / register against a real registry are in test_registry.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from fastadapt.monitoring.cli import (
    DEFAULT_DECISION_LOG,
    project_decision_log,
    project_tracking_uri,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def mlflow_yml(root: Path, env: str, uri: str) -> None:
    (root / "conf" / env).mkdir(parents=True, exist_ok=True)
    (root / "conf" / env / "mlflow.yml").write_text(f"server:\n  mlflow_tracking_uri: {uri}\n")


def test_the_tracking_uri_is_conf_local_over_base_and_a_relative_sqlite_path_is_made_absolute(tmp_path):
    assert project_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"  # no mlflow.yml
    mlflow_yml(tmp_path, "base", "sqlite:///runs/base.db")
    assert project_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'runs' / 'base.db'}"
    mlflow_yml(tmp_path, "local", "http://127.0.0.1:5000")
    assert project_tracking_uri(tmp_path) == "http://127.0.0.1:5000"
    mlflow_yml(tmp_path, "local", "sqlite:////srv/mlflow.db")
    assert project_tracking_uri(tmp_path) == "sqlite:////srv/mlflow.db"


def test_the_decision_log_is_the_projects_catalog_entry_under_the_given_root(tmp_path):
    assert project_decision_log(tmp_path) == str(tmp_path / DEFAULT_DECISION_LOG)  # no catalog at all
    # conf/base/catalog_monitoring.yml names the default file
    assert project_decision_log(REPO_ROOT) == str(REPO_ROOT / DEFAULT_DECISION_LOG)
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "local" / "catalog.yml").write_text(
        '"retraining.{name}.{step}_log":\n  type: text.TextDataset\n  filepath: logs/decisions.jsonl\n')
    assert project_decision_log(tmp_path) == str(tmp_path / "logs" / "decisions.jsonl")


def test_a_record_is_appended_through_the_catalogs_own_dataset(tmp_path):
    from kedro.io import DataCatalog

    from fastadapt.monitoring.cli import append_decision

    config = yaml.safe_load((REPO_ROOT / "conf" / "base" / "catalog_monitoring.yml").read_text())
    entry = {**config["retraining.{name}.{step}_log"], "filepath": str(tmp_path / "decisions.jsonl")}
    catalog = DataCatalog.from_config({"retraining.{name}.{step}_log": entry})
    catalog.save("retraining.fin.seed_log", '{"action": "first_champion", "name": "fin"}\n')
    catalog.save("retraining.fin.decision_log", "")  # a kept champion: nothing to add
    append_decision(tmp_path / "decisions.jsonl", {"name": "fin", "action": "restored"})
    catalog.save("retraining.other.decision_log", '{"action": "promoted", "name": "other"}\n')
    lines = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["first_champion", "restored", "promoted"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastadapt.monitoring.cli", *args], check=False, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), **env})


def test_the_command_uses_mlflow_tracking_uri_and_fails_in_one_line(tmp_path):
    store = tmp_path / "env.db"
    result = run_cli("versions", "--name", "nothing", env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[-1] == "Error: no versions of 'nothing'" and "Traceback" not in result.stderr
    assert store.is_file()  # the store named by the environment, not the project's mlflow.db


def test_a_missing_option_is_a_usage_error_that_names_it(tmp_path):
    result = run_cli("register", "--name", "x", env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    assert result.returncode == 2 and "Missing option '--model'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m.db").exists()
