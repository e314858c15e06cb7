"""Registry commands: restore the previous champion, list versions, register a model file.

    python -m fastadapt.monitoring.cli restore-champion --name finance_sentiment
    python -m fastadapt.monitoring.cli versions --name finance_sentiment
    python -m fastadapt.monitoring.cli register --name customer_intent \\
        --model data/06_models/customer_intent/baselines/tfidf/<version>/tfidf

The MLflow tracking URI is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the project's
``server.mlflow_tracking_uri`` (conf/local over conf/base ``mlflow.yml``), a relative SQLite path
taken from the project folder. The decision log is ``--decision-log``, else the file of the
project's catalog entry ``retraining.{name}.{step}_log``; a command appends its record to it
through the same dataset (kedro-datasets ``TextDataset`` in append mode) that the retraining
nodes write to.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import yaml

from fastadapt.config import project_root

DEFAULT_DECISION_LOG = "data/08_reporting/retraining/decisions.jsonl"
DECISION_LOG_ENTRY = "retraining.{name}.{step}_log"


def project_tracking_uri(root: Path | None = None) -> str:
    """The project's MLflow tracking URI, a relative ``sqlite:///`` path made absolute."""
    root = root or project_root()
    uri = None
    for env in ("local", "base"):
        path = root / "conf" / env / "mlflow.yml"
        if path.is_file():
            config = yaml.safe_load(path.read_text()) or {}
            uri = (config.get("server") or {}).get("mlflow_tracking_uri")
            if uri:
                break
    uri = uri or "sqlite:///mlflow.db"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str((root / uri[len(prefix):]).resolve())
    return uri


def project_decision_log(root: Path | None = None) -> str:
    """The decision log's file: the project's catalog entry (conf/local over conf/base), under `root`."""
    root = root or project_root()
    value = None
    for env in ("local", "base"):
        for path in sorted((root / "conf" / env).glob("catalog*.yml")):
            entry = (yaml.safe_load(path.read_text()) or {}).get(DECISION_LOG_ENTRY)
            if isinstance(entry, dict) and entry.get("filepath"):
                value = entry["filepath"]
        if value:
            break
    path = Path(value or DEFAULT_DECISION_LOG)
    return str(path if path.is_absolute() else root / path)


def append_decision(path: str | Path, record: dict) -> None:
    """Append one decision record to the log at `path`, as the catalog dataset does."""
    # Imported here: kedro-datasets is the catalog's own dataset type, and only this command and
    # the catalog write the log (the registry module stays free of Kedro).
    from kedro_datasets.text import TextDataset

    from fastadapt.monitoring.registry import decision_line

    line = decision_line(record)
    if line:
        TextDataset(filepath=str(path), fs_args={"open_args_save": {"mode": "a"}}).save(line)


def _connect(tracking_uri: str | None) -> str:
    import mlflow

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or project_tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """fastadapt Model Registry commands (champion / challenger)."""


_tracking = click.option("--tracking-uri", default=None, help="MLflow tracking URI (default: the project's).")
_log = click.option("--decision-log", default=None, type=click.Path(dir_okay=False),
                    help="JSON-lines decision log (default: the project's retraining.decision_log).")


@main.command("restore-champion")
@click.option("--name", required=True, help="Registered model name, e.g. finance_sentiment.")
@click.option("--reason", default="", help="Why, for the decision log.")
@_tracking
@_log
def restore_champion(name: str, reason: str, tracking_uri: str | None, decision_log: str | None) -> None:
    """Point the `champion` alias back at the version the current champion replaced."""
    from fastadapt.monitoring.registry import RegistryError, restore_previous_champion

    uri = _connect(tracking_uri)
    try:
        log_path = decision_log or project_decision_log()
        record = restore_previous_champion(name, log_path, reason)
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    append_decision(log_path, record)
    click.echo(f"{name}: champion restored from version {record['champion_version_before']} to "
               f"{record['champion_version_after']} ({uri})")


@main.command("versions")
@click.option("--name", required=True, help="Registered model name.")
@_tracking
def versions(name: str, tracking_uri: str | None) -> None:
    """List the versions of a registered model with their aliases and decisions."""
    from fastadapt.monitoring.registry import model_versions

    _connect(tracking_uri)
    table = model_versions(name)
    if table.empty:
        raise click.ClickException(f"no versions of '{name}'")
    click.echo(table.to_string(index=False))


@main.command("register")
@click.option("--name", required=True, help="Registered model name.")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="A model folder written by fastadapt (safetensors or skops); pickles are refused.")
@click.option("--promote", is_flag=True, help="Also make it champion (otherwise only when there is none).")
@_tracking
@_log
def register(name: str, model_path: str, promote: bool, tracking_uri: str | None, decision_log: str | None) -> None:
    """Register a model file as a new version; it becomes champion if there is none (or --promote)."""
    import mlflow
    from mlflow import MlflowClient

    from fastadapt.monitoring.registry import (
        CHAMPION,
        _now,
        champion_version,
        ensure_champion,
        log_classifier,
    )
    from fastadapt.monitoring.serving import load_model_artifact

    _connect(tracking_uri)
    model = load_model_artifact(model_path)
    log_path = decision_log or project_decision_log()
    if champion_version(name) is None:
        record = ensure_champion(model, name, context={"source": str(model_path)})
    else:
        with mlflow.start_run(run_name=f"register {name}"):
            version = log_classifier(model, name, tags={"decision": "promoted" if promote else "registered",
                                                        "source": str(model_path)})
        previous = champion_version(name)
        record = {"timestamp": _now(), "name": name, "action": "registered", "challenger_version": version.version,
                  "champion_version_after": previous.version, "source": str(model_path)}
        if promote:
            MlflowClient().set_model_version_tag(name, version.version, "previous_champion", previous.version)
            MlflowClient().set_registered_model_alias(name, CHAMPION, version.version)
            record.update(action="promoted_by_hand", champion_version_before=previous.version,
                          champion_version_after=version.version)
    append_decision(log_path, record)
    click.echo(json.dumps(record, default=str))


if __name__ == "__main__":
    sys.exit(main())
