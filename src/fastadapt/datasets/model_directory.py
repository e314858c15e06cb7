"""A model as a versioned directory: safetensors weights, configs and tokeniser files.

Any object with `save_directory(path)` and a classmethod `load_directory(path)` can flow through
the catalog this way. A manifest names the class, so loading needs no configuration, and the
directory is written under a temporary name and renamed into place, so a crash never leaves a
half-written model where a good one stood.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

MANIFEST = "fastadapt_model.json"


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
        manifest = json.loads(manifest_path.read_text())
        module_name, class_name = manifest["class"].rsplit(":", 1)
        model_class = getattr(importlib.import_module(module_name), class_name)
        return model_class.load_directory(directory)

    def save(self, data: DirectoryModel) -> None:
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            data.save_directory(staging)
            manifest = {"class": f"{type(data).__module__}:{type(data).__qualname__}"}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
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
