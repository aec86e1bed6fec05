"""Find and stop processes that belong to a root (--orphanskill).

Every process of a sandboxed run carries ``DEB_MOCK_ROOT=<root dir>`` in its
environment, and the namespace inits carry the same tag on their command
line (``--tag=``), so a root's processes are found even though they live in their own PID
namespaces. With PID namespaces and parent-death signals none should survive
a run; this is the safety net, and the wait before a new run mounts the root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from deb_mock.sandbox.runner import INIT_LAUNCHER


def find(marker: str) -> list[int]:
    """PIDs of processes that belong to the root marked ``marker``."""
    env_needle = f"DEB_MOCK_ROOT={marker}\0".encode()
    init_needle = INIT_LAUNCHER.encode()
    marker_needle = f"--tag={marker}\0".encode()
    own = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if init_needle in cmdline and marker_needle in cmdline:
                found.append(int(entry.name))
                continue
            if env_needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


def kill(marker: str, grace: float = 2.0) -> list[int]:
    """SIGTERM the root's processes, SIGKILL what is left after ``grace`` seconds."""
    victims = find(marker)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while find(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in find(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return victims


def wait_for_exit(marker: str, timeout: float = 3.0) -> None:
    """Give a killed previous run's sandbox a moment to die before the root is mounted again.

    Its processes get SIGKILL from the kernel as soon as their parent died,
    so this normally returns at once; stragglers after ``timeout`` are killed.
    """
    deadline = time.monotonic() + timeout
    while find(marker):
        if time.monotonic() >= deadline:
            kill(marker, grace=0.5)
            return
        time.sleep(0.02)
