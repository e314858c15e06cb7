"""notebooks/walkthrough.ipynb runs top to bottom (nbclient, a real IPython kernel) on a tiny
throw-away project: synthetic Banking77 class splits, a few meta-training steps on tiny-bert, and
the `support_tickets` fixture task."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from tests.conftest import FIXTURES, REPO_ROOT

pytestmark = pytest.mark.slow

NOTEBOOK = REPO_ROOT / "notebooks" / "walkthrough.ipynb"


def _meta_training_tests():
    """The tiny meta-training project builder of tests/pipelines/test_meta_training_pipeline.py."""
    path = REPO_ROOT / "tests" / "pipelines" / "test_meta_training_pipeline.py"
    spec = importlib.util.spec_from_file_location("meta_training_project", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_walkthrough_runs_top_to_bottom(tmp_path, run_project, monkeypatch):
    import nbclient
    import nbformat

    import fastadapt.models.backbones as backbones

    tiny = _meta_training_tests()
    monkeypatch.setattr(backbones, "TINY_BERT_CONFIG", {**backbones.TINY_BERT_CONFIG, **tiny.TINY})
    project = tiny.meta_project(tmp_path)
    task = project / "data" / "01_raw" / "tasks" / "support_tickets"
    task.parent.mkdir(parents=True, exist_ok=True)
    task.symlink_to(FIXTURES / "new_task" / "support_tickets", target_is_directory=True)
    run_project(project, "meta_training")

    (project / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, project / "notebooks" / "walkthrough.ipynb")
    notebook = nbformat.read(project / "notebooks" / "walkthrough.ipynb", as_version=4)
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(project / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any failure

    outputs = {index: cell.get("outputs", []) for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    text = "\n".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                     for cell_outputs in outputs.values() for output in cell_outputs)
    assert "protonet on tiny-bert, class split 01" in text
    assert "data/01_raw/tasks/support_tickets/: 3 classes, 6 support examples, 6 test rows" in text
    assert "TF-IDF + logistic regression" in text and "adaptation_seconds" in text
    assert "1 learning curve(s)" in text
    images = [output for cell_outputs in outputs.values() for output in cell_outputs
              if "image/png" in output.get("data", {})]
    assert images, "the learning curve is displayed"
