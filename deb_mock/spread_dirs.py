"""New directories for short-lived trees, placed away from the trees deleted just before them.

Why: ext4 without a journal does not reuse an inode freed in the last 60 s
(360 s while its inode-table block is still dirty), and every file created in
that block group walks past each such inode again. A build empties the last
build's upper (the root's trash) while it creates its own, and other builders
on the machine delete their trees too. So a build's upper created in the same
group as those deletions pays for every file it gets: copying hello's
575-entry source tree took 0.18-0.42 s right after a 12,700-file tree had been
deleted next to it, and 0.03 s in a group of its own.

ext4's Orlov allocator puts a new directory into a lightly used block group
when its parent carries the "top of a directory hierarchy" flag (``chattr +T``,
FS_TOPDIR_FL); the files and subdirectories created below it then stay in that
group. The group it starts looking from is a hash of the new directory's name,
so the name must be new each time: the directory is made under a unique name
and renamed into place. Elsewhere (tmpfs, xfs, btrfs, a journalled ext4 that
has no such cost) the flag is refused or harmless: this is best effort.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

#: ioctl requests of <linux/fs.h> (the kernel reads and writes an int)
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
#: the "top of a directory hierarchy" inode flag (chattr +T)
FS_TOPDIR_FL = 0x00020000
#: how the unique names begin (a run killed between mkdir and rename leaves one; cleaners look for it)
UNIQUE_PREFIX = ".new-"


def inode_flags(directory: Path) -> int | None:
    """The directory's inode flags (lsattr), or None where the file system has none."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        flags = bytearray(4)
        fcntl.ioctl(descriptor, FS_IOC_GETFLAGS, flags)
        return int.from_bytes(flags, sys.byteorder)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def mark_top_of_hierarchy(directory: Path) -> bool:
    """Set FS_TOPDIR_FL on ``directory`` (no link followed); False where the file system refuses it."""
    flags = inode_flags(directory)
    if flags is None:
        return False
    if flags & FS_TOPDIR_FL:
        return True
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, (flags | FS_TOPDIR_FL).to_bytes(4, sys.byteorder))
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


def make_spread_directory(path: Path, mode: int) -> None:
    """Create directory ``path`` (which must not exist) in a block group of its own where ext4 allows.

    Its parent is created if missing and marked as a top of hierarchy; the
    directory is made under a unique hidden name beside ``path`` and renamed
    (rename keeps the inode, so the placement stays).
    """
    parent = path.parent
    parent.mkdir(parents=True, mode=0o755, exist_ok=True)
    mark_top_of_hierarchy(parent)
    unique = parent / f"{UNIQUE_PREFIX}{path.name}-{os.getpid()}-{time.time_ns()}"
    unique.mkdir(mode=mode)
    try:
        os.rename(unique, path)
    except OSError:
        unique.rmdir()
        raise
