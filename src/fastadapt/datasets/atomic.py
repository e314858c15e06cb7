"""Write-then-rename for any file dataset, so a crash never leaves half a file in place.

kedro-datasets write straight to the target path; a run killed mid-write would leave a truncated
parquet or report where a good one stood. This wrapper saves through the wrapped dataset to a
temporary name in the same folder and then moves it over the target (a rename on local disks).
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, get_protocol_and_path, parse_dataset_definition


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
        final = PurePosixPath(str(self._filepath))
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        self._fs.makedirs(str(final.parent), exist_ok=True)
        temporary_url = str(temporary) if self._protocol == "file" else f"{self._protocol}://{temporary}"
        writer = self._dataset_class(**{**self._dataset_args, "filepath": temporary_url})
        try:
            writer.save(data)
            self._fs.mv(str(temporary), str(final))
        finally:
            if self._fs.exists(str(temporary)):
                self._fs.rm(str(temporary))

    def _exists(self) -> bool:
        return self._fs.exists(str(self._filepath))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._final_path, "dataset": self._dataset_class.__name__}
