"""The throw-away directory of one boot, and the sweep of those that killed runs left behind.

A boot's directory holds qemu's qcow2 overlay of the image and a copy of the
firmware's variables. The overlay grows with everything the guest writes:
gigabytes after a long interactive session. A run that ends, fails or is
interrupted deletes its directory; a run killed with SIGKILL (or by the OOM
killer) cannot, and qemu dies with it (parent-death signal), so nothing
else would ever delete it. Each directory therefore holds a lock file its
run keeps locked for as long as it lives, and every boot first deletes this
user's boot directories whose lock nobody holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deb_mock.locks import try_lock

PREFIX = "deb-mock-boot-"
#: held (flock) by the run that owns the directory; a directory without it is being made, or not ours
LOCK = "in-use.lock"


@contextlib.contextmanager
def boot_directory(parent: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``parent`` (the temporary directory), locked until the block ends, then deleted."""
    base = parent or Path(tempfile.gettempdir())
    sweep(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    # locked before it gets the name a sweep looks for: no sweep can ever lock a live run's file
    fd = os.open(path / f".{LOCK}", os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(path / f".{LOCK}", path / LOCK)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def sweep(parent: Path) -> list[Path]:
    """Delete this user's boot directories in ``parent`` whose lock no live run holds; returns them."""
    removed = []
    for entry in sorted(parent.glob(f"{PREFIX}*")):
        try:
            info = entry.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue  # a link, a file, another user's: never followed, never touched
        try:
            fd = os.open(entry / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        if not try_lock(fd):
            os.close(fd)
            continue  # its run is alive
        try:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed
