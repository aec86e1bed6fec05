"""A boot's throw-away directory: deleted at the end, and swept by the next boot when a killed run left it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from deb_mock.plugins.bootc.boot_dirs import LOCK, PREFIX, boot_directory, sweep


def test_the_directory_is_locked_while_in_use_and_deleted_after(tmp_path: Path) -> None:
    with boot_directory(tmp_path) as path:
        assert path.parent == tmp_path and path.name.startswith(PREFIX) and (path / LOCK).is_file()
        (path / "disk.qcow2").write_bytes(b"overlay")
        assert sweep(tmp_path) == [] and path.is_dir()  # a live run's directory is never swept
    assert not path.exists()


def test_a_killed_runs_directory_is_swept_by_the_next_boot(tmp_path: Path) -> None:
    # a real process takes a boot directory and is killed with SIGKILL inside the block
    code = ("import os, sys; from pathlib import Path; from deb_mock.plugins.bootc.boot_dirs import boot_directory\n"
            f"with boot_directory(Path({str(tmp_path)!r})) as p:\n"
            "    (p / 'disk.qcow2').write_bytes(b'x'); print(p, flush=True); os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -9
    left = Path(killed.stdout.strip())
    assert (left / "disk.qcow2").is_file()  # nothing could delete it
    with boot_directory(tmp_path) as fresh:
        assert not left.exists() and fresh.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_leaves_what_is_not_a_dead_runs_directory(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / LOCK).touch()
    (tmp_path / f"{PREFIX}link").symlink_to(target)  # a link: never followed
    (tmp_path / f"{PREFIX}file").touch()
    making = tmp_path / f"{PREFIX}new"  # no lock file yet: being made
    making.mkdir()
    held = tmp_path / f"{PREFIX}held"
    held.mkdir()
    (held / LOCK).touch()
    fd = os.open(held / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep(tmp_path) == []
    finally:
        os.close(fd)
    assert target.is_dir() and making.is_dir() and held.is_dir()
    assert sweep(tmp_path) == [held] and not held.exists()
