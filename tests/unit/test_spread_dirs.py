"""A build's upper is made in a block group of its own: the parent marked chattr +T, a unique name renamed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deb_mock.spread_dirs import FS_TOPDIR_FL, inode_flags, make_spread_directory, mark_top_of_hierarchy


def _lsattr(path: Path) -> str:
    lsattr = shutil.which("lsattr")
    assert lsattr, "e2fsprogs' lsattr is a host package of .ci/install"
    return subprocess.run([lsattr, "-d", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def test_directory_is_made_and_its_parent_marked_where_the_file_system_has_flags(tmp_path: Path) -> None:
    target = tmp_path / "scratch" / "build"
    make_spread_directory(target, 0o755)
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o755
    assert [entry.name for entry in target.parent.iterdir()] == ["build"]
    flags = inode_flags(target.parent)
    if flags is None:  # a file system without inode flags: nothing to mark, the directory is still made
        assert mark_top_of_hierarchy(target.parent) is False
    else:
        assert flags & FS_TOPDIR_FL
        assert "T" in _lsattr(target.parent)  # what e2fsprogs reads is what was set
        assert not inode_flags(target) or not inode_flags(target) & FS_TOPDIR_FL  # only the parent


def test_an_existing_directory_with_contents_is_refused_and_no_temporary_name_is_left(tmp_path: Path) -> None:
    target = tmp_path / "build"
    target.mkdir()
    (target / "file").write_text("kept\n")
    with pytest.raises(OSError):
        make_spread_directory(target, 0o755)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["build"]
    assert (target / "file").read_text() == "kept\n"


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    before = inode_flags(real)
    assert mark_top_of_hierarchy(link) is False
    assert inode_flags(real) == before


def test_tmpfs_refuses_the_flag_and_the_directory_is_still_made() -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as ram:
        target = Path(ram) / "scratch" / "build"
        make_spread_directory(target, 0o700)
        assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o700
        assert mark_top_of_hierarchy(target.parent) is False
