"""One lock per root, so that concurrent runs wait for each other instead of crashing.

flock(2) locks vanish with the process that holds them, so a killed deb-mock
never leaves a stale lock behind. The holder writes its pid and mode into the
lock file so that a waiting run can say who it is waiting for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from deb_mock.errors import LockedError

POLL_INTERVAL = 0.1


def describe_holder(lock_path: Path) -> str:
    """"pid 123, mode --chroot" from the lock file, or "an unknown process"."""
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
        return f"pid {info['pid']}, mode {info['mode']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


@contextlib.contextmanager
def root_lock(
    lock_path: Path,
    mode: str,
    timeout: float | None,
    on_wait: Callable[[str], None],
) -> Iterator[bool]:
    """Hold the root's lock; wait for it (up to ``timeout`` seconds, None = for ever).

    Yields whether the previous holder ended without releasing it (killed): its
    holder record is still in the file, which a run that ends empties. Only then
    can processes of that run still be dying (see orphans.wait_for_exit).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, lock_path, timeout, on_wait)
        left_held = os.pread(fd, 1, 0) != b""
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "mode": mode}).encode(), 0)
        try:
            yield left_held
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, lock_path: Path, timeout: float | None, on_wait: Callable[[str], None]) -> None:
    if try_lock(fd):
        return
    holder = describe_holder(lock_path)
    on_wait(f"the root is locked by {holder}; waiting" + (f" up to {timeout:g}s" if timeout is not None else ""))
    deadline = None if timeout is None else time.monotonic() + timeout
    while not try_lock(fd):
        if deadline is not None and time.monotonic() >= deadline:
            raise LockedError(
                f"Build root is locked by another process ({describe_holder(lock_path) or holder})",
                hint="wait for it to finish, raise --lock-timeout, or use --uniqueext for a parallel root",
            )
        time.sleep(POLL_INTERVAL)


def try_lock(fd: int) -> bool:
    """Take an exclusive flock on ``fd`` if nobody holds one; False if somebody does."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
