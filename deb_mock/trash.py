"""A root's trash: throw-away trees deleted while a later build runs, not when the last one ends.

Deleting a finished build's writable layer (thousands of files) took 0.1-0.15 s
at the end of every build, and on a disk mounted with ``discard`` the writes
right after a large deletion (the next build's source unpack) ran slower too.
So the layer is renamed into ``<root>/trash/`` (instant, same file system) and
the next build of the root deletes what the trash held when it started, in a
thread, while dpkg-buildpackage runs; the thread is joined before that build
returns, so no process or thread outlives a run. A killed run leaves a
partly deleted entry: the next build deletes the rest. Only the holder of the
root's lock touches the trash.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from deb_mock.layerstore import remove_tree

TRASH = "trash"


def throw_away(top: Path, tree: Path) -> None:
    """Move ``tree`` (below root directory ``top``) into the root's trash."""
    if not tree.exists():
        return
    trash = top / TRASH
    trash.mkdir(mode=0o700, exist_ok=True)
    os.replace(tree, trash / f"{tree.name}-{time.time_ns()}")


def empty(top: Path) -> None:
    """Delete everything in the root's trash now (--clean)."""
    for entry in _entries(top):
        remove_tree(entry)


@contextlib.contextmanager
def emptied_meanwhile(top: Path) -> Iterator[None]:
    """Delete what the trash holds now in a thread while the block runs; wait for it when the block ends."""
    entries = _entries(top)
    if not entries:
        yield
        return
    thread = threading.Thread(target=_remove_quietly, args=(entries,), name="deb-mock-trash", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _entries(top: Path) -> list[Path]:
    trash = top / TRASH
    return sorted(trash.iterdir()) if trash.is_dir() else []


def _remove_quietly(entries: list[Path]) -> None:
    for entry in entries:
        with contextlib.suppress(OSError):  # left for the next build's turn
            remove_tree(entry)
