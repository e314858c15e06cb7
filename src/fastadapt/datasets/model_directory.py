"""A model as a versioned directory: safetensors weights, configs and tokeniser files, or skops.

Any object with `save_directory(path)` and a classmethod `load_directory(path)` can flow through
the catalog this way, and so can the classical baselines (a skops file with trusted types only):
`fastadapt.models.persistence` writes and reads the folder, and never loads a pickle or a class
outside fastadapt. A manifest names the class, so loading needs no configuration, and the
directory is written under a temporary name and renamed into place, so a crash never leaves a
half-written model where a good one stood.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

from fastadapt.errors import UserInputError
from fastadapt.models.persistence import MANIFEST, UnsafeModelError, load_model, save_model


class ModelFileError(UserInputError, DatasetError):
    """A refused model folder, as a DatasetError that Kedro passes on and `kedro run` prints as one line."""


class DirectoryModel(Protocol):
    def save_directory(self, path: str | Path) -> None: ...

    @classmethod
    def load_directory(cls, path: str | Path) -> "DirectoryModel": ...


class ModelDirectoryDataset(AbstractVersionedDataset[DirectoryModel, DirectoryModel]):
    """`path` is the model directory (local); `versioned: true` keeps every saved version."""

    def __init__(self, path: str, version: Version | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath=PurePosixPath(path), version=version, exists_function=self._dir_exists)
        self.metadata = metadata

    @staticmethod
    def _dir_exists(path: str) -> bool:
        return (Path(path) / MANIFEST).is_file()

    def load(self) -> DirectoryModel:
        directory = Path(self._get_load_path())
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise DatasetError(
                f"'{directory}' is not a saved fastadapt model (no {MANIFEST}); run the pipeline that writes it"
            )
        try:
            return load_model(directory)
        except UnsafeModelError as error:
            raise ModelFileError(str(error)) from None

    def save(self, data: DirectoryModel) -> None:
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            save_model(data, staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)

    def _exists(self) -> bool:
        try:
            return self._dir_exists(str(self._get_load_path()))
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._filepath), "version": self._version}
