"""The generated Airflow DAGs match the Kedro pipelines, parsed with `ast` (no Airflow needed).

test_dagbag.py loads the same files with Airflow's own DagBag in `.venv-airflow`.

For each DAG in airflow/: one task per Kedro node, the task dependencies are the node
dependencies, tasks of `gpu`-tagged nodes are in the `gpu` pool and the others are not, and the
schedule is the one docs/scheduling.md promises. A slow test regenerates the DAGs with
kedro-airflow and checks the committed files are up to date.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT
from slugify import slugify

DAGS = {"monitoring": ("fastadapt_monitoring_dag.py", "@daily"),
        "retraining": ("fastadapt_retraining_dag.py", "@weekly")}


def _literal(node: ast.AST):
    return ast.literal_eval(node)


def parse_dag(path: Path) -> dict:
    """dag_id, schedule, and per task: its Kedro node names and pool; the >> edges."""
    tree = ast.parse(path.read_text())
    dag_kwargs, tasks, edges = {}, {}, set()
    for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for decorator in function.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "dag":
                dag_kwargs = {k.arg: k.value for k in decorator.keywords}
                body = function.body
    for statement in body:
        if isinstance(statement, ast.FunctionDef):
            (decorator,) = statement.decorator_list
            assert ast.unparse(decorator.func) == "task.bash"
            keywords = {k.arg: _literal(k.value) for k in decorator.keywords if k.arg != "cwd"}
            (call,) = [n for n in ast.walk(statement) if isinstance(n, ast.Call)
                       and getattr(n.func, "id", None) == "kedro_command"]
            nodes = _literal(call.args[0])
            tasks[keywords["task_id"]] = {"nodes": nodes, "pool": keywords["pool"], "function": statement.name}
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.BinOp):
            assert isinstance(statement.value.op, ast.RShift)
            edges.add((_literal(statement.value.left.slice), _literal(statement.value.right.slice)))
        elif isinstance(statement, ast.Assign) and statement.targets[0].id == "tasks":
            mapping = statement.value
            called = {_literal(k): v.func.id for k, v in zip(mapping.keys, mapping.values)}
    assert called == {task_id: task["function"] for task_id, task in tasks.items()}
    return {"dag_id": _literal(dag_kwargs["dag_id"]), "schedule": _literal(dag_kwargs["schedule"]),
            "tasks": tasks, "edges": edges}


@pytest.fixture(scope="module")
def pipelines():
    from fastadapt.pipelines.monitoring import create_pipeline as monitoring
    from fastadapt.pipelines.retraining import create_pipeline as retraining

    return {"monitoring": monitoring(), "retraining": retraining()}


@pytest.mark.parametrize("name", sorted(DAGS))
def test_dag_tasks_match_the_kedro_pipeline(name, pipelines):
    filename, schedule = DAGS[name]
    dag = parse_dag(REPO_ROOT / "airflow" / filename)
    pipeline = pipelines[name]
    assert dag["dag_id"] == f"fastadapt-{name}" and dag["schedule"] == schedule
    by_node = {node.name: node for node in pipeline.nodes}
    # One task per node, named after it.
    assert sorted(n for task in dag["tasks"].values() for n in task["nodes"]) == sorted(by_node)
    task_of = {n: task_id for task_id, task in dag["tasks"].items() for n in task["nodes"]}
    assert all(task_id == slugify(task["nodes"][0]) for task_id, task in dag["tasks"].items())
    # Dependencies: exactly the node dependencies.
    expected = {(task_of[parent.name], task_of[node.name])
                for node, parents in pipeline.node_dependencies.items() for parent in parents}
    assert dag["edges"] == expected
    # GPU nodes in the gpu pool, the others not.
    for task in dag["tasks"].values():
        gpu = any("gpu" in by_node[n].tags for n in task["nodes"])
        assert (task["pool"] == "gpu") == gpu, task
    # Every node is tagged either cpu or gpu.
    assert all(len({"cpu", "gpu"} & node.tags) == 1 for node in pipeline.nodes)


def test_the_monitoring_dag_sends_the_drift_embedding_to_the_gpu_pool():
    dag = parse_dag(REPO_ROOT / "airflow" / DAGS["monitoring"][0])
    pools = {task["nodes"][0]: task["pool"] for task in dag["tasks"].values()}
    assert pools["monitoring.embed_drift_windows_node"] == "gpu"
    # The default model is the registry's champion, which may be neural: its scoring is a gpu task.
    assert pools["monitoring.score_sentiment_node"] == "gpu"
    assert pools["monitoring.aggregate_daily_node"] == "default_pool"


@pytest.mark.slow
def test_committed_dags_are_what_the_generator_writes(tmp_path):
    env = {**os.environ, "KEDRO": str(Path(sys.executable).parent / "kedro")}
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "generate_airflow_dags.sh"), str(tmp_path)],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for filename, _ in DAGS.values():
        assert (tmp_path / filename).read_text() == (REPO_ROOT / "airflow" / filename).read_text(), (
            f"airflow/{filename} is stale: run `bash scripts/generate_airflow_dags.sh` and commit it")
