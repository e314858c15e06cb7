"""The pipeline registry: names, the default chain, cpu/gpu tags, and a Kedro-Viz build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines as project_pipelines
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline

from tests.conftest import REPO_ROOT, make_project
from fastadapt.pipeline_registry import DEFAULT_EXTRA_NODES, DEFAULT_PIPELINES
from fastadapt.hooks import RUN_ENVIRONMENT

# README: `kedro run` is ingestion -> features -> baselines -> evaluation -> reporting.
CHAIN = ("ingestion", "features", "baselines", "evaluation", "reporting")


def pipeline_packages() -> list[str]:
    return sorted(
        path.name
        for path in (REPO_ROOT / "src" / "fastadapt" / "pipelines").iterdir()
        if (path / "__init__.py").is_file()
    )


@pytest.fixture(scope="module")
def registered() -> dict[str, Pipeline]:
    """Every pipeline of this repository's project, as `kedro run` sees them (conf/base + local)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("KEDRO_PROJECT_PATH", raising=False)
        monkeypatch.delenv("KEDRO_ENV", raising=False)
        monkeypatch.chdir(REPO_ROOT)
        bootstrap_project(REPO_ROOT)
        project_pipelines.set_requested(None)
        return dict(project_pipelines)


def test_every_pipeline_package_is_registered(registered):
    assert set(DEFAULT_PIPELINES) <= set(pipeline_packages())
    assert sorted(name for name in registered if name != "__default__") == pipeline_packages()
    assert all(registered[name].nodes for name in registered), "a registered pipeline has no nodes"


def test_every_node_is_tagged_either_cpu_or_gpu(registered):
    for name, pipeline in registered.items():
        for node in pipeline.nodes:
            assert len(node.tags & {"cpu", "gpu"}) == 1, f"{name}: {node.name} has tags {sorted(node.tags)}"


def test_default_is_the_data_to_report_chain(registered):
    # The README's chain, in its order; DEFAULT_PIPELINES may add stages between (answer_suggestion).
    assert tuple(name for name in DEFAULT_PIPELINES if name in CHAIN) == CHAIN
    assert DEFAULT_PIPELINES[0] == "ingestion" and DEFAULT_PIPELINES[-1] == "reporting"
    chain = sum((registered[name] for name in DEFAULT_PIPELINES), Pipeline([]))
    seeds = {node.name for node in registered["retraining"].nodes if node.name.endswith(DEFAULT_EXTRA_NODES)}
    # A fresh project's first champion is registered by the default run (monitoring scores with it).
    assert "retraining.finance_sentiment.seed_champion_node" in seeds
    assert {node.name for node in registered["__default__"].nodes} == {node.name for node in chain.nodes} | seeds
    assert {node.name for node in chain.nodes} >= {
        node.name for name in CHAIN for node in registered[name].nodes
    }
    # The chain needs nothing from outside but raw folders, parameters and the run's environment
    # (which RunParametersHook puts in every session's catalog).
    outside = {name for name in registered["__default__"].inputs()
               if not name.startswith("params:") and name != RUN_ENVIRONMENT}
    assert outside and all(name.startswith("raw.") for name in outside), sorted(outside)


def test_each_pipeline_name_resolves_alone(registered, monkeypatch):
    """`kedro run --pipeline NAME` loads NAME only; it must give the same nodes as a full load."""
    monkeypatch.delenv("KEDRO_PROJECT_PATH", raising=False)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    bootstrap_project(REPO_ROOT)
    try:
        for name in pipeline_packages():
            project_pipelines.set_requested([name])
            alone = project_pipelines[name]
            assert {node.name for node in alone.nodes} == {node.name for node in registered[name].nodes}, name
            assert "__default__" not in project_pipelines  # defined only when every stage loads
    finally:
        project_pipelines.set_requested(None)


def test_every_pipeline_is_built_from_the_parameters_it_is_given(registered, monkeypatch):
    """`create_pipeline(parameters)` depends on those parameters alone; without them (as Kedro's
    `find_pipelines` calls it) it builds from the run's, and both agree for the same parameters."""
    import importlib

    from fastadapt.config import project_parameters, set_run_parameters

    monkeypatch.delenv("KEDRO_PROJECT_PATH", raising=False)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    parameters = project_parameters("base")
    one_domain = {**parameters, "domains": {"customer_intent": parameters["domains"]["customer_intent"]}}
    set_run_parameters(parameters)  # what RunParametersHook records; the explicit argument wins over it
    try:
        for name in pipeline_packages():
            create = importlib.import_module(f"fastadapt.pipelines.{name}.pipeline").create_pipeline
            nodes = {node.name for node in create(parameters).nodes}
            assert nodes == {node.name for node in create().nodes} == {n.name for n in registered[name].nodes}, name
        baselines = importlib.import_module("fastadapt.pipelines.baselines.pipeline").create_pipeline
        namespaces = {node.name.split(".")[0] for node in baselines(one_domain).nodes}
        assert namespaces == {"customer_intent"}
    finally:
        set_run_parameters(None)


def test_each_pipeline_reads_its_inputs_from_the_catalog(registered):
    """A stage run alone starts from what earlier runs stored, so no free input may be in memory."""
    loader = OmegaConfigLoader(conf_source=str(REPO_ROOT / "conf"), **settings.CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(loader["catalog"])
    for name, pipeline in registered.items():
        for dataset in sorted(pipeline.inputs()):
            if dataset.startswith("params:") or dataset in ("parameters", RUN_ENVIRONMENT):
                continue  # parameters, and the environment the hook sets in every session
            resolved = catalog.get(dataset)
            assert resolved is not None and not isinstance(resolved, MemoryDataset), (
                f"pipeline {name!r} reads {dataset!r}, which the catalog does not store"
            )


def kedro_executable() -> str:
    beside_python = Path(sys.executable).with_name("kedro")
    return str(beside_python) if beside_python.exists() else shutil.which("kedro") or "kedro"


def test_kedro_viz_build(tmp_path, registered):
    """`kedro viz build` (make viz) in a throw-away copy of the project writes a static site."""
    repo_build = (REPO_ROOT / "build").exists()
    project = make_project(tmp_path, {})

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "KEDRO_PROJECT_PATH": str(project)}
    env.pop("KEDRO_ENV", None)
    started = time.perf_counter()
    completed = subprocess.run(
        [kedro_executable(), "viz", "build"], cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )
    elapsed = time.perf_counter() - started
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    print(f"kedro viz build: {elapsed:.1f} s")

    build = project / "build"
    assert (build / "index.html").is_file()
    main = json.loads((build / "api" / "main").read_text())
    assert main["selected_pipeline"] == "__default__"
    assert {pipeline["id"] for pipeline in main["pipelines"]} == set(registered)
    assert {path.name for path in (build / "api" / "pipelines").iterdir()} == set(registered)
    tasks = [node for node in main["nodes"] if node["type"] == "task"]
    assert len(tasks) == len(registered["__default__"].nodes)
    assert "cpu" in {tag["id"] for tag in main["tags"]}
    shutil.rmtree(build)
    assert (REPO_ROOT / "build").exists() == repo_build  # nothing written into the repository
