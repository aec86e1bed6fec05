"""The namespace init: makes one sandboxed run a container and reaps it.

Started by the sandbox runner as ``python -I -S -c LAUNCHER --tag=TAG SPEC_FD
STATUS_FD``; LAUNCHER imports this file from its directory, so its bytecode is
cached. It uses only the standard library, so it starts in milliseconds
whatever the installation. The spec (marshal; it may hold secrets
in its environment) is read from the inherited fd SPEC_FD, never from argv.
All namespace and mount work happens in these processes, without helpers.

Process tree of one run::

    deb-mock ── O (outer init: deb-mock's user, the host's namespaces, pdeathsig)
                 └── P1 = clone(NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS[|NEWNET])
                       └── the command (setsid; builds: no_new_privs, uid != 0)

O, while it still sees the host: opens detached copies (open_tree) of every
layer of the root and every host path to bind, then clones P1. In root mode P1
is born in a new user namespace: O writes its id maps (0..N-1 -> the
subordinate range ``id_map``) and makes the layer and bind copies *idmapped*
through it, so files keep their owners on disk while uid 0 in the root is an
unprivileged id on the host. In rootless mode the whole run already is in a
user namespace: P1 gets no new one and nothing is idmapped.

P1 mounts the overlay from the copies (``userxattr``), pivot_roots into it,
mounts /proc and /sys while the host's are still visible (the kernel insists),
detaches the old root (no path leads back to the host), then a minimal /dev,
a read-only /proc/sys and friends, /tmp and the binds. Each init dies with its
parent (PR_SET_PDEATHSIG) and when PID 1 of a PID namespace dies the kernel
kills every process in it: nothing of a run survives deb-mock.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import marshal
import os
import resource
import select
import struct
import sys
import termios
import warnings  # noqa: F401  os.execvpe imports it, after the pivot, where the host's library is gone

# signal's and typing's Python layers (enums; typing itself) cost every sandbox entry ~10 ms of imports:
# the C module has the same functions and constants, and the annotations are for the type checker only
TYPE_CHECKING = False

if TYPE_CHECKING:
    import signal
    from typing import Any
else:
    import _signal as signal

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE, MS_STRICTATIME = 4096, 16384, 1 << 18, 1 << 24
MNT_DETACH = 2
#: syscall numbers: the generic table's (arm64, riscv64 ...) unless the x86-64 one differs
_X86_64 = os.uname().machine == "x86_64"
SYS_CLONE, SYS_PIVOT_ROOT = (56, 155) if _X86_64 else (220, 41)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH = 1, 4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR_IDMAP = 0x100000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
AF_INET, SOCK_DGRAM, SOCK_CLOEXEC = 2, 2, 0o2000000
#: what an unprivileged build keeps in its bounding set: nothing it could gain back through a setuid file
BUILD_CAPS: frozenset[int] = frozenset()
#: where P1 assembles the root, on a private tmpfs mounted over the host's directory in its own namespace
STAGE = "/tmp"
#: exit status of an init that failed to set up the sandbox (the message goes to the status fd)
SETUP_FAILED = 125
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
#: bound from the host into the root's private /dev (tty is the generic "my controlling terminal" node)
DEVICE_NODES = ("null", "zero", "full", "random", "urandom", "tty")
#: made read-only, and hidden, in the root's /proc (as bubblewrap and podman do)
PROC_READONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats", "acpi", "scsi", "kallsyms")

#: O's /proc, opened before it may join a session keeper's mount namespace (whose /proc is the keeper's)
HOST_PROC = -1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class SetupError(Exception):
    """A step of the sandbox set-up failed; the message names the step."""


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")
    return result


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); the error names the target and file system type."""
    _check(_libc.mount(_encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data)),
           f"mounting {fstype or source} on {target}")


