"""AtomicDataset: saves through a temporary file in the target folder, then renames it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from kedro.io import DatasetError
from kedro_datasets.text import TextDataset

from fastadapt.datasets import AtomicDataset

GOOD = pd.DataFrame({"row_id": [0, 1], "text": ["good", "rows"]})


def parquet_dataset(path: Path) -> AtomicDataset:
    return AtomicDataset({"type": "pandas.ParquetDataset", "filepath": str(path)})


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_loads_what_it_saved(tmp_path):
    target = tmp_path / "nested" / "folder" / "rows.parquet"
    dataset = parquet_dataset(target)
    assert not dataset.exists()
    dataset.save(GOOD)  # creates the missing folders
    assert dataset.exists()
    pd.testing.assert_frame_equal(dataset.load(), GOOD)
    assert files_in(target.parent) == ["rows.parquet"]  # no temporary file left behind
    # The file is an ordinary parquet file at the configured path.
    pd.testing.assert_frame_equal(pd.read_parquet(target), GOOD)


def test_overwrites_a_previous_version(tmp_path):
    dataset = AtomicDataset({"type": "json.JSONDataset", "filepath": str(tmp_path / "metrics.json")})
    dataset.save({"accuracy": 0.5})
    dataset.save({"accuracy": 0.75, "n": 8})
    assert dataset.load() == {"accuracy": 0.75, "n": 8}
    assert files_in(tmp_path) == ["metrics.json"]


def test_load_of_a_missing_file_fails(tmp_path):
    with pytest.raises(DatasetError):
        parquet_dataset(tmp_path / "missing.parquet").load()


def test_failed_parquet_save_keeps_the_previous_file(tmp_path):
    target = tmp_path / "rows.parquet"
    dataset = parquet_dataset(target)
    dataset.save(GOOD)
    before = target.read_bytes()
    unwritable = pd.DataFrame({"row_id": [0, 1], "value": [object(), object()]})  # pyarrow refuses
    with pytest.raises(DatasetError):
        dataset.save(unwritable)
    assert target.read_bytes() == before
    pd.testing.assert_frame_equal(dataset.load(), GOOD)
    assert files_in(tmp_path) == ["rows.parquet"]


def test_save_failing_halfway_through_the_write_keeps_the_previous_file(tmp_path):
    """json.dump writes the start of the document before it meets the unserialisable value.

    Written in place, this would leave a truncated `{"accuracy": 0.9, "model": ` behind.
    """
    target = tmp_path / "metrics.json"
    dataset = AtomicDataset({"type": "json.JSONDataset", "filepath": str(target)})
    dataset.save({"accuracy": 0.8})
    with pytest.raises(DatasetError):
        dataset.save({"accuracy": 0.9, "model": object()})
    assert json.loads(target.read_text()) == {"accuracy": 0.8}
    assert files_in(tmp_path) == ["metrics.json"]


class ObservedTextDataset(TextDataset):
    """A real TextDataset that records, at each save, where it writes and what the target holds."""

    seen: list[dict] = []

    def __init__(self, filepath: str, **kwargs) -> None:
        super().__init__(filepath=filepath, **kwargs)
        self._path = Path(filepath)

    def save(self, data: str) -> None:
        final = self._path.parent / "report.md"
        ObservedTextDataset.seen.append(
            {"path": self._path, "target_during_write": final.read_text() if final.exists() else None}
        )
        super().save(data)


def test_writes_a_temporary_file_in_the_same_folder_then_renames(tmp_path):
    ObservedTextDataset.seen = []
    target = tmp_path / "report.md"
    dataset = AtomicDataset({"type": ObservedTextDataset, "filepath": str(target)})
    dataset.save("first")
    dataset.save("second")
    assert target.read_text() == "second"
    writes = ObservedTextDataset.seen
    assert len(writes) == 2
    for write in writes:
        assert write["path"].parent == tmp_path  # same folder: the final move is a rename
        assert write["path"] != target and write["path"].name.startswith(".report.md.")
        assert not write["path"].exists()
    assert writes[0]["path"] != writes[1]["path"]  # a fresh name each time
    assert writes[1]["target_during_write"] == "first"  # the old file stays whole while writing
    assert files_in(tmp_path) == ["report.md"]


def test_any_fsspec_url():
    fs = fsspec.filesystem("memory")
    root = f"/atomic-{uuid.uuid4().hex}"
    dataset = AtomicDataset({"type": "pandas.CSVDataset", "filepath": f"memory://{root}/out/rows.csv"})
    try:
        dataset.save(GOOD)
        pd.testing.assert_frame_equal(dataset.load(), GOOD)
        assert [Path(name).name for name in fs.ls(f"{root}/out", detail=False)] == ["rows.csv"]
    finally:
        fs.rm(root, recursive=True)


def test_a_save_sweeps_the_temporaries_of_killed_writers_only(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from fastadapt.staging import writer_tag

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    host = socket.gethostname().replace(".", "_").replace("-", "_")
    killed = tmp_path / f".rows.parquet.{host}-{dead}-abc.tmp"  # a writer that is gone
    legacy = tmp_path / f".rows.parquet.{uuid.uuid4().hex}.tmp"  # the former naming, two days old
    alive = tmp_path / f".rows.parquet.{writer_tag()}.tmp"  # this process: a save in progress
    for path in (killed, legacy, alive):
        path.write_bytes(b"")
    os.utime(legacy, (0, 0))
    parquet_dataset(tmp_path / "rows.parquet").save(GOOD)
    assert files_in(tmp_path) == sorted([alive.name, "rows.parquet"])


def test_a_folder_of_files_is_saved_and_replaced_as_one_unit(tmp_path):
    from fastadapt.datasets import AtomicFolderDataset

    target = tmp_path / "tasks" / "t"
    target.mkdir(parents=True)
    (target / "metrics.json").write_text('{"n": 0}')  # the layout before run folders: replaced too
    dataset = AtomicFolderDataset(str(target), {"metrics.json": {"type": "json.JSONDataset"},
                                                "rows.parquet": {"type": "pandas.ParquetDataset"}})
    dataset.save({"metrics.json": {"n": 2}, "rows.parquet": GOOD})
    first = target.resolve()
    assert target.is_symlink() and dataset.load()["metrics.json"] == {"n": 2}
    dataset.save({"metrics.json": {"n": 1}, "rows.parquet": GOOD.head(1)})
    loaded = dataset.load()
    assert loaded["metrics.json"] == {"n": 1} and len(loaded["rows.parquet"]) == 1
    assert not first.exists()  # the previous run folder is gone once replaced
    assert files_in(tmp_path / "tasks") == [".t.runs", "t"] and len(files_in(tmp_path / "tasks" / ".t.runs")) == 1
    with pytest.raises(DatasetError, match="saves exactly"):
        dataset.save({"metrics.json": {"n": 3}})
    assert dataset.load()["metrics.json"] == {"n": 1}
