"""A build's upper is made in a block group of its own: the parent marked chattr +T, a unique name renamed."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from deb_mock.spread_dirs import (
    FS_IOC_GETFLAGS,
    FS_IOC_SETFLAGS,
    FS_TOPDIR_FL,
    inode_flags,
    make_spread_directory,
    mark_top_of_hierarchy,
)


def _lsattr(path: Path) -> str:
    lsattr = shutil.which("lsattr")
    assert lsattr, "e2fsprogs' lsattr is a host package of .ci/install"
    return subprocess.run([lsattr, "-d", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def test_directory_is_made_and_its_parent_marked_where_the_file_system_takes_the_flag(tmp_path: Path) -> None:
    target = tmp_path / "scratch" / "build"
    make_spread_directory(target, 0o755)
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o755
    assert [entry.name for entry in target.parent.iterdir()] == ["build"]
    flags = inode_flags(target.parent)  # as make_spread_directory left them
    probe = tmp_path / "probe"
    probe.mkdir()
    if mark_top_of_hierarchy(probe):  # ext4 (CI's /tmp) takes the flag; tmpfs, xfs and btrfs refuse it
        assert flags is not None and flags & FS_TOPDIR_FL
        assert "T" in _lsattr(target.parent)  # what e2fsprogs reads is what was set (the probe is another)
        assert not (inode_flags(target) or 0) & FS_TOPDIR_FL  # only the parent
    else:
        assert not (flags or 0) & FS_TOPDIR_FL


def test_the_ioctl_numbers_are_linux_fs_h_ones_on_this_machine() -> None:
    if struct.calcsize("l") == 8 and os.uname().machine in ("x86_64", "aarch64", "s390x", "riscv64"):
        assert (FS_IOC_GETFLAGS, FS_IOC_SETFLAGS) == (0x80086601, 0x40086602)
    else:  # the other encodings are checked where they run; the nr and type bytes are the same everywhere
        assert FS_IOC_GETFLAGS & 0xFFFF == 0x6601 and FS_IOC_SETFLAGS & 0xFFFF == 0x6602


def test_an_existing_directory_with_contents_is_refused_and_no_temporary_name_is_left(tmp_path: Path) -> None:
    target = tmp_path / "build"
    target.mkdir()
    (target / "file").write_text("kept\n")
    with pytest.raises(FileExistsError):
        make_spread_directory(target, 0o755)
    (target / "file").unlink()
    with pytest.raises(FileExistsError):  # an empty one too: rename would silently replace it
        make_spread_directory(target, 0o755)
    (target / "file").write_text("kept\n")
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
