"""Configuration mistakes through the real `kedro` CLI: one `Error:` line each, never a traceback.

Each test runs `kedro` in a subprocess on a fresh copy of the tiny project of test_tiny_project
(its parameters, the fixture task folders): an unknown `--env`, a YAML syntax error in
conf/local, a mistyped `raw:` folder, `new_task` before `meta_training`; and a command run with
telemetry left on must not edit the tracked pyproject.toml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.pipelines.test_tiny_project import tiny_project

pytestmark = pytest.mark.slow


def kedro(project: Path, *args: str, telemetry_off: bool = True) -> tuple[int, str, str]:
    environment = {**os.environ, "KEDRO_PROJECT_PATH": str(project), "HF_HUB_OFFLINE": "1", "COLUMNS": "250"}
    if not telemetry_off:
        for name in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
            environment.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "kedro", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def one_error_line(returncode: int, stdout: str, stderr: str) -> str:
    """The single `Error: ...` line of a failed command (and no traceback anywhere)."""
    assert returncode != 0, stdout[-2000:]
    output = stdout + stderr
    assert "Traceback" not in output and "╭" not in output, output[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


@pytest.fixture
def project(tmp_path) -> Path:
    return tiny_project(tmp_path)


def test_an_unknown_env_is_one_line_naming_the_folder(project):
    line = one_error_line(*kedro(project, "run", "--env", "nonexistent", "--pipelines", "ingestion"))
    assert line == (f"Error: --env nonexistent: there is no folder {project / 'conf' / 'nonexistent'}; "
                    f"environments here: base, full, local (or create the folder)")


def test_a_yaml_syntax_error_in_conf_local_is_one_line_naming_file_and_line(project):
    (project / "conf" / "local" / "parameters.yml").write_text("seed: 42\nkshot:\n  ks: [1, 2\n  seeds: [0]\n")
    line = one_error_line(*kedro(project, "run", "--pipelines", "ingestion"))
    assert line.startswith(f"Error: {(project / 'conf' / 'local' / 'parameters.yml').as_posix()} line "), line
    assert "invalid YAML" in line and "fix the syntax there" in line


def test_a_mistyped_raw_folder_is_one_line_naming_the_parameter_and_the_folder(project):
    (project / "conf" / "local" / "parameters.yml").write_text(
        "domains:\n  support_intent:\n    kind: text_classification\n    raw: tasks.suport_intent\n")
    line = one_error_line(*kedro(project, "run", "--pipelines", "ingestion"))
    assert line.startswith("Error: domains.support_intent.raw is 'tasks.suport_intent', but the raw folder "
                           "data/01_raw/tasks/suport_intent does not exist (did you mean 'support_intent'?)"), line


def test_new_task_before_meta_training_is_one_line_saying_what_to_run(project):
    assert not (project / "data" / "06_models" / "meta_learner").exists()
    line = one_error_line(*kedro(project, "run", "--pipelines", "new_task", "--params",
                                 "task.name=support_intent,task.strategy=prototype,task.model=meta_learner"))
    assert line == ("Error: meta_learner (data/06_models/meta_learner) does not exist yet: run "
                    "`kedro run --pipeline meta_training` first (and 1 more missing input(s))")


def test_a_kedro_command_with_telemetry_on_leaves_pyproject_untouched(project):
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "pyproject.toml", ".telemetry"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "project"], cwd=project, check=True)
    returncode, stdout, stderr = kedro(project, "registry", "list", telemetry_off=False)
    assert returncode == 0, stderr[-3000:]
    status = subprocess.run(["git", "status", "--porcelain", "pyproject.toml"], cwd=project, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
    assert "project_id" not in (project / "pyproject.toml").read_text()
