"""Write-then-rename for any file dataset, and for a set of files that belong together.

kedro-datasets write straight to the target path; a run killed mid-write would leave a truncated
parquet or report where a good one stood. `AtomicDataset` saves through the wrapped dataset to a
temporary name in the same folder and then moves it over the target (a rename on local disks).
`AtomicFolderDataset` does the same for a folder of files that describe one result (a task's
metrics and predictions): the files are written into a run folder aside, and a symbolic link is
swapped onto the target in one rename, so readers see the whole old set or the whole new one.

The temporaries, their sweeping after a killed run and the final rename are
`fastadapt.staging`'s, the one write-then-rename of the project.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path, parse_dataset_definition

from fastadapt.staging import sweep_temporaries, write_then_rename, writer_gone, writer_tag

class AtomicDataset(AbstractDataset[Any, Any]):
    """`dataset:` is any file dataset definition with a `filepath`; loads go to it unchanged."""

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self._definition = dict(dataset)
        dataset_class, dataset_args = parse_dataset_definition(self._definition)
        self._dataset_class = dataset_class
        self._dataset_args = dataset_args
        self._final_path = dataset_args["filepath"]
        self._reader = dataset_class(**dataset_args)
        protocol, path = get_protocol_and_path(self._final_path)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol)
        self._filepath = PurePosixPath(path)
        self.metadata = metadata

    def load(self) -> Any:
        return self._reader.load()

    def save(self, data: Any) -> None:
        with write_then_rename(str(self._filepath), self._fs) as temporary:
            temporary_url = temporary if self._protocol == "file" else f"{self._protocol}://{temporary}"
            self._dataset_class(**{**self._dataset_args, "filepath": temporary_url}).save(data)

    def _exists(self) -> bool:
        return self._fs.exists(str(self._filepath))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._final_path, "dataset": self._dataset_class.__name__}


class AtomicFolderDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A folder of files saved and replaced as one unit: `{file name: data}` in and out.

    `path` (local) is the folder readers open; it is a symbolic link to the current run folder in
    `.<name>.runs/` beside it. `files` maps each file name to its dataset definition without
    `filepath` (e.g. `metrics.json: {type: json.JSONDataset}`); a save must give every file.
    With `mlflow_artifact_path`, a save inside an active MLflow run also logs the folder there.
    """

    def __init__(self, path: str, files: dict[str, dict[str, Any]], mlflow_artifact_path: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        protocol, _ = get_protocol_and_path(path)
        if protocol != "file":
            raise DatasetError(f"AtomicFolderDataset '{path}': only a local folder can be swapped in one rename")
        self._path = Path(path)
        self._files = {name: dict(definition) for name, definition in files.items()}
        self._mlflow_artifact_path = mlflow_artifact_path
        self.metadata = metadata

    def _dataset(self, folder: Path, name: str) -> AbstractDataset:
        dataset_class, args = parse_dataset_definition({**self._files[name], "filepath": str(folder / name)})
        return dataset_class(**args)

    @property
    def _runs(self) -> Path:
        return self._path.parent / f".{self._path.name}.runs"

    def load(self) -> dict[str, Any]:
        missing = [name for name in self._files if not (self._path / name).exists()]
        if missing:
            raise DatasetError(f"'{self._path}' lacks {missing}: it was never written whole")
        return {name: self._dataset(self._path, name).load() for name in self._files}

    def save(self, data: dict[str, Any]) -> None:
        if set(data) != set(self._files):
            raise DatasetError(f"AtomicFolderDataset '{self._path}' saves exactly {sorted(self._files)}; "
                               f"got {sorted(data)}")
        local = fsspec.filesystem("file")
        self._runs.mkdir(parents=True, exist_ok=True)
        self._sweep(local)
        tag = writer_tag()
        staging = self._runs / f"{time.strftime('%Y%m%dT%H%M%S')}.{tag}.tmp"
        staging.mkdir()
        for name, value in data.items():
            self._dataset(staging, name).save(value)
        run = staging.with_name(staging.name.removesuffix(".tmp"))
        staging.rename(run)
        link = self._path.with_name(f".{self._path.name}.{tag}.link.tmp")
        link.symlink_to(os.path.relpath(run, self._path.parent))
        previous = self._path.resolve() if self._path.is_symlink() else None
        if self._path.is_dir() and not self._path.is_symlink():  # a folder of the layout before runs
            self._path.rename(self._runs / f"legacy.{tag}")
            previous = self._runs / f"legacy.{tag}"
        os.replace(link, self._path)  # the one step readers see: the old set, then the new one
        if previous is not None and previous.parent == self._runs and previous != run:
            shutil.rmtree(previous, ignore_errors=True)
        self._sweep(local)  # what a save killed after its link swap left behind is superseded now
        if self._mlflow_artifact_path:
            import mlflow

            if mlflow.active_run() is not None:
                mlflow.log_artifacts(str(run), self._mlflow_artifact_path)

    def _sweep(self, local: fsspec.AbstractFileSystem) -> None:
        """Temporaries of killed saves, and complete run folders a killed save never linked."""
        sweep_temporaries(local, str(self._path.parent), f".{self._path.name}.")
        sweep_temporaries(local, str(self._runs), "")
        current = self._path.resolve() if self._path.is_symlink() else None
        current_time = current.stat().st_mtime if current is not None and current.exists() else None
        for folder in self._runs.iterdir():
            if folder == current or folder.name.endswith(".tmp"):
                continue
            modified = folder.stat().st_mtime
            # Older than the current set: superseded. Newer: a save between its rename and its
            # link swap, kept unless its writer is gone.
            if (current_time is not None and modified <= current_time) or writer_gone(folder.name, modified):
                shutil.rmtree(folder, ignore_errors=True)

    def _exists(self) -> bool:
        return all((self._path / name).exists() for name in self._files)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "files": sorted(self._files)}
