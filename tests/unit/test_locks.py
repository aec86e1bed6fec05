"""deb_mock.locks: one flock per root, with the holder named to whoever waits."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deb_mock.errors import ExitCode, LockedError
from deb_mock.locks import describe_holder, root_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from deb_mock.locks import root_lock

    with root_lock(Path(sys.argv[1]), "--chroot", None, print):
        print("locked", flush=True)
        time.sleep(30)
    """
)


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process holding the lock as ``--chroot``."""
    lock = tmp_path / "root.lock"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield lock, process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def can_lock(lock: Path) -> bool:
    """Whether another open file description can take the lock now."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_second_acquisition_times_out_naming_the_holder(
    held_lock: tuple[Path, subprocess.Popen[str]],
) -> None:
    lock, process = held_lock
    waits: list[str] = []
    with pytest.raises(LockedError) as info, root_lock(lock, "--install", 0.3, waits.append):
        pytest.fail("the lock was acquired while another process held it")
    error = info.value
    assert error.exit_code == ExitCode.LOCKED == 60
    assert f"pid {process.pid}" in str(error)
    assert "mode --chroot" in str(error)
    assert error.hint is not None and "--lock-timeout" in error.hint
    assert len(waits) == 1
    assert f"pid {process.pid}, mode --chroot" in waits[0]
    assert "0.3s" in waits[0]
    # the waiting run did not clobber the holder's record
    assert describe_holder(lock) == f"pid {process.pid}, mode --chroot"


def test_lock_is_taken_after_the_holder_exits(
    held_lock: tuple[Path, subprocess.Popen[str]],
) -> None:
    lock, process = held_lock
    process.kill()
    process.wait()
    with root_lock(lock, "--init", 2.0, lambda _message: None) as killed_before:
        assert describe_holder(lock) == f"pid {os.getpid()}, mode --init"
        assert killed_before  # its record was left: its sandboxes may still be dying (orphans.wait_for_exit)
    with root_lock(lock, "--init", 2.0, lambda _message: None) as killed_before:
        assert not killed_before  # released by the run before: nothing of it can be left


def test_holder_is_recorded_and_lock_released_after_the_context(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "root.lock"
    waits: list[str] = []
    with root_lock(lock, "--shell", 0.3, waits.append) as killed_before:
        assert not killed_before  # a lock never held before
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "mode": "--shell"}
        assert describe_holder(lock) == f"pid {os.getpid()}, mode --shell"
        assert not can_lock(lock)
    assert waits == []
    assert can_lock(lock)
    assert lock.read_text() == ""
    assert describe_holder(lock) == "an unknown process"


def test_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    lock = tmp_path / "root.lock"
    with pytest.raises(RuntimeError), root_lock(lock, "--chroot", 0.3, lambda _m: None):
        raise RuntimeError("boom")
    assert can_lock(lock)


def test_a_lock_in_the_same_process_is_exclusive(tmp_path: Path) -> None:
    lock = tmp_path / "root.lock"
    with root_lock(lock, "--chroot", None, lambda _m: None), pytest.raises(LockedError), root_lock(
        lock, "--install", 0.2, lambda _m: None
    ):
        pass


@pytest.mark.parametrize(
    "content",
    ["", "{not json", '{"pid": 1}', "[1, 2]", '"text"'],
)
def test_describe_holder_of_unreadable_records(tmp_path: Path, content: str) -> None:
    lock = tmp_path / "root.lock"
    lock.write_text(content)
    assert describe_holder(lock) == "an unknown process"


def test_describe_holder_of_missing_file(tmp_path: Path) -> None:
    assert describe_holder(tmp_path / "absent.lock") == "an unknown process"


def test_describe_holder(tmp_path: Path) -> None:
    lock = tmp_path / "root.lock"
    lock.write_text(json.dumps({"pid": 4242, "mode": "--rebuild"}))
    assert describe_holder(lock) == "pid 4242, mode --rebuild"
