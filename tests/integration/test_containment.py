"""A root is a container: what runs in it, as root or as the build user, cannot act on the host.

Each test plants a sentinel or takes checksums of host files before, and
checks them after; every escape is tried for real.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock, host_mounts
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")
#: chroot(2) out of a chroot: mkdir+chroot into a subdirectory, then climb with chdir("..")
DOUBLE_CHROOT = ('perl -e \'mkdir "x"; chroot "x"; chdir ".." for 1..60; chroot "."; '
                 'open(F, ">", $ARGV[0]) and print F "escaped"\' ')


def _postinst_deb(top: Path, sentinel: Path) -> Path:
    """A .deb whose postinst tries the double chroot to write ``sentinel`` on the host."""
    tree = top / "escape-deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(textwrap.dedent("""\
        Package: escape-attempt
        Version: 1.0
        Architecture: all
        Maintainer: deb-mock tests <tests@deb-mock.invalid>
        Description: tries to leave the root from its postinst
        """))
    postinst = tree / "DEBIAN/postinst"
    postinst.write_text(f"#!/bin/sh\ncd /root && {DOUBLE_CHROOT}{sentinel} || true\nexit 0\n")
    postinst.chmod(0o755)
    deb = top / "escape-attempt_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_root_in_the_root_is_not_root_on_the_host(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    sentinel = tmp_path / "escaped"
    out = dm.ok(*R, "--chroot", f"id -u; cat /proc/self/uid_map; cd /root && {DOUBLE_CHROOT}{sentinel}; true"
                ).stdout.split()
    assert out[0] == "0" and out[1:3] == ["0", "100000"], out  # root inside, subordinate ids outside
    assert not sentinel.exists(), "the double chroot wrote the host"
    deb = _postinst_deb(tmp_path, sentinel)
    dm.ok(*R, "--install", str(deb))
    assert not sentinel.exists(), "a maintainer script wrote the host"
    dm.ok(*R, "--remove", "escape-attempt")


def test_kernel_devices_mounts_and_host_processes_are_out_of_reach(dm: DebMock, trixie: dict[str, object]) -> None:
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    host_sleep = subprocess.Popen(["sleep", "60"])
    disk = next(p for p in ("/dev/vda", "/dev/sda", "/dev/nvme0n1") if os.path.exists(p))
    major, minor = os.major(os.stat(disk).st_rdev), os.minor(os.stat(disk).st_rdev)
    try:
        script = (f"echo '|/tmp/evil' > /proc/sys/kernel/core_pattern && echo CORE; "
                  f"mknod /tmp/disk b {major} {minor} && head -c 512 /tmp/disk >/dev/null && echo READ; "
                  f"mount -t ext4 /tmp/disk /mnt && echo MOUNTED; "
                  f"kill -0 {host_sleep.pid} && echo SIGNAL; ls /proc/{host_sleep.pid} >/dev/null 2>&1 && echo SEEN; "
                  "grep -q '^CapEff:.0*$' /proc/1/status && echo PID1-HAS-NO-CAPS; true")
        lines = set(dm.ok(*R, "--chroot", script).stdout.splitlines())  # errors come on the same stream
        assert "PID1-HAS-NO-CAPS" in lines and not lines & {"CORE", "READ", "MOUNTED", "SIGNAL", "SEEN"}, lines
        assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern
        assert host_sleep.poll() is None
    finally:
        host_sleep.kill()
        host_sleep.wait()


def test_root_in_the_root_keeps_only_what_apt_and_dpkg_need(dm: DebMock, trixie: dict[str, object]) -> None:
    """Root's bounding set is the container default: no mount even in its own namespaces, unless configured."""
    script = "grep '^CapBnd' /proc/self/status; mount -t tmpfs none /mnt && echo TMPFS-MOUNTED; true"
    lines = dm.ok(*R, "--chroot", script).stdout.splitlines()
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT AUDIT_WRITE SETFCAP
    assert lines[0].split() == ["CapBnd:", "00000000a00405fb"] and "TMPFS-MOUNTED" not in lines, lines
    lines = dm.ok(*R, "--config-opts", "sandbox.capabilities=[SYS_ADMIN]", "--chroot", script).stdout.splitlines()
    assert lines[0].split() == ["CapBnd:", "00000000a02405fb"] and "TMPFS-MOUNTED" in lines, lines
    bad = dm.run(*R, "--config-opts", "sandbox.capabilities=[ROOT]", "--chroot", "true")
    assert bad.returncode == 3 and "sandbox.capabilities[0]" in bad.stderr and "'ROOT'" in bad.stderr, bad.stderr


