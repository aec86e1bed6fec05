"""The namespace init: sets up one sandboxed run and reaps it.

This file is executed as a script (``python -I -S init.py SPEC``) by the
sandbox runner, not imported: it uses only the standard library so that it
starts in a few milliseconds and does not depend on how deb-mock was
installed. It does all namespace and mount work in one process: a shell
script of mount calls costs ten times more (see the README's benchmarks).

Process tree of one run::

    deb-mock ── init (outside, pdeathsig) ── init (PID 1 of the new PID namespace)
                                                └── the command

Each init dies with its parent (PR_SET_PDEATHSIG), and when PID 1 of a PID
namespace dies the kernel kills every process in it; the mount namespace, and
with it the overlay, disappears with its last process. So nothing of a run
survives deb-mock, whatever kills it, and no mount is ever added to the host.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import termios
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24

PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

#: exit status of an init that failed to set up the sandbox (the message goes to the status fd)
SETUP_FAILED = 125
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
DEVICE_NODES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """A step of the sandbox set-up failed; the message names the step."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); the error names the target and file system type."""
    _check(
        _libc.mount(_encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data)),
        f"mounting {fstype or source} on {target}",
    )


def unshare(flags: int) -> None:
    """unshare(2) (os.unshare only exists from Python 3.12)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "creating namespaces (unshare)")


def die_with_parent(expected_parent: int) -> None:
    """Get SIGKILL when the parent dies; exit at once if it is already gone."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != expected_parent:
        os._exit(SETUP_FAILED)


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (it starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def _bind_from_fd(fd: int, target: str, readonly: bool) -> None:
    source = f"/proc/self/fd/{fd}"
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def _ensure_target(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "a"):
            pass


def _open_path(path: str) -> int:
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise SetupError(f"cannot open {path} for a bind mount: {exc.strerror}") from None


def in_user_namespace() -> bool:
    """True in a rootless run (the uid map is not the initial namespace's identity map)."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as handle:
            return handle.read().split()[:3] != ["0", "0", "4294967295"]
    except OSError:
        return False


def assemble_root(root: dict[str, Any]) -> None:
    """Mount the root file system at its mount point (overlay or a plain bind)."""
    mountpoint = root["mountpoint"]
    if root["kind"] == "OverlayRoot":
        # made here, not by the parent: in a run's RAM (a tmpfs only this namespace sees) they may not exist yet
        os.makedirs(root["upper"], mode=0o755, exist_ok=True)
        os.makedirs(root["work"], mode=0o700, exist_ok=True)
        options = "lowerdir={},upperdir={},workdir={}".format(
            ":".join(root["lowers"]), root["upper"], root["work"]
        )
        if in_user_namespace():  # rootless: whiteouts and opaque dirs as user.* xattrs (Linux 5.11+)
            options += ",userxattr"
        mount("overlay", mountpoint, "overlay", 0, options)
    else:
        mount(root["path"], mountpoint, None, MS_BIND | MS_REC)


def mount_api_filesystems(spec: dict[str, Any], device_fds: dict[str, int]) -> None:
    """/proc, a minimal /dev, /sys, /tmp inside the root (we are already chrooted)."""
    _ensure_target("/dev", True)
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=4m")
    for name, fd in device_fds.items():
        _ensure_target(f"/dev/{name}", False)
        _bind_from_fd(fd, f"/dev/{name}", readonly=False)
    os.makedirs("/dev/pts")
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620,gid=5")
    os.symlink("pts/ptmx", "/dev/ptmx")
    os.makedirs("/dev/shm")
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{link}")
    _ensure_target("/sys", True)
    if spec["sys"] == "ro":
        try:
            mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except SetupError:
            pass  # a sysfs cannot be mounted here (no network namespace of ours): leave /sys empty
    if spec["tmpfs_tmp"]:
        _ensure_target("/tmp", True)
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec['tmp_size']}")


def mount_extra(mounts: list[dict[str, Any]], source_fds: list[int | None]) -> None:
    """The configured bind and tmpfs mounts, targets resolved inside the root."""
    for entry, fd in zip(mounts, source_fds, strict=True):
        target = entry["target"]
        if entry["kind"] == "tmpfs":
            _ensure_target(target, True)
            options = f"mode={entry['mode']:o}" + (f",size={entry['size']}" if entry["size"] else "")
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)
            continue
        assert fd is not None
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        if entry["create"]:
            _ensure_target(target, is_dir)
        _bind_from_fd(fd, target, entry["readonly"])


def setup_inside(spec: dict[str, Any]) -> None:
    """Everything PID 1 does before starting the command."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    socket.sethostname(spec["hostname"])
    if not spec["network"]:
        loopback_up()
    root = spec["root"]
    if root is None:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for entry in spec["host_mounts"]:  # a session's tmpfs (no chroot: host paths)
            os.makedirs(entry["target"], exist_ok=True)
            options = f"mode={entry['mode']:o}" + (f",size={entry['size']}" if entry["size"] else "")
            mount("tmpfs", entry["target"], "tmpfs", MS_NOSUID | MS_NODEV, options)
        return
    device_fds = {name: _open_path(f"/dev/{name}") for name in DEVICE_NODES if os.path.exists(f"/dev/{name}")}
    if spec["terminal"]:  # the relayed pty, as /dev/console (so ttyname() finds it, as podman does)
        device_fds["console"] = _open_path(os.readlink("/proc/self/fd/0"))
    source_fds = [_open_path(m["source"]) if m["kind"] == "bind" else None for m in spec["mounts"]]
    resolv_fd = None
    if spec["network"] and spec["share_resolv_conf"] and os.path.exists("/etc/resolv.conf"):
        resolv_fd = _open_path(os.path.realpath("/etc/resolv.conf"))
    assemble_root(root)
    os.chdir(root["mountpoint"])
    os.chroot(".")
    os.chdir("/")
    _ensure_target("/proc", True)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount_api_filesystems(spec, device_fds)
    if resolv_fd is not None:
        if os.path.islink("/etc/resolv.conf"):
            os.unlink("/etc/resolv.conf")
        _ensure_target("/etc/resolv.conf", False)
        _bind_from_fd(resolv_fd, "/etc/resolv.conf", readonly=True)
    mount_extra(spec["mounts"], source_fds)
    for fd in [*device_fds.values(), *(f for f in source_fds if f is not None)]:
        os.close(fd)


def exec_command(spec: dict[str, Any]) -> None:
    """In the forked child: drop to the run's user and exec the command."""
    try:
        for sig in range(1, signal.NSIG):
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
        os.closerange(3, 65536)
        os.setsid()  # a session of its own: no terminal of the caller's is reachable
        if spec["terminal"]:  # the pty deb-mock relays (see terminal.py) becomes the controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if spec["gid"] or spec["uid"]:
            os.setgroups([])
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])
        try:
            os.chdir(spec["cwd"])
        except OSError as exc:
            sys.stderr.write(f"deb-mock: cannot enter {spec['cwd']!r} in the root: {exc.strerror}\n")
            sys.stderr.flush()
            os._exit(126)
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        what = "command not found" if exc.errno == errno.ENOENT else exc.strerror
        sys.stderr.write(f"deb-mock: cannot run {spec['argv'][0]!r} in the root: {what}\n")
        sys.stderr.flush()
        os._exit(127)


