"""A model as a versioned directory: safetensors weights, configs and tokeniser files, or skops.

Any object with `save_directory(path)` and a classmethod `load_directory(path)` can flow through
the catalog this way, and so can the classical baselines (a skops file with trusted types only):
`fastadapt.models.persistence` writes and reads the folder, and never loads a pickle or a class
outside fastadapt. A manifest names the class, so loading needs no configuration, and the
directory is written under a temporary name and renamed into place (`fastadapt.staging`), so a
crash never leaves a half-written model where a good one stood.

The path is any fsspec URL (`s3://bucket/models/x`, `memory:///x`, a local path): model folders
are what crosses the GPU / CPU host split. Weights and tokenisers are written and read by
libraries that want local files, so on another filesystem a save writes the folder to a local
temporary folder and `put`s it beside the target before the swap, and a load `get`s it into a
local temporary folder first (loading never executes code either way: see `persistence`).
"""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import fsspec
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_protocol_and_path

from fastadapt.errors import UserInputError
from fastadapt.models.persistence import MANIFEST, UnsafeModelError, load_model, save_model
from fastadapt.staging import write_then_rename


class ModelFileError(UserInputError, DatasetError):
    """A refused model folder, as a DatasetError that Kedro passes on and `kedro run` prints as one line."""


class DirectoryModel(Protocol):
    def save_directory(self, path: str | Path) -> None: ...

    @classmethod
    def load_directory(cls, path: str | Path) -> "DirectoryModel": ...


class ModelDirectoryDataset(AbstractVersionedDataset[DirectoryModel, DirectoryModel]):
    """`path` is the model directory (a local path or an fsspec URL); `versioned: true` keeps
    every saved version; `credentials` and `fs_args` go to `fsspec.filesystem`."""

    def __init__(self, path: str, version: Version | None = None, credentials: dict[str, Any] | None = None,
                 fs_args: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        protocol, location = get_protocol_and_path(path, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        super().__init__(filepath=PurePosixPath(location), version=version, exists_function=self._dir_exists,
                         glob_function=self._fs.glob)
        self.metadata = metadata

    def _dir_exists(self, path: str) -> bool:
        return self._fs.isfile(posixpath.join(str(path), MANIFEST))

    def load(self) -> DirectoryModel:
        directory = str(self._get_load_path())
        if not self._dir_exists(directory):
            raise DatasetError(
                f"'{directory}' is not a saved fastadapt model (no {MANIFEST}); run the pipeline that writes it"
            )
        if self._protocol == "file":
            return self._load_local(Path(directory))
        with tempfile.TemporaryDirectory(prefix="fastadapt-model-") as local:
            self._fs.get(directory.rstrip("/") + "/", local + "/", recursive=True)
            return self._load_local(Path(local))

    @staticmethod
    def _load_local(directory: Path) -> DirectoryModel:
        try:
            return load_model(directory)
        except UnsafeModelError as error:
            raise ModelFileError(str(error)) from None

    def save(self, data: DirectoryModel) -> None:
        with write_then_rename(str(self._get_save_path()), self._fs) as staging:
            if self._protocol == "file":
                Path(staging).mkdir()
                save_model(data, Path(staging))
            else:
                with tempfile.TemporaryDirectory(prefix="fastadapt-model-") as local:
                    save_model(data, Path(local))
                    self._fs.put(local, staging, recursive=True)

    def _exists(self) -> bool:
        try:
            return self._dir_exists(str(self._get_load_path()))
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._filepath), "protocol": self._protocol, "version": self._version}
