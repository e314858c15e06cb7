"""ModelDirectoryDataset: versioned model folders that reload to the same predictions, written
under a temporary name so that a crash leaves the previous model in place, refused in one line
when they are not safe fastadapt models."""

from __future__ import annotations

import json
import uuid

import fsspec
import pytest
from kedro.io.core import DatasetError, Version

from fastadapt.datasets import ModelDirectoryDataset
from fastadapt.datasets.model_directory import ModelFileError
from fastadapt.errors import UserInputError
from fastadapt.models.backbones import SavedTokenizer
from fastadapt.models.baselines import TfidfLogisticRegression
from fastadapt.models.persistence import MANIFEST

TEXTS = ["profit beats forecast", "record growth", "heavy loss", "sales fall", "profit up", "loss widens"]
LABELS = ["positive", "positive", "negative", "negative", "positive", "negative"]


def fitted(c: float = 10.0) -> TfidfLogisticRegression:
    return TfidfLogisticRegression(C=c).fit(TEXTS, LABELS)


def test_a_saved_model_reloads_to_the_same_predictions(tmp_path):
    dataset = ModelDirectoryDataset(str(tmp_path / "models" / "tfidf"))
    assert not dataset.exists()
    model = fitted()
    dataset.save(model)
    assert dataset.exists() and (tmp_path / "models" / "tfidf" / MANIFEST).is_file()
    loaded = dataset.load()
    assert type(loaded) is TfidfLogisticRegression
    assert list(loaded.predict(TEXTS)) == list(model.predict(TEXTS))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tfidf"]  # no staging folder left


def test_versions_are_kept_and_the_latest_is_loaded(tmp_path):
    path = str(tmp_path / "tfidf")
    ModelDirectoryDataset(path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(fitted(0.01))
    ModelDirectoryDataset(path, version=Version(None, "2024-01-02T00.00.00.000Z")).save(fitted(10.0))
    assert sorted(p.name for p in (tmp_path / "tfidf").iterdir()) == ["2024-01-01T00.00.00.000Z",
                                                                     "2024-01-02T00.00.00.000Z"]
    latest = ModelDirectoryDataset(path, version=Version(None, None)).load()
    first = ModelDirectoryDataset(path, version=Version("2024-01-01T00.00.00.000Z", None)).load()
    assert latest.C == 10.0 and first.C == 0.01


def test_a_crash_while_saving_leaves_the_previous_model_and_no_half_folder(tmp_path):
    dataset = ModelDirectoryDataset(str(tmp_path / "model"))
    dataset.save(fitted())
    before = sorted(p.name for p in (tmp_path / "model").iterdir())
    with pytest.raises(DatasetError, match="no attribute .save_pretrained."):  # its own save dies half way
        dataset.save(SavedTokenizer(tokenizer=None))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert list(dataset.load().predict(TEXTS)) == list(fitted().predict(TEXTS))


def test_a_folder_without_a_manifest_says_which_pipeline_to_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is not a saved fastadapt model"):
        ModelDirectoryDataset(str(tmp_path / "empty")).load()


def test_a_manifest_naming_a_foreign_class_is_one_user_error(tmp_path):
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / MANIFEST).write_text(json.dumps({"class": "os:system"}))
    with pytest.raises(DatasetError) as error:
        ModelDirectoryDataset(str(tmp_path / "evil")).load()
    assert isinstance(error.value, ModelFileError) and isinstance(error.value, UserInputError)
    assert "only classes of the fastadapt package" in str(error.value) and "\n" not in str(error.value)


@pytest.fixture
def memory_root():
    """A folder of fsspec's in-memory filesystem: a real non-local filesystem, offline."""
    fs = fsspec.filesystem("memory")
    root = f"/models-{uuid.uuid4().hex}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_model_on_a_non_local_filesystem_round_trips(memory_root):
    fs, root = memory_root
    dataset = ModelDirectoryDataset(f"memory://{root}/tfidf")
    assert not dataset.exists()
    dataset.save(fitted())
    assert dataset.exists() and fs.isfile(f"{root}/tfidf/{MANIFEST}")
    assert [name.rsplit("/", 1)[-1] for name in fs.ls(root, detail=False)] == ["tfidf"]  # no staging left
    assert list(dataset.load().predict(TEXTS)) == list(fitted().predict(TEXTS))


def test_versions_on_a_non_local_filesystem(memory_root):
    _, root = memory_root
    path = f"memory://{root}/tfidf"
    ModelDirectoryDataset(path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(fitted(0.01))
    ModelDirectoryDataset(path, version=Version(None, "2024-01-02T00.00.00.000Z")).save(fitted(10.0))
    assert ModelDirectoryDataset(path, version=Version(None, None)).load().C == 10.0
    assert ModelDirectoryDataset(path, version=Version("2024-01-01T00.00.00.000Z", None)).load().C == 0.01


def test_a_crash_on_a_non_local_filesystem_leaves_the_previous_model(memory_root):
    fs, root = memory_root
    dataset = ModelDirectoryDataset(f"memory://{root}/model")
    dataset.save(fitted())
    before = sorted(fs.find(root))
    with pytest.raises(DatasetError, match="no attribute .save_pretrained."):
        dataset.save(SavedTokenizer(tokenizer=None))
    assert sorted(fs.find(root)) == before
    assert list(dataset.load().predict(TEXTS)) == list(fitted().predict(TEXTS))


def test_a_non_local_folder_without_a_manifest_is_refused(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/empty/weights.safetensors", b"")
    with pytest.raises(DatasetError, match="is not a saved fastadapt model"):
        ModelDirectoryDataset(f"memory://{root}/empty").load()