def clone_tree(path: str, attrs: int = 0, recursive: bool = True) -> int:
    """A detached copy of the mount at ``path`` (opened while the host is visible, attached later)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    fd = _libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), _encode(path), ctypes.c_uint(flags))
    if fd < 0:
        raise SetupError(f"cannot open {path} for a mount: {os.strerror(ctypes.get_errno())}")
    if attrs:
        set_attrs(fd, attrs, 0, path, recursive)
    return int(fd)


def set_attrs(fd: int, attrs: int, userns_fd: int, what: str, recursive: bool = True) -> None:
    attr = MountAttr(attrs, 0, 0, userns_fd)
    _check(_libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"",
                         ctypes.c_uint(AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr on {what}")


def attach_tree(fd: int, target: str) -> None:
    """move_mount(2) a detached copy onto ``target``."""
    _check(_libc.syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_int(fd), b"", ctypes.c_int(AT_FDCWD),
                         _encode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"attaching a mount on {target}")


def raw_clone(flags: int) -> int:
    """fork(2) with namespace flags (clone with a NULL stack has fork semantics)."""
    pid = _libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(flags | signal.SIGCHLD),
                        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_ulong(0))
    if pid < 0:
        raise SetupError(f"creating namespaces (clone): {os.strerror(ctypes.get_errno())}")
    return int(pid)


def die_with_parent(expected_parent: int) -> None:
    """Get SIGKILL when the parent dies; exit at once if it is already gone."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != expected_parent:
        os._exit(SETUP_FAILED)


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (it starts down)."""
    sock = _libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)  # libc's: the socket module costs an import
    _check(sock, "socket(AF_INET)")
    try:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    finally:
        os.close(sock)


def _ensure_target(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "a"):
            pass


def _tmpfs_options(entry: dict[str, Any]) -> str:
    return f"mode={entry['mode']:o}" + (f",size={entry['size']}" if entry["size"] else "")


class HostHandles:
    """What O opens while it sees the host: copies of the root's layers, device nodes and bind sources."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.layers: list[int] = []  # lowers, then the directory holding upper and work
        self.devices: dict[str, int] = {}
        self.binds: list[int | None] = []
        self.resolv: int | None = None
        self.sys: int | None = None
        self.entries: list[dict[str, Any]] = spec["mounts"]
        root = spec["root"]
        if root is None:
            return
        if root["kind"] == "OverlayRoot":
            os.makedirs(root["upper"], mode=0o755, exist_ok=True)
            os.makedirs(root["work"], mode=0o700, exist_ok=True)
            self.layers = [clone_tree(lower) for lower in root["lowers"]]
            self.layers.append(clone_tree(os.path.dirname(root["upper"].rstrip("/"))))
        else:
            self.layers = [clone_tree(root["path"])]
        for name in DEVICE_NODES:
            if os.path.exists(f"/dev/{name}"):
                self.devices[name] = clone_tree(f"/dev/{name}", MOUNT_ATTR_NOSUID, False)
        if spec["terminal"]:  # the relayed pty, as /dev/console (so ttyname() finds it, as podman does)
            self.devices["console"] = clone_tree(os.readlink("self/fd/0", dir_fd=HOST_PROC), MOUNT_ATTR_NOSUID,
                                                 False)
        for entry in spec["mounts"]:
            if entry["kind"] != "bind":
                self.binds.append(None)
                continue
            entry["is_dir"] = os.path.isdir(entry["source"])
            attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (MOUNT_ATTR_RDONLY if entry["readonly"] else 0)
            self.binds.append(clone_tree(entry["source"], attrs))
        if spec["sys"] == "ro" and spec["network"] and spec["id_map"]:
            # sharing the host's network, a user namespace cannot mount a sysfs: the host's, read-only
            self.sys = clone_tree("/sys", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
        if spec["network"] and spec["share_resolv_conf"] and os.path.exists("/etc/resolv.conf"):
            self.resolv = clone_tree(os.path.realpath("/etc/resolv.conf"),
                                     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, False)

    def idmap(self, pid: int) -> None:
        """Root mode: show the layers and binds to P1's user namespace with their owners mapped into it."""
        userns_fd = os.open(f"{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC, dir_fd=HOST_PROC)
        try:
            binds = [fd for entry, fd in zip(self.entries, self.binds, strict=True)
                     if fd is not None and entry["idmap"]]
            for fd in [*self.layers, *binds]:
                set_attrs(fd, MOUNT_ATTR_IDMAP, userns_fd, "a layer or bind of the root")
        finally:
            os.close(userns_fd)

    def close(self) -> None:
        for fd in [*self.layers, *self.devices.values(), *(b for b in self.binds if b is not None)]:
            os.close(fd)
        for extra in (self.resolv, self.sys):
            if extra is not None:
                os.close(extra)


def assemble_root(root: dict[str, Any], handles: HostHandles) -> str:
    """Mount the root from the layer copies, on a tmpfs that only this mount namespace sees; returns its path.

    The tmpfs goes over the host's /tmp in this namespace (any directory would
    do: the whole old tree is detached after the pivot).
    """
    stage = STAGE
    mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=64k")
    merged = f"{stage}/root"
    os.mkdir(merged)
    if root["kind"] != "OverlayRoot":
        attach_tree(handles.layers[0], merged)
        return merged
    lowers = []
    for index, fd in enumerate(handles.layers[:-1]):
        os.mkdir(f"{stage}/{index}")
        attach_tree(fd, f"{stage}/{index}")
        lowers.append(f"{stage}/{index}")
    os.mkdir(f"{stage}/rw")
    attach_tree(handles.layers[-1], f"{stage}/rw")
    upper = f"{stage}/rw/{os.path.basename(root['upper'].rstrip('/'))}"
    work = f"{stage}/rw/{os.path.basename(root['work'].rstrip('/'))}"
    mount("overlay", merged, "overlay", 0,
          f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},userxattr")
    return merged


def pivot_into(path: str) -> None:
    """pivot_root into ``path``; the old root stays stacked on / until :func:`detach_old_root`."""
    os.chdir(path)
    _check(_libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), b".", b"."), "pivot_root")


