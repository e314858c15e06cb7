"""A raw corpus folder as one dataset: every file's bytes, keyed by its path in the folder.

Readers are pure functions of bytes, so the quirks of each raw format (encodings, line endings,
embedded newlines) stay in the reader and its tests, while the catalog remains the only door to
storage. Paths may be any fsspec URL, so a shared bucket works as well as `data/01_raw`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

SKIPPED_NAMES = {"SOURCE.md", "README.md", ".gitkeep"}


class RawFolderDataset(AbstractDataset[None, dict[str, bytes]]):
    """Loads `{relative/path: bytes}` for the files under `path` that match `glob`.

    Read-only: raw data is never written by a pipeline.
    """

    def __init__(
        self,
        path: str,
        glob: str = "**/*",
        source_hint: str = "",
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, root = get_protocol_and_path(path)
        self._fs = fsspec.filesystem(protocol, **(fs_args or {}))
        self._protocol = protocol
        self._root = root.rstrip("/")
        self._path = path
        self._glob = glob
        self._source_hint = source_hint
        self.metadata = metadata

    def load(self) -> dict[str, bytes]:
        if not self._fs.isdir(self._root):
            raise DatasetError(
                f"Raw data folder '{self._path}' does not exist. {self._source_hint}".strip()
            )
        files: dict[str, bytes] = {}
        # The root as the filesystem spells the paths glob returns (a relative local path made
        # absolute), so that every file's path relative to it can be taken.
        root = PurePosixPath(self._fs._strip_protocol(self._root))
        for full_path in sorted(self._fs.glob(f"{root}/{self._glob}")):
            relative = PurePosixPath(full_path).relative_to(root)
            if self._fs.isdir(full_path) or relative.name in SKIPPED_NAMES:
                continue
            with self._fs.open(full_path, "rb") as handle:
                files[relative.as_posix()] = handle.read()
        if not files:
            raise DatasetError(
                f"Raw data folder '{self._path}' holds no files matching '{self._glob}'. "
                f"{self._source_hint}".strip()
            )
        return files

    def save(self, data: dict[str, bytes]) -> None:
        raise DatasetError(f"RawFolderDataset '{self._path}' is read-only: raw data is never written.")

    def _exists(self) -> bool:
        return self._fs.isdir(self._root)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "glob": self._glob}
