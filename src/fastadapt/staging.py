"""Write-then-rename: the one way the project replaces a file or folder that readers may open.

`write_then_rename(target, fs)` yields a temporary path beside `target` (same folder, so the last
step is a rename); the caller writes a file or a folder there. When the block ends, the temporary
replaces `target`; when it raises, the temporary is removed and `target` is untouched. Used by
`AtomicDataset` (any file dataset), `ModelDirectoryDataset` (model folders, on any fsspec
filesystem) and the training loops' checkpoints (`fastadapt.models.training.write_checkpoint`).

A file is renamed over the old one (`os.rename`: atomic on a local disk). A folder cannot be
renamed over another, so the old folder is first renamed aside, the new one renamed into place and
the old one removed: readers see the whole old folder or the whole new one, and only a crash
between the two renames leaves no folder (the next save sweeps what it left). On object stores
(s3, gcs, memory) a rename is a copy and a delete, so the swap is as atomic as the store allows.

Temporaries carry the writer's host and process id; each write first sweeps the temporaries of
writers that are gone (a killed run), or older than `STALE_SECONDS` when that cannot be told.
This module imports neither Kedro nor torch, so every layer can use it.
"""

from __future__ import annotations

import os
import posixpath
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import fsspec

STALE_SECONDS = 24 * 3600


def _host() -> str:
    return socket.gethostname().replace(".", "_").replace("-", "_")


def writer_tag() -> str:
    """`<host>-<pid>-<random>`: who writes a temporary, so that a later save can tell it is stale."""
    return f"{_host()}-{os.getpid()}-{uuid.uuid4().hex}"


def writer_gone(name: str, modified: float) -> bool:
    """Whether the writer of temporary `name` is gone: a dead process of this host, or too old."""
    host = _host()
    for part in name.split("."):
        fields = part.split("-")
        if len(fields) == 3 and fields[0] == host and fields[1].isdigit():
            try:
                os.kill(int(fields[1]), 0)
            except ProcessLookupError:
                return True
            except PermissionError:  # alive, someone else's
                return False
            return False
    return time.time() - modified > STALE_SECONDS


def sweep_temporaries(fs: fsspec.AbstractFileSystem, folder: str, prefix: str) -> list[str]:
    """Remove the stale `<prefix>*.tmp` entries of `folder` (see `writer_gone`); their paths."""
    removed = []
    try:
        entries = fs.ls(folder, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        path = str(entry["name"])
        name = PurePosixPath(path).name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        modified = next((entry[key] for key in ("mtime", "LastModified", "created") if entry.get(key) is not None),
                        time.time())
        modified = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
        if writer_gone(name, modified):
            fs.rm(path, recursive=entry.get("type") == "directory")
            removed.append(path)
    return removed


@contextmanager
def write_then_rename(target: str, fs: fsspec.AbstractFileSystem | None = None) -> Iterator[str]:
    """A temporary path beside `target` (a path of `fs`, default the local disk) to write a file
    or a folder to; it replaces `target` when the block ends, and is removed if the block raises."""
    fs = fs or fsspec.filesystem("file")
    target = target.rstrip("/")
    parent, name = posixpath.split(target)
    fs.makedirs(parent, exist_ok=True)
    sweep_temporaries(fs, parent, f".{name}.")
    tag = writer_tag()
    temporary = posixpath.join(parent, f".{name}.{tag}.tmp")
    aside = posixpath.join(parent, f".{name}.{tag}.old.tmp")
    try:
        yield temporary
        folder = fs.isdir(temporary)
        if folder and fs.exists(target):
            fs.mv(target, aside, recursive=True)
        fs.mv(temporary, target, recursive=folder)
    finally:
        for leftover in (temporary, aside):
            if fs.exists(leftover):
                fs.rm(leftover, recursive=True)
