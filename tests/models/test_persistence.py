"""Loading a model file never runs code: pickles are refused, manifests name only fastadapt classes.

Every hostile file below carries a payload that would create a marker file if it ran; each test
checks the one-line refusal and that the marker is still absent.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import skops.io as sio
from kedro.io.core import DatasetError, Version

from tests.conftest import REPO_ROOT
from fastadapt.datasets import ModelDirectoryDataset
from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression
from fastadapt.models.persistence import MANIFEST, UnsafeModelError, load_model, save_model
from fastadapt.monitoring.serving import load_model_artifact

TEXTS = ["profits soar", "shares plunge", "profit beats forecasts", "sales fall sharply"]
LABELS = ["positive", "negative", "positive", "negative"]


class Payload:
    """Unpickling this object opens (creates) the marker file: the payload of evil.pkl."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def evil_pickle(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Payload(marker)))
    return path, marker


def test_baselines_round_trip_as_skops_folders(tmp_path):
    tfidf = TfidfLogisticRegression(analyzer="word+char").fit(TEXTS, LABELS)
    crf = CrfTagger(max_iterations=5).fit([["Acme", "rose"], ["in", "Paris"]], [["B-ORG", "O"], ["O", "B-LOC"]])
    for name, model in (("tfidf", tfidf), ("crf", crf)):
        folder = save_model(model, tmp_path / name)
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["format"] == "skops" and manifest["class"].startswith("fastadapt.models.baselines:")
        restored = load_model(folder)
        assert type(restored) is type(model)
    assert list(load_model(tmp_path / "tfidf").predict(TEXTS)) == list(tfidf.predict(TEXTS))
    assert load_model(tmp_path / "crf").predict([["Acme", "in", "Paris"]]) == crf.predict([["Acme", "in", "Paris"]])


def test_a_pickle_is_refused_without_running(tmp_path):
    path, marker = evil_pickle(tmp_path)
    for loader in (load_model, load_model_artifact):
        with pytest.raises(UnsafeModelError, match="never loads pickles") as error:
            loader(path)
        assert "\n" not in str(error.value)
    assert not marker.exists()


def test_the_registry_command_refuses_a_pickle_in_one_line(tmp_path):
    path, marker = evil_pickle(tmp_path)
    script = Path(sys.executable).parent / "fastadapt-registry"
    result = subprocess.run(
        [str(script), "register", "--name", "x", "--model", str(path),
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--decision-log", str(tmp_path / "log.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith("Error: ") and "never loads pickles" in errors[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_manifest_naming_a_class_outside_fastadapt_is_refused_without_importing(tmp_path, monkeypatch):
    marker = tmp_path / "import-ran"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Model:\n"
                                         f"    @classmethod\n    def load_directory(cls, path): return cls()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("evilmod:Model", "os:system", "fastadapt_evil:Model"):
        folder = tmp_path / name.replace(":", "_")
        folder.mkdir()
        (folder / MANIFEST).write_text(json.dumps({"class": name}))
        with pytest.raises(UnsafeModelError, match="only classes of the fastadapt package"):
            load_model(folder)
        with pytest.raises(UnsafeModelError):
            load_model_artifact(folder)
    assert not marker.exists()


def test_the_catalog_dataset_refuses_a_forged_folder_in_one_line(tmp_path):
    version = tmp_path / "model" / "2026-01-01T00.00.00.000Z" / "model"
    version.mkdir(parents=True)
    (version / MANIFEST).write_text(json.dumps({"class": "subprocess:Popen"}))
    with pytest.raises(DatasetError, match="only classes of the fastadapt package") as error:
        ModelDirectoryDataset(path=str(tmp_path / "model"), version=Version(None, None)).load()
    assert "\n" not in str(error.value)


class Gadget:
    """A type no one trusted: a skops file holding it is refused."""

    def __init__(self) -> None:
        self.value = 1


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path):
    folder = tmp_path / "forged"
    folder.mkdir()
    (folder / "model.skops").write_bytes(sio.dumps(Gadget()))
    (folder / MANIFEST).write_text(json.dumps({"class": "fastadapt.models.baselines:TfidfLogisticRegression",
                                               "format": "skops", "file": "model.skops"}))
    with pytest.raises(UnsafeModelError, match="TRUSTED_TYPES"):
        load_model(folder)
    with pytest.raises(UnsafeModelError, match="TRUSTED_TYPES"):
        load_model(folder / "model.skops")


def test_no_catalog_entry_stores_pickles():
    for path in sorted((REPO_ROOT / "conf").rglob("catalog*.yml")):
        assert "pickle." not in path.read_text(), path
