"""RawFolderDataset: a raw corpus folder as `{relative/path: bytes}`, read-only."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError

from tests.conftest import REPO_ROOT
from fastadapt.datasets import RawFolderDataset

HINT = "The corpora live in ../shared/data; `make data` links them."


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus folder with nested files, documentation to skip, and bytes no codec should touch."""
    folder = tmp_path / "corpus"
    (folder / "train" / "deep").mkdir(parents=True)
    (folder / "train.csv").write_bytes(b"text,label\r\nhello,a\r\n")
    (folder / "train" / "part1.txt").write_bytes(b"caf\xe9\n")  # latin-1, not UTF-8
    (folder / "train" / "deep" / "part2.jsonl").write_bytes(b'{"a": 1}\n')
    (folder / "SOURCE.md").write_text("# where this corpus comes from\n")
    (folder / "README.md").write_text("# notes\n")
    (folder / "train" / "README.md").write_text("# nested notes are skipped too\n")
    (folder / ".gitkeep").write_bytes(b"")
    (folder / "empty_dir").mkdir()
    return folder


def test_loads_every_file_recursively_as_bytes(corpus):
    files = RawFolderDataset(path=str(corpus), source_hint=HINT).load()
    assert files == {
        "train.csv": b"text,label\r\nhello,a\r\n",  # line endings untouched
        "train/part1.txt": b"caf\xe9\n",  # bytes untouched
        "train/deep/part2.jsonl": b'{"a": 1}\n',
    }


def test_glob_selects_files(corpus):
    files = RawFolderDataset(path=str(corpus), glob="**/*.txt").load()
    assert list(files) == ["train/part1.txt"]


def test_trailing_slash_in_path(corpus):
    assert set(RawFolderDataset(path=f"{corpus}/").load()) == {
        "train.csv", "train/part1.txt", "train/deep/part2.jsonl",
    }


def test_relative_path_from_the_working_directory(corpus, monkeypatch):
    """Catalog paths are relative to the project; outside a KedroSession nothing makes them absolute."""
    monkeypatch.chdir(corpus.parent)
    assert RawFolderDataset(path="corpus").load() == RawFolderDataset(path=str(corpus)).load()


def test_missing_folder_names_the_folder_and_the_hint(tmp_path):
    missing = tmp_path / "no_such_corpus"
    dataset = RawFolderDataset(path=str(missing), source_hint=HINT)
    assert not dataset.exists()
    with pytest.raises(DatasetError) as raised:
        dataset.load()
    message = str(raised.value)
    assert f"'{missing}' does not exist" in message
    assert HINT in message


@pytest.mark.parametrize("docs_only", [False, True], ids=["empty", "only-SOURCE-and-README"])
def test_empty_folder_names_the_folder_and_the_hint(tmp_path, docs_only):
    folder = tmp_path / "empty_corpus"
    folder.mkdir()
    if docs_only:
        (folder / "SOURCE.md").write_text("# source\n")
        (folder / "README.md").write_text("# readme\n")
    dataset = RawFolderDataset(path=str(folder), source_hint=HINT)
    assert dataset.exists()
    with pytest.raises(DatasetError) as raised:
        dataset.load()
    message = str(raised.value)
    assert f"'{folder}' holds no files" in message
    assert HINT in message


def test_no_matching_file_names_the_glob(corpus):
    with pytest.raises(DatasetError, match=r"holds no files matching '\*\*/\*\.parquet'"):
        RawFolderDataset(path=str(corpus), glob="**/*.parquet").load()


def test_is_read_only(corpus):
    before = {path: path.read_bytes() for path in corpus.rglob("*") if path.is_file()}
    dataset = RawFolderDataset(path=str(corpus))
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({"train.csv": b"overwritten", "new.txt": b"new"})
    after = {path: path.read_bytes() for path in corpus.rglob("*") if path.is_file()}
    assert after == before


def test_any_fsspec_url():
    fs = fsspec.filesystem("memory")
    root = f"/raw-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/corpus/a.csv", b"a")
    fs.pipe(f"{root}/corpus/sub/b.csv", b"b")
    fs.pipe(f"{root}/corpus/SOURCE.md", b"doc")
    try:
        assert RawFolderDataset(path=f"memory://{root}/corpus").load() == {"a.csv": b"a", "sub/b.csv": b"b"}
    finally:
        fs.rm(root, recursive=True)


def test_catalog_factory_for_a_task_folder(tmp_path, monkeypatch):
    """`raw.tasks.{name}` in conf/base/catalog.yml: the folder and what to put in it."""
    catalog_config = yaml.safe_load((REPO_ROOT / "conf" / "base" / "catalog.yml").read_text())
    catalog = DataCatalog.from_config(catalog_config)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError) as raised:
        catalog.load("raw.tasks.my_task")
    message = str(raised.value)
    assert "data/01_raw/tasks/my_task" in message
    assert "train.csv and test.csv" in message  # the source_hint of the factory

    task = tmp_path / "data" / "01_raw" / "tasks" / "my_task"
    task.mkdir(parents=True)
    (task / "train.csv").write_bytes(b"text,label\n")
    assert catalog.load("raw.tasks.my_task") == {"train.csv": b"text,label\n"}
