"""The sandbox for real: namespaces, /dev, /sys, network isolation, no leftovers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock, host_mounts

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes() or marker.encode() in (
                    entry / "cmdline"
                ).read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _sleep_started(marker: str) -> bool:
    for pid in _processes_with(marker):
        try:
            if b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def test_offline_sandbox_sees_only_loopback(dm: DebMock, trixie: dict[str, object]) -> None:
    out = dm.ok(*R, "--offline", "--chroot", "cat /proc/net/dev").stdout
    interfaces = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert interfaces == ["lo"]
    assert "lo" in dm.ok(*R, "--offline", "--chroot", "ls /sys/class/net").stdout.split()


def test_host_loopback_listener_is_unreachable_offline(dm: DebMock, trixie: dict[str, object],
                                                        loopback_listener: tuple[int, list[bytes]]) -> None:
    port, accepted = loopback_listener
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo ping >&3 && echo CONNECTED"
    # the same probe from the host proves the listener answers
    host = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=10)
    assert "CONNECTED" in host.stdout
    inside = dm.run(*R, "--offline", "--chroot", "--", "bash", "-c", probe)
    assert inside.returncode != 0 and "CONNECTED" not in inside.stdout
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(accepted) == 1  # the host's connection only


def test_pid_namespace_holds_only_the_run(dm: DebMock, trixie: dict[str, object]) -> None:
    out = dm.ok(*R, "--chroot", "for p in /proc/[0-9]*; do echo ${p#/proc/}; done").stdout.split()
    pids = sorted(int(p) for p in out)
    assert pids[0] == 1 and len(pids) <= 4, pids
    comm = dm.ok(*R, "--chroot", "cat /proc/1/cmdline | tr '\\0' ' '").stdout
    assert "import init;init.main()" in comm and "--tag=" in comm, comm  # PID 1 is deb-mock's init


def test_minimal_dev_private_devpts_readonly_sys_hostname(dm: DebMock, trixie: dict[str, object]) -> None:
    dev = set(dm.ok(*R, "--chroot", "ls /dev").stdout.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm"} <= dev
    assert not {"vda", "sda", "kmsg", "mem"} & dev
    assert "newinstance" in dm.ok(*R, "--chroot", "grep devpts /proc/mounts").stdout or \
        "devpts" in dm.ok(*R, "--chroot", "grep devpts /proc/mounts").stdout
    assert dm.run(*R, "--chroot", "touch /sys/kernel/deb-mock-probe").returncode != 0
    assert "ro," in dm.ok(*R, "--chroot", "grep ' /sys ' /proc/mounts").stdout
    assert dm.ok(*R, "--chroot", "hostname").stdout.strip() == "deb-mock" != socket.gethostname()
    assert dm.ok(*R, "--chroot", "echo x > /dev/null && head -c 4 /dev/zero | wc -c").stdout.strip() == "4"


def test_no_run_adds_a_host_mount(dm: DebMock, trixie: dict[str, object]) -> None:
    before = host_mounts()
    proc = dm.popen(*R, "--chroot", "sleep 2")
    time.sleep(1)
    during = host_mounts()
    proc.wait(timeout=30)
    assert during == before == host_mounts()


def test_sigkill_leaves_no_process_and_no_mount(dm: DebMock, trixie: dict[str, object]) -> None:
    marker = str(dm.root_dir("trixie-amd64"))
    before = host_mounts()
    proc = dm.popen(*R, "--chroot", "sleep 600")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _sleep_started(marker):
        time.sleep(0.1)
    assert _processes_with(marker), "the sandbox did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []
    assert host_mounts() == before
    started = time.monotonic()
    dm.ok(*R, "--lock-timeout", "5", "--chroot", "true")
    assert time.monotonic() - started < 10


def test_sigint_interrupts_with_exit_7(dm: DebMock, trixie: dict[str, object]) -> None:
    marker = str(dm.root_dir("trixie-amd64"))
    proc = dm.popen(*R, "--chroot", "sleep 600")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_processes_with(marker)) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 7, err
    assert "interrupted" in err and "Traceback" not in err
    assert _processes_with(marker) == []
