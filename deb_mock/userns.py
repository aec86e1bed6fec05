"""Rootless mode: the whole run inside one user namespace, as `mmdebstrap --mode=unshare` does.

The caller is mapped to root and a subordinate range (from /etc/subuid and
/etc/subgid, written by newuidmap/newgidmap from the uidmap package) to uids
and gids 1…N. deb-mock then runs unchanged as "root" of that namespace: files
in a root keep their real ownership on disk (shifted into the subordinate
range), what deb-mock writes for the caller (results, state, caches) is owned
by the caller, and nothing needs a host capability.

Each missing prerequisite is reported with what to do about it (exit 80).
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from deb_mock import caller_commands
from deb_mock.errors import SandboxError

CLONE_NEWUSER = 0x10000000
#: enough ids for every user and group a Debian root creates (nobody is 65534)
RANGE = 65536
#: set in the environment once the run is inside its namespace (a nested deb-mock does not map again)
INSIDE_ENV = "DEB_MOCK_ROOTLESS"


@dataclasses.dataclass(frozen=True)
class SubordinateRange:
    start: int
    count: int


def subordinate_range(path: Path, user: str, uid: int) -> SubordinateRange | None:
    """The caller's first range of at least RANGE ids in /etc/subuid or /etc/subgid."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count >= RANGE - 1:
            return SubordinateRange(start, count)
    return None


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    parts = release.split(".")
    try:
        return (int(parts[0]), int(parts[1].split("-")[0])) >= wanted
    except (IndexError, ValueError):
        return True


def check_prerequisites(user: str, uid: int, *, subuid: Path = Path("/etc/subuid"),
                        subgid: Path = Path("/etc/subgid"), proc_sys: Path = Path("/proc/sys"),
                        kernel: str | None = None) -> tuple[SubordinateRange, SubordinateRange]:
    """Everything rootless mode needs, or a SandboxError saying exactly what to do."""
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise SandboxError(f"rootless mode needs {tool}, which is not installed",
                               hint="apt-get install uidmap (as root, once)")
    clone = proc_sys / "kernel/unprivileged_userns_clone"
    if clone.is_file() and clone.read_text().strip() == "0":
        raise SandboxError("user namespaces are disabled for ordinary users (kernel.unprivileged_userns_clone=0)",
                           hint="sysctl -w kernel.unprivileged_userns_clone=1 (as root; persist it in /etc/sysctl.d)")
    maximum = proc_sys / "user/max_user_namespaces"
    if maximum.is_file() and maximum.read_text().strip() == "0":
        raise SandboxError("user namespaces are disabled (user.max_user_namespaces=0)",
                           hint="sysctl -w user.max_user_namespaces=15000 (as root; persist it in /etc/sysctl.d)")
    apparmor = proc_sys / "kernel/apparmor_restrict_unprivileged_userns"
    if apparmor.is_file() and apparmor.read_text().strip() == "1":
        raise SandboxError("AppArmor forbids user namespaces to ordinary users "
                           "(kernel.apparmor_restrict_unprivileged_userns=1)",
                           hint="sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (as root)")
    release = kernel if kernel is not None else os.uname().release
    if not _kernel_at_least(release, (5, 11)):
        raise SandboxError(f"overlayfs in a user namespace needs Linux 5.11 or newer (this kernel is {release})",
                           hint="run deb-mock as root, or boot a newer kernel")
    uids = subordinate_range(subuid, user, uid)
    gids = subordinate_range(subgid, user, uid)
    missing = [name for name, found in (("/etc/subuid", uids), ("/etc/subgid", gids)) if found is None]
    if uids is None or gids is None:
        raise SandboxError(f"{user} has no subordinate id range of {RANGE} ids in {' and '.join(missing)}",
                           hint=f"usermod --add-subuids 100000-{100000 + RANGE - 1} "
                                f"--add-subgids 100000-{100000 + RANGE - 1} {user} (as root, once)")
    return uids, gids


def is_rootless_run() -> bool:
    """True inside the namespace a rootless run made for itself."""
    return os.environ.get(INSIDE_ENV) == "1"


def in_user_namespace() -> bool:
    """True when this process is not in the initial user namespace (its uid map is not the identity)."""
    try:
        fields = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return False
    return fields[:3] != ["0", "0", "4294967295"]


def caller_home() -> Path:
    """The caller's home (from the environment, else the password database)."""
    home = os.environ.get("HOME")
    return Path(home) if home else Path(pwd.getpwuid(os.getuid()).pw_dir)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or caller_home() / ".local/share") / "deb-mock"


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or caller_home() / ".cache") / "deb-mock"


def enter() -> None:
    """Move this (single-threaded) process into a new user namespace with the caller as root.

    A forked helper, still outside, runs newuidmap/newgidmap on this process
    once it has unshared; this process then becomes uid and gid 0 there.
    """
    uid, gid = os.getuid(), os.getgid()
    user = pwd.getpwuid(uid).pw_name
    uids, gids = check_prerequisites(user, uid)
    import ctypes  # rootless runs only: ctypes costs every other start 1.5 ms

    libc = ctypes.CDLL(None, use_errno=True)
    ready_read, ready_write = os.pipe()
    target = os.getpid()
    helper = os.fork()
    if helper == 0:  # the helper: wait until the parent has unshared, then map it
        os.close(ready_write)
        code = 1
        try:
            if os.read(ready_read, 1) == b"1":
                subprocess.run(["newuidmap", str(target), "0", str(uid), "1", "1", str(uids.start), str(RANGE - 1)],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                subprocess.run(["newgidmap", str(target), "0", str(gid), "1", "1", str(gids.start), str(RANGE - 1)],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                code = 0
        except (OSError, subprocess.CalledProcessError):
            code = 2
        os._exit(code)
    os.close(ready_read)
    caller_commands.start_runner()  # the operator's own commands keep running as the caller, outside
    unshared = libc.unshare(CLONE_NEWUSER) == 0
    error = ctypes.get_errno()
    os.write(ready_write, b"1" if unshared else b"0")
    os.close(ready_write)
    _, status = os.waitpid(helper, 0)
    if not unshared:
        raise SandboxError(f"cannot create a user namespace: {os.strerror(error)}",
                           hint="check kernel.unprivileged_userns_clone and user.max_user_namespaces")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SandboxError(f"newuidmap/newgidmap could not map {user}'s subordinate ids "
                           f"({uids.start}+{RANGE - 1}, {gids.start}+{RANGE - 1})",
                           hint="check /etc/subuid and /etc/subgid and that newuidmap is setuid root (uidmap)")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.environ[INSIDE_ENV] = "1"


def root_id_map(subuid: Path = Path("/etc/subuid"), subgid: Path = Path("/etc/subgid")) -> tuple[int, int, int]:
    """Root mode: the host ids that 0.. of every root's user namespace map to (root's subordinate range).

    So uid 0 in a root is an unprivileged id on the host, as in sbuild's
    unshare mode, which asks for the same lines.
    """
    uids = subordinate_range(subuid, "root", 0)
    gids = subordinate_range(subgid, "root", 0)
    if uids is None or gids is None or 0 in (uids.start, gids.start):
        raise SandboxError(f"root mode runs every root in a user namespace mapped to root's subordinate ids, and "
                           f"root has no range of {RANGE} ids in /etc/subuid and /etc/subgid",
                           hint=f"usermod --add-subuids 100000-{100000 + RANGE - 1} "
                                f"--add-subgids 100000-{100000 + RANGE - 1} root (once; bash .ci/install does it)")
    return uids.start, gids.start, min(uids.count, gids.count, RANGE)
