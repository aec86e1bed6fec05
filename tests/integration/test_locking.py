"""One lock per root: a second run waits and says who holds the root, or gives up with 60."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import DebMock

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


def _wait_for_lock_holder(dm: DebMock) -> None:
    lock = dm.root_dir("trixie-amd64").with_name("trixie-amd64.lock")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if lock.exists() and b'"pid"' in lock.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_second_run_waits_for_the_first(dm: DebMock, trixie: dict[str, object]) -> None:
    first = dm.popen(*R, "--chroot", "sleep 3; echo first-done")
    _wait_for_lock_holder(dm)
    second = dm.run(*R, "--chroot", "echo second-done")
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and "first-done" in out
    assert second.returncode == 0 and "second-done" in second.stdout
    assert f"pid {first.pid}" in second.stderr and "--chroot" in second.stderr


def test_lock_timeout_exits_60(dm: DebMock, trixie: dict[str, object]) -> None:
    first = dm.popen(*R, "--chroot", "sleep 5")
    _wait_for_lock_holder(dm)
    second = dm.run(*R, "--lock-timeout", "1", "--chroot", "true")
    first.communicate(timeout=60)
    assert second.returncode == 60
    assert "locked" in second.stderr and f"pid {first.pid}" in second.stderr


def test_different_uniqueext_roots_do_not_wait(dm: DebMock, trixie: dict[str, object]) -> None:
    dm.ok(*R, "--uniqueext", "par", "--init")
    first = dm.popen(*R, "--chroot", "sleep 4")
    _wait_for_lock_holder(dm)
    started = time.monotonic()
    other = dm.run(*R, "--uniqueext", "par", "--lock-timeout", "1", "--chroot", "true")
    elapsed = time.monotonic() - started
    first.communicate(timeout=60)
    assert other.returncode == 0 and "locked" not in other.stderr
    assert elapsed < 4
    dm.ok(*R, "--uniqueext", "par", "--scrub=all")