def test_no_terminal_of_the_caller_is_reachable(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    """TIOCSTI from the root cannot type into the terminal deb-mock was started from (a pty here)."""
    marker = tmp_path / "typed"
    inject = ("perl -e 'open(my $t, \"+<\", \"/dev/tty\") or exit 4; "
              "ioctl($t, 0x5412, $_) or exit 3 for split //, \"touch " + str(marker) + "\\n\"'; echo status=$?")
    command = shlex.join(["exec", *dm.command(*R, "--chroot", inject)])
    result = subprocess.run(["script", "-qec", command, "/dev/null"], env=dm.env, capture_output=True, text=True,
                            timeout=120, input="")
    assert "status=4" in result.stdout, result.stdout + result.stderr  # no controlling terminal to open
    time.sleep(0.5)
    assert not marker.exists()


def test_results_are_what_the_changes_lists(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    planting = ("\ttrue\n\techo planted > ../planted_9.9_all.deb\n\tln -sf /etc/shadow ../linked_9.9_all.deb\n"
                "\tcp /bin/true ../suid-tool && chmod 4755 ../suid-tool")
    dsc = make_source(tmp_path / "src", "planter", build=planting)
    consumer = make_source(tmp_path / "src", "consumer", build_depends="planter",
                           build="\ttest ! -e /var/lib/deb-mock-extra/planted_9.9_all.deb")
    results = tmp_path / "results"
    result = dm.json(*R, "--chain", "--resultdir", str(results), "--rebuild", str(dsc), str(consumer))
    assert result["exit_code"] == 0, result
    names = sorted(p.name for p in (results / "planter_1.0").iterdir())
    assert "planted_9.9_all.deb" not in names and "linked_9.9_all.deb" not in names and "suid-tool" not in names
    assert "planter_1.0_all.deb" in names
    for path in results.rglob("*"):
        assert not path.is_symlink() and not path.stat().st_mode & 0o6000, path
    assert (results / "consumer_1.0" / "consumer_1.0_all.deb").is_file()  # its build saw no planted .deb


def test_copyout_makes_no_setuid_file_and_no_device(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    dm.ok(*R, "--chroot", "cp /bin/true /root/suid && chmod 6755 /root/suid && chown 1000 /root/suid")
    out = tmp_path / "out"
    dm.ok(*R, "--copyout", "/root/suid", str(out) + "/")
    info = (out / "suid").stat()
    assert not info.st_mode & 0o6000 and info.st_uid == os.geteuid()
    refused = dm.run(*R, "--copyout", "/dev/null", str(out) + "/")
    assert refused.returncode == 20 and "device" in refused.stderr
    assert not (out / "null").exists()


def test_secrets_never_appear_on_a_command_line(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    """A config's environment (proxy credentials, say) reaches the root, never a command line ps shows."""
    secret = "s3cr3t-" + os.urandom(4).hex()
    config = tmp_path / "trixie-amd64.yaml"  # the same root, with a secret in its environment
    config.write_text(f"name: trixie-amd64\ntemplates: [debian]\nsuite: trixie\narchitecture: amd64\n"
                      f"sandbox:\n  environment:\n    TOKEN: {secret}\n")
    assert dm.ok("-r", str(config), "--chroot", "echo $TOKEN").stdout.strip() == secret
    proc = dm.popen("-r", str(config), "--chroot", "sleep 8")
    try:
        deadline = time.monotonic() + 60
        seen_sleep = False
        while time.monotonic() < deadline and not seen_sleep:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        cmdline = (entry / "cmdline").read_bytes()
                    except OSError:
                        continue
                    assert secret.encode() not in cmdline, cmdline
                    seen_sleep = seen_sleep or cmdline.startswith(b"sleep\x008")
            time.sleep(0.1)
        assert seen_sleep, "the sandboxed sleep never showed up"
    finally:
        proc.wait(timeout=60)


def test_build_timeout_stops_the_build_and_leaves_nothing(dm: DebMock, trixie: dict[str, object],
                                                          tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "sleeper", build="\tsleep 300")
    before = host_mounts()
    started = time.monotonic()
    result = dm.json(*R, "--build-timeout", "20", "--resultdir", str(tmp_path / "r"), "--rebuild", str(dsc))
    assert result["exit_code"] == 11 and time.monotonic() - started < 60, result
    assert "stopped after 20" in str(result["error"])
    leftovers = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True).stdout.split()
    assert leftovers == [] and host_mounts() == before
    dm.ok(*R, "--chroot", "true")


def test_a_fork_bomb_and_a_full_dev_shm_fail_the_build_not_the_host(dm: DebMock, trixie: dict[str, object],
                                                                     tmp_path: Path) -> None:
    bomb = make_source(tmp_path / "src", "forkbomb", build="\tbash -c 'b() { b | b & }; b; sleep 5'; exit 1")
    shm = make_source(tmp_path / "src", "shmfill", build="\tdd if=/dev/zero of=/dev/shm/fill bs=1M count=2048")
    probes: list[float] = []
    proc = subprocess.Popen(dm.command(*R, "--config-opts", "sandbox.max_processes=256", "--build-timeout", "120",
                                       "--resultdir", str(tmp_path / "b"), "--rebuild", str(bomb)), env=dm.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        started = time.monotonic()
        subprocess.run(["true"], check=True)
        probes.append(time.monotonic() - started)
        time.sleep(0.5)
    assert proc.returncode in (10, 11)
    assert probes and max(probes) < 2.0, probes  # the host kept starting processes at once
    result = dm.json(*R, "--resultdir", str(tmp_path / "s"), "--rebuild", str(shm))
    assert result["exit_code"] == 10, result
    assert "No space left on device" in (tmp_path / "s" / "build.log").read_text()