def _exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def reap(main_pid: int) -> int:
    """Wait for the command, reaping every orphan on the way; return its exit status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return SETUP_FAILED
        if pid == main_pid:
            return _exit_status(status)


def _forward_signals_to(pid: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    # Ctrl-C reaches the command from the terminal itself; the inits must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def pid_one(spec: dict[str, Any], status_fd: int, outer_alive_fd: int) -> None:
    """PID 1 of the new PID namespace: set up, start the command, reap, exit."""
    # The parent is outside the namespace (getppid() is 0 here): learn whether it
    # died before the parent-death signal was armed from a pipe only it holds open.
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if select.select([outer_alive_fd], [], [], 0)[0]:
        os._exit(SETUP_FAILED)
    os.close(outer_alive_fd)
    try:
        setup_inside(spec)
    except (SetupError, OSError) as exc:
        os.write(status_fd, json.dumps({"error": str(exc)}).encode())
        os._exit(SETUP_FAILED)
    child = os.fork()
    if child == 0:
        exec_command(spec)
    _forward_signals_to(child)
    os._exit(reap(child))


def join_mount_namespace(pid: int, status_fd: int) -> None:
    """Enter the mount namespace of a run's session keeper (its RAM-backed scratch space)."""
    try:
        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        _check(_libc.setns(fd, CLONE_NEWNS), f"joining the session's mount namespace (pid {pid})")
        os.close(fd)
    except (OSError, SetupError) as exc:
        os.write(status_fd, json.dumps({"error": str(exc)}).encode())
        os._exit(SETUP_FAILED)


def main() -> None:
    """Entry point of the outer init: create the namespaces, fork PID 1, wait."""
    spec = json.loads(sys.argv[1])
    status_fd = int(sys.argv[2])
    os.set_inheritable(status_fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(spec["parent_pid"])
    if spec["join_mount_ns"]:
        join_mount_namespace(spec["join_mount_ns"], status_fd)
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if not spec["network"]:
        flags |= CLONE_NEWNET
    try:
        unshare(flags)
    except SetupError as exc:
        os.write(status_fd, json.dumps({"error": str(exc)}).encode())
        os._exit(SETUP_FAILED)
    alive_read, alive_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(alive_write)
        pid_one(spec, status_fd, alive_read)
    os.close(alive_read)
    _forward_signals_to(child)
    os._exit(reap(child))


if __name__ == "__main__":
    main()