def detach_old_root() -> None:
    _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "detaching the host's root")
    os.chdir("/")


def mount_dev(devices: dict[str, int], shm_size: str) -> None:
    _ensure_target("/dev", True)
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=4m")
    for name, fd in devices.items():
        _ensure_target(f"/dev/{name}", False)
        attach_tree(fd, f"/dev/{name}")
    os.makedirs("/dev/pts")
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620,gid=5")
    os.symlink("pts/ptmx", "/dev/ptmx")
    os.makedirs("/dev/shm")
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={shm_size}")
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{link}")


def harden_proc() -> None:
    """Kernel knobs read-only, kernel memory and keys hidden (the flags proc was mounted with are repeated)."""
    for name in PROC_READONLY:
        path = f"/proc/{name}"
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_MASKED:
        path = f"/proc/{name}"
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=555")
        elif os.path.exists(path):
            mount("/dev/null", path, None, MS_BIND)


def mount_extra(spec: dict[str, Any], handles: HostHandles) -> None:
    """resolv.conf, then the configured bind and tmpfs mounts, targets resolved inside the root."""
    if handles.resolv is not None:
        if os.path.islink("/etc/resolv.conf"):
            os.unlink("/etc/resolv.conf")
        _ensure_target("/etc/resolv.conf", False)
        attach_tree(handles.resolv, "/etc/resolv.conf")
    for entry, fd in zip(spec["mounts"], handles.binds, strict=True):
        if entry["kind"] == "tmpfs":
            _ensure_target(entry["target"], True)
            mount("tmpfs", entry["target"], "tmpfs", MS_NOSUID | MS_NODEV, _tmpfs_options(entry))
            continue
        assert fd is not None
        if entry["create"]:
            _ensure_target(entry["target"], entry["is_dir"])
        attach_tree(fd, entry["target"])


def setup_inside(spec: dict[str, Any], handles: HostHandles) -> None:
    """Everything PID 1 does before starting the command."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    hostname = spec["hostname"].encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    if not spec["network"]:
        loopback_up()
    root = spec["root"]
    if root is None:  # a host tool (mmdebstrap, tar): the host's tree, new namespaces
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for entry in spec["host_mounts"]:  # a session's tmpfs (host paths)
            os.makedirs(entry["target"], exist_ok=True)
            mount("tmpfs", entry["target"], "tmpfs", MS_NOSUID | MS_NODEV, _tmpfs_options(entry))
        return
    pivot_into(assemble_root(root, handles))
    # proc and sysfs are mounted while the host's are still visible below the old root
    _ensure_target("/proc", True)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _ensure_target("/sys", True)
    if handles.sys is not None:
        attach_tree(handles.sys, "/sys")
    elif spec["sys"] == "ro":
        try:
            mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except SetupError:
            pass  # rootless, sharing the host's network: no sysfs of our own, /sys stays empty
    detach_old_root()
    mount_dev(handles.devices, spec["shm_size"])
    harden_proc()
    if spec["tmpfs_tmp"]:
        _ensure_target("/tmp", True)
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec['tmp_size']}")
    mount_extra(spec, handles)


def bound_capabilities(keep: frozenset[int]) -> None:
    """Drop from the bounding set every capability not in ``keep``: the command's exec keeps no other."""
    with open("/proc/sys/kernel/cap_last_cap", "rb") as handle:  # bytes: no codec to import after the pivot
        last = int(handle.read())
    for cap in range(last + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")


def drop_privileges(spec: dict[str, Any]) -> None:
    """The command's credentials: a build user keeps no capability and can never gain one (setuid files);
    root in a root keeps the few apt and dpkg need."""
    if spec["uid"]:
        bound_capabilities(BUILD_CAPS)
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    elif spec["capabilities"] is not None:
        bound_capabilities(frozenset(spec["capabilities"]))
    if spec["uid"] and spec["max_processes"]:  # counted per host uid: the build user's has no other process
        resource.setrlimit(resource.RLIMIT_NPROC, (spec["max_processes"], spec["max_processes"]))
    if spec["gid"] or spec["uid"]:
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])


