"""The generated DAGs loaded by Airflow 3 itself (`DagBag`), in Airflow's own virtual environment.

Airflow cannot share the project's pins (it downgrades FastAPI), so `make test` builds
`.venv-airflow` from requirements-airflow.lock and this test runs `dagbag_probe.py` with its
interpreter: no import errors, no DAG warnings (unknown pools), the task graph is the Kedro
pipeline's node graph, `gpu` nodes in the `gpu` pool, and each task's command runs exactly its
node with the project's own kedro.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT
from slugify import slugify

DAGS = {"monitoring": "@daily", "retraining": "@weekly"}


def airflow_python() -> Path:
    python = Path(os.environ.get("FASTADAPT_AIRFLOW_PYTHON", REPO_ROOT / ".venv-airflow" / "bin" / "python"))
    if python.is_file():
        return python
    if os.environ.get("CI"):
        pytest.fail(f"{python} is missing on CI: `make test` builds .venv-airflow from requirements-airflow.lock")
    pytest.skip(f"{python} is missing: `make airflow-venv` builds it from requirements-airflow.lock")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(AIRFLOW_HOME=str(home), FASTADAPT_PROJECT="/srv/fastadapt")
    result = subprocess.run([str(airflow_python()), str(REPO_ROOT / "tests" / "airflow" / "dagbag_probe.py"),
                             str(REPO_ROOT / "airflow")], env=env, cwd=home, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pipelines():
    from fastadapt.pipelines.monitoring import create_pipeline as monitoring
    from fastadapt.pipelines.retraining import create_pipeline as retraining

    return {"monitoring": monitoring(), "retraining": retraining()}


def test_dagbag_loads_both_dags_without_errors_or_warnings(dagbag):
    assert dagbag["import_errors"] == {}
    assert dagbag["warnings"] == []
    assert sorted(dagbag["dags"]) == sorted(f"fastadapt-{name}" for name in DAGS)


@pytest.mark.parametrize("name", sorted(DAGS))
def test_airflow_task_graph_is_the_kedro_pipeline(name, dagbag, pipelines):
    dag = dagbag["dags"][f"fastadapt-{name}"]
    assert dag["schedule"] == DAGS[name]
    pipeline = pipelines[name]
    by_task = {slugify(node.name): node for node in pipeline.nodes}
    assert sorted(dag["tasks"]) == sorted(by_task)
    for task_id, task in dag["tasks"].items():
        node = by_task[task_id]
        parents = {slugify(parent.name) for parent in pipeline.node_dependencies[node]}
        assert set(task["upstream"]) == parents, task_id
        assert task["pool"] == ("gpu" if "gpu" in node.tags else "default_pool"), task_id
        assert task["operator"] == "_BashDecoratedOperator"
        assert shlex.split(task["command"]) == ["/srv/fastadapt/.venv/bin/kedro", "run", "--pipeline", name,
                                                "--env", "local", "--nodes", node.name]
    assert any(task["pool"] == "gpu" for task in dag["tasks"].values()) == any("gpu" in n.tags for n in pipeline.nodes)
