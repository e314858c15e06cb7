"""`write_then_rename`: a file or folder replaced whole, on the local disk and on another fsspec
filesystem; a write that dies leaves the previous one and no temporary."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from fastadapt.staging import write_then_rename


class Crash(Exception):
    pass


def test_a_file_is_replaced_only_when_its_write_ends(tmp_path):
    target = tmp_path / "out" / "report.md"
    with write_then_rename(str(target)) as temporary:
        Path(temporary).write_text("first")
        assert not target.exists() and Path(temporary).parent == target.parent
    with write_then_rename(str(target)) as temporary:
        Path(temporary).write_text("second")
        assert target.read_text() == "first"  # readers see the old file while the new one is written
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.md"]


def test_a_folder_is_replaced_whole_and_a_crash_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    with write_then_rename(str(target)) as temporary:
        Path(temporary).mkdir()
        (Path(temporary) / "a.txt").write_text("old")
        (Path(temporary) / "b.txt").write_text("old")
    with pytest.raises(Crash), write_then_rename(str(target)) as temporary:
        Path(temporary).mkdir()
        (Path(temporary) / "a.txt").write_text("new")
        raise Crash
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "old", "b.txt": "old"}
    with write_then_rename(str(target)) as temporary:
        Path(temporary).mkdir()
        (Path(temporary) / "a.txt").write_text("new")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "new"}  # no file of the old one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_folder_on_another_fsspec_filesystem():
    fs = fsspec.filesystem("memory")
    root = f"/staging-{uuid.uuid4().hex}"
    try:
        for text in ("old", "new"):
            with write_then_rename(f"{root}/model", fs) as temporary:
                fs.pipe({f"{temporary}/weights.bin": text.encode(), f"{temporary}/sub/config.json": b"{}"})
        with pytest.raises(Crash), write_then_rename(f"{root}/model", fs) as temporary:
            fs.pipe({f"{temporary}/weights.bin": b"half"})
            raise Crash
        assert fs.cat(f"{root}/model/weights.bin") == b"new"
        assert sorted(fs.find(root)) == [f"{root}/model/sub/config.json", f"{root}/model/weights.bin"]
    finally:
        fs.rm(root, recursive=True)