def exec_command(spec: dict[str, Any]) -> None:
    """In the forked child: a session of its own, the run's user, exec."""
    try:
        for sig in range(1, signal.NSIG):
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
        os.closerange(3, 65536)
        os.setsid()  # no terminal of the caller's is reachable (TIOCSTI needs one)
        if spec["terminal"]:  # the pty deb-mock relays becomes the controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        drop_privileges(spec)
        try:
            os.chdir(spec["cwd"])
        except OSError as exc:
            sys.stderr.write(f"deb-mock: cannot enter {spec['cwd']!r} in the root: {exc.strerror}\n")
            sys.stderr.flush()
            os._exit(126)
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except SetupError as exc:
        sys.stderr.write(f"deb-mock: {exc}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED)
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
    # Ctrl-C reaches the command from its terminal itself; the inits must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fail(status_fd: int, message: str) -> None:
    os.write(status_fd, message.encode("utf-8", "replace"))
    os._exit(SETUP_FAILED)


def pid_one(spec: dict[str, Any], status_fd: int, go_fd: int, handles: HostHandles) -> None:
    """PID 1 of the new namespaces: wait for O, become root of the user namespace, set up, run, reap."""
    os.close(HOST_PROC)  # the host's /proc: never inside the root
    try:
        if os.read(go_fd, 1) != b"1":  # O died (or failed) before it was done with us
            os._exit(SETUP_FAILED)
        if spec["id_map"]:
            os.setresgid(0, 0, 0)
            os.setgroups([])
            os.setresuid(0, 0, 0)
        # a credential change clears the parent-death signal: arm it now, then check that O lives
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if select.select([go_fd], [], [], 0)[0]:
            os._exit(SETUP_FAILED)
        os.close(go_fd)
        setup_inside(spec, handles)
        handles.close()
    except (SetupError, OSError) as exc:
        _fail(status_fd, str(exc))
    child = os.fork()
    if child == 0:
        exec_command(spec)
    os.close(status_fd)
    if spec["id_map"]:  # from now on PID 1 only reaps and forwards signals: it needs no capability
        header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()  # _LINUX_CAPABILITY_VERSION_3
        _libc.capset(header, data)
    _forward_signals_to(child)
    os._exit(reap(child))


def write_id_maps(pid: int, id_map: list[int]) -> None:
    """Map 0..count-1 of P1's user namespace to the subordinate ids (O is root outside)."""
    uid_start, gid_start, count = id_map
    for name, start in (("uid_map", uid_start), ("gid_map", gid_start)):
        fd = os.open(f"{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=HOST_PROC)
        try:
            os.write(fd, f"0 {start} {count}\n".encode())
        finally:
            os.close(fd)


def read_spec(fd: int) -> dict[str, Any]:
    data = b""
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    os.close(fd)
    spec: dict[str, Any] = marshal.loads(data)  # from the parent deb-mock (same Python): no json to import
    return spec


def main() -> None:
    """Entry point of the outer init O."""
    global HOST_PROC
    HOST_PROC = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    spec = read_spec(int(sys.argv[2]))
    status_fd = int(sys.argv[3])
    os.set_inheritable(status_fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(spec["parent_pid"])
    try:
        if spec["join_mount_ns"]:  # a run's session keeper holds its scratch space in RAM there
            fd = os.open(f"/proc/{spec['join_mount_ns']}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            _check(_libc.setns(fd, CLONE_NEWNS), "joining the session's mount namespace")
            os.close(fd)
        if spec["root"] is None:
            spec["id_map"] = None  # host tools run as deb-mock's user, in new namespaces only
        elif not spec["id_map"]:
            # rootless: copies of mounts need a mount namespace owned by the run's user namespace
            _check(_libc.unshare(CLONE_NEWNS), "creating a mount namespace")
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (0 if spec["network"] else CLONE_NEWNET)
        flags |= CLONE_NEWUSER if spec["id_map"] else 0
        handles = HostHandles(spec)
        go_read, go_write = os.pipe()
        child = raw_clone(flags)
    except (SetupError, OSError) as exc:
        _fail(status_fd, str(exc))
    if child == 0:
        os.close(go_write)
        pid_one(spec, status_fd, go_read, handles)
    os.close(go_read)
    try:
        if spec["id_map"]:
            write_id_maps(child, spec["id_map"])
            handles.idmap(child)
    except (OSError, SetupError) as exc:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        _fail(status_fd, f"setting up the root's user namespace: {exc}")
    handles.close()
    os.write(go_write, b"1")  # the write end stays open: its EOF tells P1 that O died
    _forward_signals_to(child)
    os._exit(reap(child))


if __name__ == "__main__":
    main()
