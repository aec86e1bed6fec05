"""New directories for short-lived trees, spread over the emptiest block groups instead of beside their parent.

Why: ext4 without a journal avoids reusing an inode freed in the last 60 s
(360 s while its inode-table block is still dirty): each file created in a
block group walks past every such inode of the group again, one buffer lookup
each, before it takes another. A build empties the last build's upper (the
root's trash) while it creates its own, and other builders on the machine
delete their trees too. So a build's upper created beside those deletions pays
for every file it gets: copying hello's 575-entry source tree took 0.18-0.42 s
right after a 12,700-file tree had been deleted next to it, and 0.03 s in
another group.

ext4's Orlov allocator places a new directory whose parent carries the "top of
a directory hierarchy" flag (``chattr +T``, FS_TOPDIR_FL) in the (flex) group
with the fewest directories among those with at least average free inodes and
blocks, looking from a group hashed from the new name; the files and
subdirectories created below it then go to that group. The name must be new
each time, or every upper would start from the same group: the directory is
made under a unique name and renamed into place (rename keeps the inode). Orlov
knows nothing of deletions, and a group a big tree was just deleted from has
few directories: about one upper in five still lands there (see the README's
benchmark section). Elsewhere (tmpfs, xfs, btrfs, a parent that is a link) the
flag is refused and directories are made as before: this is best effort.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: the "top of a directory hierarchy" inode flag (chattr +T)
FS_TOPDIR_FL = 0x00020000
#: how the unique names begin (a run killed between mkdir and rename leaves one; cleaners look for it)
UNIQUE_PREFIX = ".new-"
#: architectures whose ioctl numbers put "read" in the bit other architectures use for "write"
_OTHER_DIRECTION_BITS = ("ppc", "powerpc", "mips", "sparc", "alpha", "parisc")


def _flags_request(number: int, reads: bool) -> int:
    """FS_IOC_GETFLAGS (1, reads) or FS_IOC_SETFLAGS (2) of <linux/fs.h>: 'f', a long's size in the number
    (the kernel itself reads and writes an int)."""
    swapped = os.uname().machine.startswith(_OTHER_DIRECTION_BITS)
    direction = 0x80 if reads != swapped else 0x40
    return (direction << 24) | (struct.calcsize("l") << 16) | (ord("f") << 8) | number


FS_IOC_GETFLAGS = _flags_request(1, reads=True)
FS_IOC_SETFLAGS = _flags_request(2, reads=False)


@contextlib.contextmanager
def _directory(directory: Path) -> Iterator[int | None]:
    """A descriptor of ``directory`` (no link followed), or None when it cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _get_flags(descriptor: int) -> int:
    flags = bytearray(4)
    fcntl.ioctl(descriptor, FS_IOC_GETFLAGS, flags)
    return int.from_bytes(flags, sys.byteorder)


def inode_flags(directory: Path) -> int | None:
    """The directory's inode flags (lsattr), or None where the file system has none (no link followed)."""
    with _directory(directory) as descriptor:
        try:
            return None if descriptor is None else _get_flags(descriptor)
        except OSError:
            return None


def mark_top_of_hierarchy(directory: Path) -> bool:
    """Set FS_TOPDIR_FL on ``directory`` (no link followed); False where the file system refuses it."""
    with _directory(directory) as descriptor:
        if descriptor is None:
            return False
        try:
            flags = _get_flags(descriptor)
            if not flags & FS_TOPDIR_FL:
                fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, (flags | FS_TOPDIR_FL).to_bytes(4, sys.byteorder))
            return True
        except OSError:
            return False


def make_spread_directory(path: Path, mode: int) -> None:
    """Create directory ``path``, which must not exist, where Orlov spreads it (see the module's docstring).

    Its parent is created if missing and marked as a top of hierarchy; the
    directory is made under a unique hidden name beside ``path`` and renamed.
    """
    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{path} exists")
    parent = path.parent
    parent.mkdir(parents=True, mode=0o755, exist_ok=True)
    mark_top_of_hierarchy(parent)
    unique = parent / f"{UNIQUE_PREFIX}{path.name}-{os.getpid()}-{time.time_ns()}"
    unique.mkdir(mode=mode)
    try:
        os.rename(unique, path)
    except OSError:
        with contextlib.suppress(OSError):
            unique.rmdir()
        raise
