"""A root's trash: thrown away by a rename, deleted while a later block runs, never through a link."""

from __future__ import annotations

import threading
from pathlib import Path

from deb_mock import trash


def _tree(path: Path) -> Path:
    (path / "upper/usr/bin").mkdir(parents=True)
    (path / "upper/usr/bin/tool").write_text("x")
    return path


def test_a_thrown_away_tree_is_renamed_into_the_trash(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "scratch" / "build")
    trash.throw_away(tmp_path, tree)
    assert not tree.exists()
    [entry] = (tmp_path / trash.TRASH).iterdir()
    assert entry.name.startswith("build-") and (entry / "upper/usr/bin/tool").read_text() == "x"
    trash.throw_away(tmp_path, tree)  # nothing there: nothing to do


def test_what_the_trash_held_goes_during_the_block_and_later_arrivals_wait(tmp_path: Path) -> None:
    for name in ("a", "b"):
        trash.throw_away(tmp_path, _tree(tmp_path / name))
    threads_before = threading.active_count()
    with trash.emptied_meanwhile(tmp_path):
        trash.throw_away(tmp_path, _tree(tmp_path / "c"))
    assert threading.active_count() == threads_before, "the thread must be joined when the block ends"
    assert [p.name.split("-")[0] for p in (tmp_path / trash.TRASH).iterdir()] == ["c"]
    trash.empty(tmp_path)
    assert list((tmp_path / trash.TRASH).iterdir()) == []


def test_links_in_the_trash_are_deleted_not_followed(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("host file")
    tree = _tree(tmp_path / "scratch" / "build")
    (tree / "upper/etc").symlink_to(host)
    (tree / "upper/usr/bin/keep").symlink_to(host / "keep")
    trash.throw_away(tmp_path, tree)
    with trash.emptied_meanwhile(tmp_path):
        pass
    assert (host / "keep").read_text() == "host file"
    assert list((tmp_path / trash.TRASH).iterdir()) == []


def test_an_empty_or_missing_trash_starts_no_thread(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    with trash.emptied_meanwhile(tmp_path):
        assert threading.active_count() == threads_before
