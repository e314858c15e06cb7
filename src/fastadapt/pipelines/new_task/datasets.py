"""The task folder of `new_task`: a raw folder whose absence is the user's to fix, not a crash.

`RawFolderDataset` raises `DatasetError` for a missing or empty folder, which Kedro reports with a
traceback. A new task's folder is typed by hand, so this dataset loads `{}` instead and the
`new_task` pipeline raises a one-line `RawInputError` that says what the folder must hold.
"""

from __future__ import annotations

from kedro.io.core import DatasetError

from fastadapt.datasets import RawFolderDataset


class TaskFolderDataset(RawFolderDataset):
    """`{relative/path: bytes}` of the folder's files; `{}` when the folder is missing or empty."""

    def load(self) -> dict[str, bytes]:
        if not self._fs.isdir(self._root):
            return {}
        try:
            return RawFolderDataset.load(self)
        except DatasetError:
            return {}
