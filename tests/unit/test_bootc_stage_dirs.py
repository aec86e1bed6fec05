"""Stage results: complete only with done.json; stale ones wait in the trash until the run's end."""

from __future__ import annotations

import os
from pathlib import Path

from deb_mock.plugins.bootc.stage_dirs import TRASH, StageDirs, discard, empty_trash


def test_a_finished_result_sends_the_others_to_the_trash(tmp_path: Path) -> None:
    stages = StageDirs(tmp_path, "tree")
    old = stages.fresh("old")
    (old / "big").write_bytes(b"x" * 4096)
    stages.finish(old, {"key": "old"})
    new = stages.fresh("new")
    assert stages.finished("new") is None and stages.finished("old") == {"key": "old"}  # not complete: kept
    stages.finish(new, {"key": "new"})
    assert [p.name for p in (tmp_path / "tree").iterdir()] == ["new"]
    trashed = list((tmp_path / TRASH).iterdir())
    assert len(trashed) == 1 and (trashed[0] / "big").read_bytes() == b"x" * 4096
    empty_trash(tmp_path)
    assert not (tmp_path / TRASH).exists() and stages.finished("new") == {"key": "new"}


def test_discard_keeps_same_named_leftovers_apart(tmp_path: Path) -> None:
    for _ in range(2):
        work = tmp_path / "disk" / "k"
        (work / "sysroot").mkdir(parents=True)
        discard(work / "sysroot", tmp_path)
    names = sorted(p.name for p in (tmp_path / TRASH).iterdir())
    assert len(names) == 2 and all(n.startswith(f"sysroot-{os.getpid()}-") for n in names)
    empty_trash(tmp_path)
    empty_trash(tmp_path)  # nothing there: nothing to do
    assert not (tmp_path / TRASH).exists()


def test_an_unfinished_result_of_the_same_key_is_replaced(tmp_path: Path) -> None:
    stages = StageDirs(tmp_path, "disk")
    half = stages.fresh("k")
    (half / "disk.raw").write_bytes(b"half")
    again = stages.fresh("k")
    assert again == half and list(again.iterdir()) == []
