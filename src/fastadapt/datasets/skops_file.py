"""Plain Python data (dicts, lists, numbers, strings, numpy arrays) in a file that loads no code.

What `pickle.PickleDataset` was used for between two nodes (the drift embeddings): skops stores
the arrays as `.npy` members of a zip and the containers as JSON, and loading accepts only its
own safe default types, so an edited file cannot run anything.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from fastadapt.errors import UserInputError


class SkopsFileError(UserInputError, DatasetError):
    """A file that holds types beyond skops's safe defaults, refused as one line."""


class SkopsDataset(AbstractDataset[Any, Any]):
    """`filepath`: any fsspec path; wrap it in `fastadapt.datasets.AtomicDataset` for atomic writes."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._fs = fsspec.filesystem(protocol)
        self._filepath = PurePosixPath(path)
        self._url = filepath
        self.metadata = metadata

    def load(self) -> Any:
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        with self._fs.open(str(self._filepath), "rb") as handle:
            data = handle.read()
        try:
            return sio.loads(data, trusted=[])
        except UntrustedTypesFoundException as error:
            raise SkopsFileError(f"'{self._url}' holds types beyond plain data ({error}); refused") from None

    def save(self, data: Any) -> None:
        import skops.io as sio

        self._fs.makedirs(str(self._filepath.parent), exist_ok=True)
        with self._fs.open(str(self._filepath), "wb") as handle:
            handle.write(sio.dumps(data))

    def _exists(self) -> bool:
        return self._fs.exists(str(self._filepath))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._url}
