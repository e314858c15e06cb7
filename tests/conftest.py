"""Shared test set-up: offline, no telemetry, headless plots, and throw-away Kedro projects."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
LAYERS = ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
          "06_models", "07_model_output", "08_reporting")


def shared_root() -> Path | None:
    """The shared corpora and benchmarks: `data/01_raw` links or `../shared`."""
    candidate = REPO_ROOT.parent / "shared"
    return candidate if (candidate / "data").is_dir() else None


def real_corpus(name: str) -> Path:
    """A real corpus folder, or a skip (a failure on CI, where the data must be present)."""
    for folder in (REPO_ROOT / "data" / "01_raw" / name, REPO_ROOT.parent / "shared" / "data" / name):
        if folder.is_dir():
            return folder
    if os.environ.get("CI"):
        pytest.fail(f"real corpus '{name}' not found in data/01_raw or ../shared/data on CI")
    pytest.skip(f"real corpus '{name}' not found (link it with `make data`)")


def make_project(root: Path, raw: dict[str, Path], parameters: str | None = None) -> Path:
    """A throw-away copy of this Kedro project: its conf, `raw` linked into data/01_raw.

    `parameters` (YAML text) replaces conf/base/parameters.yml. MLflow writes inside `root`.
    """
    project = root / "project"
    shutil.copytree(REPO_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    shutil.copy(REPO_ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copy(REPO_ROOT / ".telemetry", project / ".telemetry")
    (project / "src").mkdir()  # bootstrap_project wants it; the package itself is installed
    for layer in LAYERS:
        (project / "data" / layer).mkdir(parents=True, exist_ok=True)
    for name, target in raw.items():
        link = project / "data" / "01_raw" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.resolve(), target_is_directory=True)
    if parameters is not None:
        (project / "conf" / "base" / "parameters.yml").write_text(parameters)
    local = project / "conf" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "mlflow.yml").write_text(
        "server:\n"
        f"  mlflow_tracking_uri: sqlite:///{project / 'mlflow.db'}\n"
        "tracking:\n"
        "  experiment:\n"
        "    name: fastadapt-test\n"
        "    create_experiment_kwargs:\n"
        f"      artifact_location: {project / 'mlartifacts'}\n"
    )
    return project


@pytest.fixture
def run_project(monkeypatch):
    """Run pipelines of a throw-away project in a real KedroSession."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    def run(project: Path, pipeline_name: str | None = None, env: str | None = None, **run_args):
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.chdir(project)
        bootstrap_project(project)
        try:
            with KedroSession.create(project_path=project, env=env) as session:
                return session.run(pipeline_names=[pipeline_name] if pipeline_name else None, **run_args)
        finally:
            end_session_state()

    return run


def end_session_state() -> None:
    """Forget what a finished session leaves in the process: its run parameters and MLflow run.

    kedro-mlflow marks its run finished in the store but leaves it active in memory, so a second
    session in the same process would log into it.
    """
    import mlflow

    from fastadapt.config import set_run_parameters

    set_run_parameters(None)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(autouse=True)
def _fresh_session_state():
    """Every test starts without a previous session's run parameters or active MLflow run."""
    end_session_state()
    yield
    end_session_state()
