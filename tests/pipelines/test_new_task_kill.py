"""A real `kedro run --pipeline new_task` killed with SIGKILL leaves a whole artefact set.

The task's test file changes between runs (6 rows, then 12), so `metrics.json`'s `n_test` tells
which run wrote it and must equal the rows of the `predictions.parquet` beside it. One run is
killed the moment it writes its first new entry under data/08_reporting/tasks (a temporary),
another the moment an output is first replaced; after each kill the set is wholly old or wholly
new, and the next complete run sweeps what the killed ones left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import FIXTURES, end_session_state, make_project

pytestmark = pytest.mark.slow

TASK = "killed_task"
PARAMS = f"task.name={TASK},task.strategy=tfidf"
FILES = ("metrics.json", "predictions.parquet")


def outputs(project: Path) -> tuple[int, int]:
    """(metrics n_test, prediction rows) of the task's result folder."""
    folder = project / "data" / "08_reporting" / "tasks" / TASK
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics["n_test"], len(pd.read_parquet(folder / "predictions.parquet"))


def entries(root: Path) -> set[str]:
    return {str(Path(folder, name).relative_to(root)) for folder, dirs, files in os.walk(root)
            for name in dirs + files}


def output_state(folder: Path) -> tuple:
    return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in (os.stat(folder / f) for f in FILES))


def run_and_kill(project: Path, when: str) -> None:
    """Start `kedro run` and SIGKILL it when `when` happens: `new_entry` or `replaced`."""
    reports = project / "data" / "08_reporting" / "tasks"
    before_entries, before_state = entries(reports), output_state(reports / TASK)
    environment = {**os.environ, "KEDRO_PROJECT_PATH": str(project), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines", "new_task", "--params", PARAMS],
                               cwd=project, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        while process.poll() is None:
            try:
                hit = entries(reports) != before_entries if when == "new_entry" else \
                    output_state(reports / TASK) != before_state
            except FileNotFoundError:  # a file vanished between listing and stat: a change too
                hit = True
            if hit:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL, f"the run ended ({process.returncode}) before the kill"


def test_a_killed_run_leaves_the_whole_old_or_the_whole_new_set(tmp_path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    task = tmp_path / "task"
    shutil.copytree(FIXTURES / "new_task" / "support_tickets", task)
    project = make_project(tmp_path, {f"tasks/{TASK}": task})
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    monkeypatch.chdir(project)

    def run_in_process() -> None:
        bootstrap_project(project)
        try:
            with KedroSession.create(project_path=project,
                                     runtime_params={"task": {"name": TASK, "strategy": "tfidf"}}) as session:
                session.run(pipeline_names=["new_task"])
        finally:
            end_session_state()

    run_in_process()
    assert outputs(project) == (6, 6)
    test = pd.read_csv(task / "test.csv")
    more = test.assign(text=test["text"] + " today")
    pd.concat([test, more]).to_csv(task / "test.csv", index=False)

    run_and_kill(project, "new_entry")
    assert outputs(project) == (6, 6)  # killed while writing aside: wholly old
    run_and_kill(project, "replaced")
    n_test, n_predictions = outputs(project)
    assert n_test == n_predictions and n_test in (6, 12), (n_test, n_predictions)

    run_in_process()
    assert outputs(project) == (12, 12)
    reports = project / "data" / "08_reporting" / "tasks"
    left = sorted(e for e in entries(reports) if e.endswith(".tmp"))
    assert left == [], left  # the killed runs' temporaries are swept
    runs = [p for p in (reports / f".{TASK}.runs").iterdir()] if (reports / f".{TASK}.runs").exists() else []
    assert len(runs) <= 1, runs
